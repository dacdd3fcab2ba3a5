"""The admin's deploy page: who may use it, problems by line and element (nothing deployed), the
diagram previewed before deploying, the deploy itself, and the versions of each process."""
from __future__ import annotations

import base64
import io
import json
import re

import pytest
from sqlalchemy import func, select

from engine.models import ProcessDefinition
from tests.conftest import ENGINE_BPMN
from web.extensions import db
from workflows.models import Organisation, User
from workflows.roles import grant_role

from .conftest import BPMN_DIR, csrf_token
from .page_checks import diagram_of, post

RESERVED_ID_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_bad"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="bad_ids" name="bad" isExecutable="true">
    <bpmn:startEvent id="Start"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="End_1"><bpmn:incoming>Flow_1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="Start" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def upload(client, bpmn: tuple[bytes, str], forms: list[tuple[bytes, str]] = ()):
    """Upload a BPMN file (and forms) to the preview step."""
    data = {"csrf_token": csrf_token(client, "/admin/processes"), "bpmn": (io.BytesIO(bpmn[0]), bpmn[1]),
            "forms": [(io.BytesIO(content), name) for content, name in forms]}
    return client.post("/admin/processes/preview", data=data, content_type="multipart/form-data")


def bundle_of(page: str) -> str:
    return re.search(r'name="bundle" value="([^"]+)"', page).group(1)


def definitions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ProcessDefinition))


def activity_record_files() -> tuple[tuple[bytes, str], list[tuple[bytes, str]]]:
    return ((BPMN_DIR / "activity_record.bpmn").read_bytes(), "activity_record.bpmn"), \
        [((BPMN_DIR / name).read_bytes(), name) for name in ("activity_record.json", "activity_verify.json")]


@pytest.mark.parametrize("who", ["zhang", "S_org", "Q_org"])
def test_only_an_admin_of_the_top_organisation_may_use_it(app, client, sign_in, league, who):
    sign_in(who)
    response = client.get("/admin/processes")
    assert response.status_code == 403 and "只有省级管理员可以部署流程" in response.text
    assert "流程部署</a>" not in client.get("/").text
    bpmn, forms = activity_record_files()
    assert upload(client, bpmn, forms).status_code == 403
    assert definitions(app) == 0


def test_an_admin_below_the_top_may_not_deploy(app, client, sign_in, league):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "Q_org"))
        grant_role(db.session, user, "admin", db.session.scalar(select(Organisation).where(Organisation.code == "qd")))
        db.session.commit()
    sign_in("Q_org")
    assert client.get("/admin/processes").status_code == 403


def test_it_needs_sign_in(client):
    response = client.get("/admin/processes")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_admin_sees_it_in_the_menu(client, sign_in, league):
    sign_in("P_admin")
    page = client.get("/").text
    assert '<a href="/admin/processes">流程部署</a>' in page
    listing = client.get("/admin/processes").text
    assert "尚未部署任何流程" in listing and 'enctype="multipart/form-data"' in listing
    assert '<label for="bpmn-file">' in listing and '<label for="form-files">' in listing


def test_malformed_xml_is_refused_with_its_line_and_nothing_is_deployed(app, client, sign_in, league):
    sign_in("P_admin")
    response = upload(client, (b'<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="x">\n  <oops>\n', "broken.bpmn"))
    assert response.status_code == 422
    page = response.text
    assert "broken.bpmn 不能部署" in page and "未部署任何内容" in page
    assert re.search(r'<tr class="problem"><td>broken.bpmn</td><td>\d+</td>', page)
    assert 'name="bundle"' not in page
    assert definitions(app) == 0


def test_a_bad_element_is_named_with_its_line(app, client, sign_in, league):
    sign_in("P_admin")
    page = upload(client, (RESERVED_ID_BPMN, "bad_ids.bpmn")).text
    assert '<tr class="problem"><td>bad_ids.bpmn</td><td>5</td><td>Start</td><td>the id &#39;Start&#39; is reserved' \
        in page
    assert definitions(app) == 0


def test_a_missing_form_file_is_reported(app, client, sign_in, league):
    sign_in("P_admin")
    bpmn, forms = activity_record_files()
    response = upload(client, bpmn, forms[:1])
    assert response.status_code == 422
    assert "activity_verify.json" in response.text and "Task_verify" in response.text
    assert definitions(app) == 0


