"""The campaign fan-out as background jobs: launch a chunk, cancel a chunk, launch what is due.

Every handler is idempotent (delivery is at least once): see :mod:`workflows.campaign_launch`.
"""
from __future__ import annotations

import logging

from engine.jobs import JobContext

from .campaign_launch import (CANCEL_CHUNK_JOB, LAUNCH_CHUNK_JOB, LAUNCH_DUE_JOB, launch_due_campaigns,
                              run_cancel_chunk, run_launch_chunk)
from .jobs import league_jobs

log = logging.getLogger(__name__)

LAUNCH_DUE_EVERY_SECONDS = 60.0


@league_jobs.job(LAUNCH_CHUNK_JOB)
def launch_chunk(ctx: JobContext, payload: dict) -> None:
    """Start the instances of one chunk of a campaign's targets (payload: campaign_id, chunk)."""
    with ctx.session_factory() as session:
        started = run_launch_chunk(session, ctx.engine, int(payload["campaign_id"]), int(payload["chunk"]))
    log.info("campaign %s chunk %s: %d instance(s) started", payload["campaign_id"], payload["chunk"], started)


@league_jobs.job(CANCEL_CHUNK_JOB)
def cancel_chunk(ctx: JobContext, payload: dict) -> None:
    """End the running instances of one chunk of a cancelled campaign (payload: campaign_id, chunk)."""
    with ctx.session_factory() as session:
        ended = run_cancel_chunk(session, ctx.engine, int(payload["campaign_id"]), int(payload["chunk"]))
    log.info("campaign %s chunk %s: %d instance(s) cancelled", payload["campaign_id"], payload["chunk"], ended)


@league_jobs.job(LAUNCH_DUE_JOB, every_seconds=LAUNCH_DUE_EVERY_SECONDS)
def launch_due(ctx: JobContext, payload: dict) -> None:
    """Launch the scheduled campaigns whose window has opened (and re-send chunks that were lost)."""
    if ctx.queue is None:
        raise RuntimeError("campaign.launch_due needs the queue it runs on (JobContext.queue)")
    with ctx.session_factory() as session:
        launched = launch_due_campaigns(session, ctx.queue, ctx.engine.clock.now())
    if launched:
        log.info("launched scheduled campaign(s) %s", launched)
