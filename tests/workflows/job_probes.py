"""Test-only jobs (registered on ``league_jobs``) that leave traces in two tables of their own.

``probe.mark`` — record an attempt, optionally sleep (first attempt only), then record its effect
once per key (idempotent: a redelivered job adds an attempt, never a second effect).
``probe.flaky`` — fail the first ``failures`` attempts, then record its effect.
The tables are not part of the schema: :func:`create_probe_tables` makes them in a test database.
Celery workers load this module through ``CeleryWorkers(..., job_modules=(__name__,))``.
"""
from __future__ import annotations

import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from engine.database import make_sql_engine
from engine.jobs import JobContext
from workflows.jobs import league_jobs

probe_metadata = MetaData()
probe_attempt = Table("job_probe_attempt", probe_metadata,
                      Column("id", Integer, primary_key=True, autoincrement=True),
                      Column("key", String(64), nullable=False, index=True),
                      Column("pid", Integer, nullable=False))
probe_effect = Table("job_probe_effect", probe_metadata, Column("key", String(64), primary_key=True))


def create_probe_tables(database_url: str) -> None:
    """Create the probe tables in the database at ``database_url``."""
    sql_engine = make_sql_engine(database_url)
    probe_metadata.create_all(sql_engine)
    sql_engine.dispose()


def _attempt(ctx: JobContext, key: str) -> int:
    with ctx.session_factory() as session:
        session.execute(insert(probe_attempt).values(key=key, pid=os.getpid()))
        session.commit()
        return session.scalar(select(func.count()).select_from(probe_attempt).where(probe_attempt.c.key == key))


def _effect_once(ctx: JobContext, key: str) -> None:
    with ctx.session_factory() as session:
        if effects(session, key) == 0:  # idempotent: a second delivery finds it done
            session.execute(insert(probe_effect).values(key=key))
        session.commit()


@league_jobs.job("probe.mark")
def mark(ctx: JobContext, payload: dict) -> None:
    """Record an attempt; sleep ``first_attempt_seconds`` on the first one; record the effect once."""
    if _attempt(ctx, payload["key"]) == 1:
        time.sleep(payload.get("first_attempt_seconds", 0))
    _effect_once(ctx, payload["key"])


@league_jobs.job("probe.flaky")
def flaky(ctx: JobContext, payload: dict) -> None:
    """Fail the first ``failures`` attempts, then record the effect."""
    if _attempt(ctx, payload["key"]) <= payload["failures"]:
        raise RuntimeError(f"probe failure for {payload['key']}")
    _effect_once(ctx, payload["key"])


def attempts(session, key: str) -> int:
    """How many times a probe job with ``key`` started."""
    return session.scalar(select(func.count()).select_from(probe_attempt).where(probe_attempt.c.key == key))


def effects(session, key: str) -> int:
    """How many effects a probe job with ``key`` left (0 or 1 if idempotent)."""
    return session.scalar(select(func.count()).select_from(probe_effect).where(probe_effect.c.key == key))
