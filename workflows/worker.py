"""The Celery app of the league's background jobs, configured from the environment.

    celery -A workflows.worker worker --loglevel=INFO     # as many as you like, on any machine
    celery -A workflows.worker beat --loglevel=INFO       # exactly one, for the periodic jobs

Environment: ``DATABASE_URL`` (as for the web app), ``LIANQING_BROKER_URL`` (default
``redis://127.0.0.1:6379/0``), ``LIANQING_CELERY_QUEUE`` (default ``lianqing``; also the prefix
of every Redis key), ``LIANQING_VISIBILITY_TIMEOUT`` (seconds, default 600: how long before the
job of a worker that died is handed to another; longer than any job), ``LIANQING_SWEEP_INTERVAL``.
``LIANQING_JOB_MODULES`` (comma-separated) names further modules that register jobs (tests use it).
Nothing connects at import: the database on a worker's first job, the broker when the worker starts.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from engine.jobs import build_celery_app

from .jobs import build_job_context, celery_settings, league_jobs

_INSTANCE_DIR = Path(os.environ.get("LIANQING_INSTANCE_DIR") or Path(__file__).resolve().parent.parent / "instance")


def database_url() -> str:
    """The database the workers use: ``DATABASE_URL``, else the web app's default SQLite file."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{_INSTANCE_DIR / 'lianqing.db'}"


for _module in filter(None, (os.environ.get("LIANQING_JOB_MODULES") or "").split(",")):
    importlib.import_module(_module.strip())

app = build_celery_app(league_jobs, celery_settings(), lambda: build_job_context(database_url()), main="lianqing")
