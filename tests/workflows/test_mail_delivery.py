"""E-mail delivery of the notification outbox, against a real SMTP server (aiosmtpd) on a free local port."""
from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from tests.job_support import inprocess_queue
from workflows.mail_delivery import SmtpSender, SmtpSettings, message_id, smtp_settings_from
from workflows.mail_jobs import configured_senders
from workflows.models import Notification, User
from workflows.notifications import notify_from_audit
from workflows.outbox_delivery import DeliveryPolicy, OutgoingMessage, deliver_due, requeue_failed

FROM = "联青 <noreply@lianqing.test>"
ZHANG = "zhang@qd.lianqing.test"
DEFAULT_POLICY = DeliveryPolicy()


def free_port() -> int:
    """A TCP port nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


@dataclass
class SinkHandler:
    """An SMTP server's behaviour: keep what it accepts, or answer RCPT/DATA as the test says."""

    received: list[Received] = field(default_factory=list)
    rcpt_answers: dict[str, str] = field(default_factory=dict)
    data_answer: str | None = None
    data_delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_answers:
            return self.rcpt_answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # a slow server, so that concurrent runs overlap
        if self.data_answer:
            return self.data_answer
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def sink():
    """A running SMTP sink on a free port; ``sink.port``, ``sink.handler.received``."""
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def settings_for(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security="none", from_address=FROM, timeout=5)


def deliver(sessions, clock, port: int, policy: DeliveryPolicy = DEFAULT_POLICY):
    sender = SmtpSender(settings_for(port))
    try:
        return deliver_due(sessions, {"email": sender}, clock, policy)
    finally:
        sender.close()


def set_email(sessions, username: str, address: str | None) -> None:
    with sessions() as session:
        session.execute(update(User).where(User.username == username).values(email=address))
        session.commit()


def add_notification(sessions, recipient: str, at, subject: str = "提醒：上报活动记录",
                     body: str = "待办「上报活动记录」即将到期，请及时办理。", **columns) -> int:
    with sessions() as session:
        row = Notification(recipient=recipient, channel=columns.pop("channel", "in_app"), subject=subject, body=body,
                           created_at=at, **columns)
        session.add(row)
        session.commit()
        return row.id


def row(sessions, notification_id: int) -> Notification:
    with sessions() as session:
        return session.get(Notification, notification_id)


@pytest.fixture
def zhang_has_email(league, sessions):
    set_email(sessions, "zhang", ZHANG)


def test_an_engine_notification_is_emailed_once_with_encoded_chinese_headers_and_body(
        sessions, clock, sink, zhang_has_email):
    with sessions() as session:  # written the way the engine's listener writes them (one bulk statement)
        notify_from_audit(session, [{"kind": "task_created", "instance_id": 1, "task_id": "t1", "at": clock.now(),
                                     "after": {"assignee": "zhang", "name": "上报「青年大学习」活动", "role": "cadre",
                                               "organisation_id": "qd-sn", "due_at": "2026-05-03T00:00:00+00:00"}}])
        session.commit()
        written = session.scalars(select(Notification)).one()

    run = deliver(sessions, clock, sink.port)

    assert (run.queued, run.sent, run.failed) == (1, 1, 0)
    [received] = sink.handler.received
    assert received.mail_from == "noreply@lianqing.test" and received.rcpt_tos == [ZHANG]
    assert received.raw.isascii()  # Chinese travels encoded: RFC 2047 subject, base64 / quoted-printable body
    assert b"Subject: =?utf-8?" in received.raw
    message = received.message
    assert message["Subject"] == written.subject and "青年大学习" in message["Subject"]
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert message["Content-Transfer-Encoding"] in ("base64", "quoted-printable")
    assert message.get_content().startswith(written.body)
    assert message["To"] == ZHANG and message["From"].addresses[0].display_name == "联青"
    assert message["Message-ID"] == message_id(OutgoingMessage(written.id, ZHANG, "", "", written.created_at),
                                               "lianqing.test")
    assert message["X-Lianqing-Notification"] == str(written.id) and message["Auto-Submitted"] == "auto-generated"
    sent = row(sessions, written.id)
    assert (sent.delivery_state, sent.sent_at, sent.address, sent.attempts) == ("sent", clock.now(), ZHANG, 1)
    assert sent.read_at is None  # e-mailing does not read it for them

    clock.advance(timedelta(hours=1))
    again = deliver(sessions, clock, sink.port)
    assert not again and len(sink.handler.received) == 1


