"""The append-only audit trail: who did what to which instance and task, when, before and after.

An operation collects its events in an :class:`AuditLog` and writes them with one statement, in
the same transaction as the change they describe.  The database refuses to update or delete
them (triggers in the first migration) and so does the ORM.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from .models import AuditEvent
from .store import insert_audit_events


# Called with the session and the events of one operation, in its transaction (e.g. to notify people).
AuditListener = Callable[[Session, list[dict[str, Any]]], None]


class AuditLog:
    """The events of one operation, written together by :meth:`write`."""

    def __init__(self, at: datetime, actor: str | None = None, instance_id: int | None = None,
                 listeners: tuple[AuditListener, ...] = ()):
        self.at, self.actor, self.instance_id = at, actor, instance_id
        self.listeners = listeners
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, *, actor: str | None = None, instance_id: int | None = None,
            task_id: str | None = None, element_id: str | None = None, before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None, detail: str | None = None) -> None:
        """Add one event; actor and instance default to the log's."""
        self.events.append({"at": self.at, "actor": actor if actor is not None else self.actor, "kind": kind,
                            "instance_id": instance_id if instance_id is not None else self.instance_id,
                            "task_id": task_id, "element_id": element_id, "before": before, "after": after,
                            "detail": detail})

    def write(self, session: Session) -> None:
        """Append the collected events to the trail, tell the listeners, and forget them."""
        write_events(session, self.events, self.listeners)
        self.events = []


def write_events(session: Session, events: list[dict[str, Any]], listeners: tuple[AuditListener, ...]) -> None:
    """Append events (of one or many operations) with one statement, then tell each listener once."""
    insert_audit_events(session, events)
    for listener in listeners:
        listener(session, events)


def trail(session: Session, instance_id: int, limit: int = 500) -> list[AuditEvent]:
    """The events of one instance, oldest first."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                .order_by(AuditEvent.id).limit(limit)))


class AuditIsAppendOnly(Exception):
    """Raised when code tries to change or delete an audit event."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _flush_context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditIsAppendOnly("audit events are append-only; they cannot be changed or deleted")
