"""“1+100”季度交流会与“五个一”季度报告 (quarterly_report): on time, reminded, returned for revision,
escalated to the province and reported late, a missed sharing session."""
from __future__ import annotations

import pytest

from engine import FormInvalid, NotAllowed
from tests.workflows.campaign_process_helpers import (
    activities,
    at,
    deploy,
    instance,
    jump_to,
    last_notification_id,
    notifications,
    open_tasks,
    routing,
    task_data,
    task_named,
)

REPORT_DUE = "2026-06-20T00:00:00+08:00"
REMIND_AT = "2026-06-15T09:00:00+08:00"
SESSION_DUE = "2026-06-25T00:00:00+08:00"

SESSION = {"session_date": "2026-06-05", "session_place": "青岛团市委报告厅", "session_cadre_count": 25,
           "session_youth_count": 60, "session_speakers": ["张伟", "李娜"],
           "session_description": "5名团干部交流直接联系青年的做法，青年代表现场提问，形成经验材料一份。",
           "session_evidence": ["交流会签到表.pdf", "会议照片.jpg"]}
REPORT = {"practice": "全市团干部分片包干联系青年，每月开展一次主题活动。",
          "experience": "依托团青联络站把线上联系与线下活动结合起来。",
          "problems": "兼职团干部联系青年的覆盖面仍不够。",
          "next_steps": "下季度组织兼职团干部专题培训，补齐联系青年的行业分布。",
          "report_files": ["青岛市第二季度五个一报告.docx"]}
RETURN = {"decision": "return", "review_comments": "问题分析不够具体，请补充兼职团干部联系青年的人数和行业分布。"}
REVISED = dict(REPORT, problems="兼职团干部人均联系青年38人，制造业、新兴领域青年占比不足10%。",
               revision_note="已按意见补充兼职团干部联系青年人数和行业分布。")
CHASE = {"chase_method": "phone", "chase_note": "已电话督促，要求3日内补报。"}


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        deploy(session, league_engine, "quarterly_report")
        session.commit()


def start(sessions, engine, organisation, report_due=REPORT_DUE, **extra):
    with sessions() as session:
        started = engine.start(session, "quarterly_report",
                               {"organisation": organisation, "report_due": report_due, "remind_at": REMIND_AT,
                                "session_due": SESSION_DUE, **extra},
                               organisation_id=organisation, business_key=f"quarterly-2026Q2-{organisation}")
        session.commit()
        return started.id


def complete(sessions, engine, instance_id, bpmn_id, data, actor):
    with sessions() as session:
        task = task_named(session, instance_id, bpmn_id)
        engine.complete_task(session, task.id, data, actor)
        session.commit()


