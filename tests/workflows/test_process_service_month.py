"""集中服务青年月 (service_month): recorded on time, reminded, escalated to the county and recorded late, or not."""
from __future__ import annotations

import pytest

from engine import NotAllowed
from engine.services import ServiceCall
from tests.workflows.campaign_process_helpers import (
    activities,
    complete_the_only_task as complete,
    at,
    deploy,
    instance,
    jump_to,
    last_notification_id,
    notifications,
    only_task,
    routing,
)
from workflows.services import registry

DUE_AT = "2027-02-28T00:00:00+08:00"
REMIND_AT = "2027-02-21T09:00:00+08:00"

SERVICES = {"services": ["走访慰问困难青年5户", "为返乡青年举办就业招聘会", "组织青年志愿者为外卖骑手送年货"],
            "description": "春节前后走访慰问困难青年，举办返乡青年招聘会，帮助3名青年解决就业、子女入托等实际困难。",
            "service_from": "2027-01-05", "service_to": "2027-02-10", "place": "八大关街道",
            "youth_helped": 56, "difficulties_solved": 3,
            "difficulties": ["帮助小王找到工作", "协调小李子女入托", "为小赵申请创业贴息贷款"],
            "evidence": ["走访照片.jpg", "招聘会签到表.pdf"]}
FOLLOWUP = {"followup_method": "phone", "followup_note": "电话联系，该同志春节期间已开展服务但未及时录入。"}


@pytest.fixture
def deployed(sessions, league, league_engine):
    league_engine.clock.set(at("2026-12-20T00:00:00+08:00"))  # the month opens around New Year
    with sessions() as session:
        deploy(session, league_engine, "service_month")
        session.commit()


def start(sessions, engine, cadre, organisation):
    with sessions() as session:
        started = engine.start(session, "service_month",
                               {"cadre_assignee": cadre, "due_at": DUE_AT, "remind_at": REMIND_AT},
                               organisation_id=organisation, business_key=f"service_month-2027-{cadre}")
        session.commit()
        return started.id


def test_recorded_on_time_counts_as_a_practical_thing(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "li", "qd-sn-gw")
    with sessions() as session:
        task = only_task(session, instance_id)
        assert routing(task) == ("Task_serve", "cadre", "qd-sn-gw", "li")
        assert (task.due_at, task.remind_at) == (at(DUE_AT), at(REMIND_AT))
        assert notifications(session) == [("li", "新的待办：记录集中服务青年月情况")]
        with pytest.raises(NotAllowed):  # li's task is li's
            league_engine.complete_task(session, task.id, SERVICES, "zhang")
        session.rollback()
    complete(sessions, league_engine, instance_id, "Task_serve", SERVICES, "li")
    with sessions() as session:
        [activity] = activities(session, instance_id)
        assert (activity.kind, activity.cadre_id, activity.organisation_id) == (
            "practical_thing", league.cadres["li"].id, league.orgs["qd-sn-gw"].id)
        assert (activity.held_on, activity.youth_count, activity.place) == ("2027-02-10", 56, "八大关街道")
        assert activity.evidence == SERVICES["evidence"]
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["recorded"] == {"activity_id": activity.id}
        assert done.data["difficulties_solved"] == 3 and len(done.data["services"]) == 3
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2027-03-01T00:00:00+08:00") == 0
    with sessions() as session:
        assert notifications(session, mark) == []


def test_reminded_then_recorded(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "zhang", "qd-sn")
    assert jump_to(league_engine.clock, sessions, league_engine, "2027-02-21T09:00:01+08:00") == 1
    with sessions() as session:
        assert notifications(session, 1) == [("zhang", "提醒：记录集中服务青年月情况")]
        assert routing(only_task(session, instance_id)) == ("Task_serve", "cadre", "qd-sn", "zhang")
    complete(sessions, league_engine, instance_id, "Task_serve", dict(SERVICES, difficulties_solved=0,
                                                                      difficulties=[]), "zhang")
    with sessions() as session:
        assert [a.cadre_id for a in activities(session, instance_id)] == [league.cadres["zhang"].id]
        assert instance(session, instance_id).status == "completed"


def test_overdue_goes_to_the_county_which_allows_a_late_record(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "li", "qd-sn-gw")
    jump_to(league_engine.clock, sessions, league_engine, "2027-02-22T00:00:00+08:00")
    assert jump_to(league_engine.clock, sessions, league_engine, "2027-02-28T00:00:01+08:00") == 1
    with sessions() as session:
        followup = only_task(session, instance_id)
        assert routing(followup) == ("Task_followup", "organiser", "qd-sn", None)  # the county above li's 街道团工委
        assert notifications(session, 1) == [("li", "提醒：记录集中服务青年月情况"),
                                             ("li", "已逾期：记录集中服务青年月情况"),
                                             ("S_org", "新的待办：督办逾期未记录的服务月")]
        assert activities(session, instance_id) == []
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_followup", dict(FOLLOWUP, allow_late=True), "S_org")
    with sessions() as session:
        late = only_task(session, instance_id)
        assert routing(late) == ("Task_serve_late", "cadre", "qd-sn-gw", "li")
        assert late.due_at is None
        assert notifications(session, mark) == [("li", "新的待办：补录集中服务青年月情况")]
    complete(sessions, league_engine, instance_id, "Task_serve_late", SERVICES, "li")
    with sessions() as session:
        [activity] = activities(session, instance_id)
        assert activity.kind == "practical_thing" and activity.cadre_id == league.cadres["li"].id
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["allow_late"] is True
        assert done.data["organ"] == {"code": "qd-sn", "name": "市南区团委", "kind": "county"}


def test_overdue_without_a_late_record(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "wang", "jn-lx")
    jump_to(league_engine.clock, sessions, league_engine, "2027-03-01T00:00:00+08:00")
    with sessions() as session:
        # 历下区团委 has no organiser of its own: the nearest one above it (济南) follows up
        assert routing(only_task(session, instance_id)) == ("Task_followup", "organiser", "jn", None)
        assert notifications(session, 1)[-1] == ("J_org", "新的待办：督办逾期未记录的服务月")
    complete(sessions, league_engine, instance_id, "Task_followup", dict(FOLLOWUP, allow_late=False), "J_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and "recorded" not in done.data
        assert activities(session, instance_id) == []


def test_nearest_leading_organ(sessions, league, league_engine):
    with sessions() as session:
        def organ(code):
            call = ServiceCall(session=session, instance_id=None, organisation_id=code,
                               now=league_engine.clock.now(), task_data={})
            return registry.call("nearest_leading_organ", call, {})["code"]
        assert [organ(c) for c in ("qd-sn-gw-1", "qd-sn-gw", "qd-sn", "qd", "prov")] == [
            "qd-sn", "qd-sn", "qd-sn", "qd", "prov"]
