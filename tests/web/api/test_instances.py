"""Instances over the API: start, read with diagram state and audit trail, message, cancel."""
from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import assert_problem


@pytest.fixture
def start_body(clock, deploy):
    deploy("activity_record")
    return {"process_id": "activity_record", "organisation": "qd-sn",
            "data": {"deadline": (clock.now() + timedelta(days=5)).isoformat()}}


def test_an_organiser_starts_an_instance_in_their_subtree(api, start_body):
    response = api("S_org").post("/api/v1/instances", json=start_body)
    assert response.status_code == 201, response.text
    body = response.get_json()
    assert body["status"] == "running" and body["organisation"] == "qd-sn" and body["started_by"] == "S_org"
    assert len(body["new_task_ids"]) == 1
    assert response.headers["Location"].endswith(f"/api/v1/instances/{body['id']}")
    assert api("Q_org").post("/api/v1/instances", json=start_body).status_code == 201  # from above


def test_starting_is_refused_outside_one_s_subtree_or_role(api, start_body):
    assert_problem(api("J_org").post("/api/v1/instances", json=start_body), 403, "NotAllowed")
    assert_problem(api("zhang").post("/api/v1/instances", json=start_body), 403)
    assert_problem(api("S_coord").post("/api/v1/instances", json=start_body), 403)
    assert_problem(api("S_org", ["instances:read"]).post("/api/v1/instances", json=start_body), 403, "ScopeMissing")
    assert_problem(api("S_org").post("/api/v1/instances", json=dict(start_body, organisation="nowhere")), 403)
    assert_problem(api("S_org").post("/api/v1/instances", json=dict(start_body, process_id="nope")), 404)
    missing = api("S_org").post("/api/v1/instances", json={"data": {}})
    assert {e["field"] for e in assert_problem(missing, 422)["errors"]} == {"process_id", "organisation"}
    assert_problem(api(None).post("/api/v1/instances", json=start_body), 401)


def test_an_instance_with_its_diagram_state_open_tasks_and_audit_trail(api, start_body):
    created = api("S_org").post("/api/v1/instances", json=start_body).get_json()
    response = api("Q_org").get(f"/api/v1/instances/{created['id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["diagram"]["ready"] == ["Task_record"] and "StartEvent_1" in body["diagram"]["completed"]
    assert [t["id"] for t in body["open_tasks"]] == created["new_task_ids"]
    assert [e["kind"] for e in body["audit"]] == ["started", "task_created"]
    assert body["audit_next_cursor"] is None
    page = api("S_org").get(f"/api/v1/instances/{created['id']}/audit?limit=1").get_json()
    assert [e["kind"] for e in page["items"]] == ["started"]
    rest = api("S_org").get(f"/api/v1/instances/{created['id']}/audit?limit=1&cursor={page['next_cursor']}")
    assert [e["kind"] for e in rest.get_json()["items"]] == ["task_created"]
    diagram = api("S_org").get(f"/api/v1/instances/{created['id']}/diagram").get_json()
    assert "<bpmn:definitions" in diagram["bpmn_xml"] and diagram["ready"] == ["Task_record"]


def test_who_may_see_an_instance(api, start_body):
    created = api("S_org").post("/api/v1/instances", json=start_body).get_json()
    path = f"/api/v1/instances/{created['id']}"
    assert_problem(api("J_org").get(path), 403)
    assert_problem(api("zhang").get(path), 403)  # offered the task, but holds none of it yet
    api("zhang").post(f"/api/v1/tasks/{created['new_task_ids'][0]}/claim")
    assert api("zhang").get(path).status_code == 200
    assert_problem(api("S_org").get("/api/v1/instances/424242"), 404)
    assert_problem(api("J_org").get(f"{path}/diagram"), 403)
    assert_problem(api("J_org").get(f"{path}/audit"), 403)
    assert_problem(api("S_org", ["tasks:read"]).get(path), 403, "ScopeMissing")


def test_messages_reach_the_instances_of_the_business_key(api, deploy, youth_account):
    deploy("micro_wish")
    youth = youth_account()
    body = {"process_id": "micro_wish", "organisation": "qd-sn", "business_key": "wish-api-1",
            "data": {"youth_assignee": youth, "cadre_assignee": "zhang", "wish_title": "想要一套复习资料",
                     "wish_description": "明年考研，想借一套资料。"}}
    created = api("S_org").post("/api/v1/instances", json=body).get_json()
    path = f"/api/v1/instances/{created['id']}/messages"
    assert_problem(api("J_org").post(path, json={"name": "wish_withdrawn"}), 403)
    assert_problem(api("S_org").post(path, json={"name": "no_such_message"}), 404, "NotFound")
    delivered = api("S_org").post(path, json={"name": "wish_withdrawn", "payload": {"reason": "测试"}})
    assert delivered.status_code == 200 and delivered.get_json() == {"delivered_to": [created["id"]]}
    assert api("S_org").get(f"/api/v1/instances/{created['id']}").get_json()["status"] == "completed"


def test_a_message_needs_a_business_key(api, start_body):
    created = api("S_org").post("/api/v1/instances", json=start_body).get_json()
    response = api("S_org").post(f"/api/v1/instances/{created['id']}/messages", json={"name": "x"})
    assert "业务键" in assert_problem(response, 422, "WorkflowFailed")["detail"]


def test_cancel(api, start_body):
    created = api("S_org").post("/api/v1/instances", json=start_body).get_json()
    path = f"/api/v1/instances/{created['id']}/cancel"
    assert_problem(api("J_org").post(path, json={"reason": "不是我的"}), 403)
    assert_problem(api("S_org").post(path, json={}), 422)
    response = api("S_org").post(path, json={"reason": "重复发起"})
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert_problem(api("S_org").post(path, json={"reason": "again"}), 409)
    task = api("S_org").get(f"/api/v1/instances/{created['id']}").get_json()
    assert task["open_tasks"] == [] and "cancelled" in [e["kind"] for e in task["audit"]]