def test_preview_then_deploy_then_the_versions(app, client, sign_in, league):
    sign_in("P_admin")
    bpmn, forms = activity_record_files()
    preview = upload(client, bpmn, forms)
    assert preview.status_code == 200
    page = preview.text
    assert "预览：“五个一”活动记录与核实" in page and "检查通过" in page and "成为第 1 版" in page
    assert "activity_record.json、activity_verify.json" in page
    diagram = diagram_of(page, "preview-diagram")
    assert diagram["markers"] == {} and 'id="Task_record"' in diagram["xml"]
    assert "自动排版" not in page  # the file has its own diagram
    assert "/static/vendor/bpmn-js/bpmn-viewer.production.min.js" in page
    assert definitions(app) == 0  # a preview deploys nothing

    deployed = post(client, "/admin/processes/deploy", {"bundle": bundle_of(page)}, token_page="/admin/processes")
    assert deployed.status_code == 302 and deployed.headers["Location"] == "/admin/processes"
    listing = client.get("/admin/processes").text
    assert "已部署「“五个一”活动记录与核实」第 1 版" in listing
    assert "第 1 版</a> <span class=\"badge state\">最新</span>" in listing and "P_admin" in listing
    with app.app_context():
        definition = db.session.scalar(select(ProcessDefinition))
        assert (definition.process_id, definition.version, definition.deployed_by) == ("activity_record", 1, "P_admin")
        assert sorted(definition.forms) == ["activity_record.json", "activity_verify.json"]
        definition_id = definition.id

    again = upload(client, bpmn, forms).text
    assert "与已部署的第 1 版完全相同" in again
    post(client, "/admin/processes/deploy", {"bundle": bundle_of(again)}, token_page="/admin/processes")
    assert "未新建版本" in client.get("/admin/processes").text
    assert definitions(app) == 1

    changed = bpmn[0].replace("记录活动的类别".encode(), "记录本次活动的类别".encode())
    page = upload(client, (changed, bpmn[1]), forms).text
    assert "成为第 2 版" in page
    post(client, "/admin/processes/deploy", {"bundle": bundle_of(page)}, token_page="/admin/processes")
    listing = client.get("/admin/processes").text
    assert listing.index("第 2 版</a>") < listing.index("第 1 版</a>") and definitions(app) == 2

    version = client.get(f"/admin/processes/versions/{definition_id}")
    assert version.status_code == 200 and "第 1 版" in version.text
    assert 'id="Task_record"' in diagram_of(version.text, "version-diagram")["xml"]
    assert client.get("/admin/processes/versions/987654").status_code == 404


def test_a_file_without_a_diagram_is_laid_out_for_the_preview(app, client, sign_in, league):
    sign_in("P_admin")
    page = upload(client, ((ENGINE_BPMN / "safe_script.bpmn").read_bytes(), "safe_script.bpmn")).text
    assert "这个文件没有图形信息，下图是自动排版的效果" in page
    assert "BPMNDiagram" in diagram_of(page, "preview-diagram")["xml"]
    post(client, "/admin/processes/deploy", {"bundle": bundle_of(page)}, token_page="/admin/processes")
    with app.app_context():  # what was deployed is the file as uploaded
        assert "BPMNDiagram" not in db.session.scalar(select(ProcessDefinition.bpmn_xml))


def test_a_damaged_or_forged_bundle_is_refused_or_checked_again(app, client, sign_in, league):
    sign_in("P_admin")
    damaged = post(client, "/admin/processes/deploy", {"bundle": "not-base64!"}, token_page="/admin/processes")
    assert damaged.status_code == 422 and "预览数据已损坏" in damaged.text
    forged = base64.b64encode(json.dumps({"filename": "bad_ids.bpmn", "bpmn": RESERVED_ID_BPMN.decode(),
                                          "forms": {}}).encode()).decode()
    refused = post(client, "/admin/processes/deploy", {"bundle": forged}, token_page="/admin/processes")
    assert refused.status_code == 422 and "Start" in refused.text
    assert definitions(app) == 0
    no_csrf = client.post("/admin/processes/deploy", data={"bundle": forged})
    assert no_csrf.status_code == 400


def test_no_file_chosen_says_so(client, sign_in, league):
    sign_in("P_admin")
    response = client.post("/admin/processes/preview", data={"csrf_token": csrf_token(client, "/admin/processes")},
                           content_type="multipart/form-data")
    assert response.status_code == 422 and "请选择要上传的 BPMN 文件" in response.text
