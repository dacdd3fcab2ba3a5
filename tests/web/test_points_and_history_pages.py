"""A cadre's points page (breakdown by Annex-2 category with caps, 历年), an organisation's ranking over the
years, and the paginated year-end page whose workbook stays complete."""
from __future__ import annotations

import io
import re
from datetime import date, datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.workflows.test_bulletins import build_month
from web import assessment
from workflows import rankings
from workflows.models import Cadre
from workflows.points import award


@pytest.fixture
def month(app, sessions, clock):
    """May 2026 of tests/workflows/test_bulletins.py ranked on 31 May, plus zhang's 2025 and a 2025 snapshot."""
    built = build_month(sessions, clock)
    with sessions() as session:
        zhang = session.scalar(select(Cadre).where(Cadre.code == "c-zhang"))
        for number in range(30):  # 2025: 30 activities, capped at 35 → 30 points = 1 diamond 2 stars
            award(session, zhang, "activities", f"activity:old-{number}",
                  datetime(2025, 3, 1, 4, tzinfo=timezone.utc), "activity", f"old-{number}")
        for number in range(12):  # 2026: 12 shared articles at 0.5, capped at 5
            award(session, zhang, "article_sharing", f"article:{number}",
                  datetime(2026, 5, 20, 4, tzinfo=timezone.utc), "article", str(number))
        rankings.compute_rankings(session, date(2025, 12, 31), datetime(2026, 1, 1, 1, tzinfo=timezone.utc))
        session.commit()
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))
    return built


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_a_cadre_sees_their_points_by_category_with_the_caps_and_their_earlier_years(client, sign_in, month):
    sign_in("zhang")
    response = client.get("/points/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/points/c-zhang")
    html = page(client, "/points/c-zhang")
    assert "张伟 · 2026年个人积分" in html and re.search(r'<a href="/points/" aria-current="page">我的积分</a>', html)
    row = re.search(r'<th scope="row">精彩文章分享</th>\s*<td class="num">([^<]+)</td><td class="num">(\d+)</td>\s*'
                    r'<td class="num">([\d.]+)</td><td class="num counted">([\d.]+)</td>\s*<td class="num">(\d+)',
                    html)
    assert row.groups() == ("0.5", "12", "6.00", "5.00", "5")  # 12 × 0.5 = 6, counted up to the cap of 5
    assert re.search(r'<th scope="row">活动开展</th>\s*<td class="num">1</td><td class="num">5</td>', html)
    assert "与其他互动项合计不超过18分" in html  # the shared cap of 互动情况
    assert re.search(r'<td class="num counted">13.00</td><td class="num">100</td>', html)  # 5 + 3 + 5
    assert "2钻2星" not in html and "0钻2星" in html  # 13 points: 2 stars
    assert "本期情况" in html and "已达标" in html  # 5 activities of 5 kinds in May–June
    history = html.split("历年积分（历史殿堂）")[1]
    assert "2025年" in history and "30.00" in history and "1钻2星" in history
    earlier = page(client, "/points/c-zhang?year=2025")
    assert "张伟 · 2025年个人积分" in earlier and "本期情况" not in earlier
    page(client, "/points/c-zhang?year=2027", 404)
    page(client, "/points/c-nobody", 404)
    page(client, "/points/c-li")  # a cadre sees the cadres of their organisation and below
    page(client, "/points/c-zhao", 403)  # not above


def test_an_organiser_sees_a_cadre_of_their_subtree_and_no_other(client, sign_in, month):
    sign_in("Q_org")
    html = page(client, "/points/c-zhang")
    assert "13.00" in html and 'href="/assessment/organisations/qd-sn/cadres?scope=own"' in html
    page(client, "/points/c-wang", 403)
    response = client.get("/points/")
    assert response.status_code == 403  # an organiser has no points of their own
    ranking = page(client, "/assessment/organisations/qd/cadres")
    assert '<a href="/points/c-zhang" title="积分明细">8.00</a>' in ranking  # the snapshot of 31 May


def test_an_organisation_sees_its_ranking_over_the_years(client, sign_in, month):
    sign_in("Q_org")
    html = page(client, "/assessment/organisations/qd-sn/history")
    years = re.findall(r'<th scope="row">(\d{4})年</th>\s*<td><a href="[^"]*day=(\d{4}-\d{2}-\d{2})"', html)
    assert years == [("2026", "2026-05-31"), ("2025", "2025-12-31")]
    assert "第1名 / 共1个" in html and html.count('class="point"') == 2 and "历年排名" in html
    page(client, "/assessment/organisations/jn/history", 403)


def test_the_year_end_page_is_paginated_and_its_workbook_complete(client, sign_in, month, monkeypatch):
    monkeypatch.setattr(assessment, "PAGE_SIZE", 2)
    sign_in("P_org")
    first = page(client, "/assessment/year-end/prov/2026")
    names = re.findall(r'<tr><td><a href="/points/(c-\w+)\?year=2026">', first)
    assert names == ["c-zhang", "c-sun"] and "第 1 / 3 页（共 5 条）" in first
    assert "团干部 5 人，合格 <strong>0</strong> 人，不合格 <strong>5</strong> 人" in first
    second = page(client, "/assessment/year-end/prov/2026?page=2")
    assert re.findall(r'<tr><td><a href="/points/(c-\w+)\?year=2026">', second) == ["c-wang", "c-zhao"]
    third = page(client, "/assessment/year-end/prov/2026?page=3")
    assert re.findall(r'<tr><td><a href="/points/(c-\w+)\?year=2026">', third) == ["c-li"]
    response = client.get("/assessment/year-end/prov/2026.xlsx")
    sheet = load_workbook(io.BytesIO(response.data))["团干部考核结果"]
    assert len([row for row in sheet.iter_rows(min_row=2, values_only=True) if row[0]]) >= 5
