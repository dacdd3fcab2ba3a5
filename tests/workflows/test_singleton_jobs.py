"""Periodic jobs that run one at a time across processes (``singleton=True``): the lock, and the league's jobs.

Each "process" is an in-process queue with its own SQL engine (its own connections), as each
gunicorn worker has; on PostgreSQL the lock is an advisory lock, on SQLite a file lock.
"""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from engine import ManualClock
from engine.database import make_session_factory, make_sql_engine
from engine.job_locks import advisory_key, cluster_lock
from engine.jobs import InProcessJobQueue, JobContext, JobRegistry, RetryPolicy
from tests.league import build_league
from workflows import rankings
from workflows.bulletins import BulletinIssue
from workflows.jobs import league_jobs
from workflows.league_engine import build_league_engine
from workflows.models import Notification

WAIT = 30.0


@pytest.fixture
def contexts(database_url, engine):
    """Two job contexts on the test database, each with its own SQL engine (separate connections)."""
    sql_engines = [make_sql_engine(database_url) for _ in range(2)]
    yield [JobContext(session_factory=make_session_factory(e), engine=engine) for e in sql_engines]
    for sql_engine in sql_engines:
        sql_engine.dispose()


def test_the_lock_key_is_stable_and_depends_on_schema_and_name():
    assert advisory_key("public", "rankings.daily") == advisory_key("public", "rankings.daily")
    assert advisory_key("public", "rankings.daily") != advisory_key("t_other", "rankings.daily")
    assert advisory_key("public", "rankings.daily") != advisory_key("public", "bulletins.issue")
    assert -2 ** 63 <= advisory_key("public", "x") < 2 ** 63
    assert league_jobs.get("rankings.daily").singleton and league_jobs.get("bulletins.issue").singleton
    assert not league_jobs.get("engine.run_due_timers").singleton  # SKIP LOCKED makes the sweep safe to overlap


def test_a_singleton_periodic_job_runs_once_while_two_queues_tick_it_at_once(contexts, clock, caplog):
    registry = JobRegistry()
    entered, release = threading.Event(), threading.Event()
    runs: list[str] = []

    @registry.job("probe.singleton", every_seconds=60, singleton=True)
    def probe(ctx: JobContext, payload: dict) -> None:
        runs.append(threading.current_thread().name)
        entered.set()
        assert release.wait(WAIT)

    caplog.set_level(logging.DEBUG, logger="engine.jobs")
    first = InProcessJobQueue(registry, contexts[0], clock=clock, run_periodic=False, retry=RetryPolicy(1))
    second = InProcessJobQueue(registry, contexts[1], clock=clock, run_periodic=False, retry=RetryPolicy(1))
    with first, second:
        assert first.tick() == ["probe.singleton"]
        assert entered.wait(WAIT)               # the first run holds the lock …
        assert second.tick() == ["probe.singleton"]
        second.drain(WAIT)                      # … so the second is skipped, quietly
        assert len(runs) == 1
        release.set()
        first.drain(WAIT)
        clock.advance(timedelta(minutes=1))
        second.tick()
        second.drain(WAIT)                      # the lock was let go: the next tick runs
    assert len(runs) == 2 and not first.failed and not second.failed
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("probe.singleton skipped: another process is running it" in r.getMessage()
               for r in caplog.records if r.levelno == logging.DEBUG)


def test_a_job_that_is_not_a_singleton_runs_in_both(contexts, clock):
    registry = JobRegistry()
    both_in, release = threading.Barrier(2, timeout=WAIT), threading.Event()

    @registry.job("probe.overlap", every_seconds=60)
    def probe(ctx: JobContext, payload: dict) -> None:
        both_in.wait()
        release.wait(WAIT)

    queues = [InProcessJobQueue(registry, ctx, clock=clock, run_periodic=False, retry=RetryPolicy(1))
              for ctx in contexts]
    with queues[0], queues[1]:
        for queue in queues:
            queue.tick()
        release.set()
        for queue in queues:
            queue.drain(WAIT)
    assert not queues[0].failed and not queues[1].failed  # the barrier saw both at once


def test_the_lock_is_let_go_when_the_job_fails(contexts):
    with pytest.raises(RuntimeError):
        with cluster_lock(contexts[0].session_factory, "probe.failing") as held:
            assert held
            raise RuntimeError("boom")
    with cluster_lock(contexts[1].session_factory, "probe.failing") as held:
        assert held
        with cluster_lock(contexts[0].session_factory, "probe.failing") as again:
            assert not again


@pytest.fixture
def league_on_the_first(sessions):
    """The test league; the clock at 09:30 on 1 June 2026 in Beijing (May's bulletins are due)."""
    with sessions() as session:
        build_league(session, datetime(2026, 3, 1, tzinfo=timezone.utc))
        session.commit()
    return ManualClock(datetime(2026, 6, 1, 1, 30, tzinfo=timezone.utc))


def test_the_daily_ranking_waits_for_its_lock_and_runs_once_it_is_free(database_url, sessions,
                                                                      league_on_the_first):
    clock = league_on_the_first
    sql_engine = make_sql_engine(database_url)
    ctx = JobContext(session_factory=make_session_factory(sql_engine), engine=build_league_engine(clock=clock))
    queue = InProcessJobQueue(league_jobs, ctx, clock=clock, run_periodic=False, periodic_jobs=["rankings.daily"])
    try:
        with queue:
            with cluster_lock(sessions, "rankings.daily") as held:  # another process is ranking
                assert held
                queue.tick()
                queue.drain(WAIT)
                with sessions() as session:
                    assert rankings.computed_days(session) == []
            clock.advance(timedelta(hours=1))
            queue.tick()
            queue.drain(WAIT)
        with sessions() as session:
            assert rankings.computed_days(session) == [date(2026, 5, 31)]
        assert not queue.failed
    finally:
        sql_engine.dispose()


def test_two_workers_running_the_ranking_and_bulletin_jobs_together_do_each_once(database_url, sessions,
                                                                                league_on_the_first, caplog):
    clock = league_on_the_first
    caplog.set_level(logging.INFO)
    sql_engines = [make_sql_engine(database_url) for _ in range(2)]
    queues = [InProcessJobQueue(league_jobs, JobContext(session_factory=make_session_factory(e),
                                                        engine=build_league_engine(clock=clock)),
                                clock=clock, run_periodic=False, workers=2,
                                periodic_jobs=["rankings.daily", "bulletins.issue"])
              for e in sql_engines]
    try:
        with queues[0], queues[1]:
            for queue in queues:  # both workers start: every periodic job is due at once
                queue.tick()
            for queue in queues:
                queue.drain(120.0)
    finally:
        for sql_engine in sql_engines:
            sql_engine.dispose()
    assert not queues[0].failed and not queues[1].failed
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    with sessions() as session:
        assert rankings.computed_days(session) == [date(2026, 5, 31)]
        issues = session.execute(select(BulletinIssue.organisation_id, BulletinIssue.kind, BulletinIssue.period)).all()
        assert len(issues) == len(set(issues)) == 5
        notes = session.scalar(select(func.count()).select_from(Notification)
                               .where(Notification.subject.like("%月度通报已发布")))
        assert notes == 4  # each organiser of a leading organ told once
    ranked = [r for r in caplog.records if r.getMessage().startswith("ranking of 2026-05-31")]
    assert len(ranked) == 1
