"""青年之声 (bpmn/youth_voice.bpmn): answered in time, moved to the open 英雄帖 area, rated or not.

The clock is jumped, never slept; each step asserts who holds the question, what the data
says and who was notified.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import NotAllowed
from engine.errors import FormInvalid, TaskAlreadyCompleted
from engine.models import ProcessInstance
from workflows.inbox import inbox
from workflows.models import Notification, Youth
from workflows.people import new_user
from workflows.roles import load_actor
from tests.workflows.campaign_process_helpers import Outbox, holding, sweep
from tests.workflows.campaign_process_helpers import first_open_task as open_task

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
MINUTE = timedelta(minutes=1)
QUESTION = "大学生暑期返乡，有哪些社区志愿服务岗位可以报名？"
SHORT = "大学生暑期返乡，有哪些社区志愿服务岗位可以报名？"  # under 30 characters: quoted whole
ANSWER = {"answer": "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名，每周两个半天。",
          "references": ["https://example.org/volunteer"], "follow_up_offline": False}


@pytest.fixture
def voice_engine(sessions, league, league_engine):
    """The league engine with youth_voice deployed."""
    with sessions() as session:
        league_engine.deploy_file(session, BPMN_DIR / "youth_voice.bpmn")
        session.commit()
    return league_engine


@pytest.fixture
def youth(sessions, clock, league):
    """The asking youth, signed in once on the mobile client (which makes the "youth-<id>" account)."""
    with sessions() as session:
        person = session.get(Youth, league.youth["xiaohong"].id)
        user = new_user(f"youth-{person.id}", person.name, clock.now())
        session.add(user)
        session.flush()
        person.user_id, person.bound_at = user.id, clock.now()
        session.commit()
        return user.username


def ask(session, engine, youth, cadre="zhang", org="qd-sn", key="voice-1"):
    instance = engine.start(session, "youth_voice", {"youth_assignee": youth, "cadre_assignee": cadre,
                                                     "question": QUESTION},
                            organisation_id=org, business_key=key, actor=youth)
    session.commit()
    return instance.id


def instance_data(session, instance_id):
    session.expire_all()
    row = session.get(ProcessInstance, instance_id)
    return row.status, row.data




def test_answered_in_time_and_rated(sessions, clock, voice_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        voice = ask(session, voice_engine, youth)
        assert holding(session, voice) == [("Task_answer", "cadre", "qd-sn", "zhang")]
        task = open_task(session, voice)
        assert (task.remind_at, task.due_at) == (clock.now() + timedelta(days=2), clock.now() + timedelta(days=3))
        assert outbox.new(session) == [("zhang", "新的待办：回答青年提问")]
        clock.advance(timedelta(days=1))
        with pytest.raises(FormInvalid):
            voice_engine.complete_task(session, task.id, {"answer": "好"}, "zhang")  # too short to be an answer
        voice_engine.complete_task(session, task.id, ANSWER, "zhang")
        session.commit()
        assert holding(session, voice) == [("Task_rate", "youth", "qd-sn", youth)]
        rate = open_task(session, voice)
        assert rate.due_at == clock.now() + timedelta(days=7)
        assert outbox.new(session) == sorted([(youth, f"您的提问已有回答：{SHORT}"), (youth, "新的待办：评价回答")])
        with pytest.raises(FormInvalid):
            voice_engine.complete_task(session, rate.id, {"rating": 6}, youth)
        with pytest.raises(NotAllowed):  # only the youth rates
            voice_engine.complete_task(session, rate.id, {"rating": 1}, "zhang")
        voice_engine.complete_task(session, rate.id, {"rating": 5, "rating_comment": "回答很及时"}, youth)
        session.commit()
        assert outbox.new(session) == [("zhang", f"青年评价了您的回答：{SHORT}")]
        body = session.scalar(select(Notification.body).order_by(Notification.id.desc()).limit(1))
        assert "5星" in body and "回答很及时" in body
        status, data = instance_data(session, voice)
        assert status == "completed" and data["answer"] == ANSWER["answer"]
        outcome = data["voice_outcome"]
        assert {k: outcome[k] for k in ("answered_by", "answered_via", "answered_in", "rating", "comment")} == {
            "answered_by": "zhang", "answered_via": "cadre", "answered_in": "qd-sn", "rating": 5,
            "comment": "回答很及时"}


def test_unanswered_question_moves_to_the_hero_board_and_another_cadre_answers(sessions, clock, voice_engine,
                                                                               youth):
    outbox = Outbox()
    with sessions() as session:
        voice = ask(session, voice_engine, youth)
        asked = open_task(session, voice).id
        outbox.new(session)

    sweep(clock, sessions, voice_engine, timedelta(days=2) + MINUTE)  # day 2: the asked cadre is reminded
    with sessions() as session:
        assert outbox.new(session) == [("zhang", "提醒：回答青年提问")]
        assert holding(session, voice) == [("Task_answer", "cadre", "qd-sn", "zhang")]

    sweep(clock, sessions, voice_engine, timedelta(days=1))  # day 3: onto the county's 英雄帖 board, open to all
    with sessions() as session:
        assert holding(session, voice) == [("Task_hero", "cadre", "qd-sn", None)]
        # The asked cadre hears it is overdue, the youth where the question went; an open cadre task has no
        # named recipients (cadres find it in their inbox).
        assert outbox.new(session) == sorted([("zhang", "已逾期：回答青年提问"), (youth, f"您的提问已发布到英雄帖：{SHORT}")])
        assert "市南区团委“英雄帖”专区" in session.scalar(select(Notification.body).where(Notification.recipient == youth)
                                                   .order_by(Notification.id.desc()).limit(1))
        hero = open_task(session, voice)
        assert hero.due_at is None
        with pytest.raises(TaskAlreadyCompleted):  # the asked cadre's own task is gone
            voice_engine.complete_task(session, asked, ANSWER, "zhang")
        session.rollback()
        li, wang = load_actor(session, "li"), load_actor(session, "wang")
        assert [t.id for t in inbox(session, li)] == [hero.id]  # li works under 市南区团委: sees it
        assert inbox(session, wang) == []                        # wang is in Jinan: does not
        with pytest.raises(NotAllowed):
            voice_engine.claim(session, hero.id, "wang")
        with pytest.raises(NotAllowed):  # a coordinator is not a cadre
            voice_engine.claim(session, hero.id, "S_coord")
        voice_engine.claim(session, hero.id, "li")
        session.commit()
        assert holding(session, voice) == [("Task_hero", "cadre", "qd-sn", "li")]
        with pytest.raises(NotAllowed):  # once li holds it, it is li's
            voice_engine.complete_task(session, hero.id, ANSWER, "zhang")
        clock.advance(timedelta(hours=4))
        voice_engine.complete_task(session, hero.id, ANSWER, "li")
        session.commit()
        assert holding(session, voice) == [("Task_rate", "youth", "qd-sn", youth)]
        assert outbox.new(session) == sorted([(youth, f"您的提问已有回答：{SHORT}"), (youth, "新的待办：评价回答")])
        voice_engine.complete_task(session, open_task(session, voice).id, {"rating": 4}, youth)
        session.commit()
        assert outbox.new(session) == [("li", f"青年评价了您的回答：{SHORT}")]  # the one who answered, not the asked
        status, data = instance_data(session, voice)
        assert status == "completed"
        assert data["hero_area"] == {"code": "qd-sn", "name": "市南区团委", "kind": "county"}
        outcome = data["voice_outcome"]
        assert (outcome["answered_by"], outcome["answered_via"], outcome["rating"], outcome["comment"]) == \
            ("li", "hero_board", 4, None)


def test_a_grassroots_cadres_question_goes_to_the_county_board(sessions, clock, voice_engine, youth):
    with sessions() as session:
        voice = ask(session, voice_engine, youth, cadre="li", org="qd-sn-gw")
        assert holding(session, voice) == [("Task_answer", "cadre", "qd-sn-gw", "li")]
    sweep(clock, sessions, voice_engine, timedelta(days=3) + MINUTE)
    with sessions() as session:
        assert holding(session, voice) == [("Task_hero", "cadre", "qd-sn", None)]  # the county, not the street
        voice_engine.claim(session, open_task(session, voice).id, "zhang")  # a county cadre may take it
        session.commit()
        assert holding(session, voice) == [("Task_hero", "cadre", "qd-sn", "zhang")]


def test_the_rating_closes_after_seven_days(sessions, clock, voice_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        voice = ask(session, voice_engine, youth)
        voice_engine.complete_task(session, open_task(session, voice).id, ANSWER, "zhang")
        session.commit()
        outbox.new(session)
    sweep(clock, sessions, voice_engine, timedelta(days=7) - MINUTE)
    with sessions() as session:
        assert holding(session, voice) == [("Task_rate", "youth", "qd-sn", youth)]
    sweep(clock, sessions, voice_engine, 2 * MINUTE)
    with sessions() as session:
        assert holding(session, voice) == []
        # The engine words every interrupting boundary timer as an escalation, so the youth is told the
        # rating task is "overdue" (see docs/processes/youth_voice.md); the cadre hears nothing.
        assert outbox.new(session) == [(youth, "已逾期：评价回答")]
        status, data = instance_data(session, voice)
        assert status == "completed"
        outcome = data["voice_outcome"]
        assert (outcome["answered_by"], outcome["answered_via"], outcome["rating"]) == ("zhang", "cadre", None)
