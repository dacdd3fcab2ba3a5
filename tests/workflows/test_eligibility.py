"""Who may be nominated as an outstanding cadre: not one who failed the year's assessment or whose record was
found false; the youth-story selection (bpmn/youth_story.bpmn) refuses such a nomination, naming the reason."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine import WorkflowFailed
from tests.workflows.campaign_process_helpers import complete_the_only_task, deploy, only_task
from workflows.activities import record_activity
from workflows.eligibility import AssessmentOutcome, AssessmentResult, nomination_refusal, record_assessments
from workflows.spot_checks import record_verdict, start_spot_checks

NOW = datetime.fromisoformat("2026-07-01T09:00:00+08:00")
ZHANG = {"cadre": "zhang", "cadre_name": "张伟", "unit": "市南区团委 专职副书记", "category": "speech",
         "title": "在青年身边的三百六十五天", "story": "扎根社区一年，联系青年112名，帮助21名青年解决就业和入学难题。",
         "material_links": ["https://v.example.cn/zhang-speech"]}
LI = {"cadre": "li", "cadre_name": "李娜", "unit": "八大关街道团工委 兼职副书记", "category": "essay",
      "title": "写给一百位小伙伴的信", "story": "把闲置老楼改造成团青联络站，每周组织青年志愿服务和读书会。",
      "material_files": ["李娜-征文.docx"]}


def found_false(session, league, engine, cadre, held_on):
    """Record an activity of ``cadre`` and have a spot check find it false."""
    activity = record_activity(session, organisation=league.orgs["qd-sn"], kind="league_lecture", held_on=held_on,
                               place="团委", youth_count=10, description="讲了一堂团课", now=NOW,
                               cadre=session.merge(league.cadres[cadre]), evidence=["签到表.jpg"])
    start_spot_checks(session, engine, held_on[:7])
    record_verdict(session, activity.id, "phone", "false", "青年均表示没有参加", "S_insp", NOW)
    return activity


@pytest.fixture
def story_engine(sessions, league, league_engine):
    league_engine.clock.set(NOW)
    with sessions() as session:
        deploy(session, league_engine, "youth_story")
        deploy(session, league_engine, "spot_check")
        session.commit()
    return league_engine


def test_a_failed_assessment_or_a_false_record_refuses_a_nomination(sessions, league, story_engine):
    with sessions() as session:
        zhang, li, wang = (session.merge(league.cadres[name]) for name in ("zhang", "li", "wang"))
        assert nomination_refusal(session, zhang, 2026) is None
        assert record_assessments(session, 2025, [AssessmentOutcome(zhang.id, False, "积分未达标"),
                                                  AssessmentOutcome(li.id, True),
                                                  AssessmentOutcome(wang.id, True)], "P_org", NOW) == 3
        refusal = nomination_refusal(session, zhang, 2025)
        assert "2025年度考核不合格：积分未达标" in refusal and "failed the 2025 assessment" in refusal
        assert nomination_refusal(session, zhang, 2026) is None and nomination_refusal(session, li, 2025) is None
        # the year-end evaluation may be run again: the last result counts, one row per cadre and year
        record_assessments(session, 2025, [AssessmentOutcome(zhang.id, False, "草稿"),
                                           AssessmentOutcome(zhang.id, True)], "P_org", NOW)
        assert nomination_refusal(session, zhang, 2025) is None
        assert len(session.scalars(select(AssessmentResult).where(AssessmentResult.year == 2025)).all()) == 3

        activity = found_false(session, league, story_engine, "li", "2026-05-12")
        refusal = nomination_refusal(session, li, 2026)
        assert "2026年有活动记录经抽查不属实" in refusal and f"#{activity.id}" in refusal
        assert nomination_refusal(session, li, 2027) is None


def start_story(sessions, engine):
    with sessions() as session:
        started = engine.start(session, "youth_story",
                               {"organisation": "qd-sn", "county_due": "2026-08-15T00:00:00+08:00",
                                "city_due": "2026-09-30T00:00:00+08:00", "province_due": "2026-11-15T00:00:00+08:00"},
                               organisation_id="qd-sn", business_key="youth_story-2026-qd-sn")
        session.commit()
        return started.id


def test_the_youth_story_refuses_to_nominate_an_ineligible_cadre(sessions, league, story_engine):
    engine = story_engine
    with sessions() as session:
        record_assessments(session, 2025, [AssessmentOutcome(league.cadres["zhang"].id, False, "联系青年不足30人")],
                           "P_org", NOW)
        found_false(session, league, engine, "li", "2026-05-12")
        session.commit()
    instance_id = start_story(sessions, engine)
    with sessions() as session:
        collect = only_task(session, instance_id)
        with pytest.raises(WorkflowFailed) as refused:
            engine.complete_task(session, collect.id, {"nominations": [ZHANG, LI]}, "S_org")
        session.rollback()
        message = str(refused.value)
        assert "张伟（c-zhang）2025年度考核不合格：联系青年不足30人" in message
        assert "李娜（c-li）2026年有活动记录经抽查不属实" in message
        with pytest.raises(WorkflowFailed, match="账号 nobody 不是团干部"):
            engine.complete_task(session, collect.id, {"nominations": [dict(ZHANG, cadre="nobody")]}, "S_org")
        session.rollback()
        assert only_task(session, instance_id).bpmn_id == "Task_collect"  # the task stays open, nothing moved on
        with pytest.raises(WorkflowFailed, match="李娜"):
            engine.complete_task(session, collect.id, {"nominations": [LI]}, "S_org")
        session.rollback()
    wang = dict(ZHANG, cadre="wang", cadre_name="王芳", unit="历下区团委 挂职副书记")
    complete_the_only_task(sessions, engine, instance_id, "Task_collect", {"nominations": [wang]}, "S_org")
    with sessions() as session:
        assert only_task(session, instance_id).bpmn_id == "Task_county_select"
