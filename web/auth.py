"""Sign-in pages: staff and cadres with a password, youth with phone + one-time code; sign-out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from workflows import accounts
from workflows.people import InvalidPhone

from .extensions import db
from .runtime import current_engine
from .session_user import SignedInUser

bp = Blueprint("auth", __name__)


def _address() -> str:
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only same-site paths; anything else goes to the inbox."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("main.inbox")


def _refused(error: accounts.SignInRefused, template: str, **context):
    db.session.commit()  # keep the recorded failure: it is what the rate limit counts
    status = 429 if isinstance(error, accounts.TooManyAttempts) else 401
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return render_template(template, error=error.message, **context), status, headers


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Staff and cadre sign-in with user name and password."""
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "")
    try:
        user = accounts.sign_in_with_password(db.session, username, request.form.get("password", ""),
                                              _address(), current_engine().clock.now())
    except accounts.SignInRefused as error:
        return _refused(error, "login.html", username=username, next=request.form.get("next", ""))
    db.session.commit()
    login_user(SignedInUser(user))
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/login/youth", methods=["GET", "POST"])
def login_youth():
    """Youth sign-in, step one: ask for a code by phone."""
    if request.method == "GET":
        return render_template("login_youth.html", step="phone")
    phone = request.form.get("phone", "")
    try:
        sent = accounts.send_code(db.session, phone, _address(), current_engine().clock.now(),
                                  current_app.config["SECRET_KEY"])
    except InvalidPhone as error:
        return render_template("login_youth.html", step="phone", error=str(error), phone=phone), 422
    except accounts.SignInRefused as error:
        return _refused(error, "login_youth.html", step="phone", phone=phone)
    db.session.commit()
    if current_app.config.get("SHOW_DEV_CODES"):
        current_app.logger.warning("development sign-in code for %s: %s", sent.masked_phone, sent.code)
    return render_template("login_youth.html", step="code", phone=phone, masked=sent.masked_phone)


@bp.post("/login/youth/verify")
def login_youth_verify():
    """Youth sign-in, step two: the code."""
    phone = request.form.get("phone", "")
    try:
        user = accounts.sign_in_with_code(db.session, phone, request.form.get("code", ""), _address(),
                                          current_engine().clock.now(), current_app.config["SECRET_KEY"])
    except InvalidPhone as error:
        return render_template("login_youth.html", step="phone", error=str(error), phone=phone), 422
    except accounts.SignInRefused as error:
        return _refused(error, "login_youth.html", step="code", phone=phone)
    db.session.commit()
    login_user(SignedInUser(user))
    return redirect(url_for("youth.home"))  # the youth portal: their wishes and questions


@bp.post("/logout")
def logout():
    """Sign out of this browser."""
    logout_user()
    flash(_("已退出"))
    return redirect(url_for("auth.login"))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """Sign out of every browser and device."""
    accounts.sign_out_everywhere(db.session, current_user.user)
    db.session.commit()
    logout_user()
    flash(_("已在所有设备上退出"))
    return redirect(url_for("auth.login"))


@bp.get("/whoami")
@login_required
def whoami():
    """The signed-in person, for scripts and tests."""
    if not current_user.is_authenticated:
        abort(401)
    return {"username": current_user.user.username, "display_name": current_user.user.display_name}
