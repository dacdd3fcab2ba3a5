"""The five-ones quota page: values in force and where from, setting them (不能层层加码), compliance, rights, CSRF."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from tests.web.conftest import csrf_token
from tests.workflows.test_bulletins import build_month
from web import quotas as quota_pages
from workflows.quotas import QuotaSetting


@pytest.fixture
def month(app, sessions, clock):
    """May 2026 of tests/workflows/test_bulletins.py; the clock on 1 June (the May–June period is running)."""
    built = build_month(sessions, clock)
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))
    return built


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def settings(sessions) -> dict[str, dict]:
    from workflows.models import Organisation
    with sessions() as session:
        return {code: {name: getattr(row, name) for name in ("cadre_activities", "contact_target")}
                for row, code in session.execute(select(QuotaSetting, Organisation.code)
                                                 .join(Organisation, Organisation.id == QuotaSetting.organisation_id))}


def post(client, code: str, token: str | None, **values):
    data = {name: "" for name in ("cadre_activities", "part_time_activities", "organ_activities", "contact_target",
                                  "part_time_contact_target")}
    data.update({name: str(value) for name, value in values.items()})
    if token is not None:
        data["csrf_token"] = token
    return client.post(f"/assessment/quotas/{code}", data=data)


def test_the_page_shows_the_values_in_force_their_source_and_the_compliance(client, sign_in, month):
    sign_in("Q_org")
    html = page(client, "/assessment/quotas/qd")
    assert "青岛团市委 · “五个一”指标" in html and "《通知》" in html and 'name="cadre_activities"' in html
    assert "2026-05-01 – 2026-06-30" in html  # the full-time cadres' current period
    assert 'href="/assessment/quotas/qd-sn"' in html  # drill down to the child
    rows = re.findall(r'<a href="/points/(c-\w+)">([^<]+)</a>.*?<td>(?:<strong>)?(达标|未达标)', html, re.S)
    assert ("c-zhang", "张伟", "达标") in rows and ("c-zhao", "赵磊", "未达标") in rows
    assert rows[-1][2] == "达标"  # those short of their quota come first
    html = page(client, "/assessment/quotas/qd-sn")
    assert "市南区团委" in html and "张伟" in html and "赵磊" not in html


def test_an_organiser_lowers_a_value_and_below_it_cannot_be_raised_again(client, sign_in, month, sessions):
    sign_in("Q_org")
    token = csrf_token(client, "/assessment/quotas/qd")
    response = post(client, "qd", token, cadre_activities=4)
    assert response.status_code == 302 and response.headers["Location"].endswith("/assessment/quotas/qd")
    html = page(client, "/assessment/quotas/qd")
    assert "已保存「青岛团市委」的“五个一”指标" in html and "本级" in html
    assert settings(sessions) == {"qd": {"cadre_activities": 4, "contact_target": None}}
    html = page(client, "/assessment/quotas/qd-sn")
    assert re.search(r'<td class="num">4</td>\s*<td>青岛团市委</td>', html)  # inherited, and from where

    client.post("/logout", data={"csrf_token": token})
    sign_in("S_org")
    token = csrf_token(client, "/assessment/quotas/qd-sn")
    response = post(client, "qd-sn", token, cadre_activities=5, contact_target=80)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(r'<span class="field-error" id="e-cadre_activities">([^<]+)</span>', html).group(1)
    assert "不能层层加码" in error and "青岛团市委" in error and "最多4" in error and "/" not in error
    assert 'aria-invalid="true"' in html and 'value="5"' in html and 'value="80"' in html  # nothing typed is lost
    assert "e-contact_target" not in html
    assert settings(sessions) == {"qd": {"cadre_activities": 4, "contact_target": None}}  # nothing written
    response = post(client, "qd-sn", token, cadre_activities="three", organ_activities=0)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "e-cadre_activities" in html and "e-organ_activities" in html
    assert post(client, "qd-sn", token, cadre_activities=3, contact_target=80).status_code == 302
    assert settings(sessions)["qd-sn"] == {"cadre_activities": 3, "contact_target": 80}
    assert post(client, "qd-sn", token).status_code == 302  # all blank: inherit again
    assert settings(sessions)["qd-sn"] == {"cadre_activities": None, "contact_target": None}


def test_only_organisers_of_the_organisation_or_above_may_set_and_a_post_needs_its_token(client, sign_in, month,
                                                                                        sessions):
    sign_in("S_coord")  # a coordinator sees 市南区's page but may not change it
    html = page(client, "/assessment/quotas/qd-sn")
    assert "张伟" in html and 'name="cadre_activities"' not in html
    token = csrf_token(client, "/assessment/quotas/qd-sn") if 'name="csrf_token"' in html else \
        csrf_token(client, "/assessment/organisations/qd-sn/cadres")
    assert post(client, "qd-sn", token, cadre_activities=3).status_code == 403
    page(client, "/assessment/quotas/qd", 403)
    client.post("/logout", data={"csrf_token": token})

    sign_in("S_org")  # an organiser below may not set the quotas above
    token = csrf_token(client, "/assessment/quotas/qd-sn")
    assert post(client, "qd", token, cadre_activities=3).status_code == 403
    assert post(client, "qd-sn", None, cadre_activities=3).status_code == 400  # no CSRF token
    page(client, "/assessment/quotas/nowhere", 404)
    client.post("/logout", data={"csrf_token": token})

    sign_in("J_org")
    page(client, "/assessment/quotas/qd", 403)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/assessment/quotas/jn")})
    sign_in("P_org")  # the province organiser may set any
    token = csrf_token(client, "/assessment/quotas/qd-sn")
    assert post(client, "qd-sn", token, part_time_activities=4).status_code == 302
    assert settings(sessions) == {"qd-sn": {"cadre_activities": None, "contact_target": None}}
    assert client.get("/assessment/quotas/qd-sn").status_code == 200


def test_the_cadre_list_is_paginated(client, sign_in, month, monkeypatch):
    monkeypatch.setattr(quota_pages, "PAGE_SIZE", 2)
    sign_in("P_org")
    first = page(client, "/assessment/quotas/prov")
    assert "第 1 / 3 页（共 5 条）" in first and len(re.findall(r'<a href="/points/c-', first)) == 2
    third = page(client, "/assessment/quotas/prov?page=3")
    assert len(re.findall(r'<a href="/points/c-', third)) == 1 and 'rel="next"' not in third.split('id="cadres"')[1]
    assert page(client, "/assessment/quotas/prov?page=99").count('<a href="/points/c-') == 0
