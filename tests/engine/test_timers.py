"""Boundary timers remind and escalate when the injected clock jumps; sweepers fire each timer once."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import Engine
from engine.audit import trail
from engine.models import AuditEvent, HumanTask, ProcessInstance
from tests.conftest import ENGINE_BPMN
from tests.engine.test_lifecycle import GOOD_RECORD, open_tasks


@pytest.fixture
def started(engine, sessions, clock):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        instance = engine.start(session, "two_lane_review",
                                {"deadline": (clock.now() + timedelta(days=5)).isoformat()}, organisation_id="qd")
        session.commit()
        return instance.id


def test_due_and_remind_times_come_from_the_boundary_timers(engine, sessions, clock, started):
    with sessions() as session:
        [task] = open_tasks(session, started)
        assert task.remind_at == clock.now() + timedelta(days=2)  # non-interrupting "P2D"
        assert task.due_at == clock.now() + timedelta(days=5)     # interrupting, from data
        assert session.get(ProcessInstance, started).next_timer_at == task.remind_at


def test_nothing_fires_before_its_time(engine, sessions, clock, started):
    clock.advance(timedelta(days=2) - timedelta(seconds=1))
    with sessions() as session:
        assert engine.run_due_timers(session) == 0
        assert [e.kind for e in trail(session, started)] == ["started", "task_created"]


def test_reminder_fires_at_remind_at_and_the_task_stays_open(engine, sessions, clock, started):
    clock.advance(timedelta(days=2, seconds=1))
    with sessions() as session:
        assert engine.run_due_timers(session) == 1
        [task] = open_tasks(session, started)
        assert task.bpmn_id == "Task_record" and task.state == "ready"
        fired = [e.element_id for e in trail(session, started) if e.kind == "timer_fired"]
        assert fired == ["Timer_remind"]
        assert session.get(ProcessInstance, started).next_timer_at == task.due_at
        assert engine.run_due_timers(session) == 0  # fired once, not again


def test_deadline_escalates_to_the_organiser(engine, sessions, clock, started):
    clock.advance(timedelta(days=6))
    with sessions() as session:
        assert engine.run_due_timers(session) == 1
        [followup] = open_tasks(session, started)
        assert (followup.bpmn_id, followup.lane, followup.organisation_id) == ("Task_followup", "organiser", "qd")
        original = session.scalar(select(HumanTask).where(HumanTask.instance_id == started,
                                                          HumanTask.bpmn_id == "Task_record"))
        assert original.state == "cancelled"
        kinds = [(e.kind, e.element_id) for e in trail(session, started)]
        assert ("escalated", "Task_record") in kinds and ("task_created", "Task_followup") in kinds
        assert session.get(ProcessInstance, started).next_timer_at is None


def test_completing_in_time_cancels_the_deadline(engine, sessions, clock, started):
    with sessions() as session:
        [task] = open_tasks(session, started)
        engine.complete_task(session, task.id, GOOD_RECORD, "cadre")
        session.commit()
        assert session.get(ProcessInstance, started).next_timer_at is None
    clock.advance(timedelta(days=30))
    with sessions() as session:
        assert engine.run_due_timers(session) == 0


def test_a_late_completion_after_escalation_is_refused(engine, sessions, clock, started):
    from engine import TaskAlreadyCompleted
    with sessions() as session:
        [task] = open_tasks(session, started)
    clock.advance(timedelta(days=6))
    with sessions() as session:
        engine.run_due_timers(session)
    with sessions() as session:
        with pytest.raises(TaskAlreadyCompleted, match="取消|cancelled"):
            engine.complete_task(session, task.id, GOOD_RECORD, "cadre")


def test_event_gateway_timer_auto_confirms(engine, sessions, clock):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "wish_confirm.bpmn")
        instance = engine.start(session, "wish_confirm", {}, business_key="wish-9")
        [task] = open_tasks(session, instance.id)
        engine.complete_task(session, task.id, {"reply": "好的"}, "cadre")
        session.commit()
        assert session.get(ProcessInstance, instance.id).next_timer_at == clock.now() + timedelta(days=7)
    clock.advance(timedelta(days=7, minutes=1))
    with sessions() as session:
        assert engine.run_due_timers(session) == 1
        done = session.get(ProcessInstance, instance.id)
        assert done.status == "completed"
        assert "End_auto" in engine.process_view(session, instance.id).completed


def test_several_sweepers_fire_each_due_timer_exactly_once(engine, sessions, clock):
    count = 12
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        for _ in range(count):
            engine.start(session, "two_lane_review", {"deadline": (clock.now() + timedelta(days=5)).isoformat()})
        session.commit()
    clock.advance(timedelta(days=6))  # both timers of every instance are due
    barrier = threading.Barrier(3)
    totals, errors = [], []

    def sweep():
        # Each sweeper is its own engine with its own session, as on separate machines.
        sweeper = Engine(services=engine.services, clock=clock, cache_size=0)
        with sessions() as session:
            try:
                barrier.wait()
                totals.append(sweeper.run_due_timers(session, batch_size=4))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(totals) == count
    with sessions() as session:
        fired = session.execute(select(AuditEvent.instance_id, AuditEvent.element_id, func.count())
                                .where(AuditEvent.kind == "timer_fired")
                                .group_by(AuditEvent.instance_id, AuditEvent.element_id)).all()
        assert len(fired) == 2 * count and all(n == 1 for _, _, n in fired)
        followups = session.scalar(select(func.count()).select_from(HumanTask)
                                   .where(HumanTask.bpmn_id == "Task_followup"))
        assert followups == count


def test_a_timer_due_exactly_now_does_not_hang_the_sweep(engine, sessions, clock, started):
    """SpiffWorkflow fires strictly after the due time; the sweep must neither loop nor lose it."""
    clock.advance(timedelta(days=2))  # exactly the reminder's time
    with sessions() as session:
        assert engine.run_due_timers(session) == 0
    clock.advance(timedelta(seconds=1))
    with sessions() as session:
        assert engine.run_due_timers(session) == 1
        assert engine.run_due_timers(session) == 0
