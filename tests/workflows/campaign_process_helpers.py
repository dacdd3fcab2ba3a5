"""Helpers shared by the tests of the campaign processes (开放日, 最美青春故事, 集中服务青年月, 季度报告)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from engine.models import HumanTask, ProcessInstance
from workflows.models import Activity, Notification

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"


def deploy(session, engine, process_id: str) -> None:
    """Deploy bpmn/<process_id>.bpmn (and its forms) through the engine's checks."""
    engine.deploy_file(session, BPMN_DIR / f"{process_id}.bpmn")


def open_tasks(session, instance_id: int) -> list[HumanTask]:
    """The open human tasks of an instance, oldest first."""
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.state.in_(HumanTask.OPEN_STATES))
                                .order_by(HumanTask.id)))


def only_task(session, instance_id: int) -> HumanTask:
    """The one open task of an instance (fails if there are none or several)."""
    tasks = open_tasks(session, instance_id)
    assert len(tasks) == 1, [(t.bpmn_id, t.organisation_id) for t in tasks]
    return tasks[0]


def task_named(session, instance_id: int, bpmn_id: str) -> HumanTask:
    """The open task with a given element id."""
    [task] = [t for t in open_tasks(session, instance_id) if t.bpmn_id == bpmn_id]
    return task


def routing(task: HumanTask) -> tuple:
    """(element, role, organisation, assignee) of a task: who holds it."""
    return task.bpmn_id, task.candidate_role, task.organisation_id, task.assignee


def holding(session, instance_id: int) -> list[tuple]:
    """Who holds each open task of an instance, oldest first (see :func:`routing`)."""
    return [routing(task) for task in open_tasks(session, instance_id)]


def first_open_task(session, instance_id: int) -> HumanTask | None:
    """The oldest open task of an instance, or ``None``."""
    tasks = open_tasks(session, instance_id)
    return tasks[0] if tasks else None


def complete_the_only_task(sessions, engine, instance_id: int, bpmn_id: str, data: dict, actor: str) -> None:
    """Complete the instance's one open task, which must be ``bpmn_id``, as ``actor``."""
    with sessions() as session:
        task = only_task(session, instance_id)
        assert task.bpmn_id == bpmn_id
        engine.complete_task(session, task.id, data, actor)
        session.commit()


def notifications(session, after_id: int = 0) -> list[tuple[str, str]]:
    """(recipient, subject) of the notifications written after ``after_id``, in order."""
    return [(n.recipient, n.subject) for n in session.scalars(select(Notification).where(Notification.id > after_id)
                                                              .order_by(Notification.id))]


def last_notification_id(session) -> int:
    """The id of the newest notification (0 if none)."""
    return max(session.scalars(select(Notification.id)).all(), default=0)


def instance(session, instance_id: int) -> ProcessInstance:
    """The instance row, re-read."""
    row = session.get(ProcessInstance, instance_id)
    session.refresh(row)
    return row


def activities(session, instance_id: int) -> list[Activity]:
    """The activities a process instance recorded."""
    return list(session.scalars(select(Activity).where(Activity.instance_id == instance_id).order_by(Activity.id)))


def at(text: str) -> datetime:
    """An aware datetime from ISO text."""
    return datetime.fromisoformat(text)


def jump_to(clock, sessions, engine, moment: str) -> int:
    """Move the clock to ``moment`` and fire what is due; return how many instances fired."""
    clock.set(at(moment))
    with sessions() as session:
        return engine.run_due_timers(session)


def task_data(session, engine, task: HumanTask) -> dict:
    """The data an open task carries (what its form would be shown with).

    The engine has no public read of a running task's data yet, so this restores the workflow
    the way the engine does (``Engine._workflow``); see the report of issue 4.
    """
    from uuid import UUID

    from engine import store
    workflow = engine._workflow(session, store.load_header(session, task.instance_id, lock=False))
    return dict(workflow.get_task_from_id(UUID(task.task_id)).data)


class Outbox:
    """Reads the notifications written since the last look."""

    def __init__(self):
        self.seen = 0

    def new(self, session):
        rows = list(session.scalars(select(Notification).where(Notification.id > self.seen).order_by(Notification.id)))
        if rows:
            self.seen = rows[-1].id
        return sorted((n.recipient, n.subject) for n in rows)


def sweep(clock, sessions, engine, delta):
    """Jump the clock and fire whatever timers are due."""
    clock.advance(delta)
    with sessions() as session:
        engine.run_due_timers(session)
