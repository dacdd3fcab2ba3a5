"""Campaign workbooks as background jobs: build one export ("campaign.export"), delete old ones ("campaign.exports_cleanup").

Both are idempotent (delivery is at least once): see :mod:`workflows.campaign_exports`.
"""
from __future__ import annotations

import logging

from engine.jobs import JobContext

from .campaign_exports import CLEANUP_JOB, EXPORT_JOB, build_export, export_settings, remove_expired
from .jobs import league_jobs

log = logging.getLogger(__name__)

CLEANUP_EVERY_SECONDS = 3600.0


@league_jobs.job(EXPORT_JOB)
def build_campaign_export(ctx: JobContext, payload: dict) -> None:
    """Write the workbook of one export (payload: export_id) and mark it ready."""
    with ctx.session_factory() as session:
        export = build_export(session, int(payload["export_id"]), export_settings(), ctx.engine.clock.now())
        if export is not None:
            log.info("campaign export %s: %s rows, %s bytes", export.id, export.rows, export.size)


@league_jobs.job(CLEANUP_JOB, every_seconds=CLEANUP_EVERY_SECONDS)
def remove_expired_exports(ctx: JobContext, payload: dict) -> None:
    """Delete the exports (and files) older than the retention (``LIANQING_EXPORT_RETENTION_HOURS``)."""
    with ctx.session_factory() as session:
        removed = remove_expired(session, export_settings(), ctx.engine.clock.now())
    if removed:
        log.info("removed %d expired campaign export(s)", removed)
