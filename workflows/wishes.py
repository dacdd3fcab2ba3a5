"""Micro-wishes (微心愿) and the wish pool (心愿池): where a wish is, who holds it, and what people are told.

The ``micro_wish`` process (bpmn/micro_wish.bpmn) keeps the wish in its own data; this module
answers the youth's question "where is my wish and who holds it" from what the engine already
writes: the open ``human_task`` rows, the instance row and the audit trail.  No table of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.models import AuditEvent, HumanTask, ProcessInstance

from .models import STAFF_ROLES, Notification, Organisation, User
from .phrases import N_, Phrase, phrase
from .phrases import day_text as day_text  # read from here by youth_requests and the tests
from .roles import holders

PROCESS_ID = "micro_wish"
CADRE_TASKS = {"Task_reply": "cadre_reply", "Task_fulfil": "cadre_fulfil"}
POOL_TASKS = ("Task_pool", "Task_pool_province")
FULFILMENT_TASKS = ("Task_fulfil", *POOL_TASKS)
AUTO_CONFIRM_DAYS = 7

# What the youth (and the people who held the wish) are told, by event.
MESSAGES = {
    "replied": ("微心愿有回复：{title}", "团干部已答应帮助您实现微心愿「{title}」，请留意进展。"),
    "pooled": ("微心愿转入心愿池：{title}",
               "您的微心愿「{title}」已转入{organisation}心愿池，将由协调员对接资源帮助实现。"),
    "fulfilled": ("微心愿已实现，请确认：{title}",
                  "您的微心愿「{title}」已实现。请确认并评价（1-5星）；7天内未确认的将自动确认。"),
    "confirmed": ("微心愿已确认：{title}", "青年已确认您帮助实现的微心愿「{title}」{rating_text}。"),
    "auto_confirmed": ("微心愿已自动确认：{title}", "青年7天内未确认，您帮助实现的微心愿「{title}」已自动确认。"),
    "withdrawn": ("微心愿已撤回：{title}", "青年撤回了微心愿「{title}」，无需继续办理{reason_text}。"),
}


@dataclass(frozen=True)
class WishStatus:
    """Where a wish is and who holds it, in plain words and as data."""

    business_key: str
    instance_id: int
    title: str | None
    stage: str  # cadre_reply, cadre_fulfil, pool, awaiting_confirmation, confirmed, auto_confirmed, withdrawn, ...
    phrase: Phrase  # e.g. "您的心愿在市南区团委心愿池，自5月3日起" (workflows.phrases)
    holder_role: str | None = None
    holder_organisation: str | None = None
    holder_organisation_name: str | None = None
    holder_assignee: str | None = None
    holder_name: str | None = None
    since: datetime | None = None

    @property
    def text(self) -> str:
        """Where the wish is, in Chinese."""
        return str(self.phrase)


def dated(with_day: str, without_day: str, day: datetime | None, **values: Any) -> Phrase:
    """``with_day`` holding ``day`` (as ``%(day)s``) when there is one, else ``without_day``."""
    return phrase(with_day, day=day, **values) if day is not None else phrase(without_day, **values)


def notify(session: Session, recipients: list[str], event: str, at: datetime, **values: Any) -> list[str]:
    """Write the in-app notification of ``event`` (a key of :data:`MESSAGES`) to each recipient once."""
    subject, body = MESSAGES[event]
    values.setdefault("title", "")
    sent = []
    for recipient in dict.fromkeys(r for r in recipients if r):
        session.add(Notification(recipient=recipient, channel="in_app", subject=subject.format(**values)[:255],
                                 body=body.format(**values)[:4000], created_at=at))
        sent.append(recipient)
    return sent


def task_recipients(session: Session, task: HumanTask) -> list[str]:
    """Who holds a task: its assignee, or else the holders of its staff role at its organisation."""
    if task.assignee:
        return [task.assignee]
    if task.candidate_role in STAFF_ROLES and task.organisation_id:
        org = session.scalar(select(Organisation).where(Organisation.code == task.organisation_id))
        if org is not None:
            return [user.username for user in holders(session, task.candidate_role, org)]
    return []


def open_tasks(session: Session, instance_id: int) -> list[HumanTask]:
    """The open human tasks of an instance, oldest first."""
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.state.in_(HumanTask.OPEN_STATES))
                                .order_by(HumanTask.id)))


def last_fulfilment(session: Session, instance_id: int) -> HumanTask | None:
    """The completed task in which the wish was fulfilled (the latest cadre or pool task), if any."""
    return session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                  HumanTask.bpmn_id.in_(FULFILMENT_TASKS),
                                                  HumanTask.state == "completed")
                          .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))


def valid_rating(value: Any) -> int | None:
    """A youth's rating if it is a whole number of stars from 1 to 5, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        return None
    return int(value) if 1 <= value <= 5 else None


def confirmation_payload(rating: int | None = None, comment: str | None = None) -> dict[str, Any]:
    """The ``wish_confirmed`` message payload; raise :class:`ValueError` for a rating outside 1-5."""
    if rating is not None and valid_rating(rating) is None:
        raise ValueError("评分应为1到5星 / the rating is a whole number from 1 to 5")
    payload: dict[str, Any] = {}
    if rating is not None:
        payload["rating"] = int(rating)
    if comment:
        payload["comment"] = str(comment)[:500]
    return payload