def test_session_and_report_on_time_accepted(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd")
    with sessions() as session:
        assert sorted(routing(t) for t in open_tasks(session, instance_id)) == [
            ("Task_report", "organiser", "qd", None), ("Task_session", "organiser", "qd", None)]
        held, report = task_named(session, instance_id, "Task_session"), task_named(session, instance_id, "Task_report")
        assert held.due_at == at(SESSION_DUE) and held.remind_at is None
        assert (report.due_at, report.remind_at) == (at(REPORT_DUE), at(REMIND_AT))
        assert sorted(notifications(session)) == [("Q_org", "新的待办：召开“1+100”经验交流会"),
                                                  ("Q_org", "新的待办：报送“五个一”季度报告")]
    complete(sessions, league_engine, instance_id, "Task_session", SESSION, "Q_org")
    with sessions() as session:
        [activity] = activities(session, instance_id)
        assert (activity.kind, activity.cadre_id, activity.organisation_id) == ("sharing_session", None,
                                                                                league.orgs["qd"].id)
        assert (activity.held_on, activity.youth_count) == ("2026-06-05", 60)
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_report", REPORT, "Q_org")
    with sessions() as session:
        review = task_named(session, instance_id, "Task_review")
        assert routing(review) == ("Task_review", "organiser", "prov", None)  # organisation_at_level "province"
        assert notifications(session, mark) == [("P_org", "新的待办：审核“五个一”季度报告")]
        data = task_data(session, league_engine, review)
        assert (data["quarter_start"], data["quarter_end"]) == ("2026-04-01", "2026-06-30")
        assert data["five_ones"] == {"count": 1, "kinds_done": ["sharing_session"], "met": False,
                                     "kinds_missing": ["open_day", "face_to_face", "collective_volunteer",
                                                       "self_designed"]}
        with pytest.raises(NotAllowed):  # the city may not accept its own report
            league_engine.complete_task(session, review.id, {"decision": "accept"}, "Q_org")
        session.rollback()
    complete(sessions, league_engine, instance_id, "Task_review", {"decision": "accept"}, "P_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed" and done.next_timer_at is None
        assert done.data["decision"] == "accept" and done.data["practice"] == REPORT["practice"]
        assert done.data["session_recorded"] == {"activity_id": activity.id}
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-07-01T00:00:00+08:00") == 0
    with sessions() as session:
        assert notifications(session, mark) == []


def test_reminded_on_the_15th_then_returned_for_revision(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "qd", organiser_assignee="Q_org")
    complete(sessions, league_engine, instance_id, "Task_session", SESSION, "Q_org")
    with sessions() as session:
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-15T09:00:01+08:00") == 1
    with sessions() as session:
        assert notifications(session, mark) == [("Q_org", "提醒：报送“五个一”季度报告")]
        assert routing(task_named(session, instance_id, "Task_report")) == ("Task_report", "organiser", "qd", "Q_org")
    complete(sessions, league_engine, instance_id, "Task_report", REPORT, "Q_org")
    with sessions() as session:
        review = task_named(session, instance_id, "Task_review")
        assert routing(review) == ("Task_review", "organiser", "prov", None)  # not the city's named organiser
        with pytest.raises(FormInvalid):  # returning needs comments
            league_engine.complete_task(session, review.id, {"decision": "return"}, "P_org")
        session.rollback()
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_review", RETURN, "P_org")
    with sessions() as session:
        revise = task_named(session, instance_id, "Task_revise")
        assert routing(revise) == ("Task_revise", "organiser", "qd", "Q_org")  # back to the city
        assert revise.form_key == "quarterly_report.revise.json"
        shown = task_data(session, league_engine, revise)
        assert shown["review_comments"] == RETURN["review_comments"]  # the province's comments come with it
        assert shown["problems"] == REPORT["problems"]                # and the report to amend
        assert notifications(session, mark) == [("Q_org", "新的待办：按团省委意见修改季度报告")]
    complete(sessions, league_engine, instance_id, "Task_revise", REVISED, "Q_org")
    with sessions() as session:
        review = task_named(session, instance_id, "Task_review")
        assert routing(review) == ("Task_review", "organiser", "prov", None)
        assert task_data(session, league_engine, review)["revision_note"] == REVISED["revision_note"]
    complete(sessions, league_engine, instance_id, "Task_review", {"decision": "accept"}, "P_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed"
        assert done.data["problems"] == REVISED["problems"] and done.data["decision"] == "accept"


def test_missed_report_and_session_escalate_to_the_province(sessions, league, league_engine, deployed):
    instance_id = start(sessions, league_engine, "jn")
    with sessions() as session:
        assert sorted(routing(t) for t in open_tasks(session, instance_id)) == [
            ("Task_report", "organiser", "jn", None), ("Task_session", "organiser", "jn", None)]
        mark = last_notification_id(session)
    jump_to(league_engine.clock, sessions, league_engine, "2026-06-16T00:00:00+08:00")
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-20T00:00:01+08:00") == 1
    with sessions() as session:
        chase = task_named(session, instance_id, "Task_report_chase")
        assert routing(chase) == ("Task_report_chase", "organiser", "prov", None)
        assert routing(task_named(session, instance_id, "Task_session")) == ("Task_session", "organiser", "jn", None)
        assert notifications(session, mark) == [("J_org", "提醒：报送“五个一”季度报告"),
                                                ("J_org", "已逾期：报送“五个一”季度报告"),
                                                ("P_org", "新的待办：督办逾期未报的季度报告")]
        mark = last_notification_id(session)
    complete(sessions, league_engine, instance_id, "Task_report_chase", CHASE, "P_org")
    with sessions() as session:
        late = task_named(session, instance_id, "Task_report_late")
        assert routing(late) == ("Task_report_late", "organiser", "jn", None) and late.due_at is None
        assert notifications(session, mark) == [("J_org", "新的待办：补报“五个一”季度报告")]
    complete(sessions, league_engine, instance_id, "Task_report_late", REPORT, "J_org")
    complete(sessions, league_engine, instance_id, "Task_review", {"decision": "accept"}, "P_org")
    with sessions() as session:
        assert instance(session, instance_id).status == "running"  # the session is still open
        mark = last_notification_id(session)
    assert jump_to(league_engine.clock, sessions, league_engine, "2026-06-25T00:00:01+08:00") == 1
    with sessions() as session:
        followup = task_named(session, instance_id, "Task_session_followup")
        assert routing(followup) == ("Task_session_followup", "organiser", "prov", None)
        assert notifications(session, mark) == [("J_org", "已逾期：召开“1+100”经验交流会"),
                                                ("P_org", "新的待办：督办未按期召开的“1+100”交流会")]
    complete(sessions, league_engine, instance_id, "Task_session_followup",
             {"session_followup_method": "bulletin", "session_followup_note": "在全省季度通报中点名，要求下季度首月补开。"},
             "P_org")
    with sessions() as session:
        done = instance(session, instance_id)
        assert done.status == "completed"
        assert done.data["chase_method"] == "phone" and done.data["session_followup_method"] == "bulletin"
        assert done.data["five_ones"]["count"] == 0 and "session_recorded" not in done.data
        assert activities(session, instance_id) == []


@pytest.mark.parametrize("report_due,quarter", [("2026-03-20T00:00:00+08:00", ("2026-01-01", "2026-03-31")),
                                                ("2026-09-20T00:00:00+08:00", ("2026-07-01", "2026-09-30")),
                                                ("2026-12-20T00:00:00+08:00", ("2026-10-01", "2026-12-31"))])
def test_the_quarter_follows_from_the_report_due_date(sessions, league, league_engine, deployed, report_due, quarter):
    league_engine.clock.set(at(quarter[0] + "T00:00:00+08:00"))  # the first day of that quarter
    instance_id = start(sessions, league_engine, "qd", report_due=report_due)
    with sessions() as session:
        data = task_data(session, league_engine, task_named(session, instance_id, "Task_report"))
        assert (data["quarter_start"], data["quarter_end"]) == quarter
