"""The campaign workbook from the dashboard: small ones at once, large ones as a background job with a polling page.

The app's in-process queue runs the job; each test drains it before looking.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from web.extensions import db
from workflows.campaign_exports import CampaignExport

from .conftest import BPMN_DIR, csrf_token
from .test_campaigns_web import drain, launch_via_form, post


@pytest.fixture
def exports(tmp_path, monkeypatch):
    """Exports in a temporary directory; every export of more than one row goes to the background."""
    monkeypatch.setenv("LIANQING_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("LIANQING_EXPORT_SYNC_ROWS", "1")
    return tmp_path / "exports"


@pytest.fixture
def campaign_id(app, client, sign_in, league):
    """青岛's Congress study (two cadres: 张伟 and 李娜), launched by Q_org, who stays signed in."""
    with app.app_context():
        app.extensions["lianqing_engine"].deploy_file(db.session, BPMN_DIR / "congress_study.bpmn")
        db.session.commit()
    sign_in("Q_org")
    yield launch_via_form(client, app)
    queue = app.extensions["lianqing_jobs"]
    if hasattr(queue, "stop"):
        queue.stop()


def sign_in_as(client, sign_in, username: str) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(username)


def test_a_small_workbook_is_still_built_in_the_request(client, app, campaign_id, tmp_path, monkeypatch):
    monkeypatch.setenv("LIANQING_EXPORT_DIR", str(tmp_path / "exports"))
    dashboard = client.get(f"/campaigns/{campaign_id}/dashboard?org=qd").text
    assert re.search(rf'<form method="post" action="/campaigns/{campaign_id}/exports\?org=qd">', dashboard)
    answer = post(client, f"/campaigns/{campaign_id}/exports?org=qd", {})
    assert answer.status_code == 200 and answer.headers["Content-Disposition"].startswith("attachment")
    assert len(list(load_workbook(io.BytesIO(answer.data), read_only=True)["明细"].iter_rows())) == 1 + 2
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(CampaignExport)) == 0


def test_a_large_workbook_is_built_in_the_background_and_fetched_when_ready(client, app, campaign_id, exports):
    offer = client.get(f"/campaigns/{campaign_id}/export.xlsx?org=qd")  # a link followed: nothing is created
    assert offer.status_code == 200 and "在后台生成 Excel" in offer.text and "有 2 个对象" in offer.text
    answer = post(client, f"/campaigns/{campaign_id}/exports?org=qd", {})
    assert answer.status_code == 303
    export_id = int(re.search(r"/campaigns/exports/(\d+)\?wait=1$", answer.headers["Location"]).group(1))
    drain(app)
    status = client.get(f"/campaigns/exports/{export_id}/status").get_json()
    assert (status["status"], status["ready"], status["rows"], status["expected_rows"]) == ("ready", True, 2, 2)
    page = client.get(f"/campaigns/exports/{export_id}?wait=1").text
    download = f"/campaigns/exports/{export_id}/download"
    assert f'content="0;url={download}"' in page and f'href="{download}"' in page  # fetched at once, and a link
    assert "已生成，共 2 行" in page
    assert 'http-equiv="refresh"' not in client.get(f"/campaigns/exports/{export_id}").text  # no refetch later
    workbook = client.get(download)
    assert workbook.status_code == 200 and workbook.mimetype.endswith("spreadsheetml.sheet")
    assert workbook.headers["Content-Disposition"] == f"attachment; filename=campaign-{campaign_id}-qd.xlsx"
    assert workbook.headers["Cache-Control"] == "no-store"
    assert len(list(load_workbook(io.BytesIO(workbook.data), read_only=True)["明细"].iter_rows())) == 1 + 2
    with app.app_context():
        token = db.session.get(CampaignExport, export_id).token
    assert [p.name for p in exports.iterdir()] == [f"{token}.xlsx"]  # stored outside the web root
    assert Path(app.static_folder).resolve() not in exports.resolve().parents


def test_the_page_polls_while_the_workbook_is_being_built(client, app, campaign_id, exports):
    with app.app_context():  # an export whose job has not run yet
        from workflows.campaign_exports import request_export
        from workflows.campaigns import campaign_by_id
        from workflows.organisations import by_code
        from workflows.roles import load_actor
        export, _new = request_export(db.session, load_actor(db.session, "Q_org"),
                                      campaign_by_id(db.session, campaign_id), by_code(db.session, "qd"), 2,
                                      app.extensions["lianqing_engine"].clock.now())
        db.session.commit()
        export_id = export.id
    page = client.get(f"/campaigns/exports/{export_id}?wait=1").text
    assert '<meta http-equiv="refresh" content="3">' in page and "已排队，等待生成（约 2 行）" in page
    refused = client.get(f"/campaigns/exports/{export_id}/download")
    assert refused.status_code == 409 and "尚未生成完毕" in refused.text
    assert client.get(f"/campaigns/exports/{export_id}/status").get_json()["download_url"] is None
    with app.app_context():
        db.session.get(CampaignExport, export_id).status = "failed"
        db.session.commit()
    failed = client.get(f"/campaigns/exports/{export_id}").text
    assert "导出失败，请重新导出" in failed and "refresh" not in failed
    assert f'action="/campaigns/{campaign_id}/exports?org=qd"' in failed


def test_only_who_asked_or_an_organiser_over_it_may_see_and_fetch_it(client, app, sign_in, campaign_id, exports):
    sign_in_as(client, sign_in, "S_org")  # 市南's organiser exports 市南's part
    export_id = int(post(client, f"/campaigns/{campaign_id}/exports?org=qd-sn", {})
                    .headers["Location"].split("/")[-1].split("?")[0])
    drain(app)
    assert client.get(f"/campaigns/exports/{export_id}/download").status_code == 200
    sign_in_as(client, sign_in, "Q_org")  # the city's organiser, over 市南
    assert client.get(f"/campaigns/exports/{export_id}/download").status_code == 200
    for stranger in ("S_coord", "J_org", "zhang"):
        sign_in_as(client, sign_in, stranger)
        for path in ("", "/status", "/download"):
            assert client.get(f"/campaigns/exports/{export_id}{path}").status_code == 403, (stranger, path)
    assert client.get(f"/campaigns/exports/{export_id + 50}").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    for path in ("", "/status", "/download"):
        answer = client.get(f"/campaigns/exports/{export_id}{path}")
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_asking_needs_the_csrf_token(client, app, campaign_id, exports):
    assert client.post(f"/campaigns/{campaign_id}/exports?org=qd").status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(CampaignExport)) == 0
