"""The monthly spot-check draw as a periodic job ("spot_checks.monthly").

It runs several times a day and draws the month before ``now`` minus a grace period (three days by
default: records of the 31st entered on the 2nd are still drawn).  Idempotent: a unit already drawn
for the month is skipped, so every run after the first one of a month starts nothing.  A payload
``{"month": "2026-05"}`` draws a given month (a manual run).  Settings come from the environment:
``LIANQING_SPOT_CHECK_FRACTION`` (default 0.10), ``LIANQING_SPOT_CHECK_MINIMUM`` (1),
``LIANQING_SPOT_CHECK_DAYS`` (days an inspector has, 14), ``LIANQING_SPOT_CHECK_GRACE_DAYS`` (3).
"""
from __future__ import annotations

import logging
import os
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from engine.jobs import JobContext

from .jobs import league_jobs
from .spot_checks import SpotCheckRun, SpotCheckSettings, month_text, plan_month, previous_month, start_unit

log = logging.getLogger(__name__)

RUN_EVERY_SECONDS = 6 * 3600


def settings_from(environ: dict | None = None) -> SpotCheckSettings:
    """The spot-check settings from the environment (defaults when unset)."""
    environ = os.environ if environ is None else environ
    return SpotCheckSettings(fraction=Decimal(environ.get("LIANQING_SPOT_CHECK_FRACTION") or "0.10"),
                             minimum=int(environ.get("LIANQING_SPOT_CHECK_MINIMUM") or 1),
                             days_to_check=int(environ.get("LIANQING_SPOT_CHECK_DAYS") or 14))


def grace_days(environ: dict | None = None) -> int:
    """Days after a month's end before it is drawn."""
    environ = os.environ if environ is None else environ
    return int(environ.get("LIANQING_SPOT_CHECK_GRACE_DAYS") or 3)


def run_month(ctx: JobContext, month: str, settings: SpotCheckSettings) -> SpotCheckRun:
    """Draw and start ``month``'s spot checks, committing unit by unit (a unit another run took is skipped)."""
    run = SpotCheckRun(month=month_text(month))
    with ctx.session_factory() as session:
        for unit in plan_month(session, run.month, settings):
            try:
                run.started.extend(start_unit(session, ctx.engine, run.month, unit, settings))
                session.commit()
                run.units += 1
            except IntegrityError:  # another run drew this unit a moment ago
                session.rollback()
                run.skipped_units += 1
    return run


@league_jobs.job("spot_checks.monthly", every_seconds=RUN_EVERY_SECONDS)
def monthly_spot_checks(ctx: JobContext, payload: dict) -> None:
    """Draw the past month's spot checks (or ``payload["month"]``'s), once per unit and month."""
    month = payload.get("month") or previous_month(ctx.engine.clock.now() - timedelta(days=grace_days()))
    run = run_month(ctx, month, settings_from())
    if run.started or run.skipped_units:
        log.info("spot checks %s: %d unit(s), %d check(s) started, %d unit(s) skipped", run.month, run.units,
                 len(run.started), run.skipped_units)