def _names(session: Session, username: str | None, org_code: str | None) -> tuple[str | None, str | None]:
    person = session.scalar(select(User.display_name).where(User.username == username)) if username else None
    org = session.scalar(select(Organisation.name).where(Organisation.code == org_code)) if org_code else None
    return person, org


def _start_data(session: Session, instance_id: int) -> dict[str, Any]:
    return session.scalar(select(AuditEvent.after).where(AuditEvent.instance_id == instance_id,
                                                         AuditEvent.kind == "started").limit(1)) or {}


def wish_status(session: Session, business_key: str) -> WishStatus:
    """Where the wish with ``business_key`` is, who holds it and since when (the newest instance of it).

    Reads the open ``human_task`` rows and the instance; while the wish waits for the youth's
    confirmation no task is open and the youth holds it.  Raises :class:`NotFound` for an unknown key.
    """
    instance = session.scalar(select(ProcessInstance).where(ProcessInstance.business_key == business_key,
                                                            ProcessInstance.process_id == PROCESS_ID)
                              .order_by(ProcessInstance.id.desc()).limit(1))
    if instance is None:
        raise NotFound(f"没有编号为 {business_key} 的微心愿 / no wish with business key {business_key!r}")
    start = _start_data(session, instance.id)
    title, youth = start.get("wish_title"), start.get("youth_assignee")
    base = {"business_key": business_key, "instance_id": instance.id, "title": title}
    if instance.status == "running":
        tasks = open_tasks(session, instance.id)
        if tasks:
            return _status_of_task(session, base, tasks[-1])
        done = last_fulfilment(session, instance.id)
        since = done.completed_at if done is not None else None
        by = _fulfiller(session, done)
        if since is None:
            said = phrase(N_("您的心愿已由%(by)s实现，等待您确认"), by=by)
        else:
            said = phrase(N_("您的心愿已由%(by)s实现，等待您确认；%(deadline)s前未确认的将自动确认，自%(since)s起"),
                          by=by, deadline=since + timedelta(days=AUTO_CONFIRM_DAYS), since=since)
        return WishStatus(**base, stage="awaiting_confirmation", phrase=said, holder_role="youth",
                          holder_assignee=youth, since=since)
    outcome = (instance.data or {}).get("wish_outcome") or {}
    ended = instance.ended_at
    if instance.status == "completed" and outcome.get("outcome") in ("confirmed", "auto_confirmed", "withdrawn"):
        kind = outcome["outcome"]
        said = {"confirmed": dated(N_("您的心愿已实现，您已确认（%(day)s）"), N_("您的心愿已实现，您已确认"), ended),
                "auto_confirmed": dated(N_("您的心愿已实现，7天内未确认，已自动确认（%(day)s）"),
                                        N_("您的心愿已实现，7天内未确认，已自动确认"), ended),
                "withdrawn": dated(N_("您已撤回这个心愿（%(day)s）"), N_("您已撤回这个心愿"), ended)}[kind]
        return WishStatus(**base, stage=kind, phrase=said, since=ended)
    if instance.status == "cancelled":
        return WishStatus(**base, stage="cancelled", since=ended,
                          phrase=dated(N_("这个心愿已被管理员取消（%(day)s）"), N_("这个心愿已被管理员取消"), ended))
    return WishStatus(**base, stage=instance.status, phrase=phrase(N_("这个心愿的办理出现问题，请联系团组织")),
                      since=ended)


def _fulfiller(session: Session, task: HumanTask | None) -> Phrase:
    if task is None:
        return phrase(N_("团组织"))
    person, org = _names(session, task.completed_by, task.organisation_id)
    if task.bpmn_id == "Task_fulfil":
        return phrase(N_("团干部%(name)s"), name=person or task.completed_by or "")
    if person:
        return phrase(N_("%(pool)s心愿池（协调员%(name)s）"), pool=org or task.organisation_id, name=person)
    return phrase(N_("%(pool)s心愿池"), pool=org or task.organisation_id)


def _status_of_task(session: Session, base: dict[str, Any], task: HumanTask) -> WishStatus:
    person, org = _names(session, task.assignee, task.organisation_id)
    since = task.created_at
    holder = {"holder_role": task.candidate_role, "holder_organisation": task.organisation_id,
              "holder_organisation_name": org, "holder_assignee": task.assignee, "holder_name": person,
              "since": since}
    who = person or task.assignee or ""
    if task.bpmn_id == "Task_reply":
        said = phrase(N_("您的心愿已交给团干部%(who)s（%(organisation)s），等待回复，自%(since)s起"),
                      who=who, organisation=org, since=since)
        return WishStatus(**base, stage="cadre_reply", phrase=said, **holder)
    if task.bpmn_id == "Task_fulfil":
        said = phrase(N_("团干部%(who)s（%(organisation)s）已答应帮您实现心愿，正在办理，自%(since)s起"),
                      who=who, organisation=org, since=since)
        return WishStatus(**base, stage="cadre_fulfil", phrase=said, **holder)
    pool = org or task.organisation_id
    if task.assignee:  # a pool task is the coordinators'
        said = phrase(N_("您的心愿在%(pool)s心愿池，自%(since)s起，由协调员%(who)s办理"), pool=pool, since=since, who=who)
    else:
        said = phrase(N_("您的心愿在%(pool)s心愿池，自%(since)s起"), pool=pool, since=since)
    return WishStatus(**base, stage="pool", phrase=said, **holder)
