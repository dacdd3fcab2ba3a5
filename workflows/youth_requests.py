"""A young person's own requests: a micro-wish (微心愿) or a question (青年之声) to a cadre they know.

The youth picks one of the cadres who contact them (a ``Contact`` row); the process starts at that
cadre's organisation, addressed to that cadre.  A question may instead be posted openly to the
"英雄帖" area of the county committee (县级团委) of one of those cadres: the ``youth_voice`` process
then starts at that committee with no cadre named, so any cadre inside it may take and answer it.
Only the youth who posted a request may confirm, withdraw or rate it.  Where a wish stands is
``workflows.wishes.wish_status``; where a question stands is :func:`question_status` here.  No
table of its own: the engine's rows say it all.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import Engine
from engine.errors import EngineError, FieldError, FormInvalid, NotAllowed, NotFound
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.runtime import CompletedTask

from .inbox import can_view_task
from .models import Cadre, Contact, Organisation, User
from .organisations import ancestors, by_code
from .phrases import N_, Phrase, phrase
from .roles import Actor
from .voice_operations import ANSWER_TASKS
from .wishes import (
    confirmation_payload,
    dated,
    open_tasks,
    valid_rating,
    wish_status,
)

WISH_PROCESS = "micro_wish"
VOICE_PROCESS = "youth_voice"


class NotNow(EngineError):
    """The request is not at a stage where this can be done (e.g. confirming a wish not yet fulfilled)."""

    http_status = 409


@dataclass(frozen=True)
class QuestionStatus:
    """Where a question is, who holds it, and the answer once there is one."""

    business_key: str
    instance_id: int
    question: str | None
    stage: str  # awaiting_answer, hero_board, awaiting_rating, closed, cancelled, error
    phrase: Phrase  # where it is, in words (workflows.phrases)
    holder_assignee: str | None = None
    holder_organisation: str | None = None
    answer: str | None = None
    answered_by: str | None = None
    rating: int | None = None
    since: datetime | None = None
    open_question: bool = False        # posted to the 英雄帖 area from the start, to no cadre in particular
    holder_name: str | None = None
    holder_organisation_name: str | None = None
    answered_by_name: str | None = None

    @property
    def text(self) -> str:
        """Where the question is, in Chinese."""
        return str(self.phrase)


# (field, label, shortest, longest) of what a youth writes; the API checks the same limits.
TEXT_LIMITS = {"title": ("心愿标题", 2, 100), "description": ("心愿内容", 2, 2000), "question": ("问题或意见", 2, 2000)}


def _checked(**values: str) -> dict[str, str]:
    """The texts stripped, or :class:`FormInvalid` naming each one that is too short or too long."""
    errors, clean = [], {}
    for name, value in values.items():
        label, low, high = TEXT_LIMITS[name]
        text = (value or "").strip()
        if not low <= len(text) <= high:
            errors.append(FieldError(name, f"{label}请填写{low}–{high}个字 / {name}: {low} to {high} characters"))
        clean[name] = text
    if errors:
        raise FormInvalid(errors)
    return clean


def _youth_id(actor: Actor) -> int:
    if actor.youth_id is None:
        raise NotAllowed("只有青年可以提出微心愿或提问 / only a young person may post a wish or a question")
    return actor.youth_id


def known_cadres(session: Session, actor: Actor, limit: int = 50, after_id: int = 0) -> list[Cadre]:
    """The cadres who contact the youth ``actor``, by id."""
    youth_id = _youth_id(actor)
    return list(session.scalars(select(Cadre).join(Contact, Contact.cadre_id == Cadre.id)
                                .where(Contact.youth_id == youth_id, Cadre.id > after_id)
                                .order_by(Cadre.id).limit(limit)))


def known_cadre(session: Session, actor: Actor, cadre_id: int) -> Cadre:
    """The cadre ``cadre_id`` if they contact the youth ``actor``; else :class:`NotAllowed`."""
    youth_id = _youth_id(actor)
    cadre = session.get(Cadre, cadre_id)
    if cadre is None:
        raise NotFound(f"团干部 {cadre_id} 不存在 / no cadre {cadre_id}")
    contact = session.scalar(select(Contact.id).where(Contact.cadre_id == cadre_id, Contact.youth_id == youth_id))
    if contact is None:
        raise NotAllowed(f"只能向联系你的团干部提出 / you may only ask a cadre who contacts you ({cadre.name} does not)")
    return cadre


def question_area(session: Session, organisation: Organisation) -> Organisation | None:
    """The 英雄帖 area of an organisation: its county committee, else its nearest leading organ.

    The same place the ``youth_voice`` process moves an unanswered question to (``county_committee``).
    """
    above = ancestors(session, organisation)
    return next((org for org in reversed(above) if org.kind == "county"), None) \
        or next((org for org in reversed(above) if org.is_leading_organ), None)


def question_areas(session: Session, actor: Actor, limit: int = 20) -> list[Organisation]:
    """The 英雄帖 areas the youth ``actor`` may post an open question to: those of the cadres who contact them."""
    youth_id = _youth_id(actor)
    homes = session.scalars(select(Organisation).join(Cadre, Cadre.organisation_id == Organisation.id)
                            .join(Contact, Contact.cadre_id == Cadre.id).where(Contact.youth_id == youth_id)
                            .distinct().order_by(Organisation.id).limit(100))
    areas: dict[str, Organisation] = {}
    for home in homes:
        area = question_area(session, home)
        if area is not None:
            areas.setdefault(area.code, area)
    return sorted(areas.values(), key=lambda org: org.path)[:limit]


def _start(session: Session, engine: Engine, actor: Actor, cadre: Cadre | None, organisation_code: str,
           process_id: str, prefix: str, data: dict[str, Any]) -> ProcessInstance:
    cadre_username = session.get(User, cadre.user_id).username if cadre is not None else None
    data = {"youth_assignee": actor.username, "cadre_assignee": cadre_username, **data}
    return engine.start(session, process_id, data, organisation_id=organisation_code,
                        business_key=f"{prefix}-{secrets.token_hex(8)}", actor=actor.username)


def post_wish(session: Session, engine: Engine, actor: Actor, cadre_id: int, title: str,
              description: str) -> ProcessInstance:
    """The youth ``actor`` asks a cadre they know to help with a micro-wish; the caller commits."""
    cadre = known_cadre(session, actor, cadre_id)
    text = _checked(title=title, description=description)
    return _start(session, engine, actor, cadre, cadre.organisation.code, WISH_PROCESS, "wish",
                  {"wish_title": text["title"], "wish_description": text["description"]})


def ask_question(session: Session, engine: Engine, actor: Actor, cadre_id: int, question: str) -> ProcessInstance:
    """The youth ``actor`` asks a cadre they know a question (青年之声); the caller commits."""
    cadre = known_cadre(session, actor, cadre_id)
    text = _checked(question=question)
    return _start(session, engine, actor, cadre, cadre.organisation.code, VOICE_PROCESS, "voice", text)


def ask_open_question(session: Session, engine: Engine, actor: Actor, area_code: str,
                      question: str) -> ProcessInstance:
    """The youth ``actor`` posts a question to a 英雄帖 area, for any cadre there to answer; the caller commits.

    The area must be one of :func:`question_areas` (that of a cadre who contacts them).
    """
    area = by_code(session, area_code)
    if area.code not in {org.code for org in question_areas(session, actor, limit=100)}:
        raise NotAllowed(f"只能向联系你的团干部所在团委的“英雄帖”专区提问 / you may only post to the 英雄帖 area of a "
                         f"cadre who contacts you ({area.name} is not one)")
    text = _checked(question=question)
    return _start(session, engine, actor, None, area.code, VOICE_PROCESS, "voice", {**text, "open_question": True})


def posted(session: Session, instance_id: int) -> dict[str, Any]:
    """What the youth posted (the start data: title and description, or the question)."""
    return session.scalar(select(AuditEvent.after).where(AuditEvent.instance_id == instance_id,
                                                         AuditEvent.kind == "started").limit(1)) or {}


def own_requests(session: Session, actor: Actor, process_id: str, limit: int = 50,
                 before_id: int | None = None) -> list[ProcessInstance]:
    """The wishes or questions the youth ``actor`` posted, newest first."""
    query = select(ProcessInstance).where(ProcessInstance.process_id == process_id,
                                          ProcessInstance.started_by == actor.username)
    if before_id is not None:
        query = query.where(ProcessInstance.id < before_id)
    return list(session.scalars(query.order_by(ProcessInstance.id.desc()).limit(limit)))


def own_request(session: Session, actor: Actor, process_id: str, business_key: str) -> ProcessInstance:
    """The newest instance of ``business_key`` if ``actor`` posted it; else :class:`NotFound` / :class:`NotAllowed`."""
    instance = session.scalar(select(ProcessInstance).where(ProcessInstance.business_key == business_key,
                                                            ProcessInstance.process_id == process_id)
                              .order_by(ProcessInstance.id.desc()).limit(1))
    if instance is None:
        raise NotFound(f"没有编号为 {business_key} 的记录 / nothing with key {business_key!r}")
    if instance.started_by != actor.username:
        raise NotAllowed(f"{business_key} 不是你提出的 / {business_key} is not yours")
    return instance


def confirm_wish(session: Session, engine: Engine, actor: Actor, business_key: str, rating: int | None = None,
                 comment: str | None = None) -> None:
    """The youth confirms their fulfilled wish, with an optional 1-5 rating; the caller commits."""
    own_request(session, actor, WISH_PROCESS, business_key)
    try:
        payload = confirmation_payload(rating, comment)
    except ValueError as error:
        raise FormInvalid([FieldError("rating", str(error))]) from None
    if wish_status(session, business_key).stage != "awaiting_confirmation":
        raise NotNow("心愿尚未实现或已结束，现在不能确认 / the wish is not waiting for your confirmation")
    engine.send_message(session, business_key, "wish_confirmed", payload, actor=actor.username)


def withdraw_wish(session: Session, engine: Engine, actor: Actor, business_key: str,
                  reason: str | None = None) -> None:
    """The youth withdraws their wish at any stage before it ends; the caller commits."""
    instance = own_request(session, actor, WISH_PROCESS, business_key)
    if instance.status != "running":
        raise NotNow("心愿已结束，不能撤回 / the wish has ended; it cannot be withdrawn")
    engine.send_message(session, business_key, "wish_withdrawn", {"reason": reason} if reason else {},
                        actor=actor.username)


def _answer(session: Session, instance_id: int) -> tuple[str | None, str | None]:
    event = session.scalar(select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                    AuditEvent.kind == "task_completed",
                                                    AuditEvent.element_id.in_(ANSWER_TASKS))
                           .order_by(AuditEvent.id.desc()).limit(1))
    if event is None:
        return None, None
    return (event.after or {}).get("answer"), event.actor


def _display_names(session: Session, usernames: set[str | None]) -> dict[str, str]:
    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(User.username.in_(wanted))).all())


def _org_name(session: Session, code: str | None) -> str | None:
    return session.scalar(select(Organisation.name).where(Organisation.code == code)) if code else None


def question_status(session: Session, instance: ProcessInstance) -> QuestionStatus:
    """Where a question stands, in plain words, read from its open task, its data and its audit trail.

    E.g. "您的问题已交给团干部张伟（市南区团委），等待回答，自5月3日起"; an open question (or one
    its cadre did not answer in time) is "in the 英雄帖 area" (stage ``hero_board``).
    """
    start = posted(session, instance.id)
    is_open = bool(start.get("open_question"))
    base = {"business_key": instance.business_key, "instance_id": instance.id, "question": start.get("question"),
            "open_question": is_open}
    answer, answered_by = _answer(session, instance.id)
    tasks = open_tasks(session, instance.id) if instance.status == "running" else []
    task: HumanTask | None = tasks[-1] if tasks else None
    names = _display_names(session, {answered_by, task.assignee if task else None})
    answered = {"answer": answer, "answered_by": answered_by, "answered_by_name": names.get(answered_by or "")}
    if instance.status == "running":
        org = _org_name(session, task.organisation_id if task else None)
        who = names.get(task.assignee or "", task.assignee) if task else None
        holder = {"holder_assignee": task.assignee if task else None,
                  "holder_organisation": task.organisation_id if task else None,
                  "holder_organisation_name": org, "holder_name": who, "since": task.created_at if task else None}
        if task is None:  # between steps (a service task failed and is being retried)
            return QuestionStatus(**base, stage="awaiting_answer", phrase=phrase(N_("您的问题正在办理中")), **holder)
        if task.bpmn_id == "Task_rate":
            by = answered["answered_by_name"] or answered_by or "团干部"
            said = dated(N_("团干部%(by)s已回答您的问题，欢迎在%(day)s前评价（1-5星）"),
                         N_("团干部%(by)s已回答您的问题，欢迎评价（1-5星）"), task.due_at, by=by)
            return QuestionStatus(**base, stage="awaiting_rating", phrase=said, **answered, **holder)
        if is_open or task.bpmn_id == "Task_hero":
            return QuestionStatus(**base, stage="hero_board", phrase=_on_hero_board(
                task, who, org, instance.started_at if is_open else task.created_at, late=not is_open), **holder)
        said = phrase(N_("您的问题已交给团干部%(who)s（%(organisation)s），等待回答，自%(since)s起"),
                      who=who, organisation=org, since=task.created_at)
        return QuestionStatus(**base, stage="awaiting_answer", phrase=said, **holder)
    outcome = (instance.data or {}).get("voice_outcome") or {}
    ended = instance.ended_at
    if instance.status == "completed":
        rating = outcome.get("rating")
        by = answered["answered_by_name"] or answered_by or ""
        if rating:
            said = dated(N_("团干部%(by)s已回答您的问题，您评价了%(rating)s星（%(day)s）"),
                         N_("团干部%(by)s已回答您的问题，您评价了%(rating)s星"), ended, by=by, rating=rating)
        else:
            said = dated(N_("团干部%(by)s已回答您的问题，未评价（%(day)s）"), N_("团干部%(by)s已回答您的问题，未评价"),
                         ended, by=by)
        return QuestionStatus(**base, stage="closed", phrase=said, rating=rating, since=ended, **answered)
    if instance.status == "cancelled":
        said = dated(N_("这个问题已被管理员取消（%(day)s）"), N_("这个问题已被管理员取消"), ended)
    else:
        said = phrase(N_("这个问题的办理出现问题，请联系团组织"))
    return QuestionStatus(**base, stage=instance.status, phrase=said, since=ended)


def _on_hero_board(task: HumanTask, who: str | None, org: str | None, since: datetime, late: bool) -> Phrase:
    """Where a question in the 英雄帖 area is: posted there (or moved there, ``late``), taken by a cadre or not."""
    if late and task.assignee:
        template = N_("团干部未能按时回答，您的问题已发布到%(area)s“英雄帖”专区，自%(since)s起，团干部%(who)s已认领，正在回答")
    elif late:
        template = N_("团干部未能按时回答，您的问题已发布到%(area)s“英雄帖”专区，自%(since)s起，任何团干部都可以认领回答")
    elif task.assignee:
        template = N_("您的问题在%(area)s“英雄帖”专区，自%(since)s起，团干部%(who)s已认领，正在回答")
    else:
        template = N_("您的问题在%(area)s“英雄帖”专区，自%(since)s起，任何团干部都可以认领回答")
    return phrase(template, area=org, since=since, who=who)


def rate_answer(session: Session, engine: Engine, actor: Actor, business_key: str, rating: int,
                comment: str | None = None) -> CompletedTask:
    """The youth rates the answer to their question (1-5 stars) while rating is open; the caller commits."""
    instance = own_request(session, actor, VOICE_PROCESS, business_key)
    task = next((t for t in open_tasks(session, instance.id) if t.bpmn_id == "Task_rate"), None)
    if task is not None and not can_view_task(session, actor, task):
        raise NotAllowed(f"你无权评价这个回答 / you may not rate the answer to {business_key}")
    if valid_rating(rating) is None:
        raise FormInvalid([FieldError("rating", "请选择1到5星 / choose 1 to 5 stars")])
    if task is None:
        raise NotNow("现在不能评价：问题尚未回答，或评价期已过 / nothing to rate now: not answered yet, or the "
                     "7 days to rate have passed")
    data: dict[str, Any] = {"rating": rating}
    if comment:
        data["rating_comment"] = comment
    return engine.complete_task(session, task.id, data, actor.username)
