"""“最美青春故事” (youth_story): county → city → province selection, each stage with its deadline;
on time, a wrong selection sent back, reminders, nobody selected, and a missed stage at every level."""
from __future__ import annotations

import pytest

from engine import FormInvalid, NotAllowed
from tests.workflows.campaign_process_helpers import (
    complete_the_only_task as complete,
    at,
    deploy,
    instance,
    jump_to,
    last_notification_id,
    notifications,
    only_task,
    routing,
    task_data,
)

COUNTY_DUE = "2026-08-15T00:00:00+08:00"
CITY_DUE = "2026-09-30T00:00:00+08:00"
PROVINCE_DUE = "2026-11-15T00:00:00+08:00"

ZHANG = {"cadre": "zhang", "cadre_name": "张伟", "unit": "市南区团委 专职副书记", "category": "speech",
         "title": "在青年身边的三百六十五天", "story": "扎根社区一年，联系青年112名，帮助21名青年解决就业和入学难题。",
         "material_links": ["https://v.example.cn/zhang-speech"]}
LI_VIDEO = {"cadre": "li", "cadre_name": "李娜", "unit": "八大关街道团工委 兼职副书记", "category": "micro_video",
            "title": "老城区里的青年之家", "story": "把闲置老楼改造成团青联络站，每周组织青年志愿服务和读书会。",
            "material_files": ["李娜-青年之家.mp4"]}
LI_ESSAY = dict(LI_VIDEO, category="essay", title="写给一百位小伙伴的信", material_files=["李娜-征文.docx"])
NOMINATIONS = {"nominations": [ZHANG, LI_VIDEO, LI_ESSAY], "collect_note": "共收到基层团组织推荐3件作品。"}
PUBLISH = {"publish_title": "2026年全省“最美青春故事”发布", "published_on": "2026-11-10",
           "publish_channels": ["website", "wechat"]}


@pytest.fixture
def deployed(sessions, league, league_engine):
    league_engine.clock.set(at("2026-07-01T09:00:00+08:00"))  # the campaign runs July–November
    with sessions() as session:
        deploy(session, league_engine, "youth_story")
        session.commit()


def start(sessions, engine, county):
    with sessions() as session:
        started = engine.start(session, "youth_story",
                               {"organisation": county, "county_due": COUNTY_DUE, "city_due": CITY_DUE,
                                "province_due": PROVINCE_DUE},
                               organisation_id=county, business_key=f"youth_story-2026-{county}")
        session.commit()
        return started.id


def forward_to_city(sessions, engine, instance_id, selected=("zhang", "li")):
    complete(sessions, engine, instance_id, "Task_collect", NOMINATIONS, "S_org")
    complete(sessions, engine, instance_id, "Task_county_select",
             {"county_selected": list(selected), "county_opinion": "事迹突出，材料齐全，同意推荐。"}, "S_org")


