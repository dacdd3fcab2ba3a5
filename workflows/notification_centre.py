"""The in-app notification centre: a person's notifications, how many are unread, marking them read.

Reads the outbox (:class:`Notification`) written by :mod:`workflows.notifications`; only the
``in_app`` channel belongs here.  Lists are newest first and paginated by id (keyset), counts are
capped, and marking all as read is one UPDATE, so a person with years of notifications costs the
same as a new one.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine.errors import NotFound

from .models import Notification

IN_APP = "in_app"
# The header shows "99+" past this: counting further would cost a scan for nothing anyone reads.
UNREAD_CAP = 99


def _mine(username: str):
    return (Notification.recipient == username, Notification.channel == IN_APP)


def unread_count(session: Session, username: str, cap: int = UNREAD_CAP) -> int:
    """How many unread in-app notifications ``username`` has, counting at most ``cap + 1``."""
    capped = select(Notification.id).where(*_mine(username), Notification.read_at.is_(None)).limit(cap + 1)
    return session.scalar(select(func.count()).select_from(capped.subquery())) or 0


def notifications(session: Session, username: str, limit: int = 30, before_id: int | None = None,
                  unread_only: bool = False) -> list[Notification]:
    """A page of ``username``'s in-app notifications, newest first; the next page starts ``before_id``."""
    query = select(Notification).where(*_mine(username))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def mark_read(session: Session, username: str, notification_id: int, now: datetime) -> bool:
    """Mark one of ``username``'s notifications read; ``False`` if it was read already.

    Someone else's notification is reported as not found, so ids reveal nothing.
    """
    found = session.scalar(select(Notification.read_at.is_(None)).where(Notification.id == notification_id,
                                                                        *_mine(username)))
    if found is None:
        raise NotFound(f"通知 {notification_id} 不存在 / notification {notification_id} does not exist")
    if not found:
        return False
    session.execute(update(Notification).where(Notification.id == notification_id, Notification.read_at.is_(None))
                    .values(read_at=now).execution_options(synchronize_session=False))
    return True


def mark_all_read(session: Session, username: str, now: datetime) -> int:
    """Mark every unread in-app notification of ``username`` read; return how many were."""
    result = session.execute(update(Notification).where(*_mine(username), Notification.read_at.is_(None))
                             .values(read_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0