def test_what_is_not_emailed_is_marked_skipped_and_codes_are_left_alone(sessions, clock, sink, zhang_has_email):
    now = clock.now()
    no_address = add_notification(sessions, "li", now)
    already_read = add_notification(sessions, "zhang", now, read_at=now)
    too_old = add_notification(sessions, "zhang", now - timedelta(days=3))
    unknown = add_notification(sessions, "nobody", now)
    code = add_notification(sessions, "youth-1", now, channel="sms", address="13800000001", subject="验证码",
                            body="您的验证码是 123456")
    wanted = add_notification(sessions, "zhang", now)

    run = deliver(sessions, clock, sink.port)

    assert (run.queued, run.skipped, run.sent) == (1, 4, 1)
    assert [m.message["X-Lianqing-Notification"] for m in sink.handler.received] == [str(wanted)]
    for skipped, why in [(no_address, "no e-mail address"), (already_read, "already read"), (too_old, "older than"),
                         (unknown, "no e-mail address")]:
        found = row(sessions, skipped)
        assert found.delivery_state == "skipped" and why in found.last_error and found.sent_at is None
    untouched = row(sessions, code)
    assert (untouched.delivery_state, untouched.attempts) == (None, 0)


def test_a_4xx_refusal_is_retried_with_back_off(sessions, clock, sink, zhang_has_email):
    sink.handler.rcpt_answers[ZHANG] = "450 4.2.1 Mailbox busy, try later"
    notification = add_notification(sessions, "zhang", clock.now())
    start = clock.now()

    run = deliver(sessions, clock, sink.port)

    assert (run.sent, run.retrying) == (0, 1)
    waiting = row(sessions, notification)
    assert (waiting.delivery_state, waiting.attempts) == ("pending", 1)
    assert waiting.next_attempt_at == start + timedelta(minutes=1) and "450" in waiting.last_error

    sink.handler.rcpt_answers.clear()
    clock.advance(timedelta(seconds=59))
    assert not deliver(sessions, clock, sink.port)  # not due yet: nothing tried
    assert row(sessions, notification).attempts == 1 and sink.handler.received == []

    clock.advance(timedelta(seconds=1))
    assert deliver(sessions, clock, sink.port).sent == 1
    done = row(sessions, notification)
    assert (done.delivery_state, done.attempts, done.sent_at) == ("sent", 2, clock.now())
    assert len(sink.handler.received) == 1


def test_a_server_that_is_down_delays_the_batch_and_nothing_is_lost(sessions, clock, sink, zhang_has_email):
    ids = [add_notification(sessions, "zhang", clock.now(), subject=f"提醒 {n}") for n in range(3)]

    run = deliver(sessions, clock, free_port())  # nobody listens there

    assert run.sent == 0 and run.retrying == 3 and "email" in run.channels_down
    for notification in ids:
        found = row(sessions, notification)
        assert (found.delivery_state, found.attempts) == ("pending", 1) and "cannot reach" in found.last_error

    clock.advance(timedelta(minutes=1))
    assert deliver(sessions, clock, sink.port).sent == 3
    assert sorted(int(m.message["X-Lianqing-Notification"]) for m in sink.handler.received) == ids


def test_back_off_grows_and_gives_up_after_the_last_attempt_keeping_the_row(sessions, clock, sink, zhang_has_email):
    sink.handler.data_answer = "451 4.3.0 Temporary local problem"
    notification = add_notification(sessions, "zhang", clock.now())
    policy = DeliveryPolicy()
    delays = []
    for _attempt in range(policy.retry.max_attempts - 1):
        before = clock.now()
        assert deliver(sessions, clock, sink.port, policy).retrying == 1
        delays.append(row(sessions, notification).next_attempt_at - before)
        clock.set(row(sessions, notification).next_attempt_at)
    assert delays[:4] == [timedelta(minutes=1), timedelta(minutes=3), timedelta(minutes=9), timedelta(minutes=27)]
    assert max(delays) == timedelta(hours=6) and sum(delays, timedelta()) > timedelta(hours=20)

    assert deliver(sessions, clock, sink.port, policy).failed == 1
    failed = row(sessions, notification)
    assert failed.delivery_state == "failed" and failed.attempts == policy.retry.max_attempts
    assert "451" in failed.last_error and f"after {policy.retry.max_attempts} attempts" in failed.last_error
    clock.advance(timedelta(days=30))
    assert not deliver(sessions, clock, sink.port, policy)  # kept, never tried again by itself
    assert row(sessions, notification).delivery_state == "failed"


