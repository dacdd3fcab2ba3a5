"""微心愿 and the wish pool (bpmn/micro_wish.bpmn): every path, with the clock jumped, never slept.

At each step: who holds the wish (the open human_task rows: candidate_role, organisation_id,
assignee), what ``wish_status`` tells the youth, and who was notified.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import NotAllowed, NotFound
from engine.errors import FormInvalid, TaskAlreadyCompleted
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.services import ServiceCall
from workflows.models import Notification
from workflows.organisations import by_code
from workflows.people import new_user
from workflows.roles import grant_role
from workflows.services import registry
from workflows.wishes import confirmation_payload, day_text, wish_status
from tests.workflows.campaign_process_helpers import Outbox, holding, sweep
from tests.workflows.campaign_process_helpers import first_open_task as open_task

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
MINUTE = timedelta(minutes=1)
TITLE = "想要一套考研复习资料"

REPLY_BEYOND = {"reply_decision": "beyond_means", "reply_text": "这套资料我一时找不到，我把心愿放进心愿池，请团委帮忙。"}
REPLY_WILL = {"reply_decision": "will_fulfil", "reply_text": "没问题，我下周给你送过去。", "planned_on": "2026-05-08"}
CADRE_FULFILLED = {"fulfil_outcome": "fulfilled", "fulfilled_on": "2026-05-08",
                   "fulfilment": "联系了往届考生，收集整理了一整套复习资料并当面送到。", "evidence": ["送书合影.jpg"]}
POOL_FULFILLED = {"department": "省教育厅考试院", "donor": "新华书店", "resource": "全套考研复习资料一套（价值600元）",
                  "fulfilled_on": "2026-06-02", "fulfilment": "协调新华书店捐赠全套资料，由省考试院老师附上备考建议。",
                  "evidence": ["捐赠清单.pdf", "签收单.jpg"]}


# ---------------------------------------------------------------------------------------- helpers

@pytest.fixture
def wish_engine(sessions, clock, league, league_engine):
    """The league engine with micro_wish deployed and coordinators at the city (qd) and province."""
    with sessions() as session:
        league_engine.deploy_file(session, BPMN_DIR / "micro_wish.bpmn")
        for username, name, code in [("Q_coord", "青岛协调员", "qd"), ("P_coord", "省协调员", "prov")]:
            org = by_code(session, code)
            user = new_user(username, name, clock.now(), organisation=org)
            session.add(user)
            session.flush()
            grant_role(session, user, "coordinator", org)
        session.commit()
    return league_engine


@pytest.fixture
def youth(league):
    """The youth's username (young people sign in as "youth-<id>")."""
    return f"youth-{league.youth['xiaoming'].id}"


def start_wish(session, engine, youth, key="wish-1", cadre="zhang", org="qd-sn"):
    instance = engine.start(session, "micro_wish", {"youth_assignee": youth, "cadre_assignee": cadre,
                                                    "wish_title": TITLE,
                                                    "wish_description": "明年考研，家里买不起全套资料，想借或要一套。"},
                            organisation_id=org, business_key=key, actor=youth)
    session.commit()
    return instance.id




def instance_row(session, instance_id):
    session.expire_all()
    return session.get(ProcessInstance, instance_id)


def assert_status(session, stage, text, role=None, org=None, assignee=None):
    status = wish_status(session, "wish-1")
    assert (status.stage, status.text) == (stage, text)
    assert (status.holder_role, status.holder_organisation, status.holder_assignee) == (role, org, assignee)
    assert status.title == TITLE
    return status


# ------------------------------------------------------------------------------- the key path

