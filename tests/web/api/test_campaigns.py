"""Campaigns over the API: launch, progress, dashboard, cancel, with the campaign pages' rights."""
from __future__ import annotations

import pytest

from .conftest import assert_problem

LAUNCH = {"process_id": "congress_study", "title": "青岛市十九大精神宣讲", "organisation": "qd", "target_kind": "cadre",
          "window_start": "2026-05-01T00:00:00+08:00", "window_end": "2026-12-31T23:59:00+08:00",
          "parameters": {"due_at": "2026-11-30", "theme": "学习贯彻党的十九大精神"}}


@pytest.fixture
def congress(app, deploy):
    deploy("congress_study")
    yield
    queue = app.extensions["lianqing_jobs"]
    if hasattr(queue, "stop"):
        queue.stop()


def _drain(app):
    queue = app.extensions["lianqing_jobs"]
    if getattr(queue, "started", False):
        queue.drain(60)


def test_an_organiser_launches_and_follows_a_campaign(app, api, congress):
    qd = api("Q_org", ["campaigns:read", "campaigns:write"])
    launched = qd.post("/api/v1/campaigns", json=LAUNCH)
    assert launched.status_code == 201, launched.text
    campaign = launched.get_json()
    assert (campaign["organisation"], campaign["launched_by"], campaign["target_kind"]) == ("qd", "Q_org", "cadre")
    assert launched.headers["Location"].endswith(f"/api/v1/campaigns/{campaign['id']}")
    _drain(app)
    progress = qd.get(f"/api/v1/campaigns/{campaign['id']}/progress").get_json()
    assert (progress["total"], progress["launched"], progress["done"]) == (2, 2, True)  # zhang and li
    dashboard = qd.get(f"/api/v1/campaigns/{campaign['id']}/dashboard").get_json()
    assert dashboard["organisation"] == "qd" and dashboard["totals"]["total"] == 2
    assert [row["organisation"] for row in dashboard["rows"]] == ["qd-sn"]
    seen_from_county = api("S_org").get(f"/api/v1/campaigns/{campaign['id']}/dashboard?organisation=qd-sn")
    assert seen_from_county.get_json()["totals"]["launched"] == 2
    listed = qd.get("/api/v1/campaigns").get_json()
    assert [c["id"] for c in listed["items"]] == [campaign["id"]] and listed["next_cursor"] is None
    assert qd.get(f"/api/v1/campaigns/{campaign['id']}").get_json()["status"] == "launched"
    cancelled = qd.post(f"/api/v1/campaigns/{campaign['id']}/cancel", json={"reason": "重复发起"})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert_problem(qd.post(f"/api/v1/campaigns/{campaign['id']}/cancel", json={"reason": "again"}), 409)


def test_campaign_rights(app, api, congress):
    assert_problem(api("J_org").post("/api/v1/campaigns", json=LAUNCH), 403, "NotAllowed")
    assert_problem(api("zhang").post("/api/v1/campaigns", json=LAUNCH), 403)
    assert_problem(api("Q_org", ["campaigns:read"]).post("/api/v1/campaigns", json=LAUNCH), 403, "ScopeMissing")
    campaign = api("Q_org").post("/api/v1/campaigns", json=LAUNCH).get_json()
    _drain(app)
    path = f"/api/v1/campaigns/{campaign['id']}"
    assert_problem(api("J_org").get(path), 403)
    assert_problem(api("J_org").get(f"{path}/progress"), 403)
    assert_problem(api("S_org").get(f"{path}/dashboard?organisation=qd"), 403)  # above the county's own view
    assert_problem(api("S_org").post(f"{path}/cancel", json={"reason": "x"}), 403)
    assert_problem(api("Q_org").get("/api/v1/campaigns/424242"), 404)
    assert_problem(api(None).get(path), 401)


def test_launch_field_errors(api, congress):
    bad = dict(LAUNCH, window_end="2026-04-01T00:00:00+08:00", parameters={"theme": "x"})
    errors = assert_problem(api("Q_org").post("/api/v1/campaigns", json=bad), 422, "FormInvalid")["errors"]
    assert {"window_end", "due_at"} <= {e["field"] for e in errors}
    naive = assert_problem(api("Q_org").post("/api/v1/campaigns", json=dict(LAUNCH, window_start="2026-05-01T00:00")),
                           422)
    assert naive["errors"][0]["field"] == "window_start"
    assert_problem(api("Q_org").post("/api/v1/campaigns", json=dict(LAUNCH, process_id="activity_record")), 404)
