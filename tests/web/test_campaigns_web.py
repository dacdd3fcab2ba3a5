"""The campaign pages, endpoints and commands, with and without the rights they need."""
from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine.models import HumanTask, ProcessInstance
from web.extensions import db
from workflows.campaigns import Campaign, CampaignTarget

from .conftest import BPMN_DIR, csrf_token

REPORT = {"format": "sharing_session", "topic": "新时代青年的使命担当", "date": "2026-11-20", "place": "市南区青年之家",
          "youth_count": 35, "description": "与所联系的青年一起学习党的十九大报告，分组交流心得。",
          "evidence": ["sharing-1.jpg"]}
FORM = {"process_id": "congress_study", "title": "青岛市十九大精神宣讲", "organisation_code": "qd", "target_kind": "cadre",
        "window_start": "2026-05-01", "window_end": "2026-12-31", "parent_id": "", "param_due_at": "2026-11-30",
        "param_theme": "学习贯彻党的十九大精神"}


@pytest.fixture
def deployed(app, league):
    with app.app_context():
        app.extensions["lianqing_engine"].deploy_file(db.session, BPMN_DIR / "congress_study.bpmn")
        db.session.commit()
    yield
    queue = app.extensions["lianqing_jobs"]
    if hasattr(queue, "stop"):
        queue.stop()


def drain(app):
    queue = app.extensions["lianqing_jobs"]
    if queue.started:
        queue.drain(60)
    assert not queue.failed


def post(client, path, data, token_path="/campaigns/"):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, token_path)})


