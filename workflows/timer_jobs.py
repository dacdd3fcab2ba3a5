"""The timer sweep as a periodic job: fire every instance whose timer is due.

Runs every ``LIANQING_SWEEP_INTERVAL`` seconds (default 1), from the web process's job thread or
from Celery beat.  Several sweeps at once are safe: ``Engine.run_due_timers`` hands each due
instance to one sweeper (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and commits each one it fires.
"""
from __future__ import annotations

import logging
import os

from engine.jobs import JobContext

from .jobs import league_jobs

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = float(os.environ.get("LIANQING_SWEEP_INTERVAL") or "1")


@league_jobs.job("engine.run_due_timers", every_seconds=SWEEP_INTERVAL_SECONDS)
def run_due_timers(ctx: JobContext, payload: dict) -> None:
    """Fire every due timer once (idempotent: a fired timer is no longer due)."""
    with ctx.session_factory() as session:
        fired = ctx.engine.run_due_timers(session)
    if fired:
        log.info("timer sweep fired %d instance(s)", fired)
