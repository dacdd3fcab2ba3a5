"""Who is notified when: new assignments, reminders before a deadline, escalations after it."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.models import HumanTask
from tests.conftest import ENGINE_BPMN
from workflows.models import Notification


def inbox_of(session):
    return [(n.recipient, n.subject) for n in session.scalars(select(Notification).order_by(Notification.id))]


def test_assignment_reminder_and_escalation_reach_the_right_people(sessions, clock, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        instance = league_engine.start(session, "two_lane_review",
                                       {"deadline": (clock.now() + timedelta(days=5)).isoformat(),
                                        "cadre_assignee": "zhang"}, organisation_id="qd-sn-gw-1")
        session.commit()
        assert inbox_of(session) == [("zhang", "新的待办：记录活动")]
        body = session.scalar(select(Notification.body))
        assert "2026-05-06 08:00" in body  # Beijing time

    clock.advance(timedelta(days=2, minutes=1))  # the non-interrupting reminder ("P2D")
    with sessions() as session:
        league_engine.run_due_timers(session)
        assert inbox_of(session)[1:] == [("zhang", "提醒：记录活动")]

    clock.advance(timedelta(days=3))  # past the deadline: escalated to the organiser lane
    with sessions() as session:
        league_engine.run_due_timers(session)
        followup = session.scalar(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                          HumanTask.bpmn_id == "Task_followup"))
        assert followup.organisation_id == "qd-sn"  # nearest organiser above the branch
        assert inbox_of(session)[2:] == [("zhang", "已逾期：记录活动"), ("S_org", "新的待办：督办逾期任务")]


def test_an_offered_staff_task_notifies_every_holder_of_the_role(sessions, clock, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        instance = league_engine.start(session, "two_lane_review",
                                       {"deadline": (clock.now() + timedelta(days=5)).isoformat(),
                                        "cadre_assignee": "wang"}, organisation_id="jn-lx")
        record = session.get(HumanTask, instance.new_task_ids[0])
        league_engine.complete_task(session, record.id, {"date": "2026-05-02", "place": "历下区", "participants": 3},
                                    "wang")
        session.commit()
        assert inbox_of(session)[-1] == ("J_org", "新的待办：审核记录")  # the county has no organiser: Jinan's