def launch_via_form(client, app, **changes) -> int:
    response = post(client, "/campaigns/new", {**FORM, **changes, "action": "confirm"}, "/campaigns/new")
    assert response.status_code == 302, response.get_data(as_text=True)
    campaign_id = int(re.search(r"/campaigns/(\d+)$", response.headers["Location"]).group(1))
    drain(app)
    return campaign_id


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_pages_need_a_signed_in_person(client, deployed):
    for path in ("/campaigns/", "/campaigns/new", "/campaigns/1", "/campaigns/1/progress", "/campaigns/1/dashboard",
                 "/campaigns/1/export.csv", "/campaigns/1/export.xlsx"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_launch_shows_the_count_before_confirming_then_progresses_to_done(client, app, sign_in, deployed):
    sign_in("Q_org")
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert "十九大精神宣讲" in page and 'name="param_due_at"' not in page  # parameters come with the process
    page = client.get("/campaigns/new?process_id=congress_study").get_data(as_text=True)
    assert 'name="param_due_at"' in page and 'name="csrf_token"' in page and 'value="qd"' in page
    preview = post(client, "/campaigns/new", {**FORM, "action": "preview"}, "/campaigns/new")
    assert preview.status_code == 200
    text = preview.get_data(as_text=True)
    assert re.search(r'id="target-count">2<', text)  # 张伟 and 李娜
    assert 'value="confirm"' in text and 'name="csrf_token"' in text
    assert count(app, Campaign) == 0  # nothing before the organiser confirms
    back = post(client, "/campaigns/new", {**FORM, "action": "edit"}, "/campaigns/new")
    assert back.status_code == 200 and 'value="青岛市十九大精神宣讲"' in back.get_data(as_text=True)
    campaign_id = launch_via_form(client, app)
    progress = client.get(f"/campaigns/{campaign_id}/progress").get_json()
    assert (progress["total"], progress["launched"], progress["percent"], progress["done"], progress["status"]) == \
        (2, 2, 100, True, "launched")
    assert count(app, ProcessInstance) == 2
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'id="launch-bar"' in page and "/static/campaign_progress.js" in page
    assert not re.search(r'<script[^>]+src="(https?:)?//', page)  # no CDN
    assert client.get("/static/campaign_progress.js").status_code == 200
    listing = client.get("/campaigns/").get_data(as_text=True)
    assert "青岛市十九大精神宣讲" in listing and "发起集中活动" in listing


def test_bad_fields_come_back_beside_the_fields(client, app, sign_in, deployed):
    sign_in("Q_org")
    response = post(client, "/campaigns/new", {**FORM, "param_due_at": "", "window_end": "soon", "title": "",
                                               "action": "preview"}, "/campaigns/new")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    for field in ("param_due_at", "window_end", "title"):
        assert f'id="e-{field}"' in text, field
    assert count(app, Campaign) == 0


def test_the_no_raise_rule_is_shown_on_the_form(client, app, sign_in, deployed):
    sign_in("P_org")
    parent = launch_via_form(client, app, organisation_code="prov", title="全省")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns/")})
    sign_in("Q_org")
    response = post(client, "/campaigns/new", {**FORM, "parent_id": str(parent), "param_due_at": "2026-12-20",
                                               "action": "preview"}, "/campaigns/new")
    assert response.status_code == 422
    assert "不能层层加码" in response.get_data(as_text=True)


def test_organisers_only_and_only_in_their_subtree(client, app, sign_in, deployed):
    sign_in("Q_org")
    response = post(client, "/campaigns/new", {**FORM, "organisation_code": "jn", "action": "preview"},
                    "/campaigns/new")
    assert response.status_code == 403 and "组织者，不能向其发起集中活动" in response.get_data(as_text=True)
    campaign_id = launch_via_form(client, app)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/campaigns/")})
    sign_in("zhang")  # a cadre
    assert client.get("/campaigns/new").status_code == 403
    assert client.get(f"/campaigns/{campaign_id}").status_code == 403
    assert client.get(f"/campaigns/{campaign_id}/progress", headers={"Accept": "application/json"}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in("J_org")  # 济南 sees nothing of 青岛's campaign
    for path in ("", "/progress", "/dashboard", "/export.csv", "/export.xlsx"):
        assert client.get(f"/campaigns/{campaign_id}{path}").status_code == 403, path
    assert post(client, f"/campaigns/{campaign_id}/cancel", {"reason": "x"}).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in("S_org")  # 市南 reads its own part, not the city's, and may not cancel the city's campaign
    assert client.get(f"/campaigns/{campaign_id}/dashboard").status_code == 200
    assert client.get(f"/campaigns/{campaign_id}/dashboard?org=qd").status_code == 403
    assert post(client, f"/campaigns/{campaign_id}/cancel", {"reason": "x"}).status_code == 403
    assert post(client, f"/campaigns/{campaign_id}/resume", {}).status_code == 403


def test_every_form_needs_its_csrf_token(client, app, sign_in, deployed):
    sign_in("Q_org")
    campaign_id = launch_via_form(client, app)
    for path, data in (("/campaigns/new", {**FORM, "action": "confirm"}), (f"/campaigns/{campaign_id}/cancel",
                                                                             {"reason": "x"}),
                       (f"/campaigns/{campaign_id}/resume", {})):
        assert client.post(path, data=data).status_code == 400, path
    assert count(app, Campaign) == 1 and count(app, Campaign, Campaign.status == "cancelled") == 0


def test_cancel_with_a_reason_ends_the_open_tasks(client, app, sign_in, deployed):
    sign_in("Q_org")
    campaign_id = launch_via_form(client, app)
    empty = post(client, f"/campaigns/{campaign_id}/cancel", {"reason": " "})
    assert empty.status_code == 302 and count(app, Campaign, Campaign.status == "cancelled") == 0
    response = post(client, f"/campaigns/{campaign_id}/cancel", {"reason": "上级通知延期"})
    assert response.status_code == 302
    drain(app)
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        assert (campaign.status, campaign.cancel_reason, campaign.cancelled_by) == ("cancelled", "上级通知延期", "Q_org")
    assert count(app, HumanTask, HumanTask.state.in_(HumanTask.OPEN_STATES)) == 0
    assert client.get(f"/campaigns/{campaign_id}/progress").get_json()["running"] == 0
    assert "上级通知延期" in client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)


def test_dashboard_drill_down_and_exports(client, app, sign_in, deployed):
    sign_in("Q_org")
    campaign_id = launch_via_form(client, app)
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        task = db.session.scalar(select(HumanTask).where(HumanTask.assignee == "zhang"))
        engine.complete_task(db.session, task.id, REPORT, "zhang")
        db.session.commit()
    page = client.get(f"/campaigns/{campaign_id}/dashboard").get_data(as_text=True)
    assert "市南区团委" in page and "1 / 2" in page and 'id="people"' in page and "李娜" in page
    page = client.get(f"/campaigns/{campaign_id}/dashboard?org=qd-sn&status=done").get_data(as_text=True)
    assert "张伟" in page and "李娜" not in page
    page = client.get(f"/campaigns/{campaign_id}/dashboard?org=qd-sn").get_data(as_text=True)
    assert "市南区团委（本级）" in page and "八大关街道团工委" in page
    numbers = client.get(f"/campaigns/{campaign_id}/export.csv?org=qd")
    assert numbers.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(numbers.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][:8] == ["qd", "青岛团市委", "合计", "2", "2", "1", "1", "0"]
    assert rows[2][:6] == ["qd-sn", "市南区团委", "含下级", "2", "2", "1"]
    people = client.get(f"/campaigns/{campaign_id}/export.csv?org=qd&what=people").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(people.lstrip("\ufeff"))))) == 3
    workbook = client.get(f"/campaigns/{campaign_id}/export.xlsx?org=qd-sn")
    book = load_workbook(io.BytesIO(workbook.data), read_only=True)
    sheet = [list(r) for r in book["按组织"].iter_rows(values_only=True)]
    assert sheet[2][:6] == ["qd-sn", "市南区团委", "合计", 2, 2, 1]
    assert len(list(book["明细"].iter_rows(values_only=True))) == 3


