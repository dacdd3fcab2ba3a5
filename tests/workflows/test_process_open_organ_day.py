"""开放日 (open_organ_day): planned, held and recorded, summarised; reminded; escalated to the organ above."""
from __future__ import annotations

import pytest

from engine import NotAllowed
from tests.workflows.campaign_process_helpers import (
    complete_the_only_task as complete,
    activities,
    at,
    deploy,
    instance,
    jump_to,
    last_notification_id,
    notifications,
    only_task,
    routing,
)

QUARTER_END = "2026-07-01T00:00:00+08:00"
REMIND_AT = "2026-06-20T09:00:00+08:00"

PLAN = {"planned_date": "2026-06-12", "theme": "走进团市委·青春对话", "planned_place": "市南区团委三楼会议室",
        "expected_youth": 40, "programme": ["policy_talk", "history_exhibition", "discussion"]}
HOLD = {"held_on": "2026-06-12", "place": "市南区团委三楼会议室", "attendance": 38,
        "description": "邀请38名青年走进团区委，参观团史展览，听取就业创业政策宣讲并座谈交流。",
        "evidence": ["签到表.pdf", "现场照片1.jpg"]}
SUMMARY = {"summary": "青年对机关工作有了直观了解，现场收集意见建议12条。", "youth_feedback": "希望增加创业指导内容。"}
FOLLOWUP = {"followup_method": "phone", "followup_note": "已电话了解，因人员调整未举办，要求下季度初补办。"}


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        deploy(session, league_engine, "open_organ_day")
        session.commit()


def start(sessions, engine, organisation, **extra):
    with sessions() as session:
        started = engine.start(session, "open_organ_day",
                               {"organisation": organisation, "quarter_end": QUARTER_END, "remind_at": REMIND_AT,
                                **extra},
                               organisation_id=organisation, business_key=f"open_day-2026Q2-{organisation}")
        session.commit()
        return started.id


def test_held_on_time_is_recorded_for_the_organ(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    with sessions() as session:
        plan = only_task(session, instance_id)
        assert routing(plan) == ("Task_plan", "organiser", "qd-sn", None)  # offered to the county's organisers
        assert plan.due_at == at(QUARTER_END) and plan.remind_at == at(REMIND_AT)
        assert plan.form_key == "open_organ_day.plan.json"
        assert notifications(session) == [("S_org", "新的待办：制定开放日计划")]
        with pytest.raises(NotAllowed):  # another city's organiser may not take it
            league_engine.complete_task(session, plan.id, PLAN, "J_org")
        session.rollback()
    complete(sessions, league_engine, instance_id, "Task_plan", PLAN, "S_org")
    complete(sessions, league_engine, instance_id, "Task_hold", HOLD, "S_org")
    with sessions() as session:
        [activity] = activities(session, instance_id)
        assert (activity.kind, activity.cadre_id, activity.organisation_id) == ("open_day", None,
                                                                                league.orgs["qd-sn"].id)
        assert (activity.held_on, activity.youth_count, activity.evidence) == ("2026-06-12", 38, HOLD["evidence"])
        assert routing(only_task(session, instance_id)) == ("Task_summary", "organiser", "qd-sn", None)
    complete(sessions, league_engine, instance_id, "Task_summary", SUMMARY, "S_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.next_timer_at is None
        assert done.data["recorded"] == {"activity_id": activity.id}
        assert done.data["theme"] == PLAN["theme"] and done.data["summary"] == SUMMARY["summary"]
        assert "followup_note" not in done.data
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-07-02T00:00:00+08:00") == 0
    with sessions() as session:
        assert notifications(session, mark) == []


def test_a_named_organiser_is_reminded_before_the_quarter_ends(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn", organiser_assignee="S_org")
    complete(sessions, league_engine, instance_id, "Task_plan", PLAN, "S_org")
    with sessions() as session:
        hold = only_task(session, instance_id)
        assert routing(hold) == ("Task_hold", "organiser", "qd-sn", "S_org")
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-19T23:00:00+08:00") == 0
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-20T09:00:01+08:00") == 1
    with sessions() as session:
        assert notifications(session, mark) == [("S_org", "提醒：举办并记录开放日")]
        assert only_task(session, instance_id).bpmn_id == "Task_hold"  # a reminder leaves the task open
    complete(sessions, league_engine, instance_id, "Task_hold", dict(HOLD, held_on="2026-06-26"), "S_org")
    complete(sessions, league_engine, instance_id, "Task_summary", SUMMARY, "S_org")
    with sessions() as session:
        assert instance(session, instance_id).status == "completed"
        assert [a.held_on for a in activities(session, instance_id)] == ["2026-06-26"]


def test_not_held_by_the_quarter_end_escalates_to_the_organ_above(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn", organiser_assignee="S_org")
    complete(sessions, league_engine, instance_id, "Task_plan", PLAN, "S_org")
    with sessions() as session:
        mark = last_notification_id(session)
    jump_to(league_engine.clock, sessions, league_engine, "2026-06-21T00:00:00+08:00")  # reminded
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-07-01T00:00:01+08:00") == 1
    with sessions() as session:
        followup = only_task(session, instance_id)
        # parent_organisation: the city above the county; open to its organisers, not to the named S_org
        assert routing(followup) == ("Task_followup", "organiser", "qd", None)
        assert notifications(session, mark) == [("S_org", "提醒：举办并记录开放日"),
                                                ("S_org", "已逾期：举办并记录开放日"),
                                                ("Q_org", "新的待办：督办未按期举办的开放日")]
        with pytest.raises(NotAllowed):  # the late county may not close its own follow-up
            league_engine.complete_task(session, followup.id, FOLLOWUP, "S_org")
        session.rollback()
    complete(sessions, league_engine, instance_id, "Task_followup", FOLLOWUP, "Q_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["parent"]["code"] == "qd"
        assert done.data["followup_method"] == "phone" and "recorded" not in done.data
        assert activities(session, instance_id) == []


def test_a_city_that_never_plans_is_followed_up_by_the_province(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd")
    with sessions() as session:
        assert routing(only_task(session, instance_id)) == ("Task_plan", "organiser", "qd", None)
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-20T10:00:00+08:00") == 1
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-07-01T08:00:00+08:00") == 1
    with sessions() as session:
        assert routing(only_task(session, instance_id)) == ("Task_followup", "organiser", "prov", None)
        assert notifications(session, mark) == [("Q_org", "提醒：制定开放日计划"), ("Q_org", "已逾期：制定开放日计划"),
                                                ("P_org", "新的待办：督办未按期举办的开放日")]


def test_the_province_has_no_organ_above_and_follows_up_itself(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "prov")
    jump_to(league_engine.clock, sessions, league_engine, "2026-07-02T00:00:00+08:00")
    with sessions() as session:
        assert routing(only_task(session, instance_id)) == ("Task_followup", "organiser", "prov", None)
