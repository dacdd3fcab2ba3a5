"""Points, rankings and bulletins over the API, with the assessment pages' rights."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.workflows.test_bulletins import build_month

from .conftest import Caller, assert_problem


@pytest.fixture
def month(app, sessions, clock):
    """May 2026 of tests/workflows/test_bulletins.py, ranked on 31 May; the clock on 1 June."""
    built = build_month(sessions, clock)
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=UTC))
    return built


@pytest.fixture
def as_user(app, token_maker, month):
    def caller(username: str, scopes=None) -> Caller:
        return Caller(app.test_client(), token_maker(username, scopes))
    return caller


def test_rankings_of_my_subtree(as_user):
    qd = as_user("Q_org", ["assessment:read"])
    standing = qd.get("/api/v1/assessment/organisations/qd").get_json()
    assert standing["organisation"] == "qd" and standing["day"] == "2026-05-31"
    assert standing["rank_among_siblings"] == 1 and standing["siblings"] == 2
    children = qd.get("/api/v1/assessment/organisations/qd/children").get_json()
    assert [row["organisation"] for row in children["items"]] == ["qd-sn"] and children["next_cursor"] is None
    assert isinstance(children["items"][0]["score"], str)
    cadres = qd.get("/api/v1/assessment/organisations/qd/cadres?limit=2").get_json()
    assert len(cadres["items"]) == 2 and cadres["next_cursor"]
    rest = qd.get(f"/api/v1/assessment/organisations/qd/cadres?limit=2&cursor={cadres['next_cursor']}").get_json()
    ranks = [row["rank"] for row in cadres["items"] + rest["items"]]
    assert ranks == sorted(ranks) and len(ranks) == 4  # zhang, li, zhao, sun
    assert qd.get("/api/v1/assessment/organisations/qd?day=2026-05-15").status_code == 404  # nothing computed then
    assert_problem(qd.get("/api/v1/assessment/organisations/qd/children?sort=height"), 422)
    assert_problem(qd.get("/api/v1/assessment/organisations/jn"), 403)
    assert_problem(qd.get("/api/v1/assessment/organisations/prov"), 403)
    assert_problem(as_user("Q_org", ["tasks:read"]).get("/api/v1/assessment/organisations/qd"), 403, "ScopeMissing")


def test_points_of_a_cadre(as_user):
    zhang = as_user("zhang")
    zhang_id = zhang.get("/api/v1/me").get_json()["cadre_id"]
    score = zhang.get(f"/api/v1/assessment/cadres/{zhang_id}/points?year=2026").get_json()
    assert score["cadre_id"] == zhang_id and score["year"] == 2026
    assert isinstance(score["total"], str) and "activities" in score["by_category"]
    assert as_user("Q_org").get(f"/api/v1/assessment/cadres/{zhang_id}/points").status_code == 200
    assert_problem(as_user("J_org").get(f"/api/v1/assessment/cadres/{zhang_id}/points"), 403)
    assert_problem(as_user("Q_org").get("/api/v1/assessment/cadres/424242/points"), 404)


def test_monthly_bulletin(as_user):
    qd = as_user("Q_org")
    bulletin = qd.get("/api/v1/assessment/bulletins/qd/2026-05")
    assert bulletin.status_code == 200, bulletin.text
    body = bulletin.get_json()
    assert body["month"] == "2026-05" and "月度通报" in body["title"] and body["standing"]["organisation"] == "qd"
    assert body["revoked_records"] == 1 and body["facts"]["revoked"] == 1
    assert_problem(qd.get("/api/v1/assessment/bulletins/qd/2026-04"), 404)
    assert_problem(qd.get("/api/v1/assessment/bulletins/qd/2026-13"), 404)
    assert_problem(qd.get("/api/v1/assessment/bulletins/jn/2026-05"), 403)


def test_a_cadre_sees_their_own_organisation_and_below(as_user):
    zhang = as_user("zhang")
    assert zhang.get("/api/v1/assessment/organisations/qd-sn/cadres").status_code == 200
    assert_problem(zhang.get("/api/v1/assessment/organisations/qd"), 403)