def test_the_campaign_commands(runner, app, deployed):
    result = runner.invoke(args=["campaign", "launch", "--process", "congress_study", "--title", "命令行发起",
                                 "--org", "qd", "--target", "cadre", "--start", "2026-05-01", "--end", "2026-12-31",
                                 "--param", "due_at=2026-11-30", "--by", "Q_org"])
    assert result.exit_code == 0, result.output
    assert "2 targets in 1 chunk(s)" in result.output and "2/2 launched (100%)" in result.output
    campaign_id = int(re.search(r"campaign (\d+):", result.output).group(1))
    assert count(app, CampaignTarget, CampaignTarget.instance_id.is_not(None)) == 2
    listing = runner.invoke(args=["campaign", "list"]).output
    assert f"{campaign_id}\tlaunched\tcongress_study\tqd:cadre\t2/2\t命令行发起" in listing
    assert "2/2 launched" in runner.invoke(args=["campaign", "progress", str(campaign_id)]).output
    assert "nothing left to launch" in runner.invoke(args=["campaign", "resume", str(campaign_id)]).output
    refused = runner.invoke(args=["campaign", "launch", "--process", "congress_study", "--title", "越权",
                                  "--org", "jn", "--target", "cadre", "--end", "2026-12-31",
                                  "--param", "due_at=2026-11-30", "--by", "Q_org"])
    assert refused.exit_code == 1 and "organiser" in refused.output
    bad = runner.invoke(args=["campaign", "launch", "--process", "congress_study", "--title", "缺参数",
                              "--org", "qd", "--target", "cadre", "--end", "2026-12-31"])
    assert bad.exit_code == 1 and "due_at" in bad.output
    cancelled = runner.invoke(args=["campaign", "cancel", str(campaign_id), "--reason", "测试撤销", "--by", "Q_org"])
    assert cancelled.exit_code == 0, cancelled.output
    assert "running instances left: 0" in cancelled.output
    assert count(app, HumanTask, HumanTask.state.in_(HumanTask.OPEN_STATES)) == 0
