"""The Congress study campaign (bpmn/congress_study.bpmn): on time, reminded, escalated, late report, missed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import FormInvalid, NotAllowed
from engine.models import HumanTask, ProcessInstance
from workflows.models import Activity, Notification

BPMN = Path(__file__).resolve().parents[2] / "bpmn" / "congress_study.bpmn"
START = {"remind_at": "2026-11-27T00:00:00+08:00", "due_at": "2026-11-30T00:00:00+08:00"}
REPORT = {"format": "sharing_session", "topic": "新时代青年的使命担当", "date": "2026-11-20", "place": "市南区青年之家",
          "youth_count": 35, "description": "与所联系的青年一起学习党的十九大报告，分组交流心得。",
          "evidence": ["sharing-1.jpg", "sign-in.pdf"]}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, BPMN)
        session.commit()


def start(sessions, engine, cadre="zhang", org="qd-sn"):
    with sessions() as session:
        instance = engine.start(session, "congress_study", dict(START, cadre_assignee=cadre), organisation_id=org,
                                business_key=f"congress-study-{cadre}")
        session.commit()
        return instance.id


def open_task(session, instance_id):
    [task] = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                     HumanTask.state.in_(("ready", "claimed"))))
    return task


def open_task_id(session, instance_id):
    return open_task(session, instance_id).id


def states(session, instance_id):
    return [(t.bpmn_id, t.state) for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                                         .order_by(HumanTask.id))]


def notifications(session, since=0):
    return [(n.recipient, n.subject) for n in session.scalars(select(Notification).order_by(Notification.id))][since:]


def jump(sessions, engine, clock, to: str):
    clock.set(utc(to) + timedelta(minutes=1))
    with sessions() as session:
        engine.run_due_timers(session)


def activities(session):
    return list(session.scalars(select(Activity).order_by(Activity.id)))


def test_reported_on_time_records_a_league_lecture(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    with sessions() as session:
        task = open_task(session, instance_id)
        assert (task.bpmn_id, task.assignee, task.organisation_id) == ("Task_report", "zhang", "qd-sn")
        assert (task.due_at, task.remind_at) == (utc(START["due_at"]), utc(START["remind_at"]))
        assert notifications(session) == [("zhang", "新的待办：开展并记录十九大精神宣讲")]
        with pytest.raises(NotAllowed):
            league_engine.complete_task(session, task.id, REPORT, "li")  # only the cadre it is assigned to
        session.rollback()
    clock.advance(timedelta(days=20))
    with sessions() as session:
        league_engine.complete_task(session, open_task_id(session, instance_id), REPORT, "zhang")
        session.commit()
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.next_timer_at is None
        [activity] = activities(session)
        assert (activity.kind, activity.cadre_id, activity.held_on, activity.youth_count, activity.instance_id) == \
            ("league_lecture", league.cadres["zhang"].id, "2026-11-20", 35, instance_id)
        assert activity.description.startswith("十九大精神宣讲（新时代青年的使命担当）：")
        assert activity.evidence == ["sharing-1.jpg", "sign-in.pdf"]
        assert instance.data["outcome"] == "on_time" and instance.data["activity"] == {"activity_id": activity.id}
        assert notifications(session) == [("zhang", "新的待办：开展并记录十九大精神宣讲")]


def test_reminded_then_reported_before_the_deadline(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    jump(sessions, league_engine, clock, START["remind_at"])
    with sessions() as session:
        assert notifications(session, 1) == [("zhang", "提醒：开展并记录十九大精神宣讲")]
        league_engine.complete_task(session, open_task_id(session, instance_id), REPORT, "zhang")
        session.commit()
    jump(sessions, league_engine, clock, START["due_at"])  # the deadline passes: nothing left to escalate
    with sessions() as session:
        assert session.get(ProcessInstance, instance_id).data["outcome"] == "on_time"
        assert len(activities(session)) == 1 and len(notifications(session)) == 2


def test_overdue_goes_to_the_county_organiser_who_allows_a_late_report(sessions, clock, league, league_engine,
                                                                        deployed):
    instance_id = start(sessions, league_engine, cadre="li", org="qd-sn-gw")
    jump(sessions, league_engine, clock, START["remind_at"])
    jump(sessions, league_engine, clock, START["due_at"])
    with sessions() as session:
        task = open_task(session, instance_id)
        assert (task.bpmn_id, task.candidate_role, task.organisation_id, task.assignee) == \
            ("Task_supervise", "organiser", "qd-sn", None)
        assert ("Task_report", "cancelled") in states(session, instance_id)
        assert notifications(session) == [("li", "新的待办：开展并记录十九大精神宣讲"), ("li", "提醒：开展并记录十九大精神宣讲"),
                                          ("li", "已逾期：开展并记录十九大精神宣讲"), ("S_org", "新的待办：督办十九大精神宣讲")]
        with pytest.raises(FormInvalid):  # allowing a late report needs its date
            league_engine.complete_task(session, task.id, {"decision": "allow_late", "supervision_note": "已联系"},
                                        "S_org")
        league_engine.complete_task(session, task.id, {"decision": "allow_late", "late_due": "2026-12-10",
                                                       "supervision_note": "已电话联系，本人表示下周开展"}, "S_org")
        session.commit()
    with sessions() as session:
        late = open_task(session, instance_id)
        assert (late.bpmn_id, late.assignee, late.due_at) == \
            ("Task_report_late", "li", utc("2026-12-10T23:59:59+08:00"))
        assert notifications(session, 4) == [("li", "新的待办：补报十九大精神宣讲")]
    clock.advance(timedelta(days=3))
    with sessions() as session:
        league_engine.complete_task(session, open_task_id(session, instance_id),
                                    dict(REPORT, date="2026-12-02", format="league_lecture"), "li")
        session.commit()
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.data["outcome"] == "late"
        [activity] = activities(session)
        assert (activity.cadre_id, activity.held_on) == (league.cadres["li"].id, "2026-12-02")


def test_the_organiser_records_it_as_missed(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    jump(sessions, league_engine, clock, START["due_at"])
    with sessions() as session:
        task = open_task(session, instance_id)
        league_engine.complete_task(session, task.id, {"decision": "close_missed", "supervision_note": "本人长期病假"},
                                    "S_org")
        session.commit()
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.data["outcome"] == "missed"
        assert activities(session) == []


def test_a_late_report_not_made_in_time_is_missed(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, cadre="wang", org="jn-lx")
    jump(sessions, league_engine, clock, START["due_at"])
    with sessions() as session:
        task = open_task(session, instance_id)
        assert task.organisation_id == "jn"  # no organiser in the county: the city's
        league_engine.complete_task(session, task.id, {"decision": "allow_late", "late_due": "2026-12-05",
                                                       "supervision_note": "准予补报"}, "J_org")
        session.commit()
    jump(sessions, league_engine, clock, "2026-12-05T23:59:59+08:00")
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.data["outcome"] == "missed"
        assert ("Task_report_late", "cancelled") in states(session, instance_id)
        assert notifications(session)[-1] == ("wang", "已逾期：补报十九大精神宣讲")
        assert activities(session) == []
