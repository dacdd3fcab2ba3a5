"""The page where a signed-in person makes and revokes their own API tokens (cookie session + CSRF)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import FormInvalid
from workflows.api_tokens import (
    DEFAULT_DAYS,
    MAX_DAYS,
    SCOPES,
    create_token,
    revoke_token,
    user_tokens,
)

from ..extensions import db
from ..runtime import current_engine

bp = Blueprint("token_pages", __name__, url_prefix="/account/tokens", template_folder="templates")


def _render(status: int = 200, secret: str | None = None, errors: dict | None = None):
    tokens = user_tokens(db.session, current_user.user.id)
    return render_template("api/tokens.html", tokens=tokens, scopes=SCOPES, now=current_engine().clock.now(),
                           secret=secret, errors=errors or {}, form=request.form, default_days=DEFAULT_DAYS,
                           max_days=MAX_DAYS), status


@bp.get("")
@login_required
def index():
    """My tokens and the form for a new one."""
    return _render()


@bp.post("")
@login_required
def create():
    """Make a token; its secret is shown on this answer only."""
    try:
        days = int(request.form.get("days") or DEFAULT_DAYS)
    except ValueError:
        days = 0
    try:
        issued = create_token(db.session, current_user.user, request.form.get("name", ""),
                              request.form.getlist("scopes"), current_engine().clock.now(), days)
    except FormInvalid as invalid:
        db.session.rollback()
        return _render(422, errors={e.field: e.message for e in invalid.errors})
    db.session.commit()
    response = _render(201, secret=issued.secret)
    return response[0], 201, {"Cache-Control": "no-store"}


@bp.post("/<int(max=2147483647):token_id>/revoke")
@login_required
def revoke(token_id: int):
    """Revoke one of my tokens."""
    revoke_token(db.session, token_id, current_engine().clock.now(), user_id=current_user.user.id)
    db.session.commit()
    flash(_("令牌已撤销"))
    return redirect(url_for("token_pages.index"))
