"""The assessment pages: rankings with charts, the printable bulletin, workbooks, rights, and the commands."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.web.conftest import csrf_token
from tests.workflows.test_bulletins import build_month
from web import assessment
from workflows.eligibility import AssessmentResult

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def month(app, sessions, clock):
    """May 2026 of tests/workflows/test_bulletins.py, ranked on 31 May; the clock on 1 June."""
    built = build_month(sessions, clock)
    clock.set(datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc))
    return built


def page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def test_pages_need_a_signed_in_person(client, month):
    for path in ("/assessment/", "/assessment/organisations/qd", "/assessment/bulletins/qd/2026-05",
                 "/assessment/bulletins/qd/2026-05.xlsx", "/assessment/annex4/qd/2026.xlsx"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_an_organiser_sees_their_subtree_ranked_with_charts(client, sign_in, month):
    sign_in("Q_org")
    response = client.get("/assessment/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/assessment/organisations/qd")
    html = page(client, "/assessment/organisations/qd")
    assert "青岛团市委 · 日常排名" in html and "市南区团委" in html and "25.24" in html and "同级第1名 / 共2个" in html
    assert html.count("<svg") == 3 and "role=\"img\"" in html and "“五个一”达标率" in html
    assert 'data-value="0.2000"' in html  # 市南区团委's compliance bar: 1 of 5 periods
    assert "济南团市委" not in html
    page(client, "/assessment/organisations/qd-sn")
    page(client, "/assessment/organisations/prov", 403)
    page(client, "/assessment/organisations/jn", 403)
    page(client, "/assessment/bulletins/jn/2026-05", 403)
    page(client, "/assessment/organisations/nowhere", 404)
    html = page(client, "/assessment/organisations/qd?sort=binding")
    assert "<strong>手机端绑定率</strong>" in html
    page(client, "/assessment/organisations/qd?sort=height", 400)
    page(client, "/assessment/organisations/qd?day=31-05-2026", 400)


def test_every_organisation_at_a_depth_is_ranked_for_the_province(client, sign_in, month):
    sign_in("P_org")
    html = page(client, "/assessment/organisations/prov?depth=2")
    ranked = re.findall(r'<td class="num">(\d+)</td>\s*<td><a href="/assessment/organisations/([\w-]+)"', html)
    assert ranked == [("1", "qd-sn"), ("2", "jn-lx")]


def test_a_cadre_sees_their_own_organisation_and_below(client, sign_in, month):
    sign_in("zhang")
    response = client.get("/assessment/")
    assert response.headers["Location"].endswith("/assessment/organisations/qd-sn")
    html = page(client, "/assessment/organisations/qd-sn/cadres")
    assert "张伟" in html and "李娜" in html
    page(client, "/assessment/organisations/qd-sn-gw")
    page(client, "/assessment/organisations/qd", 403)
    page(client, "/assessment/organisations/qd/cadres", 403)


def test_the_cadre_ranking_is_paginated(client, sign_in, month, monkeypatch):
    monkeypatch.setattr(assessment, "PAGE_SIZE", 2)
    sign_in("P_org")
    first = page(client, "/assessment/organisations/prov/cadres")
    names = re.findall(r'<td class="num">(\d+)</td><td>([^<（]+)', first)
    # 张伟 8, 孙悦 4.5, 王芳 1, 赵磊 1, 李娜 0
    assert names == [("1", "张伟"), ("2", "孙悦")] and "第 1 / 3 页（共 5 条）" in first and "下一页" in first
    second = page(client, "/assessment/organisations/prov/cadres?page=2")
    assert re.findall(r'<td class="num">(\d+)</td><td>([^<（]+)', second) == [("3", "王芳"), ("3", "赵磊")]  # tied: by cadre id
    third = page(client, "/assessment/organisations/prov/cadres?page=3")
    assert re.findall(r'<td class="num">(\d+)</td><td>([^<（]+)', third) == [("5", "李娜")] and "下一页" not in third
    own = page(client, "/assessment/organisations/qd/cadres?scope=own")
    assert re.findall(r'<td class="num">(\d+)</td><td>([^<（]+)', own) == [("1", "孙悦"), ("2", "赵磊")]
    assert "<svg" in own


def test_the_bulletin_page_is_printable_and_names_the_bottom(client, sign_in, month):
    sign_in("Q_org")
    html = page(client, "/assessment/bulletins/qd/2026-05")
    assert "青岛团市委 2026年5月“1+100”工作月度通报" in html and "@media print" in html and "@page" in html
    assert "赵磊（第2名，1.00分）" in html and "本月开展活动 <strong>6</strong> 次" in html
    assert "讲一次团课" in html and "抽查不属实（电话抽查）" in html and "平均 4.50 星" in html
    page(client, "/assessment/bulletins/qd/2026-03", 404)
    page(client, "/assessment/bulletins/qd/May", 404)


def test_the_workbooks_download_with_the_right_numbers(client, sign_in, month):
    sign_in("Q_org")
    response = client.get("/assessment/bulletins/qd/2026-05.xlsx")
    assert response.status_code == 200 and response.mimetype == XLSX
    assert "filename*=UTF-8''qd-2026-05-" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    overview = {row[0]: row[1] for row in book["概况"].iter_rows(min_row=3, values_only=True)}
    assert overview["综合得分"] == 25.24 and overview["本月撤销记录数"] == 1
    response = client.get("/assessment/half-year/qd/2026.xlsx")
    assert response.status_code == 200 and load_workbook(io.BytesIO(response.data)).sheetnames == ["概况", "下级组织",
                                                                                                   "团干部"]
    response = client.get("/assessment/year-end/qd/2026.xlsx")
    assert response.status_code == 200 and "团干部考核结果" in load_workbook(io.BytesIO(response.data)).sheetnames
    response = client.get("/assessment/annex4/qd/2026.xlsx")
    sheet = load_workbook(io.BytesIO(response.data))["附件4汇总表"]
    assert [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["孙悦", "赵磊", "张伟", "李娜"]
    html = page(client, "/assessment/half-year/qd/2026")
    assert "半年考核评估" in html and "手机端绑定率" in html


def test_an_organiser_records_the_year_end_results_and_others_may_not(app, client, sign_in, month, sessions):
    sign_in("S_org")  # organiser of 市南区团委: may see 市南区's evaluation, not record 青岛's
    page(client, "/assessment/year-end/qd", 404)
    page(client, "/assessment/year-end/qd/2026", 403)
    html = page(client, "/assessment/year-end/qd-sn/2026")
    assert "合格标准" in html and "不合格 <strong>2</strong> 人" in html
    token = csrf_token(client, "/assessment/year-end/qd-sn/2026")
    assert client.post("/assessment/year-end/qd/2026", data={"csrf_token": token}).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    sign_in("Q_org")
    token = csrf_token(client, "/assessment/year-end/qd/2026")
    assert client.post("/assessment/year-end/qd/2026").status_code == 400  # no CSRF token
    response = client.post("/assessment/year-end/qd/2026", data={"csrf_token": token})
    assert response.status_code == 302
    with sessions() as session:
        results = session.scalars(select(AssessmentResult)).all()
        assert len(results) == 4 and {r.decided_by for r in results} == {"Q_org"}


def test_a_youth_or_an_unranked_tree_gets_a_clear_answer(client, sign_in, league, app):
    sign_in("P_org")
    html = page(client, "/assessment/organisations/prov", 404)
    assert "尚未计算排名" in html
    page(client, "/assessment/bulletins/prov/2026-04", 404)


def test_the_commands_rank_and_print_a_bulletin(runner, month, tmp_path):
    result = runner.invoke(args=["assessment", "rank", "--day", "2026-05-31"])
    assert result.exit_code == 0, result.output
    assert "ranked 5 cadres and 7 organisations for 2026-05-31" in result.output
    target = tmp_path / "qd.xlsx"
    result = runner.invoke(args=["assessment", "bulletin", "--org", "qd", "--month", "2026-05", "--xlsx", str(target)])
    assert result.exit_code == 0, result.output
    assert "综合得分 25.24（同级第1名 / 共2个）" in result.output and "通报（排名靠后）：赵磊" in result.output
    assert load_workbook(target)["团干部排名"]["B2"].value == "孙悦"
    result = runner.invoke(args=["assessment", "bulletin", "--org", "qd", "--month", "2026-02"])
    assert result.exit_code == 1 and "没有排名数据" in result.output
    result = runner.invoke(args=["assessment", "rank", "--day", "yesterday"])
    assert result.exit_code == 2
    result = runner.invoke(args=["assessment", "year-end", "--org", "qd", "--year", "2026", "--record"])
    assert result.exit_code == 0 and "合格 0 人" in result.output and "recorded 4 results" in result.output
