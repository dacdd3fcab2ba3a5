"""Delivering the notification outbox through senders — e-mail today, room for SMS or WeChat.

A row of :class:`~workflows.models.Notification` travels like this:

1. The change that caused it writes it, ``delivery_state`` empty.
2. **Triage** (a batch at a time) decides whether it goes out at all.  An ``in_app`` notification is
   also e-mailed when its recipient is an active account with an e-mail address — every kind
   (new task, reminder, escalation, wish, question, spot check, bulletin): each asks the person to
   act, and the outbox has no "kind" to tell them apart.  It is ``skipped`` when the person has no
   address, has already read it in the notification centre, or it is older than ``max_age`` (e-mail
   switched on late sends no flood of history).  A row of a sender's own channel (``email``, later
   ``sms``, ``wechat``) goes to its ``address``.  Rows of a channel without a configured sender
   (today the ``sms`` sign-in codes) are left alone.  A row to send becomes ``pending``, due now,
   and an in-app row's e-mail address is copied into ``address`` (the record of where it went).
3. **Claim**: one statement takes up to ``batch_size`` due rows, moves their ``next_attempt_at`` to
   ``now + lease`` and counts the attempt (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent
   runs take different rows; one statement under SQLite's write lock).  It is committed before
   anything is sent: no database lock is held while talking to a mail server.
4. **Send, then mark**, one short transaction per message, guarded by the attempt number of the
   claim: ``sent`` (``sent_at``); after a transient failure ``pending`` again with back-off (1 min,
   ×3, at most 6 h) and ``failed`` after ``max_attempts`` (10: about a day of trying); ``failed`` at
   once after a permanent one.  Rows are never deleted; :func:`requeue_failed` sends failed ones
   again.

**If the process dies between the server's acceptance and the mark's commit**, the row is still
``pending`` with its claim's ``next_attempt_at``; when the lease lapses another run claims it and
sends it again.  Delivery is therefore *at least once*: never lost, and sent twice only in that
window (milliseconds a message), the copy carrying the same ``Message-ID`` (derived from the
notification id) so mail systems and readers recognise it.  Marking before sending (at most once)
would lose the message in the same window instead.  A batch stops sending once half its lease has
passed and hands back what it has not tried, so a slow server cannot make a live claim lapse.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.jobs import RetryPolicy

from .models import Notification, User

log = logging.getLogger(__name__)

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
# Channels whose rows are delivered by another channel's sender: an in-app notification is e-mailed.
SENT_VIA = {"in_app": "email"}


class DeliveryFailure(Exception):
    """A sender could not hand over a message; ``channel_down`` if no message would get through now."""

    def __init__(self, reason: str, channel_down: bool = False):
        super().__init__(reason)
        self.reason, self.channel_down = reason, channel_down


class TransientFailure(DeliveryFailure):
    """Worth trying again later (4xx answer, server unreachable, connection lost)."""


class PermanentFailure(DeliveryFailure):
    """Will never succeed as written (5xx answer, malformed address)."""


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for a sender: the notification it comes from and where it goes."""

    notification_id: int
    address: str
    subject: str
    body: str
    created_at: datetime


class Sender(Protocol):
    """Sends messages of one channel ("email"; later "sms", "wechat").

    ``send`` hands one message over or raises :class:`TransientFailure` / :class:`PermanentFailure`;
    ``close`` ends whatever connection the sender keeps between messages.
    """

    channel: str

    def send(self, message: OutgoingMessage) -> None: ...

    def close(self) -> None: ...


# 1 min, 3, 9, 27 … at most 6 h between tries; the 10th failure, about a day after the first, is final.
DELIVERY_RETRY = RetryPolicy(max_attempts=10, first_delay=60.0, factor=3.0, max_delay=6 * 3600.0)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the outbox is delivered: retries, batch sizes, the claim's lease, the oldest row still sent."""

    retry: RetryPolicy = DELIVERY_RETRY
    batch_size: int = 20
    lease: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=2)
    triage_batch: int = 2000
    max_triage_per_run: int = 20_000
    max_sends_per_run: int = 1000


@dataclass
class DeliveryRun:
    """What one :func:`deliver_due` did."""

    queued: int = 0
    skipped: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    handed_back: int = 0
    lost_claims: int = 0
    channels_down: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any((self.queued, self.skipped, self.sent, self.retrying, self.failed, self.handed_back,
                    self.lost_claims, self.channels_down))


@dataclass(frozen=True)
class _Claimed:
    id: int
    channel: str
    address: str | None
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None
    attempt: int


