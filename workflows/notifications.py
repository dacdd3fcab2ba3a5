"""Telling people: every new assignment, reminder and escalation writes to the notification outbox.

:func:`notify_from_audit` is the engine's audit listener: it runs in the transaction of the
change, so a notification exists exactly when the change does.  Delivery (in-app list, e-mail,
SMS) reads the outbox later.  A bulk start (a campaign launch) or a batch of fired timers hands it
the events of hundreds of instances at once: the tasks they remind of are read, and their
notifications written, with one statement each.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import HumanTask
from engine.store import insert_rows

from .models import STAFF_ROLES, Notification, Organisation
from .roles import ROLE_NAMES_ZH, holders


def _recipients(session: Session, assignee: str | None, role: str | None, org_code: str | None,
                known: dict[tuple[str, str], list[str]]) -> list[str]:
    """The assignee, or else the holders of the role at the task's organisation (looked up once per call)."""
    if assignee:
        return [assignee]
    if role in STAFF_ROLES and org_code:
        if (role, org_code) not in known:
            org = session.scalar(select(Organisation).where(Organisation.code == org_code))
            known[role, org_code] = [user.username for user in holders(session, role, org)] if org is not None else []
        return known[role, org_code]
    return []


def _write(rows: list[dict[str, Any]], recipients: list[str], subject: str, body: str, at: datetime) -> None:
    for recipient in dict.fromkeys(recipients):
        rows.append({"recipient": recipient, "channel": "in_app", "subject": subject, "body": body, "created_at": at})


DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")


def _due_text(due: str | None) -> str:
    """The deadline as people in the province read it (Beijing time)."""
    if not due:
        return ""
    return f"，截止 {datetime.fromisoformat(due).astimezone(DISPLAY_ZONE):%Y-%m-%d %H:%M}"


def _tasks_reminded_or_escalated(session: Session, events: list[dict[str, Any]]) -> dict[tuple[int, str], Any]:
    """The human-task rows the ``reminded`` and ``escalated`` events name, by (instance id, task id), in one read."""
    keys = {(event["instance_id"], event["task_id"]) for event in events if event["kind"] in ("reminded", "escalated")}
    if not keys:
        return {}
    rows = session.execute(select(HumanTask.instance_id, HumanTask.task_id, HumanTask.name, HumanTask.assignee,
                                  HumanTask.candidate_role, HumanTask.organisation_id, HumanTask.due_at)
                           .where(HumanTask.instance_id.in_({instance_id for instance_id, _ in keys}),
                                  HumanTask.task_id.in_({task_id for _, task_id in keys})))
    return {(row.instance_id, row.task_id): row for row in rows if (row.instance_id, row.task_id) in keys}


def notify_from_audit(session: Session, events: list[dict[str, Any]]) -> None:
    """Write notifications for the events of one engine operation (or of a bulk start, or a batch of fired
    timers), in event order."""
    rows: list[dict[str, Any]] = []
    known: dict[tuple[str, str], list[str]] = {}
    tasks = _tasks_reminded_or_escalated(session, events)
    for event in events:
        kind, after, at = event["kind"], event.get("after") or {}, event["at"]
        if kind == "task_created":
            offered = "" if after.get("assignee") else f"（待{ROLE_NAMES_ZH.get(after.get('role'), '')}认领）"
            _write(rows, _recipients(session, after.get("assignee"), after.get("role"), after.get("organisation_id"),
                                     known),
                   f"新的待办：{after.get('name')}", f"您有新的待办「{after.get('name')}」{offered}"
                   f"{_due_text(after.get('due_at'))}。", at)
        elif kind in ("reminded", "escalated"):
            task = tasks.get((event["instance_id"], event["task_id"]))
            if task is None:
                continue
            recipients = _recipients(session, task.assignee, task.candidate_role, task.organisation_id, known)
            if kind == "reminded":
                _write(rows, recipients, f"提醒：{task.name}",
                       f"待办「{task.name}」即将到期{_due_text(task.due_at.isoformat() if task.due_at else None)}，"
                       "请及时办理。", at)
            else:
                _write(rows, recipients, f"已逾期：{task.name}",
                       f"待办「{task.name}」已超过截止时间，已转入后续处理。", at)
    if rows:
        if session.new:  # notifications added through the ORM earlier in this transaction keep their place
            session.flush()
        insert_rows(session, Notification.__table__, rows)


def unread(session: Session, username: str, limit: int = 50) -> list[Notification]:
    """A person's unread in-app notifications, newest first."""
    return list(session.scalars(select(Notification).where(Notification.recipient == username,
                                                           Notification.channel == "in_app",
                                                           Notification.read_at.is_(None))
                                .order_by(Notification.id.desc()).limit(limit)))