@pytest.mark.parametrize("cadre_step", ["declares_beyond_means", "lets_it_go_overdue"])
def test_one_wish_climbs_from_cadre_to_county_city_and_province_pool(sessions, clock, wish_engine, youth,
                                                                     cadre_step):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        assert holding(session, wish) == [("Task_reply", "cadre", "qd-sn", "zhang")]
        assert outbox.new(session) == [("zhang", "新的待办：回复微心愿")]
        assert_status(session, "cadre_reply", "您的心愿已交给团干部张伟（市南区团委），等待回复，自5月1日起",
                      "cadre", "qd-sn", "zhang")

    sweep(clock, sessions, wish_engine, timedelta(days=2) + MINUTE)  # day 2: the reminder
    with sessions() as session:
        assert outbox.new(session) == [("zhang", "提醒：回复微心愿")]

    # The cadre declares the wish beyond their means, or lets the 3 days pass.
    with sessions() as session:
        if cadre_step == "declares_beyond_means":
            clock.advance(timedelta(hours=12))
            wish_engine.complete_task(session, open_task(session, wish).id, REPLY_BEYOND, "zhang")
            session.commit()
            expected = []
        else:
            expected = [("zhang", "已逾期：回复微心愿")]
    if cadre_step == "lets_it_go_overdue":
        sweep(clock, sessions, wish_engine, timedelta(days=1))
    county_since = day_text(clock.now())
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd-sn", None)]
        assert outbox.new(session) == sorted(expected + [("S_coord", "新的待办：心愿池：协调实现微心愿"),
                                                         (youth, f"微心愿转入心愿池：{TITLE}")])
        assert "市南区团委心愿池" in session.scalar(select(Notification.body).where(Notification.recipient == youth)
                                             .order_by(Notification.id.desc()).limit(1))
        assert_status(session, "pool", f"您的心愿在市南区团委心愿池，自{county_since}起", "coordinator", "qd-sn", None)
        county_task = open_task(session, wish)
        assert county_task.due_at == county_task.created_at + timedelta(days=14)
        wish_engine.claim(session, county_task.id, "S_coord")  # a coordinator takes it on ...
        session.commit()
        assert_status(session, "pool", f"您的心愿在市南区团委心愿池，自{county_since}起，由协调员市南协调员办理",
                      "coordinator", "qd-sn", "S_coord")

    sweep(clock, sessions, wish_engine, timedelta(days=11) + MINUTE)  # ... is reminded 3 days before the end ...
    with sessions() as session:
        assert outbox.new(session) == [("S_coord", "提醒：心愿池：协调实现微心愿")]

    sweep(clock, sessions, wish_engine, timedelta(days=3))  # ... and lets 14 days pass: the city pool
    city_since = day_text(clock.now())
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd", None)]
        assert outbox.new(session) == sorted([("S_coord", "已逾期：心愿池：协调实现微心愿"),
                                              ("Q_coord", "新的待办：心愿池：协调实现微心愿"),
                                              (youth, f"微心愿转入心愿池：{TITLE}")])
        assert_status(session, "pool", f"您的心愿在青岛团市委心愿池，自{city_since}起", "coordinator", "qd", None)
        with pytest.raises(TaskAlreadyCompleted):  # the county's task is gone
            wish_engine.complete_task(session, county_task.id, POOL_FULFILLED, "S_coord")
        with pytest.raises(NotAllowed):  # and the county coordinator cannot take the city's
            wish_engine.claim(session, open_task(session, wish).id, "S_coord")
        session.rollback()

    sweep(clock, sessions, wish_engine, timedelta(days=11) + MINUTE)
    with sessions() as session:
        assert outbox.new(session) == [("Q_coord", "提醒：心愿池：协调实现微心愿")]

    sweep(clock, sessions, wish_engine, timedelta(days=3))  # 14 days in the city pool: the province
    province_since = day_text(clock.now())
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool_province", "coordinator", "prov", None)]
        assert outbox.new(session) == sorted([("Q_coord", "已逾期：心愿池：协调实现微心愿"),
                                              ("P_coord", "新的待办：省级心愿池：协调实现微心愿"),
                                              (youth, f"微心愿转入心愿池：{TITLE}")])
        assert_status(session, "pool", f"您的心愿在团省委心愿池，自{province_since}起", "coordinator", "prov", None)
        province_task = open_task(session, wish)
        wish_engine.claim(session, province_task.id, "P_coord")
        with pytest.raises(FormInvalid):  # a pooled wish names at least one resource: partner, donor or department
            wish_engine.complete_task(session, province_task.id,
                                      {k: v for k, v in POOL_FULFILLED.items() if k not in ("department", "donor")},
                                      "P_coord")
        wish_engine.complete_task(session, province_task.id, POOL_FULFILLED, "P_coord")
        session.commit()
        assert holding(session, wish) == []
        assert outbox.new(session) == [(youth, f"微心愿已实现，请确认：{TITLE}")]
        fulfilled_on = clock.now()
        assert_status(session, "awaiting_confirmation",
                      f"您的心愿已由团省委心愿池（协调员省协调员）实现，等待您确认；"
                      f"{day_text(fulfilled_on + timedelta(days=7))}前未确认的将自动确认，自{day_text(fulfilled_on)}起",
                      "youth", None, youth)

    clock.advance(timedelta(days=1))
    with sessions() as session:  # the youth confirms, with a rating
        wish_engine.send_message(session, "wish-1", "wish_confirmed",
                                 confirmation_payload(rating=5, comment="太感谢了！"), actor=youth)
        session.commit()
        assert outbox.new(session) == [("P_coord", f"微心愿已确认：{TITLE}")]
        assert "评价5星" in session.scalar(select(Notification.body).order_by(Notification.id.desc()).limit(1))
        row = instance_row(session, wish)
        assert row.status == "completed"
        outcome = row.data["wish_outcome"]
        assert {k: outcome[k] for k in ("outcome", "rating", "comment", "fulfilled_by", "fulfilled_in",
                                        "fulfilled_task")} == {
            "outcome": "confirmed", "rating": 5, "comment": "太感谢了！", "fulfilled_by": "P_coord",
            "fulfilled_in": "prov", "fulfilled_task": "Task_pool_province"}
        assert row.data["fulfilled_level"] == "province"
        assert row.data["pool"]["code"] == "prov" and row.data["pool_reason"] == "pool_overdue"
        assert row.data["department"] == "省教育厅考试院"
        assert_status(session, "confirmed", f"您的心愿已实现，您已确认（{day_text(clock.now())}）")
        kinds = list(session.scalars(select(AuditEvent.kind).where(AuditEvent.instance_id == wish)))
        assert kinds.count("escalated") == (3 if cadre_step == "lets_it_go_overdue" else 2)
        assert kinds.count("reminded") == 3 and kinds[-1] == "completed"