_table = Notification.__table__
_TRIAGE = (update(_table)
           .where(_table.c.id == bindparam("b_id"), _table.c.delivery_state.is_(None))
           .values(delivery_state=bindparam("v_state"), address=bindparam("v_address"),
                   next_attempt_at=bindparam("v_next"), last_error=bindparam("v_error")))
_MARK = (update(_table)
         .where(_table.c.id == bindparam("b_id"), _table.c.attempts == bindparam("b_attempt"),
                _table.c.delivery_state == PENDING)
         .values(delivery_state=bindparam("v_state"), next_attempt_at=bindparam("v_next"),
                 last_error=bindparam("v_error"), sent_at=bindparam("v_sent")))
_HAND_BACK = (update(_table)
              .where(_table.c.id == bindparam("b_id"), _table.c.attempts == bindparam("b_attempt"),
                     _table.c.delivery_state == PENDING)
              .values(attempts=_table.c.attempts - 1, next_attempt_at=bindparam("v_next")))


def _routes(senders: Mapping[str, Sender]) -> dict[str, Sender]:
    """Which sender takes the rows of each outbox channel."""
    routes = {channel: sender for channel, sender in senders.items()}
    routes.update({channel: senders[via] for channel, via in SENT_VIA.items() if via in senders})
    return routes


