"""Several real Celery workers (and beat) racing on the timer sweep: every timer fires exactly once.

PostgreSQL only (several processes on one database; SQLite's half is skipped with that reason);
Redis must be up (skipped without it, a failure under ``LIANQING_REQUIRE_SERVICES=1``).

The workers run the league engine on the real clock, so nothing can jump their time: the instances
are started by an engine whose clock stands ten days back, and their timers (a reminder after two
days, a deadline after five) are therefore already due when the workers start.  The sweep is sent
to the workers in a burst of many copies at once (so several workers run it at the same moment),
and beat sends it every half second as well.  One worker is killed with SIGKILL half-way through
(the sweep fires batches of 10 instances per transaction here, so that there is a half-way).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from engine import Engine, ManualClock, StartRequest
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.conftest import ENGINE_BPMN
from tests.job_support import CeleryWorkers, wait_until
from workflows.services import registry

INSTANCES = 3000
WORKERS = 3
BURST = 30  # sweep jobs sent at once


@pytest.fixture
def postgres_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("Celery workers in several processes share one PostgreSQL database (SQLite: one writer)")


def _fired_instances(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count(func.distinct(AuditEvent.instance_id)))
                              .where(AuditEvent.kind == "timer_fired"))


def _still_due(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.status == "running", ProcessInstance.next_timer_at < datetime.now(timezone.utc)))


def _sweeps_that_fired(log: str) -> int:
    return sum(int(n) for n in re.findall(r"timer sweep fired (\d+) instance", log))


def test_celery_workers_and_beat_fire_every_timer_exactly_once(postgres_only, database_url, sessions):
    ten_days_ago = ManualClock(datetime.now(timezone.utc) - timedelta(days=10))
    starter = Engine(services=registry, clock=ten_days_ago, cache_size=0)
    deadline = (ten_days_ago.now() + timedelta(days=5)).isoformat()
    with sessions() as session:
        definition = starter.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn").definition
        ids = starter.start_many(session, definition.id, [StartRequest({"deadline": deadline}, "qd")] * INSTANCES)
        session.commit()
    assert _still_due(sessions) == INSTANCES  # both timers of each instance are in the past

    # Batches of 10 (not the default 100): each sweep commits many times, so a worker can be killed mid-way.
    with CeleryWorkers(database_url, visibility_timeout=3,
                       environ={"LIANQING_SWEEP_INTERVAL": "0.5", "LIANQING_SWEEP_BATCH": "10"}) as workers:
        handles = [workers.start() for _ in range(WORKERS)]
        workers.queue.enqueue_many("engine.run_due_timers", [{}] * BURST)
        workers.start_beat()
        try:
            wait_until(lambda: _fired_instances(sessions) >= 30, timeout=120, interval=0.02,
                       message="the first timers fired")
            handles[0].kill9()  # a power cut in the middle of a sweep
            at_kill = _fired_instances(sessions)
            assert at_kill < INSTANCES, "the workers finished before one could be killed; raise INSTANCES"
            wait_until(lambda: _still_due(sessions) == 0, timeout=300, message="every due timer fired")
        except AssertionError:
            for handle in workers.processes:
                print(handle.name, handle.log()[-3000:])
            raise
        fired_by = {handle.name: _sweeps_that_fired(handle.log()) for handle in handles}
    # The race really happened: more than one worker fired instances.
    assert sum(1 for n in fired_by.values() if n) >= 2, fired_by
    print(f"fired by worker: {fired_by}; {at_kill} instances fired when worker 1 was killed")

    with sessions() as session:
        fired = session.execute(select(AuditEvent.instance_id, AuditEvent.element_id, func.count())
                                .where(AuditEvent.kind == "timer_fired")
                                .group_by(AuditEvent.instance_id, AuditEvent.element_id)).all()
        assert {(i, element) for i, element, _n in fired} == {(i, e) for i in ids
                                                              for e in ("Timer_remind", "Timer_deadline")}
        assert [n for _i, _e, n in fired if n != 1] == [], "a timer fired more than once"
        followups = dict(session.execute(select(HumanTask.instance_id, func.count()).where(
            HumanTask.bpmn_id == "Task_followup").group_by(HumanTask.instance_id)).all())
        assert followups == {i: 1 for i in ids}
        # Started (version 2), then moved on by the sweep exactly once: both timers in one step.
        versions = dict(session.execute(select(ProcessInstance.id, ProcessInstance.version)).all())
        assert versions == {i: 3 for i in ids}
        records_open = session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.bpmn_id == "Task_record", HumanTask.state.in_(HumanTask.OPEN_STATES)))
        assert records_open == 0  # the deadline is interrupting: every record task was closed
