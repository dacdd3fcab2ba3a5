"""Messages and signals by business key, cancellation, and the append-only audit trail."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from engine import NotFound, TaskAlreadyCompleted
from engine.audit import AuditIsAppendOnly, trail
from engine.models import ProcessInstance
from tests.conftest import ENGINE_BPMN
from tests.engine.test_lifecycle import open_tasks


@pytest.fixture
def wish(engine, sessions):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "wish_confirm.bpmn")
        instance = engine.start(session, "wish_confirm", {"wish": "一本书"}, business_key="wish-1")
        session.commit()
        return instance.id


def test_message_with_payload_finishes_the_waiting_instance(engine, sessions, wish):
    with sessions() as session:
        [task] = open_tasks(session, wish)
        engine.complete_task(session, task.id, {"reply": "已送达"}, "cadre")
        delivered = engine.send_message(session, "wish-1", "wish_confirmed", {"stars": 5}, actor="youth-1")
        session.commit()
        assert delivered == [wish]
        done = session.get(ProcessInstance, wish)
        assert done.status == "completed" and done.data["confirmation"] == {"stars": 5}
        message = [e for e in trail(session, wish) if e.kind == "message"][0]
        assert message.actor == "youth-1" and message.detail == "wish_confirmed"


def test_withdraw_message_interrupts_the_open_task(engine, sessions, wish):
    with sessions() as session:
        [task] = open_tasks(session, wish)
        engine.send_message(session, "wish-1", "wish_withdrawn", {"why": "不需要了"}, actor="youth-1")
        session.commit()
        assert session.get(ProcessInstance, wish).status == "completed"
        assert open_tasks(session, wish) == []
        with pytest.raises(TaskAlreadyCompleted):
            engine.complete_task(session, task.id, {}, "cadre")


def test_signal_reaches_the_instance(engine, sessions, wish):
    with sessions() as session:
        engine.send_signal(session, "wish-1", "campaign_cancelled")
        session.commit()
        assert "End_cancelled" in engine.process_view(session, wish).completed


def test_a_message_nobody_waits_for_is_a_clear_error(engine, sessions, wish):
    with sessions() as session:
        with pytest.raises(NotFound, match="wish_confirmed"):
            engine.send_message(session, "wish-1", "wish_confirmed", {})
        session.rollback()
        with pytest.raises(NotFound, match="no-such-key"):
            engine.send_message(session, "no-such-key", "wish_withdrawn", {})


def test_cancel_closes_every_open_task_and_keeps_history(engine, sessions, wish):
    with sessions() as session:
        engine.cancel(session, wish, actor="admin", reason="重复提交")
        session.commit()
        instance = session.get(ProcessInstance, wish)
        assert instance.status == "cancelled" and open_tasks(session, wish) == []
        kinds = [e.kind for e in trail(session, wish)]
        assert kinds[:2] == ["started", "task_created"] and "cancelled" in kinds and "task_cancelled" in kinds
        with pytest.raises(TaskAlreadyCompleted):
            engine.cancel(session, wish, actor="admin", reason="again")


def test_audit_events_cannot_be_changed_through_the_orm(engine, sessions, wish):
    with sessions() as session:
        event = trail(session, wish)[0]
        event.actor = "someone-else"
        with pytest.raises(AuditIsAppendOnly):
            session.flush()
        session.rollback()
        session.delete(trail(session, wish)[0])
        with pytest.raises(AuditIsAppendOnly):
            session.flush()


def test_audit_events_cannot_be_changed_in_the_database(engine, sessions, wish):
    for statement in ("UPDATE audit_event SET actor = 'x'", "DELETE FROM audit_event"):
        with sessions() as session:
            with pytest.raises(Exception, match="append-only"):
                session.execute(text(statement))
            session.rollback()
    with sessions() as session:
        assert len(trail(session, wish)) == 2
