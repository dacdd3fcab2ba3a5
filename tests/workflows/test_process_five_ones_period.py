"""The five-ones period check (bpmn/five_ones_period.bpmn): cadres and leading organs, met and short."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import WorkflowFailed
from engine.models import HumanTask, ProcessInstance
from engine.services import ServiceCall
from workflows.models import CADRE_ACTIVITY_KINDS, ORGAN_ACTIVITY_KINDS, Notification
from workflows.services import registry

BPMN = Path(__file__).resolve().parents[2] / "bpmn" / "five_ones_period.bpmn"
CHECK_AT = "2026-07-01T09:00:00+08:00"
FOLLOWUP = {"followup_method": "talk", "cause": "工作繁忙，活动安排不足", "measures": "下周期前两周内补开展谈心谈话",
            "followup_date": "2026-07-03"}


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, BPMN)
        session.commit()


def record(sessions, clock, kinds, day="2026-05-20", cadre=None, org="qd-sn"):
    """Record activities through the ``record_activity`` operator, as a recording process would."""
    with sessions() as session:
        call = ServiceCall(session=session, instance_id=None, organisation_id=org, now=clock.now(), task_data={})
        for kind in kinds:
            registry.call("record_activity", call, {"kind": kind, "date": day, "place": "市南区青年之家",
                                                    "youth_count": 15, "description": "直接联系青年的活动",
                                                    "cadre": cadre, "organisation": org,
                                                    "evidence": ["活动照片.jpg"]})
        session.commit()


def start(sessions, engine, cadre, org, period_start, period_end):
    with sessions() as session:
        instance = engine.start(session, "five_ones_period",
                                {"cadre_assignee": cadre, "organisation": org, "period_start": period_start,
                                 "period_end": period_end, "check_at": CHECK_AT},
                                organisation_id=org, business_key=f"five-ones-{cadre or org}-{period_start}")
        session.commit()
        assert instance.new_task_ids == () and instance.next_timer_at is not None
        return instance.id


def check(sessions, engine, clock):
    """Jump past the check time and fire the timer."""
    clock.set(datetime.fromisoformat(CHECK_AT).astimezone(timezone.utc) + timedelta(minutes=1))
    with sessions() as session:
        assert engine.run_due_timers(session) >= 1


def open_tasks(session, instance_id):
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.state.in_(("ready", "claimed")))))


def notifications(session):
    return [(n.recipient, n.subject) for n in session.scalars(select(Notification).order_by(Notification.id))]


def test_a_cadre_who_met_the_quota_ends_quietly(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "zhang", "qd-sn", "2026-05-01", "2026-06-30")
    record(sessions, clock, CADRE_ACTIVITY_KINDS, cadre="zhang")
    record(sessions, clock, ["league_lecture"], day="2026-07-02", cadre="zhang")  # after the period: not counted
    with sessions() as session:
        assert session.get(ProcessInstance, instance_id).status == "running"  # nothing happens before check_at
    check(sessions, league_engine, clock)
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and open_tasks(session, instance_id) == []
        assert (instance.data["met"], instance.data["kinds_missing"], instance.data["activity_count"]) == \
            (True, [], 5)
        assert instance.data["subject"] == "cadre"
        assert notifications(session) == []


def test_a_cadre_short_of_the_quota_is_followed_up_by_the_organiser(sessions, clock, league, league_engine,
                                                                     deployed):
    instance_id = start(sessions, league_engine, "li", "qd-sn-gw", "2026-04-01", "2026-06-30")  # part-time: quarter
    record(sessions, clock, ["practical_thing", "league_lecture", "league_lecture"], cadre="li", org="qd-sn-gw")
    record(sessions, clock, CADRE_ACTIVITY_KINDS, cadre="zhang")  # another cadre's work does not count for li
    check(sessions, league_engine, clock)
    with sessions() as session:
        [task] = open_tasks(session, instance_id)
        assert (task.bpmn_id, task.candidate_role, task.organisation_id, task.assignee) == \
            ("Task_followup", "organiser", "qd-sn", None)  # the county organiser above li's committee
        assert task.form_key == "five_ones_period.followup.json"
        assert notifications(session) == [("S_org", "新的待办：督办“五个一”未达标")]
        league_engine.complete_task(session, task.id, FOLLOWUP, "S_org")
        session.commit()
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed"
        assert instance.data["met"] is False and instance.data["activity_count"] == 3
        assert instance.data["kinds_missing"] == ["heart_to_heart", "volunteer_service", "culture_sports"]
        assert instance.data["followup_method"] == "talk"


def test_an_organ_that_met_the_quota_ends_quietly(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, None, "qd-sn", "2026-04-01", "2026-06-30")
    record(sessions, clock, ORGAN_ACTIVITY_KINDS)
    check(sessions, league_engine, clock)
    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.data["met"] is True
        assert instance.data["subject"] == "organ" and notifications(session) == []


def test_an_organ_short_of_the_quota_is_followed_up_one_level_up(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, None, "qd-sn", "2026-04-01", "2026-06-30")
    record(sessions, clock, ORGAN_ACTIVITY_KINDS[:4])
    record(sessions, clock, CADRE_ACTIVITY_KINDS, cadre="zhang")  # cadres' own activities are not the organ's
    check(sessions, league_engine, clock)
    with sessions() as session:
        [task] = open_tasks(session, instance_id)
        assert (task.candidate_role, task.organisation_id) == ("organiser", "qd")  # the city supervises the county
        assert notifications(session) == [("Q_org", "新的待办：督办“五个一”未达标")]
        league_engine.complete_task(session, task.id, FOLLOWUP, "Q_org")
        session.commit()
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed"
        assert (instance.data["met"], instance.data["kinds_missing"], instance.data["followup_organisation"]) == \
            (False, ["self_designed"], "qd")


def test_the_start_data_must_say_whether_it_is_a_cadre_or_an_organ(sessions, league_engine, deployed):
    with sessions() as session, pytest.raises(WorkflowFailed, match="cadre_assignee"):
        league_engine.start(session, "five_ones_period", {"organisation": "qd-sn", "period_start": "2026-04-01",
                                                          "period_end": "2026-06-30", "check_at": CHECK_AT},
                            organisation_id="qd-sn")
