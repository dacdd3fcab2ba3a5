"""Tasks over the API: the inbox, one task with its form and ETag, claim, unclaim, delegate, complete."""
from __future__ import annotations

from tests.web.conftest import GOOD_RECORD

from .conftest import assert_problem


def test_my_inbox_lists_offered_and_assigned_tasks_with_cursor_pages(api, record_task):
    first, second, third = record_task(days=1), record_task(days=2), record_task(days=3)
    zhang = api("zhang")
    page = zhang.get("/api/v1/tasks?limit=2")
    assert page.status_code == 200
    body = page.get_json()
    assert [t["id"] for t in body["items"]] == [first, second] and body["next_cursor"]
    assert body["items"][0]["process_id"] == "activity_record" and body["items"][0]["state"] == "ready"
    rest = zhang.get(f"/api/v1/tasks?limit=2&cursor={body['next_cursor']}").get_json()
    assert [t["id"] for t in rest["items"]] == [third] and rest["next_cursor"] is None
    assert zhang.get("/api/v1/tasks?process_id=no_such_process").get_json()["items"] == []
    assert api("wang").get("/api/v1/tasks").get_json() == {"items": [], "next_cursor": None}  # another city


def test_inbox_refuses_a_bad_cursor_and_a_limit_out_of_range(api, league):
    zhang = api("zhang")
    assert_problem(zhang.get("/api/v1/tasks?cursor=not-a-cursor"), 400)
    assert_problem(zhang.get("/api/v1/tasks?cursor=eyJvZmZzZXQiOiJ4In0"), 400)  # {"offset":"x"}
    body = assert_problem(zhang.get("/api/v1/tasks?limit=201"), 422)
    assert body["errors"][0]["field"] == "limit" and body["errors"][0]["location"] == "query"
    assert_problem(zhang.get("/api/v1/tasks?limit=0"), 422)


def test_a_task_comes_with_its_form_schema_and_an_etag(api, record_task):
    task_id = record_task()
    response = api("zhang").get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == task_id and body["form_schema"]["required"]
    assert body["instructions"] and body["organisation"] == "qd-sn" and body["candidate_role"] == "cadre"
    assert response.headers["ETag"].startswith('"') and len(response.headers["ETag"]) == 34


def test_task_rights_are_the_pages_rights(api, record_task):
    task_id = record_task()
    assert_problem(api("wang").get(f"/api/v1/tasks/{task_id}"), 403, "NotAllowed")    # outside the subtree
    assert api("Q_org").get(f"/api/v1/tasks/{task_id}").status_code == 200             # oversees qd-sn
    assert_problem(api("zhang", ["tasks:read"]).post(f"/api/v1/tasks/{task_id}/claim"), 403, "ScopeMissing")
    assert_problem(api(None).get(f"/api/v1/tasks/{task_id}"), 401)
    assert_problem(api("zhang").get("/api/v1/tasks/987654321"), 404, "NotFound")
    assert_problem(api("zhang").get("/api/v1/tasks/99999999999999999999999"), 404)
    assert_problem(api("S_insp").post(f"/api/v1/tasks/{task_id}/claim"), 403, "NotAllowed")  # not a cadre


def test_claim_unclaim_and_delegate(api, record_task):
    task_id = record_task()
    zhang, li = api("zhang"), api("li")
    claimed = zhang.post(f"/api/v1/tasks/{task_id}/claim")
    assert claimed.status_code == 200 and claimed.get_json()["assignee"] == "zhang"
    assert claimed.get_json()["state"] == "claimed"
    assert_problem(li.post(f"/api/v1/tasks/{task_id}/claim"), 403)  # zhang holds it now
    released = zhang.post(f"/api/v1/tasks/{task_id}/unclaim")
    assert released.get_json()["assignee"] is None and released.headers["ETag"] != claimed.headers["ETag"]
    zhang.post(f"/api/v1/tasks/{task_id}/claim")
    assert_problem(zhang.post(f"/api/v1/tasks/{task_id}/delegate", json={"assignee": "nobody"}), 404)
    assert_problem(zhang.post(f"/api/v1/tasks/{task_id}/delegate", json={}), 422)
    assert_problem(api("wang").post(f"/api/v1/tasks/{task_id}/delegate", json={"assignee": "wang"}), 403)
    delegated = zhang.post(f"/api/v1/tasks/{task_id}/delegate", json={"assignee": "li"})
    assert delegated.status_code == 200 and delegated.get_json()["assignee"] == "li"
    assert [t["id"] for t in li.get("/api/v1/tasks").get_json()["items"]] == [task_id]
    assert_problem(zhang.post(f"/api/v1/tasks/{task_id}/claim"), 403)


