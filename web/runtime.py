"""The engine and the background-job queue of an app."""
from __future__ import annotations

import logging

from flask import Flask, current_app

from engine import Engine, ManualClock, SystemClock
from engine.jobs import JobQueue
from engine.schema import upgrade_database

from .extensions import db

log = logging.getLogger(__name__)


def init_engine(app: Flask) -> Engine:
    """Create the app's :class:`Engine` (a test may pass ``ENGINE_CLOCK``)."""
    from workflows.league_engine import build_league_engine
    engine = build_league_engine(clock=app.config.get("ENGINE_CLOCK") or SystemClock(),
                                 cache_size=app.config.get("ENGINE_CACHE_SIZE", 2000))
    app.extensions["lianqing_engine"] = engine
    return engine


def current_engine() -> Engine:
    """The engine of the current app."""
    return current_app.extensions["lianqing_engine"]


def init_jobs(app: Flask) -> JobQueue:
    """Build the app's job queue (``JOB_BACKEND``) into ``app.extensions["lianqing_jobs"]``.

    In-process: worker threads start on the first enqueued job, or at once with the periodic jobs
    (the timer sweep) when ``START_SWEEPER`` is set.  Celery: jobs go to Redis; the workers and
    one ``celery beat`` run elsewhere (``workflows/worker.py``).
    """
    from workflows.jobs import build_job_context, league_jobs
    backend = app.config["JOB_BACKEND"]
    if backend == "celery":
        from engine.jobs import CeleryJobQueue, CelerySettings, build_celery_app
        settings = CelerySettings(broker_url=app.config["BROKER_URL"], queue=app.config["CELERY_QUEUE"],
                                  visibility_timeout=app.config["BROKER_VISIBILITY_TIMEOUT"])
        queue: JobQueue = CeleryJobQueue(build_celery_app(league_jobs, settings, main="lianqing"), league_jobs)
    elif backend == "inprocess":
        from engine.jobs import InProcessJobQueue
        with app.app_context():
            sql_engine = db.engine  # a plain sessionmaker on it: jobs run outside any request
        context = build_job_context(sql_engine=sql_engine, engine=app.extensions["lianqing_engine"])
        queue = InProcessJobQueue(league_jobs, context, run_periodic=app.config["START_SWEEPER"], autostart=True)
        if app.config["START_SWEEPER"]:
            queue.start()
    else:
        raise ValueError(f"LIANQING_JOB_BACKEND 只能是 inprocess 或 celery / must be 'inprocess' or 'celery', "
                         f"not {backend!r}")
    app.extensions["lianqing_jobs"] = queue
    return queue


def current_jobs() -> JobQueue:
    """The job queue of the current app."""
    return current_app.extensions["lianqing_jobs"]


def migrate(app: Flask) -> None:
    """Bring the app's database to the current schema."""
    upgrade_database(app.config["SQLALCHEMY_DATABASE_URI"])


__all__ = ["ManualClock", "current_engine", "current_jobs", "init_engine", "init_jobs", "migrate"]
