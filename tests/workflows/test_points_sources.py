"""Every source of points awards through the code path where its fact happens.

Activities through the ``record_activity`` operator, task-list items through ``record_practice_item``,
answers and wish replies by completing the real BPMN tasks, contacts through a roster import,
binding through the one-time-code sign-in, likes, comments and shares through ``workflows.interactions``.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.services import ServiceCall
from tests.workflows.campaign_process_helpers import first_open_task as open_task
from tests.workflows.campaign_process_helpers import sweep
from tests.league import give_youth_account
from workflows import accounts
from workflows.activities import revoke_activity
from workflows.contact_points import award_contact_points
from workflows.interactions import record_comment, record_like, remove_interaction, share_article
from workflows.league_engine import build_league_engine
from workflows.models import Activity, Youth
from workflows.points import PointEntry, cadre_score, league_year, year_scores
from workflows.roster import import_roster
from workflows.services import registry

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
D = Decimal
MINUTE = timedelta(minutes=1)
ANSWER = {"answer": "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名，每周两个半天。",
          "references": [], "follow_up_offline": False}
REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，我把心愿放进心愿池，请团委帮忙。"}
REPLY_WILL = {"reply_decision": "will_fulfil", "reply_text": "没问题，我下周给你送过去。", "planned_on": "2026-05-08"}


def score(session, cadre, clock):
    session.expire_all()
    return cadre_score(session, cadre.id, league_year(clock.now()))


def call(session, clock, org="qd-sn", instance_id=None):
    return ServiceCall(session=session, instance_id=instance_id, organisation_id=org, now=clock.now(), task_data={})


# -------------------------------------------------------------------------------------- activities

def record(session, clock, kind="league_lecture", cadre="zhang", org="qd-sn"):
    return registry.call("record_activity", call(session, clock, org),
                         {"kind": kind, "date": "2026-05-10", "place": "市南区团委", "youth_count": 12,
                          "description": "为青年上了一堂团课", "cadre": cadre, "evidence": ["团课合影.jpg"]})["activity_id"]


def test_each_recorded_activity_scores_and_a_revoked_one_loses_it(sessions, clock, league):
    with sessions() as session:
        first, second = record(session, clock), record(session, clock, kind="heart_to_heart")
        record(session, clock, kind="open_day", cadre=None)  # an organ's own activity scores nobody
        record(session, clock, cadre="li", org="qd-sn-gw")
        zhang = score(session, league.cadres["zhang"], clock)
        assert zhang.by_category["activities"] == 2 and zhang.facts["activities"] == 2
        assert score(session, league.cadres["li"], clock).by_category["activities"] == D("1.5")  # part-time
        assert session.scalar(select(PointEntry.source_id).where(PointEntry.source_kind == "activity",
                                                                 PointEntry.cadre_id == league.cadres["zhang"].id)
                              .order_by(PointEntry.id).limit(1)) == str(first)
        assert revoke_activity(session, session.get(Activity, second), "电话抽查不属实", clock.now()) == 1
        assert session.get(Activity, second).revoked_at == clock.now()
        assert score(session, league.cadres["zhang"], clock).by_category["activities"] == 1


# ---------------------------------------------------------------------------- education practice

def practice_item(session, clock, item, instance_id):
    return registry.call("record_practice_item", call(session, clock, instance_id=instance_id),
                         {"cadre": "zhang", "item": item, "date": "2026-05-12", "place": "八大关社区团支部",
                          "participants": 15, "description": "和团员一起完成", "evidence": ["现场照片.jpg"]})


def test_each_distinct_practice_item_scores_once(sessions, clock, league):
    with sessions() as session:
        practice_item(session, clock, "retake_oath", instance_id=1)
        practice_item(session, clock, "retake_oath", instance_id=1)   # the same step again
        practice_item(session, clock, "retake_oath", instance_id=2)   # the same item in another practice
        practice_item(session, clock, "themed_lecture", instance_id=2)
        zhang = score(session, league.cadres["zhang"], clock)
        assert zhang.by_category["education_practice"] == D(3) and zhang.facts["education_practice"] == 2


# ---------------------------------------------------------------------------------- youth voice

@pytest.fixture
def youth(sessions, clock, league):
    """The youth who asks and wishes, with an account (as after signing in once)."""
    with sessions() as session:
        username = give_youth_account(session, league, "xiaohong", clock.now())
        session.commit()
        return username


@pytest.fixture
def points_engine(sessions, clock, league):
    """The engine as the application composes it (with the points listener), with the two processes deployed."""
    engine = build_league_engine(clock, cache_size=0)
    with sessions() as session:
        engine.deploy_file(session, BPMN_DIR / "youth_voice.bpmn")
        engine.deploy_file(session, BPMN_DIR / "micro_wish.bpmn")
        session.commit()
    return engine


def ask(session, engine, youth, key="voice-1"):
    instance = engine.start(session, "youth_voice", {"youth_assignee": youth, "cadre_assignee": "zhang",
                                                     "question": "暑期有哪些志愿服务岗位？"},
                            organisation_id="qd-sn", business_key=key, actor=youth)
    session.commit()
    return instance.id


def test_an_answer_scores_1_when_it_is_given(sessions, clock, points_engine, youth, league):
    with sessions() as session:
        voice = ask(session, points_engine, youth)
        points_engine.complete_task(session, open_task(session, voice).id, ANSWER, "zhang")
        session.commit()
        zhang = score(session, league.cadres["zhang"], clock)
        assert zhang.by_category["youth_voice"] == 1  # at once, before the youth rates
        points_engine.complete_task(session, open_task(session, voice).id, {"rating": 5}, youth)
        session.commit()
        assert score(session, league.cadres["zhang"], clock).facts["youth_voice"] == 1  # the close adds nothing
        entry = session.scalar(select(PointEntry).where(PointEntry.category == "youth_voice"))
        assert (entry.source_kind, entry.source_id, entry.dedup_key) == \
            ("voice_answer", str(voice), f"question:{voice}")


def test_an_answer_from_the_hero_board_scores_half(sessions, clock, points_engine, youth, league):
    with sessions() as session:
        voice = ask(session, points_engine, youth)
    sweep(clock, sessions, points_engine, timedelta(days=3) + MINUTE)
    with sessions() as session:
        hero = open_task(session, voice)
        assert hero.bpmn_id == "Task_hero" and hero.assignee is None
        points_engine.complete_task(session, hero.id, ANSWER, "li")  # taken without claiming first
        session.commit()
        assert score(session, league.cadres["li"], clock).by_category["youth_voice"] == D("0.5")
        assert score(session, league.cadres["zhang"], clock).by_category["youth_voice"] == 0  # did not answer


def test_without_the_listener_the_close_awards_the_answer(sessions, clock, league_engine, youth, league):
    with sessions() as session:
        league_engine.deploy_file(session, BPMN_DIR / "youth_voice.bpmn")
        voice = ask(session, league_engine, youth)
        league_engine.complete_task(session, open_task(session, voice).id, ANSWER, "zhang")
        session.commit()
        answered_at = clock.now()
        assert score(session, league.cadres["zhang"], clock).by_category["youth_voice"] == 0
    sweep(clock, sessions, league_engine, timedelta(days=7) + MINUTE)  # the rating window closes
    with sessions() as session:
        assert score(session, league.cadres["zhang"], clock).by_category["youth_voice"] == 1
        assert session.scalar(select(PointEntry.occurred_at).where(PointEntry.category == "youth_voice")) == answered_at


# ---------------------------------------------------------------------------------- micro-wishes

def wish(session, engine, youth, key):
    instance = engine.start(session, "micro_wish", {"youth_assignee": youth, "cadre_assignee": "zhang",
                                                    "wish_title": "想要一套考研复习资料",
                                                    "wish_description": "明年考研，想借一套资料。"},
                            organisation_id="qd-sn", business_key=key, actor=youth)
    session.commit()
    return instance.id


def test_each_wish_reply_scores_2_whatever_the_decision(sessions, clock, points_engine, youth, league):
    with sessions() as session:
        first, second = wish(session, points_engine, youth, "wish-1"), wish(session, points_engine, youth, "wish-2")
        points_engine.complete_task(session, open_task(session, first).id, REPLY_BEYOND, "zhang")
        points_engine.complete_task(session, open_task(session, second).id, REPLY_WILL, "zhang")
        session.commit()
        assert score(session, league.cadres["zhang"], clock).by_category["micro_wishes"] == 4
        fulfil = open_task(session, second)
        assert fulfil.bpmn_id == "Task_fulfil"
        points_engine.complete_task(session, fulfil.id, {"fulfil_outcome": "fulfilled", "fulfilled_on": "2026-05-08",
                                                         "fulfilment": "整理了一整套复习资料并当面送到。",
                                                         "evidence": ["送书合影.jpg"]}, "zhang")
        session.commit()
        zhang = score(session, league.cadres["zhang"], clock)
        assert zhang.by_category["micro_wishes"] == 4 and zhang.facts["micro_wishes"] == 2  # fulfilling is no reply


def test_an_unanswered_wish_scores_nobody(sessions, clock, points_engine, youth, league):
    with sessions() as session:
        wish(session, points_engine, youth, "wish-1")
    sweep(clock, sessions, points_engine, timedelta(days=3) + MINUTE)  # to the pool, no reply
    with sessions() as session:
        assert score(session, league.cadres["zhang"], clock).by_category["micro_wishes"] == 0


# ---------------------------------------------------------------------------- contacts and binding

def import_youth(session, clock, rows):
    report = import_roster(session, "youth", rows, clock.now())
    assert report.problems == [] and report.written
    session.commit()


def test_a_contact_scores_once_its_tags_are_complete(sessions, clock, league):
    with sessions() as session:
        import_youth(session, clock, [
            {"name": "小刚", "phone": "13900000001", "occupation": "教师", "industry": "教育", "cadre_codes": "c-zhang;c-li"},
            {"name": "小丽", "phone": "13900000002", "occupation": "护士", "industry": "", "cadre_codes": "c-zhang;c-li"},
        ])
        assert score(session, league.cadres["zhang"], clock).by_category["contacts"] == D("0.1")
        assert score(session, league.cadres["li"], clock).by_category["contacts"] == 1  # part-time: 1 per contact
        import_youth(session, clock, [  # the same ledger again: nothing new
            {"name": "小刚", "phone": "13900000001", "occupation": "教师", "industry": "教育", "cadre_codes": "c-zhang"}])
        assert score(session, league.cadres["zhang"], clock).facts["contacts"] == 1
        import_youth(session, clock, [  # the industry tag is filled in: the contact counts now
            {"name": "小丽", "phone": "13900000002", "occupation": "护士", "industry": "医疗", "cadre_codes": ""}])
        assert score(session, league.cadres["zhang"], clock).by_category["contacts"] == D("0.2")
        assert score(session, league.cadres["li"], clock).by_category["contacts"] == 2
        assert score(session, league.cadres["wang"], clock).by_category["contacts"] == 0


def test_a_youth_binding_the_mobile_client_scores_for_each_cadre_contacting_them(sessions, clock, league):
    with sessions() as session:
        import_youth(session, clock, [{"name": "小刚", "phone": "13900000001", "occupation": "", "industry": "",
                                       "cadre_codes": "c-zhang;c-li"}])
        assert score(session, league.cadres["zhang"], clock).by_category["mobile_binding"] == 0
        sent = accounts.send_code(session, "13900000001", "10.0.0.1", clock.now(), "secret")
        accounts.sign_in_with_code(session, "13900000001", sent.code, "10.0.0.1", clock.now(), "secret")
        session.commit()
        assert score(session, league.cadres["zhang"], clock).by_category["mobile_binding"] == D("0.1")
        assert score(session, league.cadres["li"], clock).by_category["mobile_binding"] == 1
        assert score(session, league.cadres["zhang"], clock).by_category["contacts"] == 0  # tags still missing
        import_youth(session, clock, [{"name": "小刚", "phone": "13900000001", "occupation": "", "industry": "",
                                       "cadre_codes": "c-wang"}])  # a new contact with a youth already bound
        assert score(session, league.cadres["wang"], clock).by_category["mobile_binding"] == D("0.1")
        assert score(session, league.cadres["zhang"], clock).facts["mobile_binding"] == 1


def test_a_backfill_awards_every_contact_due_once(sessions, clock, league):
    with sessions() as session:  # the small league was loaded without points: zhang contacts two youth
        session.get(Youth, league.youth["xiaohong"].id).bound_at = clock.now()
        zhang = league.cadres["zhang"]
        assert award_contact_points(session, clock.now()) == 2  # xiaoming tagged; xiaohong bound, not tagged
        assert award_contact_points(session, clock.now()) == 0
        result = score(session, zhang, clock)
        assert (result.by_category["contacts"], result.by_category["mobile_binding"]) == (D("0.1"), D("0.1"))
        assert year_scores(session, league_year(clock.now()))[zhang.id] == D("0.2")


# --------------------------------------------------------------------- likes, comments, articles

def test_likes_comments_and_shares_score_by_their_rules(sessions, clock, league):
    with sessions() as session:
        zhang = league.cadres["zhang"]
        assert record_like(session, cadre=zhang, target="post:1", by="youth-1", now=clock.now()) is not None
        assert record_like(session, cadre=zhang, target="post:1", by="youth-1", now=clock.now()) is None  # once
        record_like(session, cadre=zhang, target="post:1", by="youth-2", now=clock.now())
        first = record_comment(session, cadre=zhang, target="post:1", by="youth-1", body="说得好", now=clock.now())
        record_comment(session, cadre=zhang, target="post:1", by="youth-1", body="再补充一句", now=clock.now())
        assert score(session, zhang, clock).by_category["likes_comments"] == 2  # 4 × 0.5
        assert remove_interaction(session, first, clock.now()) == 1
        assert score(session, zhang, clock).by_category["likes_comments"] == D("1.5")
        assert share_article(session, cadre=zhang, article="https://example.org/a/1", title="青春正当时",
                             now=clock.now()) is not None
        assert share_article(session, cadre=zhang, article="https://example.org/a/1", title="青春正当时",
                             now=clock.now()) is None  # the same article again
        share_article(session, cadre=zhang, article="https://example.org/a/2", title="奋斗的青春", now=clock.now())
        assert score(session, zhang, clock).by_category["article_sharing"] == 1
        with pytest.raises(ValueError):
            record_comment(session, cadre=zhang, target="post:1", by="youth-1", body="  ", now=clock.now())
