"""Staged evidence nobody completed a task with is deleted after a day ("evidence.discard_abandoned").

A cadre who uploads photos and then leaves the form never completes the task with them; those
files stay *staged* (workflows/evidence.py: no instance, no activity).  This periodic job deletes
the staged files uploaded more than :data:`ABANDONED_AFTER` before the engine's clock: rows first
(in batches, each committed; the DELETE re-checks that the file is still staged), then the files.
Idempotent.  Where the files live and the limits come from the environment, as in the web app
(web/config.py): ``LIANQING_EVIDENCE_DIR`` (default ``<LIANQING_INSTANCE_DIR>/evidence``),
``LIANQING_EVIDENCE_MAX_FILE_BYTES``, ``LIANQING_EVIDENCE_MAX_RECORD_BYTES``, ``LIANQING_EVIDENCE_MAX_FILES``.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from engine.jobs import JobContext

from .evidence import EvidenceSettings, abandoned_evidence, delete_staged, remove_stored_files
from .jobs import league_jobs

log = logging.getLogger(__name__)

ABANDONED_AFTER = timedelta(days=1)
RUN_EVERY_SECONDS = 3600
BATCH = 500
REPO_ROOT = Path(__file__).resolve().parent.parent


def settings_from(environ: dict | None = None) -> EvidenceSettings:
    """The evidence settings from the environment (the web app reads the same variables)."""
    environ = os.environ if environ is None else environ
    defaults = EvidenceSettings()
    instance_dir = Path(environ.get("LIANQING_INSTANCE_DIR") or REPO_ROOT / "instance")
    return EvidenceSettings(
        directory=Path(environ.get("LIANQING_EVIDENCE_DIR") or instance_dir / "evidence"),
        max_file_bytes=int(environ.get("LIANQING_EVIDENCE_MAX_FILE_BYTES") or defaults.max_file_bytes),
        max_record_bytes=int(environ.get("LIANQING_EVIDENCE_MAX_RECORD_BYTES") or defaults.max_record_bytes),
        max_files_per_record=int(environ.get("LIANQING_EVIDENCE_MAX_FILES") or defaults.max_files_per_record))


def discard_abandoned(session: Session, settings: EvidenceSettings, now: datetime) -> int:
    """Delete every staged file uploaded more than a day before ``now``; returns how many rows went."""
    deleted = 0
    while True:
        ids = abandoned_evidence(session, now - ABANDONED_AFTER, limit=BATCH)
        names = delete_staged(session, ids)
        session.commit()
        remove_stored_files(settings, names)
        deleted += len(names)
        if len(ids) < BATCH:
            return deleted


@league_jobs.job("evidence.discard_abandoned", every_seconds=RUN_EVERY_SECONDS)
def discard_abandoned_evidence(ctx: JobContext, payload: dict) -> None:
    """Delete staged evidence files left behind by forms nobody submitted (older than a day)."""
    with ctx.session_factory() as session:
        deleted = discard_abandoned(session, settings_from(), ctx.engine.clock.now())
    if deleted:
        log.info("discarded %d abandoned evidence file(s)", deleted)