# ------------------------------------------------------------------------------ the cadre fulfils

def test_cadre_fulfils_and_the_youth_confirms(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        outbox.new(session)
        clock.advance(timedelta(hours=5))
        done = wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang")
        session.commit()
        fulfil = session.get(HumanTask, done.next_task_ids[0])
        assert (fulfil.bpmn_id, fulfil.candidate_role, fulfil.organisation_id, fulfil.assignee) == \
            ("Task_fulfil", "cadre", "qd-sn", "zhang")
        assert fulfil.due_at == clock.now() + timedelta(days=14)
        assert fulfil.remind_at == clock.now() + timedelta(days=11)
        assert outbox.new(session) == sorted([(youth, f"微心愿有回复：{TITLE}"), ("zhang", "新的待办：实现微心愿")])
        assert_status(session, "cadre_fulfil", "团干部张伟（市南区团委）已答应帮您实现心愿，正在办理，自5月1日起",
                      "cadre", "qd-sn", "zhang")
        with pytest.raises(NotFound):  # nothing to confirm before the wish is fulfilled
            wish_engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 5}, actor=youth)
        session.rollback()
        with pytest.raises(FormInvalid) as refused:  # "data without a work process" is forbidden: evidence needed
            wish_engine.complete_task(session, fulfil.id, {**CADRE_FULFILLED, "evidence": []}, "zhang")
        assert "evidence" in str(refused.value)
        with pytest.raises(NotAllowed):
            wish_engine.complete_task(session, fulfil.id, CADRE_FULFILLED, "li")
        clock.advance(timedelta(days=6))
        wish_engine.complete_task(session, fulfil.id, CADRE_FULFILLED, "zhang")
        session.commit()
        assert holding(session, wish) == []
        assert outbox.new(session) == [(youth, f"微心愿已实现，请确认：{TITLE}")]
        assert_status(session, "awaiting_confirmation",
                      "您的心愿已由团干部张伟实现，等待您确认；5月14日前未确认的将自动确认，自5月7日起",
                      "youth", None, youth)

    clock.advance(timedelta(days=2))
    with sessions() as session:
        wish_engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 4}, actor=youth)
        session.commit()
        assert outbox.new(session) == [("zhang", f"微心愿已确认：{TITLE}")]
        row = instance_row(session, wish)
        assert row.status == "completed" and row.data["fulfilled_level"] == "cadre"
        assert row.data["wish_outcome"]["rating"] == 4 and row.data["wish_outcome"]["fulfilled_by"] == "zhang"
        assert "pool" not in row.data
        assert_status(session, "confirmed", "您的心愿已实现，您已确认（5月9日）")