def test_a_5xx_fails_at_once_is_kept_and_can_be_requeued(sessions, clock, sink, league):
    set_email(sessions, "zhang", ZHANG)
    set_email(sessions, "li", "not an address")
    sink.handler.rcpt_answers[ZHANG] = "550 5.1.1 No such user here"
    refused = add_notification(sessions, "zhang", clock.now())
    malformed = add_notification(sessions, "li", clock.now())

    run = deliver(sessions, clock, sink.port)

    assert (run.failed, run.retrying, run.sent) == (2, 0, 0)
    first, second = row(sessions, refused), row(sessions, malformed)
    assert (first.delivery_state, first.attempts) == ("failed", 1) and "550" in first.last_error
    assert second.delivery_state == "failed" and "not a valid e-mail address" in second.last_error
    assert sink.handler.received == []

    sink.handler.rcpt_answers.clear()  # the mailbox exists now
    with sessions() as session:
        assert requeue_failed(session, clock.now(), [refused]) == 1
        session.commit()
    assert deliver(sessions, clock, sink.port).sent == 1
    assert row(sessions, refused).delivery_state == "sent" and row(sessions, malformed).delivery_state == "failed"


def test_a_notification_read_while_waiting_for_a_retry_is_not_emailed(sessions, clock, sink, zhang_has_email):
    sink.handler.rcpt_answers[ZHANG] = "421 4.7.0 Too many connections"
    notification = add_notification(sessions, "zhang", clock.now())
    assert deliver(sessions, clock, sink.port).retrying == 1
    with sessions() as session:
        session.execute(update(Notification).where(Notification.id == notification).values(read_at=clock.now()))
        session.commit()
    sink.handler.rcpt_answers.clear()
    clock.advance(timedelta(minutes=1))

    assert deliver(sessions, clock, sink.port).skipped == 1
    assert row(sessions, notification).delivery_state == "skipped" and sink.handler.received == []


class CrashAfterAccept:
    """A sender that hands the message over, then the process 'dies' before the outcome is recorded."""

    channel = "email"

    def __init__(self, inner: SmtpSender):
        self.inner = inner

    def send(self, message: OutgoingMessage) -> None:
        self.inner.send(message)
        raise KeyboardInterrupt("power cut")

    def close(self) -> None:
        self.inner.close()


def test_a_crash_between_acceptance_and_commit_sends_again_after_the_lease_with_the_same_message_id(
        sessions, clock, sink, zhang_has_email):
    notification = add_notification(sessions, "zhang", clock.now())
    crashing = CrashAfterAccept(SmtpSender(settings_for(sink.port)))
    with pytest.raises(KeyboardInterrupt):
        deliver_due(sessions, {"email": crashing}, clock)
    crashing.close()
    held = row(sessions, notification)
    assert (held.delivery_state, held.attempts) == ("pending", 1)  # accepted by the server, not recorded

    assert not deliver(sessions, clock, sink.port)  # the dead run's claim still holds it
    clock.advance(DeliveryPolicy().lease)
    assert deliver(sessions, clock, sink.port).sent == 1

    first, second = sink.handler.received  # at least once: a duplicate, recognisably the same message
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert row(sessions, notification).delivery_state == "sent"


def test_two_concurrent_runs_never_send_one_message_twice(database_url, sessions, clock, sink, league):
    users = ["zhang", "li", "wang", "S_org", "S_coord"]
    for username in users:
        set_email(sessions, username, f"{username.lower()}@lianqing.test")
    ids = [add_notification(sessions, users[n % len(users)], clock.now(), subject=f"第 {n} 条提醒")
           for n in range(60)]
    policy = DeliveryPolicy(batch_size=4, triage_batch=7)
    triaged = deliver(sessions, clock, sink.port, DeliveryPolicy(triage_batch=7, max_sends_per_run=0))
    assert (triaged.queued, triaged.sent) == (60, 0)  # all due now: the two runs below race for the same rows
    sink.handler.data_delay = 0.01
    start = threading.Barrier(2)
    runs, errors = [], []

    def one_run():
        try:
            start.wait(10)
            runs.append(deliver(sessions, clock, sink.port, policy))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    sent_ids = sorted(int(m.message["X-Lianqing-Notification"]) for m in sink.handler.received)
    assert sent_ids == ids  # every one, each once
    assert sum(run.sent for run in runs) == 60 and all(run.sent for run in runs)  # both runs did work
    assert sum(run.lost_claims for run in runs) == 0
    with sessions() as session:
        assert set(session.scalars(select(Notification.delivery_state))) == {"sent"}


