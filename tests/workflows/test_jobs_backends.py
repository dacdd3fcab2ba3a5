"""The league's jobs under both backends: in-process threads and real Celery workers on Redis.

The Celery tests start ``celery -A workflows.worker worker`` subprocesses (tests/job_support.py)
against the test database; they wait for those processes by polling, never for a timer.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine.audit import trail
from engine.database import make_session_factory, make_sql_engine
from engine.models import ProcessInstance
from tests.conftest import TESTS_DIR
from tests.job_support import CeleryWorkers, inprocess_queue, wait_until
from tests.workflows import job_probes
from tests.workflows.job_probes import attempts, create_probe_tables, effects
from workflows.jobs import league_jobs
from workflows.league_engine import build_league_engine
from workflows.worker import app as worker_app

ACTIVITY_RECORD = TESTS_DIR.parent / "bpmn" / "activity_record.bpmn"
PROBES = (job_probes.__name__,)
LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def probe_sessions(database_url, sql_engine):
    """Sessions on the test database, with the probe jobs' tables created."""
    create_probe_tables(database_url)
    return make_session_factory(sql_engine)


def count(sessions, what, key):
    with sessions() as session:
        return what(session, key)


def start_record_due_in(database_url: str, clock, days: float) -> int:
    """Deploy ``activity_record`` and start one whose reminder is due ``days - 2`` days after ``clock.now()``."""
    engine = build_league_engine(clock=clock, cache_size=0)
    sql_engine = make_sql_engine(database_url)
    try:
        with make_session_factory(sql_engine)() as session:
            engine.deploy_file(session, ACTIVITY_RECORD)
            instance = engine.start(session, "activity_record",
                                    {"deadline": (clock.now() + timedelta(days=days)).isoformat()},
                                    organisation_id="qd-sn", actor="test")
            session.commit()
            return instance.id
    finally:
        sql_engine.dispose()


def timers_fired(sessions, instance_id: int) -> list[str]:
    with sessions() as session:
        return [e.element_id for e in trail(session, instance_id) if e.kind == "timer_fired"]


# -- in-process ------------------------------------------------------------------------------
def test_inprocess_queue_runs_and_retries_league_jobs(database_url, clock, probe_sessions):
    with inprocess_queue(database_url, clock) as queue:
        queue.enqueue_many("probe.mark", [{"key": "a"}, {"key": "b"}])
        queue.enqueue("probe.flaky", {"key": "c", "failures": 2})
        queue.drain(30)
        assert not queue.failed
    assert [count(probe_sessions, effects, k) for k in "abc"] == [1, 1, 1]
    assert count(probe_sessions, attempts, "c") == 3


def test_timer_sweep_fires_a_due_timer_in_process(database_url, clock, sessions):
    clock.set(LONG_AGO)
    instance_id = start_record_due_in(database_url, clock, days=5)
    with inprocess_queue(database_url, clock, periodic_jobs=("engine.run_due_timers",)) as queue:
        assert queue.tick() == ["engine.run_due_timers"]
        queue.drain(30)
        assert timers_fired(sessions, instance_id) == []        # not due yet
        assert queue.tick() == []                               # its interval has not passed
        clock.advance(timedelta(days=3, seconds=1))             # past the reminder (deadline - 2 days)
        assert queue.tick() == ["engine.run_due_timers"]
        queue.drain(30)
        assert timers_fired(sessions, instance_id) == ["Timer_remind"]
        assert not queue.failed


# -- Celery ----------------------------------------------------------------------------------
def test_beat_schedule_holds_the_timer_sweep():
    entry = worker_app.conf.beat_schedule["engine.run_due_timers"]
    assert entry["args"] == ("engine.run_due_timers", {})
    assert entry["schedule"] == timedelta(seconds=league_jobs.get("engine.run_due_timers").every_seconds)
    conf = worker_app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.broker_transport_options["visibility_timeout"] > 0


def test_celery_worker_runs_and_retries_jobs(database_url, probe_sessions):
    with CeleryWorkers(database_url, job_modules=PROBES) as workers:
        worker = workers.start()
        workers.queue.enqueue_many("probe.mark", [{"key": "a"}, {"key": "b"}])
        workers.queue.enqueue("probe.flaky", {"key": "c", "failures": 1})   # retried after ~2 s
        wait_until(lambda: all(count(probe_sessions, effects, k) for k in "abc"), 60, message="jobs done")
        assert count(probe_sessions, attempts, "c") == 2
        assert "probe failure for c" in worker.log()


def test_a_job_killed_mid_way_is_redelivered_and_takes_effect_once(database_url, probe_sessions):
    with CeleryWorkers(database_url, job_modules=PROBES, visibility_timeout=3) as workers:
        first = workers.start()
        workers.queue.enqueue("probe.mark", {"key": "slow", "first_attempt_seconds": 60})
        wait_until(lambda: count(probe_sessions, attempts, "slow") == 1, 60, message="first attempt started")
        first.kill9()
        assert count(probe_sessions, effects, "slow") == 0
        second = workers.start()
        wait_until(lambda: count(probe_sessions, effects, "slow"), 60, message="redelivered job done")
        assert second.alive
    assert count(probe_sessions, attempts, "slow") == 2
    assert count(probe_sessions, effects, "slow") == 1


def test_timer_sweep_fires_a_due_timer_under_celery_beat(database_url, clock, sessions):
    clock.set(LONG_AGO)  # the workers run on the real clock: this timer is long overdue for them
    instance_id = start_record_due_in(database_url, clock, days=5)
    with CeleryWorkers(database_url) as workers:
        workers.start()
        workers.start_beat()
        wait_until(lambda: timers_fired(sessions, instance_id), 60, message="timer fired by the sweep")
    with sessions() as session:
        assert session.scalar(select(ProcessInstance.status).where(ProcessInstance.id == instance_id)) == "running"