def test_confirmed_without_rating_and_an_invalid_rating_is_dropped(sessions, clock, wish_engine, youth):
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        fulfil = wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang").next_task_ids[0]
        wish_engine.complete_task(session, fulfil, CADRE_FULFILLED, "zhang")
        session.commit()
        wish_engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 9, "comment": "好"}, actor=youth)
        session.commit()
        outcome = instance_row(session, wish).data["wish_outcome"]
        assert (outcome["outcome"], outcome["rating"], outcome["comment"]) == ("confirmed", None, "好")
    with pytest.raises(ValueError):
        confirmation_payload(rating=0)
    assert confirmation_payload() == {} and confirmation_payload(3, "") == {"rating": 3}


def test_silence_for_seven_days_confirms_automatically(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        fulfil = wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang").next_task_ids[0]
        wish_engine.complete_task(session, fulfil, CADRE_FULFILLED, "zhang")
        session.commit()
        outbox.new(session)
        assert instance_row(session, wish).next_timer_at == clock.now() + timedelta(days=7)

    sweep(clock, sessions, wish_engine, timedelta(days=7) - MINUTE)
    with sessions() as session:
        assert instance_row(session, wish).status == "running" and outbox.new(session) == []
        assert wish_status(session, "wish-1").stage == "awaiting_confirmation"

    sweep(clock, sessions, wish_engine, 2 * MINUTE)
    with sessions() as session:
        row = instance_row(session, wish)
        assert row.status == "completed"
        assert row.data["wish_outcome"]["outcome"] == "auto_confirmed" and row.data["wish_outcome"]["rating"] is None
        assert outbox.new(session) == [("zhang", f"微心愿已自动确认：{TITLE}")]
        assert_status(session, "auto_confirmed", "您的心愿已实现，7天内未确认，已自动确认（5月8日）")
        with pytest.raises(NotFound):  # too late to confirm by hand
            wish_engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 5}, actor=youth)


# ------------------------------------------------------------------------- reminders and overdue

