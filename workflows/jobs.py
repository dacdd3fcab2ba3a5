"""The league's background jobs: one registry, and the context their handlers run in.

Handlers live in the modules named ``*_jobs.py`` of this package; each registers its handlers on
:data:`league_jobs` (``@league_jobs.job("campaign.launch_chunk")``), and every such module is
imported below, so adding a module is all it takes.  Handlers must be idempotent (delivery is at
least once) and commit their own work through ``ctx.session_factory()``.
"""
from __future__ import annotations

import importlib
import os
import pkgutil
from typing import TYPE_CHECKING

from sqlalchemy import Engine as SqlEngine

from engine import Clock, Engine
from engine.database import make_session_factory, make_sql_engine
from engine.jobs import JobContext, JobRegistry

if TYPE_CHECKING:
    from engine.celery_jobs import CelerySettings

league_jobs = JobRegistry()

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "lianqing"
DEFAULT_VISIBILITY_TIMEOUT = 600


def build_job_context(database_url: str | None = None, clock: Clock | None = None, *,
                      sql_engine: SqlEngine | None = None, engine: Engine | None = None) -> JobContext:
    """A :class:`JobContext` on ``database_url`` (or an existing ``sql_engine``) with the league engine.

    A running app passes its own SQL engine and league engine so jobs share their pools and caches.
    """
    if sql_engine is None:
        if database_url is None:
            raise ValueError("build_job_context needs a database_url or a sql_engine")
        sql_engine = make_sql_engine(database_url, pool_pre_ping=True)
    if engine is None:
        from .league_engine import build_league_engine
        engine = build_league_engine(clock=clock)
    return JobContext(session_factory=make_session_factory(sql_engine), engine=engine)


def celery_settings(environ: dict | None = None) -> CelerySettings:
    """The Celery backend's settings from the environment (the web app and the workers read the same ones).

    ``LIANQING_BROKER_URL`` (Redis), ``LIANQING_CELERY_QUEUE`` (queue name, also the prefix of every
    Redis key), ``LIANQING_VISIBILITY_TIMEOUT`` (seconds before a dead worker's job is handed out again).
    """
    from engine.celery_jobs import CelerySettings
    environ = os.environ if environ is None else environ
    return CelerySettings(broker_url=environ.get("LIANQING_BROKER_URL") or DEFAULT_BROKER_URL,
                          queue=environ.get("LIANQING_CELERY_QUEUE") or DEFAULT_QUEUE,
                          visibility_timeout=int(environ.get("LIANQING_VISIBILITY_TIMEOUT") or DEFAULT_VISIBILITY_TIMEOUT))


def _load_job_modules() -> None:
    package = importlib.import_module(__package__)  # already being imported: this only looks it up
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_jobs"):
            importlib.import_module(f"{__package__}.{module.name}")


_load_job_modules()