def test_the_periodic_job_sends_only_when_smtp_is_configured(database_url, sessions, clock, sink, zhang_has_email,
                                                             monkeypatch):
    for name in ("HOST", "PORT", "SECURITY", "FROM"):
        monkeypatch.delenv(f"LIANQING_SMTP_{name}", raising=False)
    notification = add_notification(sessions, "zhang", clock.now())
    with inprocess_queue(database_url, clock, periodic_jobs=("notifications.deliver",)) as queue:
        assert queue.tick() == ["notifications.deliver"]
        queue.drain(30)
        untouched = row(sessions, notification)
        assert (untouched.delivery_state, untouched.attempts) == (None, 0)  # nothing attempted, in-app only
        assert sink.handler.received == []

        monkeypatch.setenv("LIANQING_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LIANQING_SMTP_PORT", str(sink.port))
        monkeypatch.setenv("LIANQING_SMTP_SECURITY", "none")
        monkeypatch.setenv("LIANQING_SMTP_FROM", FROM)
        clock.advance(timedelta(minutes=1))
        assert queue.tick() == ["notifications.deliver"]
        queue.drain(30)
        clock.advance(timedelta(minutes=1))
        queue.tick()
        queue.drain(30)
        assert not queue.failed
    assert row(sessions, notification).delivery_state == "sent" and len(sink.handler.received) == 1


def test_smtp_settings_come_from_the_environment():
    assert smtp_settings_from({}) is None and configured_senders({}) == {}
    settings = smtp_settings_from({"LIANQING_SMTP_HOST": "smtp.example.cn", "LIANQING_SMTP_FROM": FROM,
                                   "LIANQING_SMTP_USER": "lianqing", "LIANQING_SMTP_PASSWORD": "s3cret"})
    assert (settings.port, settings.security, settings.user, settings.envelope_sender) == (
        587, "starttls", "lianqing", "noreply@lianqing.test")
    assert smtp_settings_from({"LIANQING_SMTP_HOST": "h", "LIANQING_SMTP_FROM": FROM,
                               "LIANQING_SMTP_SECURITY": "SSL"}).port == 465
    assert set(configured_senders({"LIANQING_SMTP_HOST": "h", "LIANQING_SMTP_FROM": FROM})) == {"email"}
    with pytest.raises(ValueError, match="LIANQING_SMTP_FROM"):
        smtp_settings_from({"LIANQING_SMTP_HOST": "smtp.example.cn"})
    with pytest.raises(ValueError, match="must be one of"):
        smtp_settings_from({"LIANQING_SMTP_HOST": "h", "LIANQING_SMTP_FROM": FROM, "LIANQING_SMTP_SECURITY": "tls"})


class SlowServer:
    """Hands each message over, taking eight minutes of the (manual) clock to do it."""

    channel = "email"

    def __init__(self, inner: SmtpSender, clock):
        self.inner, self.clock = inner, clock

    def send(self, message: OutgoingMessage) -> None:
        self.inner.send(message)
        self.clock.advance(timedelta(minutes=8))

    def close(self) -> None:
        self.inner.close()


def test_a_batch_hands_back_what_it_has_no_time_for_before_its_claim_lapses(sessions, clock, sink, zhang_has_email):
    ids = [add_notification(sessions, "zhang", clock.now(), subject=f"提醒 {n}") for n in range(3)]
    slow = SlowServer(SmtpSender(settings_for(sink.port)), clock)
    try:
        run = deliver_due(sessions, {"email": slow}, clock, DeliveryPolicy(batch_size=3, max_sends_per_run=3))
    finally:
        slow.close()

    assert (run.sent, run.handed_back) == (1, 2)  # 8 of the lease's 15 minutes gone after the first
    handed_back = [row(sessions, n) for n in ids[1:]]
    assert all((r.delivery_state, r.attempts, r.next_attempt_at) == ("pending", 0, clock.now()) for r in handed_back)
    assert deliver(sessions, clock, sink.port).sent == 2
    assert sorted(int(m.message["X-Lianqing-Notification"]) for m in sink.handler.received) == ids