def test_claim_with_a_stale_if_match_is_a_412(api, record_task):
    task_id = record_task()
    zhang = api("zhang")
    etag = zhang.get(f"/api/v1/tasks/{task_id}").headers["ETag"]
    api("zhang").post(f"/api/v1/tasks/{task_id}/claim")  # from another device
    assert_problem(zhang.post(f"/api/v1/tasks/{task_id}/unclaim", headers={"If-Match": etag}), 412)


def test_complete_needs_if_match_and_a_stale_client_gets_412_not_a_lost_update(api, record_task):
    task_id = record_task(assignee="zhang")
    phone, laptop = api("zhang"), api("zhang")
    etag = phone.get(f"/api/v1/tasks/{task_id}").headers["ETag"]
    body = assert_problem(phone.post(f"/api/v1/tasks/{task_id}/complete", json={"data": GOOD_RECORD}), 428)
    assert "If-Match" in body["detail"]
    # Meanwhile the same task is completed from the laptop.
    laptop_etag = laptop.get(f"/api/v1/tasks/{task_id}").headers["ETag"]
    assert laptop_etag == etag
    done = laptop.post(f"/api/v1/tasks/{task_id}/complete", json={"data": GOOD_RECORD},
                       headers={"If-Match": laptop_etag})
    assert done.status_code == 200
    assert done.get_json()["completed_by"] == "zhang" and len(done.get_json()["next_task_ids"]) == 1
    # The phone's screen is stale: 412, nothing overwritten.
    stale = phone.post(f"/api/v1/tasks/{task_id}/complete", json={"data": dict(GOOD_RECORD, youth_count=99)},
                       headers={"If-Match": etag})
    assert_problem(stale, 412)
    # With the current ETag the answer is that it is done already.
    current = phone.get(f"/api/v1/tasks/{task_id}")
    assert current.get_json()["state"] == "completed" and current.headers["ETag"] != etag
    again = phone.post(f"/api/v1/tasks/{task_id}/complete", json={"data": GOOD_RECORD},
                       headers={"If-Match": current.headers["ETag"]})
    assert_problem(again, 409, "TaskAlreadyCompleted")


def test_complete_with_invalid_data_lists_the_fields(api, record_task):
    task_id = record_task(assignee="zhang")
    zhang = api("zhang")
    etag = zhang.get(f"/api/v1/tasks/{task_id}").headers["ETag"]
    response = zhang.post(f"/api/v1/tasks/{task_id}/complete", json={"data": {"kind": "league_lecture"}},
                          headers={"If-Match": etag})
    body = assert_problem(response, 422, "FormInvalid")
    assert body["type"] == "urn:lianqing:problem:form-invalid"
    assert {"place", "youth_count"} <= {e["field"] for e in body["errors"]}
    not_an_object = zhang.post(f"/api/v1/tasks/{task_id}/complete", json={"data": [1, 2]}, headers={"If-Match": "*"})
    assert assert_problem(not_an_object, 422)["errors"][0]["field"] == "data"
    assert zhang.post(f"/api/v1/tasks/{task_id}/complete", json={"data": GOOD_RECORD},
                      headers={"If-Match": "*"}).status_code == 200


def test_only_the_assignee_completes(api, record_task):
    task_id = record_task(assignee="zhang")
    response = api("li").post(f"/api/v1/tasks/{task_id}/complete", json={"data": GOOD_RECORD},
                              headers={"If-Match": "*"})
    assert_problem(response, 403, "NotAllowed")
