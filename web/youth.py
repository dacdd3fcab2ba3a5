"""The youth portal (青年服务): post a micro-wish or a question to a cadre one knows, follow it, confirm, rate, withdraw.

Thin: every rule (whom a youth may ask, whose request it is, when it can be confirmed or rated)
is in ``workflows/youth_requests.py``; where a wish or question stands, in plain words, is
``workflows.wishes.wish_status`` and ``youth_requests.question_status``.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.errors import FormInvalid, NotAllowed
from workflows import wish_pool, youth_requests
from workflows.roles import Actor
from workflows.wishes import wish_status

from .evidence import readable_evidence
from .extensions import db
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("youth", __name__, url_prefix="/youth")

HOME_SIZE = 5
PAGE_SIZE = 10
RATINGS = ((5, _l("★★★★★ 非常满意")), (4, _l("★★★★ 满意")), (3, _l("★★★ 一般")), (2, _l("★★ 不满意")),
           (1, _l("★ 很不满意")))
KINDS = {"wish": (youth_requests.WISH_PROCESS, _l("我的微心愿")), "question": (youth_requests.VOICE_PROCESS, _l("我的提问"))}


def _youth() -> Actor:
    actor = current_actor()
    if actor.youth_id is None:
        raise NotAllowed("这是青年服务页面，请用手机号和验证码登录 / this page is for young people: sign in with your "
                         "phone number and a code")
    return actor


def _errors(invalid: FormInvalid) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in invalid.errors:
        errors.setdefault(error.field.split("/", 1)[0], error.message)
    return errors


def _rating(raw: str | None) -> int | None:
    """A posted star rating: ``None`` when left empty, the number (checked by the domain) otherwise."""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return 0  # refused by the domain with the rule in words


def _statuses(kind: str, instances) -> list:
    if kind == "wish":
        return [wish_status(db.session, instance.business_key) for instance in instances]
    return [youth_requests.question_status(db.session, instance) for instance in instances]


@bp.get("/")
@login_required
def home():
    """My latest wishes and questions, where each stands, and the buttons to post new ones."""
    actor = _youth()
    lists = {}
    for kind, (process_id, _title) in KINDS.items():
        rows = youth_requests.own_requests(db.session, actor, process_id, HOME_SIZE + 1)
        lists[kind] = {"items": _statuses(kind, rows[:HOME_SIZE]), "more": len(rows) > HOME_SIZE}
    return render_template("youth/home.html", lists=lists,
                           cadres=youth_requests.known_cadres(db.session, actor, limit=1))


@bp.get("/wishes", defaults={"kind": "wish"})
@bp.get("/questions", defaults={"kind": "question"})
@login_required
def listing(kind: str):
    """All my wishes (or questions), newest first, ten a page (``?before=<instance id>``)."""
    actor = _youth()
    process_id, title = KINDS[kind]
    before = request.args.get("before", type=int)
    rows = youth_requests.own_requests(db.session, actor, process_id, PAGE_SIZE + 1, before)
    shown = rows[:PAGE_SIZE]
    older = url_for("youth.listing", kind=kind, before=shown[-1].id) if len(rows) > PAGE_SIZE else None
    return render_template("youth/list.html", kind=kind, title=title, items=_statuses(kind, shown),
                           older_url=older, first_page=before is None)


# ------------------------------------------------------------------------------------ wishes

def _wish_form(values: dict, errors: dict, status: int = 200):
    cadres = youth_requests.known_cadres(db.session, _youth(), limit=100)
    return render_template("youth/wish_new.html", cadres=cadres, values=values, errors=errors), status


@bp.route("/wishes/new", methods=["GET", "POST"])
@login_required
def new_wish():
    """Post a micro-wish to a cadre who contacts me."""
    actor = _youth()
    if request.method == "GET":
        return _wish_form({"cadre_id": request.args.get("cadre", "")}, {})
    form = request.form
    cadre_id = form.get("cadre_id", type=int)
    if cadre_id is None:
        return _wish_form(form, {"cadre_id": "请选择一位团干部 / choose a cadre"}, 422)
    try:
        instance = youth_requests.post_wish(db.session, current_engine(), actor, cadre_id, form.get("title", ""),
                                            form.get("description", ""))
    except FormInvalid as invalid:
        db.session.rollback()
        return _wish_form(form, _errors(invalid), 422)
    db.session.commit()
    flash(_("心愿已提交"))
    return redirect(url_for("youth.wish", key=instance.business_key))


@bp.get("/wishes/<key>")
@login_required
def wish(key: str):
    """Where my wish stands, in plain words, its history, what I can do now, and the photos and files of its
    fulfilment (the youth is the instance's starter, so ``may_read`` lets them open them)."""
    instance = youth_requests.own_request(db.session, _youth(), youth_requests.WISH_PROCESS, key)
    status = wish_status(db.session, key)
    return render_template("youth/wish.html", instance=instance, status=status,
                           posted=youth_requests.posted(db.session, instance.id), ratings=RATINGS,
                           evidence_files=readable_evidence(instance.id),
                           history=wish_pool.wish_history(db.session, instance.id))


@bp.post("/wishes/<key>/confirm")
@login_required
def confirm_wish(key: str):
    """Confirm my fulfilled wish, with a 1-5 star rating and a comment if I like."""
    youth_requests.confirm_wish(db.session, current_engine(), _youth(), key, _rating(request.form.get("rating")),
                                request.form.get("comment", "").strip() or None)
    db.session.commit()
    flash(_("感谢确认！"))
    return redirect(url_for("youth.wish", key=key))


@bp.post("/wishes/<key>/withdraw")
@login_required
def withdraw_wish(key: str):
    """Withdraw my wish, wherever it is (whoever holds it is told)."""
    youth_requests.withdraw_wish(db.session, current_engine(), _youth(), key,
                                 request.form.get("reason", "").strip()[:500] or None)
    db.session.commit()
    flash(_("心愿已撤回"))
    return redirect(url_for("youth.wish", key=key))


# --------------------------------------------------------------------------------- questions

def _question_form(values: dict, errors: dict, status: int = 200):
    actor = _youth()
    return render_template("youth/question_new.html", cadres=youth_requests.known_cadres(db.session, actor, limit=100),
                           areas=youth_requests.question_areas(db.session, actor), values=values,
                           errors=errors), status


@bp.route("/questions/new", methods=["GET", "POST"])
@login_required
def new_question():
    """Ask a cadre who contacts me, or post an open question to the 英雄帖 area of one of their committees."""
    actor = _youth()
    if request.method == "GET":
        return _question_form({"to": request.args.get("to", "")}, {})
    form = request.form
    kind, _sep, target = form.get("to", "").partition(":")
    engine = current_engine()
    try:
        if kind == "cadre" and target.isdigit():
            instance = youth_requests.ask_question(db.session, engine, actor, int(target), form.get("question", ""))
        elif kind == "area" and target:
            instance = youth_requests.ask_open_question(db.session, engine, actor, target, form.get("question", ""))
        else:
            return _question_form(form, {"to": "请选择提问对象 / choose whom to ask"}, 422)
    except FormInvalid as invalid:
        db.session.rollback()
        return _question_form(form, _errors(invalid), 422)
    db.session.commit()
    flash(_("问题已提交"))
    return redirect(url_for("youth.question", key=instance.business_key))


@bp.get("/questions/<key>")
@login_required
def question(key: str):
    """Where my question stands, its answer once there is one, and the rating form while rating is open."""
    instance = youth_requests.own_request(db.session, _youth(), youth_requests.VOICE_PROCESS, key)
    return render_template("youth/question.html", status=youth_requests.question_status(db.session, instance),
                           ratings=RATINGS, errors={})


@bp.post("/questions/<key>/rate")
@login_required
def rate_question(key: str):
    """Rate the answer to my question, 1-5 stars, with a comment if I like."""
    actor = _youth()
    try:
        youth_requests.rate_answer(db.session, current_engine(), actor, key, _rating(request.form.get("rating")),
                                   request.form.get("comment", "").strip() or None)
    except FormInvalid as invalid:
        db.session.rollback()
        instance = youth_requests.own_request(db.session, actor, youth_requests.VOICE_PROCESS, key)
        return render_template("youth/question.html", status=youth_requests.question_status(db.session, instance),
                               ratings=RATINGS, errors=_errors(invalid)), 422
    db.session.commit()
    flash(_("感谢评价！"))
    return redirect(url_for("youth.question", key=key))
