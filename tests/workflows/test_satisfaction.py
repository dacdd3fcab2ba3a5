"""Youth satisfaction: the ratings of 青年之声 answers and fulfilled 微心愿 land in one table and feed the bulletin."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.workflows.campaign_process_helpers import deploy, first_open_task, instance
from tests.league import give_youth_account
from workflows.organisations import by_code
from workflows.satisfaction import SatisfactionRating, record_rating, satisfaction_summary

ANSWER = {"answer": "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名，每周两个半天。",
          "references": [], "follow_up_offline": False}
REPLY_WILL = {"reply_decision": "will_fulfil", "reply_text": "没问题，我下周给你送过去。", "planned_on": "2026-05-08"}
FULFILLED = {"fulfil_outcome": "fulfilled", "fulfilled_on": "2026-05-08",
             "fulfilment": "联系了往届考生，收集整理了一整套复习资料并当面送到。", "evidence": ["送书合影.jpg"]}


@pytest.fixture
def youth(sessions, clock, league):
    """小明 with a mobile-client account ("youth-<id>")."""
    with sessions() as session:
        username = give_youth_account(session, league, "xiaoming", clock.now())
        session.commit()
        return username


@pytest.fixture
def deployed(sessions, league, league_engine):
    with sessions() as session:
        deploy(session, league_engine, "youth_voice")
        deploy(session, league_engine, "micro_wish")
        session.commit()
    return league_engine


def ratings(session):
    return [(r.source, r.youth_id, r.cadre_id, r.rated_username, r.stars, r.comment)
            for r in session.scalars(select(SatisfactionRating).order_by(SatisfactionRating.id))]


def ask_and_answer(session, engine, youth, key):
    started = engine.start(session, "youth_voice", {"youth_assignee": youth, "cadre_assignee": "zhang",
                                                    "question": "暑期有哪些志愿服务岗位？"},
                           organisation_id="qd-sn", business_key=key, actor=youth)
    session.commit()
    engine.complete_task(session, first_open_task(session, started.id).id, ANSWER, "zhang")
    session.commit()
    return started.id


def test_a_rated_answer_is_recorded_and_an_unrated_one_is_not(sessions, clock, league, deployed, youth):
    engine = deployed
    with sessions() as session:
        rated = ask_and_answer(session, engine, youth, "voice-1")
        engine.complete_task(session, first_open_task(session, rated).id,
                             {"rating": 4, "rating_comment": "很有帮助"}, youth)
        session.commit()
        assert instance(session, rated).data["satisfaction"] == {"recorded": True, "stars": 4, "rated": "zhang"}
        assert ratings(session) == [("youth_voice", league.youth["xiaoming"].id, league.cadres["zhang"].id, "zhang",
                                     4, "很有帮助")]
        unrated = ask_and_answer(session, engine, youth, "voice-2")
    clock.advance(timedelta(days=7, minutes=1))  # the rating window closes unrated
    with sessions() as session:
        engine.run_due_timers(session)
        assert instance(session, unrated).status == "completed"
        assert instance(session, unrated).data["satisfaction"]["recorded"] is False
        assert len(ratings(session)) == 1


def test_a_confirmed_wish_with_stars_is_recorded(sessions, clock, league, deployed, youth):
    engine = deployed
    with sessions() as session:
        wish = engine.start(session, "micro_wish", {"youth_assignee": youth, "cadre_assignee": "zhang",
                                                    "wish_title": "想要一套考研复习资料", "wish_description": "明年考研。"},
                            organisation_id="qd-sn", business_key="wish-1", actor=youth)
        session.commit()
        fulfil = engine.complete_task(session, first_open_task(session, wish.id).id, REPLY_WILL, "zhang")
        engine.complete_task(session, fulfil.next_task_ids[0], FULFILLED, "zhang")
        session.commit()
        engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 5, "comment": "谢谢"}, actor=youth)
        session.commit()
        assert ratings(session) == [("micro_wish", league.youth["xiaoming"].id, league.cadres["zhang"].id, "zhang",
                                     5, "谢谢")]
        row = session.scalar(select(SatisfactionRating))
        assert (row.source_id, row.organisation_id, row.rated_at) == (str(wish.id), league.orgs["qd-sn"].id,
                                                                     clock.now())


def at(text):
    return datetime.fromisoformat(text)


def test_ratings_are_summarised_per_month_over_the_subtree(sessions, clock, league):
    with sessions() as session:
        def rate(source_id, rated, stars, when, org=None):
            return record_rating(session, source="youth_voice", source_id=source_id, youth_username=None,
                                 rated_username=rated, stars=stars, comment=None, organisation_code=org, now=at(when))

        rate("1", "zhang", 5, "2026-05-03T10:00:00+08:00")
        rate("2", "li", 4, "2026-05-31T23:30:00+08:00")      # still May in Beijing (15:30 UTC)
        rate("3", "li", 4, "2026-05-20T10:00:00+08:00")
        rate("4", "wang", 1, "2026-05-20T10:00:00+08:00")    # Jinan
        rate("5", "zhang", 2, "2026-06-01T00:10:00+08:00")   # June in Beijing, May 31st in UTC
        rate("6", "S_coord", 3, "2026-05-05T10:00:00+08:00", org="qd-sn")  # a coordinator served: counts for qd-sn
        assert rate("1", "zhang", 1, "2026-05-04T10:00:00+08:00").stars == 5  # once per instance
        assert rate("7", "zhang", None, "2026-05-04T10:00:00+08:00") is None  # no rating given
        assert rate("8", "zhang", 6, "2026-05-04T10:00:00+08:00") is None     # not 1-5
        assert rate("9", "zhang", 3.5, "2026-05-04T10:00:00+08:00") is None
        session.commit()

        def summary(code, month="2026-05"):
            result = satisfaction_summary(session, by_code(session, code), month)
            return result.count, result.average

        assert summary("qd-sn") == (4, Decimal("4.00"))          # 5, 4, 4, 3
        assert summary("qd-sn-gw") == (2, Decimal("4.00"))
        assert summary("prov") == (5, Decimal("3.40"))           # with Jinan's 1
        assert summary("jn") == (1, Decimal("1.00"))
        assert summary("qd", "2026-06") == (1, Decimal("2.00"))
        assert summary("qd-sn-gw-1") == (0, None)
        with pytest.raises(ValueError):
            record_rating(session, source="survey", source_id="1", youth_username=None, rated_username="zhang",
                          stars=3, comment=None, organisation_code=None, now=clock.now())
