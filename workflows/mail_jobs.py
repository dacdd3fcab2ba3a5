"""Delivering the notification outbox as a periodic job ("notifications.deliver").

Runs every ``LIANQING_DELIVERY_INTERVAL`` seconds (default 30), from the web process's job thread or
from Celery beat.  Each run reads the sender settings from the environment (e-mail when
``LIANQING_SMTP_HOST`` is set, see :mod:`workflows.mail_delivery`); with none configured it does
nothing at all and notifications stay in-app only.  Idempotent and safe to run several at once:
:func:`workflows.outbox_delivery.deliver_due` claims each message for one run and records each
outcome as it goes.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from engine.jobs import JobContext

from .jobs import league_jobs
from .mail_delivery import SmtpSender, smtp_settings_from
from .outbox_delivery import Sender, deliver_due

log = logging.getLogger(__name__)

DELIVERY_INTERVAL_SECONDS = float(os.environ.get("LIANQING_DELIVERY_INTERVAL") or "30")


def configured_senders(environ: Mapping[str, str] | None = None) -> dict[str, Sender]:
    """The senders the environment configures, by channel (today only "email"); empty: in-app only."""
    environ = os.environ if environ is None else environ
    senders: dict[str, Sender] = {}
    smtp = smtp_settings_from(environ)
    if smtp is not None:
        senders["email"] = SmtpSender(smtp)
    return senders


@league_jobs.job("notifications.deliver", every_seconds=DELIVERY_INTERVAL_SECONDS)
def deliver_notifications(ctx: JobContext, payload: dict) -> None:
    """Send the outbox's due messages through the configured senders (nothing if none is configured)."""
    senders = configured_senders()
    if not senders:
        return
    try:
        run = deliver_due(ctx.session_factory, senders, ctx.engine.clock)
    finally:
        for sender in senders.values():
            sender.close()
    if run:
        log.info("notification delivery: %s", run)