def _skip_locked(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _triage(session: Session, channel: str, now: datetime, policy: DeliveryPolicy, run: DeliveryRun) -> int:
    """Decide for one batch of new rows of ``channel`` whether they go out; return how many were looked at."""
    # No ORDER BY: the new rows are the newest of a large table, and any batch of them will do.
    query = (select(_table.c.id, _table.c.recipient, _table.c.address, _table.c.created_at, _table.c.read_at)
             .where(_table.c.channel == channel, _table.c.delivery_state.is_(None)).limit(policy.triage_batch))
    if _skip_locked(session):
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return 0
    emails: dict[str, str] = {}
    if channel in SENT_VIA:
        emails = dict(session.execute(select(User.username, User.email).where(
            User.username.in_({row.recipient for row in rows}), User.active.is_(True), User.email.is_not(None),
            User.email != "")).all())
    too_old = now - policy.max_age
    updates = []
    for row in rows:
        address, reason = row.address, None
        if row.created_at < too_old:
            reason = f"超过 {policy.max_age.days} 天未发送，不再发送 / older than {policy.max_age} when first seen"
        elif channel in SENT_VIA:
            address = emails.get(row.recipient)
            if row.read_at is not None:
                reason = "已在站内阅读 / already read in the app"
            elif not address:
                reason = "收件人没有邮箱 / the recipient has no e-mail address"
        elif not (address or "").strip():
            reason = "没有收件地址 / no address"
        run.skipped += reason is not None
        run.queued += reason is None
        updates.append({"b_id": row.id, "v_state": SKIPPED if reason else PENDING, "v_address": address,
                        "v_next": None if reason else now, "v_error": reason})
    session.execute(_TRIAGE, updates)
    return len(rows)


def _claim(session: Session, channel: str, now: datetime, limit: int, lease_until: datetime) -> list[_Claimed]:
    """Take up to ``limit`` due rows of ``channel``: count the attempt and hold them until ``lease_until``."""
    due = (select(_table.c.id)
           .where(_table.c.channel == channel, _table.c.delivery_state == PENDING, _table.c.next_attempt_at <= now)
           .order_by(_table.c.next_attempt_at).limit(limit))
    if _skip_locked(session):
        due = due.with_for_update(skip_locked=True)
    # Two statements, not UPDATE … WHERE id IN (SELECT … LIMIT … SKIP LOCKED): PostgreSQL may run such
    # a subquery once per outer row and so claim far more than ``limit``.  The UPDATE re-checks that
    # each row is still due: on SQLite (no row locks) a row another run took in between is left out.
    for _race in range(3):
        ids = list(session.scalars(due))
        if not ids:
            return []
        statement = (update(_table)
                     .where(_table.c.id.in_(ids), _table.c.delivery_state == PENDING, _table.c.next_attempt_at <= now)
                     .values(attempts=_table.c.attempts + 1, next_attempt_at=lease_until)
                     .returning(_table.c.id, _table.c.channel, _table.c.address, _table.c.subject, _table.c.body,
                                _table.c.created_at, _table.c.read_at, _table.c.attempts))
        claimed = [_Claimed(*row) for row in session.execute(statement)]
        if claimed:
            return sorted(claimed, key=lambda message: message.id)
    return []


def _mark(session: Session, message: _Claimed, state: str, run: DeliveryRun, *, next_at: datetime | None = None,
          error: str | None = None, sent_at: datetime | None = None) -> None:
    """Record the outcome of one claimed message and commit it."""
    result = session.execute(_MARK, {"b_id": message.id, "b_attempt": message.attempt, "v_state": state,
                                     "v_next": next_at, "v_error": error[:500] if error else None, "v_sent": sent_at})
    session.commit()
    if result.rowcount == 0:  # the lease lapsed and another run claimed it: it may be sent twice
        run.lost_claims += 1
        log.warning("notification %s: claim %s lapsed before its outcome (%s) was recorded",
                    message.id, message.attempt, state)


def _after_transient(session: Session, message: _Claimed, reason: str, now: datetime, policy: DeliveryPolicy,
                     run: DeliveryRun) -> None:
    if message.attempt >= policy.retry.max_attempts:
        run.failed += 1
        _mark(session, message, FAILED, run,
              error=f"{reason}（已尝试 {message.attempt} 次 / after {message.attempt} attempts）")
    else:
        run.retrying += 1
        _mark(session, message, PENDING, run, error=reason,
              next_at=now + timedelta(seconds=policy.retry.delay(message.attempt)))


def _send_batch(session: Session, batch: list[_Claimed], routes: Mapping[str, Sender], clock: Clock,
                claimed_at: datetime, policy: DeliveryPolicy, run: DeliveryRun) -> None:
    """Send each claimed message and record each outcome; hand back what there is no time left for."""
    for index, message in enumerate(batch):
        now = clock.now()
        if now >= claimed_at + policy.lease / 2:
            session.execute(_HAND_BACK, [{"b_id": m.id, "b_attempt": m.attempt, "v_next": now}
                                         for m in batch[index:]])
            session.commit()
            run.handed_back += len(batch) - index
            return
        sender = routes[message.channel]
        if message.channel in SENT_VIA and message.read_at is not None:
            run.skipped += 1
            _mark(session, message, SKIPPED, run, error="已在站内阅读 / already read in the app")
            continue
        if sender.channel in run.channels_down:
            _after_transient(session, message, run.channels_down[sender.channel], now, policy, run)
            continue
        try:
            sender.send(OutgoingMessage(message.id, message.address or "", message.subject, message.body,
                                        message.created_at))
        except PermanentFailure as exc:
            run.failed += 1
            _mark(session, message, FAILED, run, error=exc.reason)
        except TransientFailure as exc:
            if exc.channel_down:
                run.channels_down[sender.channel] = exc.reason
            _after_transient(session, message, exc.reason, clock.now(), policy, run)
        except Exception as exc:  # a sender's bug must not lose the message: it is retried, then kept as failed
            log.exception("sender %s failed on notification %s", sender.channel, message.id)
            run.channels_down[sender.channel] = repr(exc)
            _after_transient(session, message, repr(exc), clock.now(), policy, run)
        else:
            run.sent += 1
            _mark(session, message, SENT, run, sent_at=clock.now())


def deliver_due(session_factory: Callable[[], Session], senders: Mapping[str, Sender], clock: Clock,
                policy: DeliveryPolicy = DeliveryPolicy()) -> DeliveryRun:
    """Triage new outbox rows and send the due ones through ``senders`` (by channel), committing as it goes.

    With no senders nothing is read or written.  Stops when nothing is due, after
    ``policy.max_sends_per_run`` messages, or when every channel is down (the next run tries again).
    """
    run = DeliveryRun()
    routes = _routes(senders)
    for channel in routes:
        looked_at = 0
        while looked_at < policy.max_triage_per_run:
            with session_factory() as session:
                batch = _triage(session, channel, clock.now(), policy, run)
                session.commit()
            looked_at += batch
            if batch < policy.triage_batch:
                break
    tried = 0
    with session_factory() as session:
        while tried < policy.max_sends_per_run:
            live = {channel: sender for channel, sender in routes.items() if sender.channel not in run.channels_down}
            if not live:
                break
            claimed_at = clock.now()
            batch: list[_Claimed] = []
            for channel in live:
                batch += _claim(session, channel, claimed_at, policy.batch_size - len(batch),
                                claimed_at + policy.lease)
                if len(batch) >= policy.batch_size:
                    break
            session.commit()
            if not batch:
                break
            tried += len(batch)
            _send_batch(session, batch, routes, clock, claimed_at, policy, run)
    return run


def requeue_failed(session: Session, now: datetime, ids: list[int] | None = None) -> int:
    """Put failed rows (all, or those of ``ids``) back in the queue, due now, with a fresh count of attempts.

    For after the cause is fixed (a wrong password, a full mailbox).  Returns how many; the caller commits.
    """
    statement = (update(_table).where(_table.c.delivery_state == FAILED)
                 .values(delivery_state=PENDING, next_attempt_at=now, attempts=0))
    if ids is not None:
        statement = statement.where(_table.c.id.in_(ids))
    return session.execute(statement).rowcount