def test_the_cadre_is_reminded_on_day_two_and_not_before(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        reply = open_task(session, wish)
        assert (reply.remind_at, reply.due_at) == (clock.now() + timedelta(days=2), clock.now() + timedelta(days=3))
        outbox.new(session)
    sweep(clock, sessions, wish_engine, timedelta(days=2) - MINUTE)
    with sessions() as session:
        assert outbox.new(session) == []
    sweep(clock, sessions, wish_engine, 2 * MINUTE)
    with sessions() as session:
        assert outbox.new(session) == [("zhang", "提醒：回复微心愿")]
        assert holding(session, wish) == [("Task_reply", "cadre", "qd-sn", "zhang")]  # still the cadre's
        clock.advance(timedelta(hours=1))
        wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang")  # replies on day 2
        session.commit()
        assert holding(session, wish) == [("Task_fulfil", "cadre", "qd-sn", "zhang")]
    sweep(clock, sessions, wish_engine, timedelta(days=2))  # the reply deadline no longer applies
    with sessions() as session:
        assert holding(session, wish) == [("Task_fulfil", "cadre", "qd-sn", "zhang")]


def test_a_promised_wish_not_fulfilled_in_14_days_goes_to_the_pool(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang")
        session.commit()
        outbox.new(session)
    sweep(clock, sessions, wish_engine, timedelta(days=11) + MINUTE)
    with sessions() as session:
        assert outbox.new(session) == [("zhang", "提醒：实现微心愿")]
    sweep(clock, sessions, wish_engine, timedelta(days=3))
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd-sn", None)]
        assert outbox.new(session) == sorted([("zhang", "已逾期：实现微心愿"), ("S_coord", "新的待办：心愿池：协调实现微心愿"),
                                              (youth, f"微心愿转入心愿池：{TITLE}")])
        assert wish_status(session, "wish-1").stage == "pool"
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", {}, actor=youth)  # ends it: data is saved
        session.commit()
        assert instance_row(session, wish).data["pool_reason"] == "fulfil_overdue"


def test_a_cadre_who_tried_and_failed_passes_the_wish_to_the_pool(sessions, clock, wish_engine, youth):
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        fulfil = wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang").next_task_ids[0]
        with pytest.raises(FormInvalid):  # giving up needs a reason
            wish_engine.complete_task(session, fulfil, {"fulfil_outcome": "beyond_means"}, "zhang")
        wish_engine.complete_task(session, fulfil, {"fulfil_outcome": "beyond_means",
                                                    "reason": "联系的书店都没有这一套了。"}, "zhang")
        session.commit()
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd-sn", None)]
        wish_engine.claim(session, open_task(session, wish).id, "S_coord")
        wish_engine.complete_task(session, open_task(session, wish).id,
                                  {k: v for k, v in POOL_FULFILLED.items() if k != "department"}, "S_coord")
        session.commit()
        wish_engine.send_message(session, "wish-1", "wish_confirmed", {"rating": 3}, actor=youth)
        session.commit()
        row = instance_row(session, wish)
        assert row.data["fulfilled_level"] == "county" and row.data["pool_reason"] == "beyond_means"
        assert row.data["wish_outcome"]["fulfilled_by"] == "S_coord"


def test_the_province_pool_is_the_last_it_stays_there_with_a_reminder(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
    sweep(clock, sessions, wish_engine, timedelta(days=3) + MINUTE)     # no reply: county pool
    sweep(clock, sessions, wish_engine, timedelta(days=14) + MINUTE)    # city pool
    sweep(clock, sessions, wish_engine, timedelta(days=14) + MINUTE)    # province pool
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool_province", "coordinator", "prov", None)]
        task = open_task(session, wish)
        assert task.due_at is None and task.remind_at == task.created_at + timedelta(days=14)
        outbox.new(session)
    sweep(clock, sessions, wish_engine, timedelta(days=14) + MINUTE)
    with sessions() as session:
        assert outbox.new(session) == [("P_coord", "提醒：省级心愿池：协调实现微心愿")]
        assert holding(session, wish) == [("Task_pool_province", "coordinator", "prov", None)]
    sweep(clock, sessions, wish_engine, timedelta(days=60))  # nowhere further: it stays, nothing else fires
    with sessions() as session:
        assert outbox.new(session) == []
        assert holding(session, wish) == [("Task_pool_province", "coordinator", "prov", None)]
        assert instance_row(session, wish).next_timer_at is None
        assert wish_status(session, "wish-1").holder_organisation_name == "团省委"


def test_a_grassroots_cadres_wish_goes_to_the_county_pool(sessions, clock, wish_engine, youth):
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth, cadre="li", org="qd-sn-gw")
        assert holding(session, wish) == [("Task_reply", "cadre", "qd-sn-gw", "li")]
        wish_engine.complete_task(session, open_task(session, wish).id, REPLY_BEYOND, "li")
        session.commit()
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd-sn", None)]
        assert wish_status(session, "wish-1").text.startswith("您的心愿在市南区团委心愿池")


# ------------------------------------------------------------------------------------ withdrawal

def test_withdrawn_while_the_cadre_holds_it(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        outbox.new(session)
        clock.advance(timedelta(hours=3))
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", {"reason": "已经买到了"}, actor=youth)
        session.commit()
        assert holding(session, wish) == []
        assert outbox.new(session) == [("zhang", f"微心愿已撤回：{TITLE}")]
        assert "已经买到了" in session.scalar(select(Notification.body).order_by(Notification.id.desc()).limit(1))
        row = instance_row(session, wish)
        assert row.status == "completed" and row.next_timer_at is None
        assert row.data["wish_outcome"]["outcome"] == "withdrawn"
        assert row.data["wish_outcome"]["stage"] == "Task_reply"
        assert session.scalar(select(HumanTask.state).where(HumanTask.instance_id == wish)) == "cancelled"
        assert_status(session, "withdrawn", "您已撤回这个心愿（5月1日）")
    sweep(clock, sessions, wish_engine, timedelta(days=30))
    with sessions() as session:
        assert outbox.new(session) == []


def test_withdrawn_while_the_cadre_is_fulfilling_it(sessions, clock, wish_engine, youth):
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang")
        session.commit()
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", {}, actor=youth)
        session.commit()
        assert instance_row(session, wish).data["wish_outcome"]["stage"] == "Task_fulfil"
        assert session.scalar(select(Notification.recipient).order_by(Notification.id.desc()).limit(1)) == "zhang"


@pytest.mark.parametrize("claimed", [True, False])
def test_withdrawn_in_the_pool(sessions, clock, wish_engine, youth, claimed):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
    sweep(clock, sessions, wish_engine, timedelta(days=3) + MINUTE)   # overdue: the county pool
    sweep(clock, sessions, wish_engine, timedelta(days=14) + MINUTE)  # the city pool
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool", "coordinator", "qd", None)]
        if claimed:
            wish_engine.claim(session, open_task(session, wish).id, "Q_coord")
            session.commit()
        outbox.new(session)
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", {"reason": "不需要了"}, actor=youth)
        session.commit()
        assert holding(session, wish) == []
        assert outbox.new(session) == [("Q_coord", f"微心愿已撤回：{TITLE}")]  # the holder, claimed or not
        outcome = instance_row(session, wish).data["wish_outcome"]
        assert (outcome["outcome"], outcome["stage"], outcome["reason"]) == ("withdrawn", "Task_pool", "不需要了")
        assert wish_status(session, "wish-1").stage == "withdrawn"
    sweep(clock, sessions, wish_engine, timedelta(days=30))  # no escalation to the province any more
    with sessions() as session:
        assert outbox.new(session) == [] and holding(session, wish) == []


def test_withdrawn_in_the_province_pool(sessions, clock, wish_engine, youth):
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
    for days in (3, 14, 14):
        sweep(clock, sessions, wish_engine, timedelta(days=days) + MINUTE)
    with sessions() as session:
        assert holding(session, wish) == [("Task_pool_province", "coordinator", "prov", None)]
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", None, actor=youth)
        session.commit()
        assert instance_row(session, wish).data["wish_outcome"]["stage"] == "Task_pool_province"
        assert session.scalar(select(Notification.recipient).order_by(Notification.id.desc()).limit(1)) == "P_coord"


def test_withdrawn_while_waiting_for_confirmation(sessions, clock, wish_engine, youth):
    outbox = Outbox()
    with sessions() as session:
        wish = start_wish(session, wish_engine, youth)
        fulfil = wish_engine.complete_task(session, open_task(session, wish).id, REPLY_WILL, "zhang").next_task_ids[0]
        wish_engine.complete_task(session, fulfil, CADRE_FULFILLED, "zhang")
        session.commit()
        outbox.new(session)
        wish_engine.send_message(session, "wish-1", "wish_withdrawn", {"reason": "提交错了"}, actor=youth)
        session.commit()
        assert outbox.new(session) == [("zhang", f"微心愿已撤回：{TITLE}")]
        row = instance_row(session, wish)
        assert row.status == "completed" and row.next_timer_at is None  # the 7-day auto-confirmation is gone
        assert row.data["wish_outcome"]["stage"] == "awaiting_confirmation"
        with pytest.raises(NotFound):  # nothing waits any more
            wish_engine.send_message(session, "wish-1", "wish_withdrawn", {}, actor=youth)


# ------------------------------------------------------------------------------ status and pieces

def test_status_of_an_unknown_wish(sessions, wish_engine):
    with sessions() as session, pytest.raises(NotFound):
        wish_status(session, "wish-404")


def test_status_follows_the_newest_instance_and_the_audit_has_every_step(sessions, clock, wish_engine, youth):
    with sessions() as session:
        first = start_wish(session, wish_engine, youth, key="wish-7")
        wish_engine.send_message(session, "wish-7", "wish_withdrawn", {}, actor=youth)
        session.commit()
        second = start_wish(session, wish_engine, youth, key="wish-7", cadre="li", org="qd-sn-gw")
        status = wish_status(session, "wish-7")
        assert (status.instance_id, status.stage, status.holder_assignee) == (second, "cadre_reply", "li")
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.instance_id == first, AuditEvent.kind == "message")) == 1


@pytest.mark.parametrize("code,expected", [("qd-sn-gw-1", "qd-sn"), ("qd-sn-gw", "qd-sn"), ("qd-sn", "qd-sn"),
                                           ("jn-lx", "jn-lx"), ("qd", "qd"), ("prov", "prov")])
def test_county_committee_is_the_home_of_a_pool(sessions, clock, league, code, expected):
    with sessions() as session:
        call = ServiceCall(session=session, instance_id=None, organisation_id=code, now=clock.now(), task_data={})
        assert registry.call("county_committee", call, {"organisation": None})["code"] == expected
