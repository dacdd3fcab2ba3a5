"""A young person's micro-wishes and questions over the API, and who else may follow them."""
from __future__ import annotations

import pytest

from tests.workflows.test_process_micro_wish import CADRE_FULFILLED, REPLY_WILL
from tests.workflows.test_process_youth_voice import ANSWER

from .conftest import assert_problem

WISH = {"title": "想要一套考研复习资料", "description": "明年考研，家里买不起全套资料，想借或要一套。"}


@pytest.fixture
def youth(api, deploy, youth_account):
    """Xiaoming, signed up on the phone, with a token; micro_wish and youth_voice deployed."""
    deploy("micro_wish")
    deploy("youth_voice")
    return api(youth_account("xiaoming"), ["wishes:read", "wishes:write"])


@pytest.fixture
def zhang_id(youth):
    return youth.get("/api/v1/me/cadres").get_json()["items"][0]["id"]


def _complete(caller, task_id, data):
    response = caller.post(f"/api/v1/tasks/{task_id}/complete", json={"data": data}, headers={"If-Match": "*"})
    assert response.status_code == 200, response.text
    return response.get_json()


def _open_task(caller, key):
    tasks = caller.get("/api/v1/tasks").get_json()["items"]
    return next(t["id"] for t in tasks if t["process_id"] in ("micro_wish", "youth_voice"))


def test_a_youth_sees_the_cadres_who_contact_them(youth):
    body = youth.get("/api/v1/me/cadres").get_json()
    assert [(c["name"], c["organisation"]) for c in body["items"]] == [("张伟", "qd-sn")]


def test_post_a_wish_and_follow_it_to_confirmation(api, youth, zhang_id):
    posted = youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=zhang_id))
    assert posted.status_code == 201, posted.text
    wish = posted.get_json()
    key = wish["business_key"]
    assert posted.headers["Location"].endswith(f"/api/v1/wishes/{key}")
    assert (wish["stage"], wish["holder_assignee"], wish["title"]) == ("cadre_reply", "zhang", WISH["title"])
    assert "张伟" in wish["text"]
    assert [w["business_key"] for w in youth.get("/api/v1/wishes").get_json()["items"]] == [key]
    assert "尚未实现" in assert_problem(youth.post(f"/api/v1/wishes/{key}/confirm", json={}), 409, "NotNow")["detail"]

    zhang = api("zhang")
    assert zhang.get(f"/api/v1/wishes/{key}").status_code == 200  # the cadre holding it may follow it
    _complete(zhang, _open_task(zhang, key), REPLY_WILL)
    assert youth.get(f"/api/v1/wishes/{key}").get_json()["stage"] == "cadre_fulfil"
    _complete(zhang, _open_task(zhang, key), CADRE_FULFILLED)
    assert youth.get(f"/api/v1/wishes/{key}").get_json()["stage"] == "awaiting_confirmation"

    assert_problem(youth.post(f"/api/v1/wishes/{key}/confirm", json={"rating": 6}), 422)
    confirmed = youth.post(f"/api/v1/wishes/{key}/confirm", json={"rating": 5, "comment": "太感谢了！"})
    assert confirmed.status_code == 200 and confirmed.get_json()["stage"] == "confirmed"


def test_withdraw_a_wish(youth, zhang_id):
    key = youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=zhang_id)).get_json()["business_key"]
    withdrawn = youth.post(f"/api/v1/wishes/{key}/withdraw", json={"reason": "已经买到了"})
    assert withdrawn.status_code == 200 and withdrawn.get_json()["stage"] == "withdrawn"
    assert_problem(youth.post(f"/api/v1/wishes/{key}/withdraw", json={}), 409)


def test_only_the_youth_who_posted_acts_on_a_wish_and_only_to_a_cadre_they_know(api, youth, zhang_id,
                                                                                youth_account):
    key = youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=zhang_id)).get_json()["business_key"]
    other = api(youth_account("xiaohong"), ["wishes:read", "wishes:write"])
    assert_problem(other.get(f"/api/v1/wishes/{key}"), 403)
    assert_problem(other.post(f"/api/v1/wishes/{key}/withdraw", json={}), 403)
    assert other.get("/api/v1/wishes").get_json()["items"] == []
    assert api("S_coord").get(f"/api/v1/wishes/{key}").status_code == 200   # staff over qd-sn
    assert_problem(api("J_org").get(f"/api/v1/wishes/{key}"), 403)
    assert_problem(api("zhang").post(f"/api/v1/wishes/{key}/withdraw", json={}), 403)
    wang_id = api("J_org").get("/api/v1/cadres?organisation=jn").get_json()["items"][0]["id"]
    assert "联系你" in assert_problem(youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=wang_id)), 403)["detail"]
    assert_problem(youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=424242)), 404)
    assert_problem(api("zhang").post("/api/v1/wishes", json=dict(WISH, cadre_id=zhang_id)), 403)
    assert_problem(youth.post("/api/v1/wishes", json={"cadre_id": zhang_id, "title": "x"}), 422)
    assert_problem(youth.get("/api/v1/wishes/wish-none"), 404)
    assert_problem(api("zhang", ["tasks:read"]).get(f"/api/v1/wishes/{key}"), 403, "ScopeMissing")


def test_ask_a_question_and_rate_the_answer(api, youth, zhang_id):
    asked = youth.post("/api/v1/questions", json={"cadre_id": zhang_id, "question": "暑期有哪些志愿服务岗位？"})
    assert asked.status_code == 201, asked.text
    question = asked.get_json()
    key = question["business_key"]
    assert (question["stage"], question["holder_assignee"], question["answer"]) == ("awaiting_answer", "zhang", None)
    assert_problem(youth.post(f"/api/v1/questions/{key}/rate", json={"rating": 5}), 409)
    zhang = api("zhang")
    _complete(zhang, _open_task(zhang, key), ANSWER)
    answered = youth.get(f"/api/v1/questions/{key}").get_json()
    assert (answered["stage"], answered["answer"], answered["answered_by"]) == ("awaiting_rating", ANSWER["answer"],
                                                                               "zhang")
    assert_problem(youth.post(f"/api/v1/questions/{key}/rate", json={"rating": 0}), 422)
    rated = youth.post(f"/api/v1/questions/{key}/rate", json={"rating": 4, "comment": "很及时"})
    assert rated.status_code == 200
    assert (rated.get_json()["stage"], rated.get_json()["rating"]) == ("closed", 4)
    assert [q["business_key"] for q in youth.get("/api/v1/questions").get_json()["items"]] == [key]
    assert_problem(api("J_org").get(f"/api/v1/questions/{key}"), 403)
    assert_problem(zhang.post(f"/api/v1/questions/{key}/rate", json={"rating": 1}), 403)


def test_wish_lists_are_paginated(youth, zhang_id):
    keys = [youth.post("/api/v1/wishes", json=dict(WISH, cadre_id=zhang_id)).get_json()["business_key"]
            for _ in range(3)]
    first = youth.get("/api/v1/wishes?limit=2").get_json()
    rest = youth.get(f"/api/v1/wishes?limit=2&cursor={first['next_cursor']}").get_json()
    assert [w["business_key"] for w in first["items"] + rest["items"]] == keys[::-1]
    assert rest["next_cursor"] is None
