"""The timer sweep as a periodic job: fire every instance whose timer is due.

Runs every ``LIANQING_SWEEP_INTERVAL`` seconds (default 0.25), from the web process's job thread or
from Celery beat.  Several sweeps at once are safe: ``Engine.run_due_timers`` hands each due
instance to one sweeper (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).  It fires them in batches of
``LIANQING_SWEEP_BATCH`` instances (default 100), one transaction and a few bulk statements per
batch.  ``LIANQING_SWEEP_ASYNC_COMMIT`` (default ``1``; ``0`` turns it off) lets those commits
return before PostgreSQL has flushed them to disk: a crash can lose only the last of them, whose
timers are then still due and fire on the next sweep (see docs/reliability.md, "Timer sweep at
scale").
"""
from __future__ import annotations

import logging
import os

from engine.jobs import JobContext

from .jobs import league_jobs

log = logging.getLogger(__name__)

def _setting(name: str, default: str, parse, meaning: str):
    raw = (os.environ.get(name) or default).strip()
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"环境变量 {name}={raw!r} 无效，应为{meaning[0]} / {name}={raw!r} is not valid: "
                         f"it must be {meaning[1]}") from None


def _positive_int(raw: str) -> int:
    if int(raw) < 1:
        raise ValueError(raw)
    return int(raw)


def _switch(raw: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if raw.lower() not in words:
        raise ValueError(raw)
    return words[raw.lower()]


# A quarter of a second: a burst of due timers then waits at most that long before the sweep starts
# on it (the goal is "fired within 1 s"); an idle sweep is one index query, ~1 ms of CPU.
SWEEP_INTERVAL_SECONDS = float(os.environ.get("LIANQING_SWEEP_INTERVAL") or "0.25")
SWEEP_BATCH_SIZE = _setting("LIANQING_SWEEP_BATCH", "100", _positive_int, ("正整数", "a positive whole number"))
SWEEP_ASYNC_COMMIT = _setting("LIANQING_SWEEP_ASYNC_COMMIT", "1", _switch, ("1 或 0", "1 or 0"))


@league_jobs.job("engine.run_due_timers", every_seconds=SWEEP_INTERVAL_SECONDS)
def run_due_timers(ctx: JobContext, payload: dict) -> None:
    """Fire every due timer once (idempotent: a fired timer is no longer due)."""
    with ctx.session_factory() as session:
        fired = ctx.engine.run_due_timers(session, batch_size=SWEEP_BATCH_SIZE,
                                          asynchronous_commit=SWEEP_ASYNC_COMMIT)
    if fired:
        log.info("timer sweep fired %d instance(s)", fired)
