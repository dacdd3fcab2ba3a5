"""The coordinators' wish-pool board (心愿池): pooled wishes of their level, claim, match a resource, fulfil.

Thin: the board, its rights and each wish's history are ``workflows/wish_pool.py``; the pool
form (bpmn/micro_wish.pool.json) is rendered from its JSON Schema and validated by the engine.  Its
evidence is uploaded as on the task page (web/evidence.py): files kept across a form error, listed on
the wish's page to those who may read them.
"""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required

from workflows import wish_pool
from workflows.wishes import wish_status

from .evidence import (
    complete_with_evidence,
    readable_evidence,
    upload_form,
    with_upload_rules,
)
from .extensions import db
from .runtime import current_engine
from .session_user import current_actor
from .task_forms import fields_of

bp = Blueprint("wish_pool", __name__, url_prefix="/wish-pool")

PAGE_SIZE = 20


def _choice(name: str, choices: dict[str, str]) -> str:
    value = request.args.get(name, "")
    return value if value in choices else next(iter(choices))


def _query(**params) -> str:
    return "?" + urlencode({key: value for key, value in params.items() if value not in (None, "", 0)})


def pool_age(since: datetime, now: datetime) -> str:
    """How long a wish has been in the pool, in whole days, in the request's language ("不到1天", "3天")."""
    days = (now - since).days
    return _("不到1天") if days < 1 else ngettext("%(num)d天", "%(num)d天", days)


@bp.get("/")
@login_required
def board():
    """The pooled wishes of my level (or my whole subtree), oldest first, twenty a page."""
    actor, now = current_actor(), current_engine().clock.now()
    scope, show = _choice("scope", wish_pool.SCOPES), _choice("show", wish_pool.SHOWS)
    after = max(request.args.get("after", 0, type=int) or 0, 0)
    page = wish_pool.board(db.session, actor, now, scope=scope, show=show, limit=PAGE_SIZE, after_id=after)
    return render_template(
        "wish_pool/board.html", page=page, now=now, scope=scope, show=show, scopes=wish_pool.SCOPES,
        shows=wish_pool.SHOWS, counts=wish_pool.board_counts(db.session, actor, now, scope),
        next_url=_query(scope=scope, show=show, after=page.next_after) if page.next_after else None,
        first_url=_query(scope=scope, show=show) if after else None, pool_age=pool_age,
        count_cap=wish_pool.COUNT_CAP)


def _render(task_id: int, values, errors, status: int = 200, kept=None):
    engine, actor = current_engine(), current_actor()
    now = engine.clock.now()
    wish = wish_pool.pooled_wish(db.session, actor, task_id, now)
    upload = upload_form(kept)  # the evidence input: what it accepts, its limits, the files already carried
    schema = engine.form_schema(db.session, wish.task) if wish.open else None
    fields = with_upload_rules(fields_of(schema), schema, upload) if wish.open else []
    current = None
    if not wish.open and wish.business_key:  # fulfilled, escalated or withdrawn: say where it is now
        current = wish_status(db.session, wish.business_key)
    return render_template(
        "wish_pool/wish.html", wish=wish, now=now, pool_age=pool_age, current=current,
        resource_fields=[f for f in fields if f.name in wish_pool.RESOURCE_FIELDS],
        fulfil_fields=[f for f in fields if f.name not in wish_pool.RESOURCE_FIELDS],
        mine=wish.open and wish.task.assignee == actor.username, values=values, errors=errors, upload=upload,
        evidence_files=readable_evidence(wish.task.instance_id),
        history=wish_pool.wish_history(db.session, wish.task.instance_id)), status


@bp.get("/<int:task_id>")
@login_required
def wish(task_id: int):
    """One pooled wish: where it came from, its age and deadline, the pool form, its history."""
    return _render(task_id, {}, {})


@bp.post("/<int:task_id>/claim")
@login_required
def claim(task_id: int):
    """Take a pooled wish on."""
    wish_pool.claim(db.session, current_engine(), current_actor(), task_id)
    db.session.commit()
    flash(_("已认领，请对接资源帮助实现"))
    return redirect(url_for("wish_pool.wish", task_id=task_id))


@bp.post("/<int:task_id>/unclaim")
@login_required
def unclaim(task_id: int):
    """Put a wish I claimed back in the pool for a colleague."""
    wish_pool.give_back(db.session, current_engine(), current_actor(), task_id)
    db.session.commit()
    flash(_("已退回心愿池，其他协调员可以认领"))
    return redirect(url_for("wish_pool.wish", task_id=task_id))


@bp.post("/<int:task_id>/fulfil")
@login_required
def fulfil(task_id: int):
    """Record the matched resource and the fulfilment with its evidence; field errors come back next to the
    fields, with the files already uploaded still listed."""
    engine, actor = current_engine(), current_actor()
    wish = wish_pool.open_wish(db.session, actor, task_id, engine.clock.now())  # before any file is stored
    schema = engine.form_schema(db.session, wish.task)
    submitted = complete_with_evidence(
        wish.task, schema, lambda data: wish_pool.fulfil(db.session, engine, actor, task_id, data))
    if submitted.errors:
        return _render(task_id, request.form, submitted.errors, 422, submitted.kept)
    db.session.commit()
    flash(_("心愿已实现，已请青年确认"))
    return redirect(url_for("wish_pool.wish", task_id=task_id))
