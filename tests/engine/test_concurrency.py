"""Two people completing the same task at the same moment: exactly one wins."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import Engine, TaskAlreadyCompleted
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.conftest import ENGINE_BPMN
from tests.engine.test_lifecycle import GOOD_RECORD, open_tasks


@pytest.mark.parametrize("round_", range(5))
def test_two_threads_completing_one_task_give_one_success(engine, sessions, clock, round_):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        instance = engine.start(session, "two_lane_review",
                                {"deadline": (clock.now() + timedelta(days=5)).isoformat()})
        session.commit()
        [task] = open_tasks(session, instance.id)
    barrier = threading.Barrier(2)
    outcomes = []

    def complete(actor):
        worker = Engine(services=engine.services, clock=clock, cache_size=0)
        with sessions() as session:
            barrier.wait()
            try:
                worker.complete_task(session, task.id, GOOD_RECORD, actor)
                session.commit()
                outcomes.append("ok")
            except TaskAlreadyCompleted:
                session.rollback()
                outcomes.append("already")
            except Exception as exc:  # noqa: BLE001 - any other outcome fails the test
                session.rollback()
                outcomes.append(repr(exc))

    threads = [threading.Thread(target=complete, args=(f"cadre-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already", "ok"]
    with sessions() as session:
        reviews = session.scalar(select(func.count()).select_from(HumanTask)
                                 .where(HumanTask.instance_id == instance.id, HumanTask.bpmn_id == "Task_review"))
        assert reviews == 1
        completions = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == instance.id, AuditEvent.kind == "task_completed"))
        assert completions == 1
        assert session.get(ProcessInstance, instance.id).version == 3  # started, then one completion
