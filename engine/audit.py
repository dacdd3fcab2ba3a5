"""The append-only audit trail: who did what to which instance and task, when, before and after."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from .models import AuditEvent


def record(session: Session, at: datetime, kind: str, *, actor: str | None = None, instance_id: int | None = None,
           task_id: str | None = None, element_id: str | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, detail: str | None = None) -> AuditEvent:
    """Append one event to the trail (in the caller's transaction)."""
    entry = AuditEvent(at=at, actor=actor, kind=kind, instance_id=instance_id, task_id=task_id,
                       element_id=element_id, before=before, after=after, detail=detail)
    session.add(entry)
    return entry


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