def test_selected_bottom_up_and_published(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    with sessions() as session:
        collect = only_task(session, instance_id)
        assert routing(collect) == ("Task_collect", "organiser", "qd-sn", None)
        assert (collect.due_at, collect.remind_at) == (at(COUNTY_DUE), at("2026-08-12T00:00:00+08:00"))
        assert notifications(session) == [("S_org", "新的待办：汇总“最美青春故事”推荐人选")]
        without_material = {"nominations": [{k: v for k, v in ZHANG.items() if k != "material_links"}]}
        with pytest.raises(FormInvalid):  # every nomination carries its material (links or files)
            league_engine.complete_task(session, collect.id, without_material, "S_org")
        session.rollback()
    complete(sessions, league_engine, instance_id, "Task_collect", NOMINATIONS, "S_org")
    with sessions() as session:
        select = only_task(session, instance_id)
        assert routing(select) == ("Task_county_select", "organiser", "qd-sn", None)
        assert select.due_at == at(COUNTY_DUE) and select.remind_at is None
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_county_select",
             {"county_selected": ["zhang", "li"], "county_opinion": "事迹突出，同意推荐。"}, "S_org")
    with sessions() as session:
        city_task = only_task(session, instance_id)
        assert routing(city_task) == ("Task_city_select", "organiser", "qd", None)  # organisation_at_level "city"
        assert (city_task.due_at, city_task.remind_at) == (at(CITY_DUE), at("2026-09-27T00:00:00+08:00"))
        assert task_data(session, league_engine, city_task)["county_forwarded"] == [ZHANG, LI_VIDEO, LI_ESSAY]
        assert notifications(session, mark) == [("Q_org", "新的待办：市级评选“最美青春故事”并推荐上报")]
        with pytest.raises(NotAllowed):  # the county cannot select for the city
            league_engine.complete_task(session, city_task.id, {"city_selected": ["zhang"]}, "S_org")
        session.rollback()
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_city_select",
             {"city_selected": ["li"], "city_opinion": "推荐李娜同志。"}, "Q_org")
    with sessions() as session:
        province_task = only_task(session, instance_id)
        assert routing(province_task) == ("Task_province_select", "organiser", "prov", None)
        assert province_task.due_at == at(PROVINCE_DUE)
        assert task_data(session, league_engine, province_task)["city_forwarded"] == [LI_VIDEO, LI_ESSAY]
        assert notifications(session, mark) == [("P_org", "新的待办：省级评选并发布“最美青春故事”")]
    complete(sessions, league_engine, instance_id, "Task_province_select", dict(PUBLISH, province_selected=["li"]),
             "P_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.next_timer_at is None
        assert done.data["outcome"] == "published" and done.data["stage_notes"] == []
        assert done.data["published"] == [LI_VIDEO, LI_ESSAY]
        assert done.data["publish_title"] == PUBLISH["publish_title"]
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-12-01T00:00:00+08:00") == 0
    with sessions() as session:
        assert notifications(session, mark) == []


def test_a_wrong_selection_comes_back_and_the_city_may_select_nobody(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    complete(sessions, league_engine, instance_id, "Task_collect", NOMINATIONS, "S_org")
    complete(sessions, league_engine, instance_id, "Task_county_select",
             {"county_selected": ["zhang", "wang"], "county_opinion": "同意推荐。"}, "S_org")
    with sessions() as session:
        again = only_task(session, instance_id)
        assert routing(again) == ("Task_county_select", "organiser", "qd-sn", None)  # back to the county
        assert task_data(session, league_engine, again)["selection_error"] == "以下账号不在推荐名单中：wang"
    complete(sessions, league_engine, instance_id, "Task_county_select",
             {"county_selected": ["zhang"], "county_opinion": "同意推荐。"}, "S_org")
    with sessions() as session:
        city_task = only_task(session, instance_id)
        assert routing(city_task) == ("Task_city_select", "organiser", "qd", None)
        data = task_data(session, league_engine, city_task)
        assert data["county_forwarded"] == [ZHANG] and data["selection_error"] == ""
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-09-27T00:00:01+08:00") == 1
    with sessions() as session:
        assert notifications(session, mark) == [("Q_org", "提醒：市级评选“最美青春故事”并推荐上报")]
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_city_select",
             {"city_selected": [], "city_opinion": "本县人选事迹与其他区县相比不够突出，本次不推荐。"}, "Q_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["outcome"] == "not_selected_by_city"
        assert done.data["city_forwarded"] == [] and done.data["published"] == []
        assert notifications(session, mark) == []  # nothing reaches the province


def test_a_county_that_misses_its_deadline_forwards_nothing(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-08-12T00:00:01+08:00") == 1
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-08-15T00:00:01+08:00") == 1
    with sessions() as session:
        notice = only_task(session, instance_id)
        assert routing(notice) == ("Task_city_notice", "organiser", "qd", None)
        assert task_data(session, league_engine, notice)["stage_notes"] == ["市南区团委未按期推荐"]
        assert notifications(session, 1) == [("S_org", "提醒：汇总“最美青春故事”推荐人选"),
                                             ("S_org", "已逾期：汇总“最美青春故事”推荐人选"),
                                             ("Q_org", "新的待办：知悉：县级团委未按期推荐“最美青春故事”")]
    complete(sessions, league_engine, instance_id, "Task_city_notice", {"notice_note": "已电话督促，明年提前部署。"},
             "Q_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["outcome"] == "county_missed"
        assert done.data["county_forwarded"] == [] and done.data["stage_notes"] == ["市南区团委未按期推荐"]


def test_a_county_that_collects_but_does_not_select_in_time(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "jn-lx")  # 历下区团委 has no organiser: 济南's acts for it
    with sessions() as session:
        assert routing(only_task(session, instance_id)) == ("Task_collect", "organiser", "jn", None)
    complete(sessions, league_engine, instance_id, "Task_collect",
             {"nominations": [dict(ZHANG, cadre="wang", cadre_name="王芳", unit="历下区团委 挂职副书记")]}, "J_org")
    jump_to(league_engine.clock, sessions, league_engine, "2026-08-16T00:00:00+08:00")
    with sessions() as session:
        notice = only_task(session, instance_id)
        assert routing(notice) == ("Task_city_notice", "organiser", "jn", None)
        assert task_data(session, league_engine, notice)["stage_notes"] == ["历下区团委未按期推荐"]
    complete(sessions, league_engine, instance_id, "Task_city_notice", {}, "J_org")
    with sessions() as session:
        assert instance(session, instance_id).data["outcome"] == "county_missed"


def test_a_city_that_misses_its_deadline_forwards_nothing(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    forward_to_city(sessions, league_engine, instance_id)
    with sessions() as session:
        mark = last_notification_id(session)
    jump_to(league_engine.clock, sessions, league_engine, "2026-09-28T00:00:00+08:00")
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-09-30T00:00:01+08:00") == 1
    with sessions() as session:
        notice = only_task(session, instance_id)
        assert routing(notice) == ("Task_province_notice", "organiser", "prov", None)
        data = task_data(session, league_engine, notice)
        assert data["stage_notes"] == ["青岛团市委未按期推荐"] and data["city_forwarded"] == []
        assert notifications(session, mark) == [("Q_org", "提醒：市级评选“最美青春故事”并推荐上报"),
                                                ("Q_org", "已逾期：市级评选“最美青春故事”并推荐上报"),
                                                ("P_org", "新的待办：知悉：团市委未按期推荐“最美青春故事”")]
    complete(sessions, league_engine, instance_id, "Task_province_notice", {}, "P_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.data["outcome"] == "city_missed" and done.data["published"] == []
        assert len(done.data["county_forwarded"]) == 3  # what the county did forward stays on record


def test_a_province_that_misses_its_deadline_publishes_nothing(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd-sn")
    forward_to_city(sessions, league_engine, instance_id)
    complete(sessions, league_engine, instance_id, "Task_city_select", {"city_selected": ["li"]}, "Q_org")
    complete(sessions, league_engine, instance_id, "Task_province_select",
             dict(PUBLISH, province_selected=["zhang"]), "P_org")  # zhang was not forwarded by the city
    with sessions() as session:
        again = only_task(session, instance_id)
        assert routing(again) == ("Task_province_select", "organiser", "prov", None)
        assert task_data(session, league_engine, again)["selection_error"] == "以下账号不在团市委推荐名单中：zhang"
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-11-12T00:00:01+08:00") == 1
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-11-15T00:00:01+08:00") == 1
    with sessions() as session:
        assert notifications(session, mark) == [("P_org", "提醒：省级评选并发布“最美青春故事”"),
                                                ("P_org", "已逾期：省级评选并发布“最美青春故事”")]
        done = instance(session, instance_id)
        assert done.status == "completed" and done.data["outcome"] == "province_missed"
        assert done.data["stage_notes"] == ["团省委未按期评选发布"] and done.data["published"] == []
        assert done.data["city_forwarded"] == [LI_VIDEO, LI_ESSAY]
