"""The education practice "一学一做" (bpmn/education_practice.bpmn), every path with the clock jumped forward."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import FormInvalid, WorkflowFailed
from engine.models import HumanTask, ProcessInstance
from workflows.education_practice import PRACTICE_ITEMS, PracticeItem, items_done
from workflows.models import Cadre, Notification

BPMN = Path(__file__).resolve().parents[2] / "bpmn" / "education_practice.bpmn"
START = {"choose_remind": "2026-05-07T00:00:00+08:00", "choose_due": "2026-05-10T00:00:00+08:00",
         "close_at": "2026-09-30T00:00:00+08:00"}
CHOICE = {"committee": "qd-sn-gw", "branch": "qd-sn-gw-1", "reason": "该街道团工委青年集中，便于全程参与支部活动"}
COMMON = {"date": "2026-06-01", "place": "八大关社区活动室", "participants": 12,
          "description": "与支部团员一起开展活动，过程完整有记录。", "evidence": ["photo-1.jpg", "sign-in.pdf"]}
ITEM_DATA = {  # each item task and the form data a cadre would submit
    "Task_study": dict(COMMON, material="习近平总书记在庆祝中国共产主义青年团成立95周年大会上的讲话"),
    "Task_life_meeting": dict(COMMON, topic="对照标准找差距"),
    "Task_oath": dict(COMMON),
    "Task_volunteer": dict(COMMON, service_hours=3.5),
    "Task_online_day": dict(COMMON, place="“智慧团建”网络平台", topic="学习团章"),
    "Task_self_inspection": dict(COMMON, problems_found="组织生活不规律，团费收缴不及时",
                                 measures="建立每月主题团日制度，专人负责团费收缴"),
    "Task_pioneer_posts": dict(COMMON, post_name="社区服务团员先锋岗", members=6),
    "Task_lecture": dict(COMMON, participants=20, topic="做合格共青团员"),
}
ITEM_OF_TASK = dict(zip(ITEM_DATA, PRACTICE_ITEMS))  # both in the task-list order
NO_RECOMMENDATION = {"has_recommendation": False}
RECOMMENDATION = {"has_recommendation": True, "recommendation_kind": "exemplary_person", "recommended_name": "王小青",
                  "recommended_unit": "八大关社区团支部", "deeds": "带领团员坚持每周为社区老人开展志愿服务，深受好评。",
                  "recommendation_evidence": ["deeds.docx"]}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def open_tasks(session, instance_id):
    """The open human tasks of an instance by element id."""
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                   HumanTask.state.in_(("ready", "claimed")))).all()
    return {row.bpmn_id: row for row in rows}


def task_states(session, instance_id, bpmn_id):
    return [row.state for row in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                                         HumanTask.bpmn_id == bpmn_id)
                                                 .order_by(HumanTask.id))]


def inbox_of(session, since=0):
    return [(n.recipient, n.subject) for n in session.scalars(select(Notification).order_by(Notification.id))][since:]


def notification_count(session):
    return len(inbox_of(session))


def notification_count_of(sessions):
    with sessions() as session:
        return notification_count(session)


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, BPMN)
        session.commit()


def start(sessions, engine, cadre="zhang", org="qd-sn"):
    with sessions() as session:
        instance = engine.start(session, "education_practice", dict(START, cadre_assignee=cadre),
                                organisation_id=org, business_key=f"education-practice-2026-{cadre}")
        session.commit()
        return instance.id


def complete(sessions, engine, instance_id, bpmn_id, data, actor):
    """Complete the open task ``bpmn_id`` of an instance as ``actor``; return the ids of the tasks it opened."""
    with sessions() as session:
        task = open_tasks(session, instance_id)[bpmn_id]
        done = engine.complete_task(session, task.id, data, actor)
        session.commit()
        return done.next_task_ids


def jump(sessions, engine, clock, to: str, minutes: int = 1):
    """Move the clock to just after ``to`` and fire what is due."""
    clock.set(utc(to) + timedelta(minutes=minutes))
    with sessions() as session:
        engine.run_due_timers(session)


def test_choice_then_every_item_in_any_order_then_the_summary(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    with sessions() as session:
        choose = open_tasks(session, instance_id)["Task_choose"]
        assert (choose.lane, choose.candidate_role, choose.assignee, choose.organisation_id) == \
            ("cadre", "cadre", "zhang", "qd-sn")
        assert choose.remind_at == utc(START["choose_remind"])
        assert choose.due_at == utc(START["close_at"])  # the only interrupting timer: choice stays open after 10 May
        assert choose.form_key == "education_practice.choose.json"
        assert inbox_of(session) == [("zhang", "新的待办：选择联系指导的基层团委和团支部")]

    opened = complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    with sessions() as session:
        tasks = open_tasks(session, instance_id)
        assert set(tasks) == set(ITEM_DATA) | {"Task_recommend"} and len(opened) == 9
        assert all(t.assignee == "zhang" and t.candidate_role == "cadre" for t in tasks.values())
        cadre = session.get(Cadre, league.cadres["zhang"].id)
        assert (cadre.guided_committee_id, cadre.guided_branch_id) == \
            (league.orgs["qd-sn-gw"].id, league.orgs["qd-sn-gw-1"].id)

    clock.advance(timedelta(days=20))
    order = ["Task_lecture", "Task_oath", "Task_self_inspection", "Task_study", "Task_pioneer_posts",
             "Task_online_day", "Task_volunteer", "Task_life_meeting"]  # not the diagram's order
    for count, bpmn_id in enumerate(order, start=1):
        complete(sessions, league_engine, instance_id, bpmn_id, ITEM_DATA[bpmn_id], "zhang")
        with sessions() as session:
            done = session.scalars(select(PracticeItem.item).where(PracticeItem.instance_id == instance_id)).all()
            assert len(done) == count and ITEM_OF_TASK[bpmn_id] in done
            assert "Task_summary" not in open_tasks(session, instance_id)
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_recommend"}  # the optional branch is still open
    before = notification_count_of(sessions)
    complete(sessions, league_engine, instance_id, "Task_recommend", NO_RECOMMENDATION, "zhang")

    with sessions() as session:
        summary = open_tasks(session, instance_id)["Task_summary"]
        assert (summary.candidate_role, summary.organisation_id, summary.assignee) == ("organiser", "qd-sn", None)
        assert inbox_of(session, before) == [("S_org", "新的待办：审阅“一学一做”完成情况")]
        rows = session.scalars(select(PracticeItem).where(PracticeItem.instance_id == instance_id)).all()
        assert {r.item: r.status for r in rows} == {item: "done" for item in PRACTICE_ITEMS}
        lecture = next(r for r in rows if r.item == "themed_lecture")
        assert (lecture.participants, lecture.details, lecture.evidence) == \
            (20, {"topic": "做合格共青团员"}, ["photo-1.jpg", "sign-in.pdf"])
        assert items_done(session, league.cadres["zhang"], 2026) == set(PRACTICE_ITEMS)
    complete(sessions, league_engine, instance_id, "Task_summary", {"assessment": "good"}, "S_org")

    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed" and instance.next_timer_at is None
        summary = instance.data["practice_summary"]
        assert summary["done"] == list(PRACTICE_ITEMS) and summary["missed"] == []
        assert summary["chosen"] is True and summary["guidance"]["branch"] == "qd-sn-gw-1"
        assert instance.data["guidance"] == {"committee": "qd-sn-gw", "committee_name": "八大关街道团工委",
                                             "branch": "qd-sn-gw-1", "branch_name": "八大关社区团支部"}
        assert instance.data["assessment"] == "good"
        assert not [n for n in inbox_of(session) if n[1].startswith(("提醒", "已逾期"))]


def test_reminder_overdue_urge_and_a_late_choice_that_closes_the_urge(sessions, clock, league, league_engine,
                                                                      deployed):
    instance_id = start(sessions, league_engine)
    jump(sessions, league_engine, clock, START["choose_remind"])
    with sessions() as session:
        assert inbox_of(session, 1) == [("zhang", "提醒：选择联系指导的基层团委和团支部")]
        assert set(open_tasks(session, instance_id)) == {"Task_choose"}

    jump(sessions, league_engine, clock, START["choose_due"])
    with sessions() as session:
        tasks = open_tasks(session, instance_id)
        assert set(tasks) == {"Task_choose", "Task_urge_choice"}  # the cadre can still choose
        urge = tasks["Task_urge_choice"]
        assert (urge.candidate_role, urge.organisation_id, urge.assignee) == ("organiser", "qd-sn", None)
        assert inbox_of(session, 2) == [("zhang", "提醒：选择联系指导的基层团委和团支部"),
                                        ("S_org", "新的待办：督促团干部选择联系点")]

    clock.advance(timedelta(days=1))
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    with sessions() as session:
        tasks = open_tasks(session, instance_id)
        assert "Task_urge_choice" not in tasks and "Task_lecture" in tasks
        assert task_states(session, instance_id, "Task_urge_choice") == ["cancelled"]
        assert not [n for n in inbox_of(session) if n[0] == "S_org" and n[1].startswith("已逾期")]


def test_the_organiser_acknowledges_the_urge_before_the_cadre_chooses(sessions, clock, league, league_engine,
                                                                      deployed):
    instance_id = start(sessions, league_engine, cadre="li", org="qd-sn-gw")  # a part-time cadre of the grassroots
    jump(sessions, league_engine, clock, START["choose_due"])
    with sessions() as session:
        urge = open_tasks(session, instance_id)["Task_urge_choice"]
        assert urge.organisation_id == "qd-sn"  # the county organiser above the grassroots committee
    complete(sessions, league_engine, instance_id, "Task_urge_choice", {"urge_method": "phone",
                                                                        "urge_note": "已电话提醒"}, "S_org")
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_choose"}
        assert task_states(session, instance_id, "Task_urge_choice") == ["completed"]
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "li")
    with sessions() as session:
        assert len(open_tasks(session, instance_id)) == 9


def test_a_branch_outside_the_committee_is_refused_and_the_choice_stays_open(sessions, clock, league,
                                                                             league_engine, deployed):
    instance_id = start(sessions, league_engine)
    for bad in ({"committee": "qd-sn", "branch": "qd-sn-gw-1"},        # a county is not a grassroots committee
                {"committee": "qd-sn-gw", "branch": "qd-sn-gw"},       # not a branch
                {"committee": "qd-sn-gw", "branch": "no-such-branch"}):
        with sessions() as session:
            task = open_tasks(session, instance_id)["Task_choose"]
            with pytest.raises(WorkflowFailed, match="choose_guided_branch"):
                league_engine.complete_task(session, task.id, dict(bad, reason="测试错误的选择"), "zhang")
            session.rollback()
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_choose"}
        assert session.get(Cadre, league.cadres["zhang"].id).guided_branch_id is None
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")


def test_closing_records_missed_items_and_cancels_the_rest(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    for bpmn_id in ("Task_study", "Task_volunteer", "Task_lecture"):
        complete(sessions, league_engine, instance_id, bpmn_id, ITEM_DATA[bpmn_id], "zhang")

    # The recommendation: returned once for revision, then approved.
    complete(sessions, league_engine, instance_id, "Task_recommend", RECOMMENDATION, "zhang")
    with sessions() as session:
        review = open_tasks(session, instance_id)["Task_review_recommendation"]
        assert (review.candidate_role, review.organisation_id) == ("organiser", "qd-sn")
    complete(sessions, league_engine, instance_id, "Task_review_recommendation",
             {"review_decision": "return", "review_comment": "请补充具体服务次数"}, "S_org")
    with sessions() as session:
        assert open_tasks(session, instance_id)["Task_recommend"].assignee == "zhang"
    complete(sessions, league_engine, instance_id, "Task_recommend",
             dict(RECOMMENDATION, deeds="带领团员每周为社区老人开展志愿服务，半年累计服务48次，深受好评。"), "zhang")
    complete(sessions, league_engine, instance_id, "Task_review_recommendation", {"review_decision": "approve"},
             "S_org")
    before = notification_count_of(sessions)

    jump(sessions, league_engine, clock, START["close_at"])
    with sessions() as session:
        tasks = open_tasks(session, instance_id)
        assert set(tasks) == {"Task_summary"}
        assert task_states(session, instance_id, "Task_oath") == ["cancelled"]
        # Closing is not an escalation of each item: only the organiser hears about it, with the summary task.
        assert inbox_of(session, before) == [("S_org", "新的待办：审阅“一学一做”完成情况")]
        rows = {r.item: r for r in session.scalars(select(PracticeItem).where(PracticeItem.instance_id == instance_id))}
        assert {item for item, r in rows.items() if r.status == "done"} == \
            {"study_speeches", "volunteer_service", "themed_lecture"}
        missed = [item for item in PRACTICE_ITEMS if rows[item].status == "missed"]
        assert missed == ["organisation_life_meeting", "retake_oath", "online_league_day", "self_inspection",
                          "pioneer_posts"]
        assert rows["retake_oath"].evidence is None and rows["retake_oath"].recorded_at is not None
    complete(sessions, league_engine, instance_id, "Task_summary",
             {"assessment": "poor", "summary_comment": "五项未完成，约谈提醒"}, "S_org")

    with sessions() as session:
        instance = session.get(ProcessInstance, instance_id)
        assert instance.status == "completed"
        data = instance.data
        assert data["practice_summary"]["missed"] == missed
        assert data["practice_summary"]["missed_labels"][0] == "参加并指导开好组织生活会"
        assert data["practice_summary"]["done_labels"] == ["学习总书记讲话", "开展志愿服务", "讲一次主题团课"]
        assert (data["review_decision"], data["recommended_name"]) == ("approve", "王小青")
        assert "半年累计服务48次" in data["deeds"]


def test_an_untouched_recommendation_is_dropped_at_the_close(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    for bpmn_id in ITEM_DATA:
        complete(sessions, league_engine, instance_id, bpmn_id, ITEM_DATA[bpmn_id], "zhang")
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_recommend"}
    jump(sessions, league_engine, clock, START["close_at"])
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_summary"}
        assert task_states(session, instance_id, "Task_recommend") == ["cancelled"]
    complete(sessions, league_engine, instance_id, "Task_summary", {"assessment": "good"}, "S_org")
    with sessions() as session:
        assert session.get(ProcessInstance, instance_id).data["practice_summary"]["missed"] == []


def test_a_review_pending_at_the_close_holds_the_summary_until_done(sessions, clock, league, league_engine,
                                                                   deployed):
    instance_id = start(sessions, league_engine)
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    complete(sessions, league_engine, instance_id, "Task_recommend", RECOMMENDATION, "zhang")
    jump(sessions, league_engine, clock, START["close_at"])
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_review_recommendation"}  # no summary yet
        assert len(session.scalars(select(PracticeItem).where(PracticeItem.instance_id == instance_id)).all()) == 0

    # Returned after the close: the recommendation's close timer is already due, so the return ends it at once.
    before = notification_count_of(sessions)
    complete(sessions, league_engine, instance_id, "Task_review_recommendation",
             {"review_decision": "return", "review_comment": "材料不全"}, "S_org")
    with sessions() as session:
        assert set(open_tasks(session, instance_id)) == {"Task_summary"}
        assert task_states(session, instance_id, "Task_recommend") == ["completed"]
        assert inbox_of(session, before) == [("S_org", "新的待办：审阅“一学一做”完成情况")]
        statuses = session.scalars(select(PracticeItem.status).where(PracticeItem.instance_id == instance_id)).all()
        assert statuses == ["missed"] * len(PRACTICE_ITEMS)


def test_a_cadre_who_never_chooses_misses_every_item(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, cadre="wang", org="jn-lx")  # a seconded cadre; no county organiser
    jump(sessions, league_engine, clock, START["choose_due"])
    with sessions() as session:
        urge = open_tasks(session, instance_id)["Task_urge_choice"]
        assert urge.organisation_id == "jn"  # Jinan's organiser: the county has none
        before = notification_count(session)

    jump(sessions, league_engine, clock, START["close_at"])
    with sessions() as session:
        tasks = open_tasks(session, instance_id)
        assert set(tasks) == {"Task_summary"} and tasks["Task_summary"].organisation_id == "jn"
        assert task_states(session, instance_id, "Task_choose") == ["cancelled"]
        assert task_states(session, instance_id, "Task_urge_choice") == ["cancelled"]  # moot: the practice is over
        assert inbox_of(session, before) == [("wang", "已逾期：选择联系指导的基层团委和团支部"),
                                             ("J_org", "新的待办：审阅“一学一做”完成情况")]
        statuses = session.scalars(select(PracticeItem.status).where(PracticeItem.instance_id == instance_id)).all()
        assert statuses == ["missed"] * len(PRACTICE_ITEMS)
    complete(sessions, league_engine, instance_id, "Task_summary", {"assessment": "poor"}, "J_org")
    with sessions() as session:
        summary = session.get(ProcessInstance, instance_id).data["practice_summary"]
        assert summary["chosen"] is False and summary["guidance"] is None
        assert summary["done"] == [] and summary["missed"] == list(PRACTICE_ITEMS)


def test_item_forms_refuse_records_without_evidence(sessions, clock, league, league_engine, deployed):
    instance_id = start(sessions, league_engine)
    complete(sessions, league_engine, instance_id, "Task_choose", CHOICE, "zhang")
    with sessions() as session:
        task = open_tasks(session, instance_id)["Task_oath"]
        with pytest.raises(FormInvalid) as invalid:
            league_engine.complete_task(session, task.id, dict(COMMON, evidence=[]), "zhang")
        assert [e.field for e in invalid.value.errors] == ["evidence"]
        with pytest.raises(FormInvalid):
            league_engine.complete_task(session, open_tasks(session, instance_id)["Task_recommend"].id,
                                        {"has_recommendation": True}, "zhang")  # a recommendation needs its fields
