"""A youth's wishes and questions (workflows/youth_requests.py) and the coordinators' board (workflows/wish_pool.py).

Every step runs through the engine on both databases; the clock is jumped, never slept.  Each
stage asserts what the youth is told, in plain words, and what a coordinator sees.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import FormInvalid, NotAllowed, NotFound
from tests.workflows.campaign_process_helpers import first_open_task, holding
from tests.league import give_youth_account
from workflows import wish_pool, youth_requests
from workflows.inbox import inbox
from workflows.organisations import by_code
from workflows.people import new_user
from workflows.roles import grant_role, load_actor
from workflows.wishes import wish_status

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
MINUTE = timedelta(minutes=1)
TITLE = "想要一套考研复习资料"
DESCRIPTION = "明年考研，家里买不起全套资料，想借或要一套。"
REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，请团委心愿池帮忙。"}
POOL_FULFILLED = {"donor": "新华书店", "resource": "全套考研复习资料一套", "fulfilled_on": "2026-05-10",
                  "fulfilment": "协调新华书店捐赠全套资料，并当面送到青年手中。", "evidence": ["签收单.jpg"]}
ANSWER = {"answer": "市南区团委暑期有“社区小管家”岗位，可在团区委公众号报名。"}


@pytest.fixture
def youth_engine(sessions, clock, league, league_engine):
    """The league engine with micro_wish and youth_voice deployed, coordinators at the province and in Jinan,
    and both young people signed in once (their "youth-<id>" accounts)."""
    with sessions() as session:
        for name in ("micro_wish", "youth_voice"):
            league_engine.deploy_file(session, BPMN_DIR / f"{name}.bpmn")
        for username, name, code in [("P_coord", "省协调员", "prov"), ("J_coord", "济南协调员", "jn")]:
            org = by_code(session, code)
            user = new_user(username, name, clock.now(), organisation=org)
            session.add(user)
            session.flush()
            grant_role(session, user, "coordinator", org)
        for key in ("xiaoming", "xiaohong"):
            give_youth_account(session, league, key, clock.now())
        session.commit()
    return league_engine


def actor(session, who, league=None):
    """The Actor of a username, or of a youth by their key in the league."""
    if league is not None:
        who = f"youth-{league.youth[who].id}"
    return load_actor(session, who)


def post(session, engine, league, who="xiaoming", cadre="zhang"):
    instance = youth_requests.post_wish(session, engine, actor(session, who, league), league.cadres[cadre].id,
                                        TITLE, DESCRIPTION)
    session.commit()
    return instance.business_key, instance.id


def status_text(session, key):
    session.expire_all()
    return wish_status(session, key).text


def test_a_youth_posts_only_to_a_cadre_who_contacts_them(sessions, youth_engine, league):
    with sessions() as session:
        ming = actor(session, "xiaoming", league)
        assert [c.name for c in youth_requests.known_cadres(session, ming)] == ["张伟"]
        with pytest.raises(NotAllowed, match="联系你"):
            youth_requests.post_wish(session, youth_engine, ming, league.cadres["wang"].id, TITLE, DESCRIPTION)
        with pytest.raises(NotFound):
            youth_requests.post_wish(session, youth_engine, ming, 424242, TITLE, DESCRIPTION)
        with pytest.raises(NotAllowed, match="只有青年"):  # a cadre is no youth
            youth_requests.post_wish(session, youth_engine, actor(session, "zhang"), league.cadres["zhang"].id,
                                     TITLE, DESCRIPTION)
        with pytest.raises(FormInvalid) as refused:
            youth_requests.post_wish(session, youth_engine, ming, league.cadres["zhang"].id, "书", " ")
        assert sorted(e.field for e in refused.value.errors) == ["description", "title"]
        session.rollback()
        key, wish = post(session, youth_engine, league)
        assert holding(session, wish) == [("Task_reply", "cadre", "qd-sn", "zhang")]
        assert status_text(session, key) == "您的心愿已交给团干部张伟（市南区团委），等待回复，自5月1日起"
        assert youth_requests.posted(session, wish)["wish_description"] == DESCRIPTION
        assert [i.business_key for i in youth_requests.own_requests(session, ming, "micro_wish")] == [key]
        assert youth_requests.own_requests(session, actor(session, "xiaohong", league), "micro_wish") == []


def test_declined_wish_goes_through_the_pool_to_fulfilment_and_the_youth_confirms(sessions, clock, youth_engine,
                                                                                  league):
    with sessions() as session:
        key, wish = post(session, youth_engine, league)
        clock.advance(timedelta(days=1, hours=2))
        youth_engine.complete_task(session, first_open_task(session, wish).id, REPLY_BEYOND, "zhang")
        session.commit()
        assert status_text(session, key) == "您的心愿在市南区团委心愿池，自5月2日起"

        coordinator = actor(session, "S_coord")
        page = wish_pool.board(session, coordinator, clock.now())
        [row] = page.wishes
        assert page.next_after is None
        assert (row.title, row.description, row.youth_name, row.pool_name, row.holder_name) == (
            TITLE, DESCRIPTION, "小明", "市南区团委", None)
        assert (row.origin.cadre_name, row.origin.organisation_name, row.origin.reason) == ("张伟", "市南区团委",
                                                                                         "beyond_means")
        assert row.origin.reason_text == "超出团干部个人能力范围" and row.origin.cadre_words == REPLY_BEYOND["reply_text"]
        assert row.pooled_since == clock.now() and row.task.due_at == clock.now() + timedelta(days=14)
        assert row.may_act and row.level is None and row.escalated_from == ()
        assert wish_pool.board_counts(session, coordinator, clock.now()) == {"all": 1, "unclaimed": 1, "overdue": 0}
        # Outside the subtree: nothing on the board, and the wish itself is refused.
        jinan = actor(session, "J_coord")
        assert wish_pool.board(session, jinan, clock.now(), scope="subtree").wishes == []
        with pytest.raises(NotAllowed):
            wish_pool.pooled_wish(session, jinan, row.task.id, clock.now())
        with pytest.raises(NotAllowed):
            wish_pool.claim(session, youth_engine, jinan, row.task.id)
        with pytest.raises(NotAllowed, match="只有协调员"):  # a cadre has no board
            wish_pool.board(session, actor(session, "zhang"), clock.now())
        # The province sees it in its subtree, not at its own level; the county coordinator takes it on.
        province = actor(session, "P_coord")
        assert wish_pool.board(session, province, clock.now()).wishes == []
        assert [w.task.id for w in wish_pool.board(session, province, clock.now(), scope="subtree").wishes] == [
            row.task.id]
        wish_pool.claim(session, youth_engine, coordinator, row.task.id)
        session.commit()
        assert status_text(session, key) == "您的心愿在市南区团委心愿池，自5月2日起，由协调员市南协调员办理"
        assert [w.task.id for w in wish_pool.board(session, coordinator, clock.now(), show="mine").wishes] == [
            row.task.id]
        assert wish_pool.board(session, coordinator, clock.now(), show="unclaimed").wishes == []
        with pytest.raises(FormInvalid):  # the pool form names a partner, donor or department
            wish_pool.fulfil(session, youth_engine, coordinator, row.task.id,
                             {k: v for k, v in POOL_FULFILLED.items() if k != "donor"})
        session.rollback()
        clock.advance(timedelta(days=3))
        wish_pool.fulfil(session, youth_engine, coordinator, row.task.id, POOL_FULFILLED)
        session.commit()
        assert status_text(session, key) == ("您的心愿已由市南区团委心愿池（协调员市南协调员）实现，等待您确认；"
                                             "5月12日前未确认的将自动确认，自5月5日起")
        assert wish_pool.board(session, coordinator, clock.now()).wishes == []
        with pytest.raises(NotFound, match="已不在"):
            wish_pool.claim(session, youth_engine, coordinator, row.task.id)

        hong, ming = actor(session, "xiaohong", league), actor(session, "xiaoming", league)
        with pytest.raises(NotAllowed):  # another youth cannot confirm it
            youth_requests.confirm_wish(session, youth_engine, hong, key, 5)
        with pytest.raises(FormInvalid):
            youth_requests.confirm_wish(session, youth_engine, ming, key, 6)
        youth_requests.confirm_wish(session, youth_engine, ming, key, 5, "谢谢团委！")
        session.commit()
        assert status_text(session, key) == "您的心愿已实现，您已确认（5月5日）"
        with pytest.raises(youth_requests.NotNow):
            youth_requests.confirm_wish(session, youth_engine, ming, key, 5)

        history = [line.text for line in wish_pool.wish_history(session, wish)]
        assert history == [
            f"青年小明提出微心愿「{TITLE}」", "心愿交给团干部张伟，等待回复",
            f"团干部张伟回复超出个人能力范围，心愿转入心愿池：“{REPLY_BEYOND['reply_text']}”",
            "心愿进入市南区团委心愿池，等待协调员认领", "协调员市南协调员认领了这条心愿",
            "协调员市南协调员在市南区团委心愿池对接资源并实现心愿（爱心捐赠人：新华书店；资源：全套考研复习资料一套），等待青年确认",
            "青年小明确认心愿已实现，评价5星"]


def test_an_unclaimed_pooled_wish_escalates_to_the_province_by_timer(sessions, clock, youth_engine, league):
    with sessions() as session:
        key, wish = post(session, youth_engine, league)
    clock.advance(timedelta(days=3) + MINUTE)  # the cadre lets 3 days pass: the county pool
    with sessions() as session:
        youth_engine.run_due_timers(session)
        [county] = wish_pool.board(session, actor(session, "S_coord"), clock.now()).wishes
        assert county.origin.reason == "no_reply" and county.origin.reason_text == "团干部3天内未回复"
    clock.advance(timedelta(days=13))
    with sessions() as session:
        assert wish_pool.board(session, actor(session, "S_coord"), clock.now(), show="overdue").wishes == []
        [county] = wish_pool.board(session, actor(session, "S_coord"), clock.now()).wishes
        assert county.level == "due_soon"
    clock.advance(timedelta(days=1) + MINUTE)
    with sessions() as session:
        assert county.task.id in [w.task.id for w in wish_pool.board(session, actor(session, "S_coord"),
                                                                     clock.now(), show="overdue").wishes]
        assert wish_pool.pooled_wish(session, actor(session, "S_coord"), county.task.id, clock.now()).level == "overdue"
        youth_engine.run_due_timers(session)  # 14 days: up to the city; no city coordinator, so the province's
        session.expire_all()
        assert wish_pool.board(session, actor(session, "S_coord"), clock.now()).wishes == []
        [province] = wish_pool.board(session, actor(session, "P_coord"), clock.now()).wishes
        assert province.pool_name == "团省委" and province.escalated_from == ("市南区团委",)
        assert province.pooled_since == county.pooled_since < province.task.created_at
        assert status_text(session, key) == "您的心愿在团省委心愿池，自5月18日起"
        old = wish_pool.pooled_wish(session, actor(session, "S_coord"), county.task.id, clock.now())
        assert not old.open and not old.may_act  # the county still sees where it went in its history
        texts = [line.text for line in wish_pool.wish_history(session, wish)]
        assert "团干部3天内未回复，心愿转入心愿池" in texts
        assert "市南区团委心愿池14天内未能实现，心愿上移到上一级心愿池" in texts
        assert texts[-1] == "心愿进入团省委心愿池，等待协调员认领"


def test_a_youth_withdraws_and_no_one_else_can(sessions, clock, youth_engine, league):
    with sessions() as session:
        key, wish = post(session, youth_engine, league)
        with pytest.raises(NotAllowed):
            youth_requests.withdraw_wish(session, youth_engine, actor(session, "xiaohong", league), key)
        with pytest.raises(NotAllowed):
            youth_requests.own_request(session, actor(session, "xiaohong", league), "micro_wish", key)
        youth_requests.withdraw_wish(session, youth_engine, actor(session, "xiaoming", league), key, "已经借到了")
        session.commit()
        assert holding(session, wish) == []
        assert status_text(session, key) == "您已撤回这个心愿（5月1日）"
        with pytest.raises(youth_requests.NotNow):
            youth_requests.withdraw_wish(session, youth_engine, actor(session, "xiaoming", league), key)
        assert wish_pool.wish_history(session, wish)[-1].text == "青年小明撤回了心愿：“已经借到了”"


def test_a_question_to_a_cadre_is_answered_and_rated(sessions, clock, youth_engine, league):
    with sessions() as session:
        ming = actor(session, "xiaoming", league)
        instance = youth_requests.ask_question(session, youth_engine, ming, league.cadres["zhang"].id,
                                               "暑期有哪些志愿服务岗位？")
        session.commit()
        key = instance.business_key
        status = youth_requests.question_status(session, instance)
        assert (status.stage, status.text) == ("awaiting_answer",
                                               "您的问题已交给团干部张伟（市南区团委），等待回答，自5月1日起")
        with pytest.raises(youth_requests.NotNow):
            youth_requests.rate_answer(session, youth_engine, ming, key, 5)
        clock.advance(timedelta(hours=3))
        youth_engine.complete_task(session, first_open_task(session, instance.id).id, ANSWER, "zhang")
        session.commit()
        status = youth_requests.question_status(session, instance)
        assert (status.stage, status.answer, status.answered_by_name) == ("awaiting_rating", ANSWER["answer"], "张伟")
        assert status.text == "团干部张伟已回答您的问题，欢迎在5月8日前评价（1-5星）"
        with pytest.raises(NotAllowed):  # another youth cannot rate it
            youth_requests.rate_answer(session, youth_engine, actor(session, "xiaohong", league), key, 1)
        with pytest.raises(FormInvalid):
            youth_requests.rate_answer(session, youth_engine, ming, key, 0)
        session.rollback()
        youth_requests.rate_answer(session, youth_engine, ming, key, 4, "很及时")
        session.commit()
        session.expire_all()
        status = youth_requests.question_status(session, youth_requests.own_request(session, ming, "youth_voice", key))
        assert (status.stage, status.rating, status.text) == ("closed", 4, "团干部张伟已回答您的问题，您评价了4星（5月1日）")


def test_an_open_question_goes_to_the_hero_board_for_any_cadre_there(sessions, clock, youth_engine, league):
    with sessions() as session:
        ming = actor(session, "xiaoming", league)
        assert [org.code for org in youth_requests.question_areas(session, ming)] == ["qd-sn"]
        with pytest.raises(NotAllowed, match="英雄帖"):  # not the area of a cadre who contacts them
            youth_requests.ask_open_question(session, youth_engine, ming, "jn-lx", "历下区有什么招聘会？")
        instance = youth_requests.ask_open_question(session, youth_engine, ming, "qd-sn", "市南区有哪些创业扶持政策？")
        session.commit()
        assert holding(session, instance.id) == [("Task_answer", "cadre", "qd-sn", None)]
        status = youth_requests.question_status(session, instance)
        assert (status.stage, status.open_question) == ("hero_board", True)
        assert status.text == "您的问题在市南区团委“英雄帖”专区，自5月1日起，任何团干部都可以认领回答"
        task = first_open_task(session, instance.id)
        li, wang = actor(session, "li"), actor(session, "wang")
        assert [t.id for t in inbox(session, li)] == [task.id]   # a cadre under 市南区团委 sees it
        assert inbox(session, wang) == []                          # a cadre in Jinan does not
        youth_engine.claim(session, task.id, "li")
        session.commit()
        assert youth_requests.question_status(session, instance).text.endswith("团干部李娜已认领，正在回答")
        youth_engine.complete_task(session, task.id, ANSWER, "li")
        session.commit()
        status = youth_requests.question_status(session, instance)
        assert (status.stage, status.answered_by) == ("awaiting_rating", "li")


def test_an_open_question_nobody_takes_stays_on_the_hero_board(sessions, clock, youth_engine, league):
    with sessions() as session:
        instance = youth_requests.ask_open_question(session, youth_engine, actor(session, "xiaoming", league), "qd-sn",
                                                    "市南区有哪些创业扶持政策？")
        session.commit()
    clock.advance(timedelta(days=3) + MINUTE)  # the process's 3 days pass: the same county's 英雄帖 task
    with sessions() as session:
        youth_engine.run_due_timers(session)
        assert holding(session, instance.id) == [("Task_hero", "cadre", "qd-sn", None)]
        status = youth_requests.question_status(session, session.get(type(instance), instance.id))
        assert (status.stage, status.text) == ("hero_board",
                                               "您的问题在市南区团委“英雄帖”专区，自5月1日起，任何团干部都可以认领回答")


def test_the_board_is_paginated_oldest_first(sessions, clock, youth_engine, league):
    with sessions() as session:
        wishes = []
        for _ in range(3):
            _key, wish = post(session, youth_engine, league)
            youth_engine.complete_task(session, first_open_task(session, wish).id, REPLY_BEYOND, "zhang")
            session.commit()
            wishes.append(wish)
            clock.advance(timedelta(hours=1))
        coordinator = actor(session, "S_coord")
        first = wish_pool.board(session, coordinator, clock.now(), limit=2)
        rest = wish_pool.board(session, coordinator, clock.now(), limit=2, after_id=first.next_after)
        assert [w.task.instance_id for w in first.wishes + rest.wishes] == wishes
        assert rest.next_after is None
        assert wish_pool.age_text(first.wishes[0].pooled_since, clock.now()) == "不到1天"
        assert wish_pool.age_text(first.wishes[0].pooled_since, clock.now() + timedelta(days=3)) == "3天"
