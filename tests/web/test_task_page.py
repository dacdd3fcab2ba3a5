"""The task page: instructions from the BPMN, the form with errors by its fields, the deadline badges,
claim and give back, the diagram with the current step, the previous steps, and the local viewer."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from .conftest import GOOD_RECORD, csrf_token
from .page_checks import diagram_of, open_task_id, post


@pytest.fixture
def record_task(app, start_record, league):
    """An activity record of qd-sn assigned to zhang (due in 5 days); returns (instance id, task id)."""
    def make(assignee: str | None = "zhang", days: float = 5):
        instance_id = start_record(days=days, org="qd-sn", assignee=assignee)
        return instance_id, open_task_id(app, instance_id)
    return make


def test_the_page_shows_the_instructions_and_the_elements_documentation(client, sign_in, record_task):
    _instance, task_id = record_task()
    sign_in("zhang")
    page = client.get(f"/tasks/{task_id}").text
    assert "办理说明" in page
    assert "请如实记录本次活动，附照片或签到表等佐证材料。" in page          # instructionsForEndUser
    assert "记录活动的类别、日期、地点、参与青年人数和过程，并上传佐证材料。" in page  # bpmn:documentation
    assert "“五个一”活动记录与核实 #" in page                              # the process, linking its instance


def test_the_form_is_rendered_from_the_schema_with_labels_and_limits(client, sign_in, record_task):
    _instance, task_id = record_task()
    sign_in("zhang")
    page = client.get(f"/tasks/{task_id}").text
    for name, label in [("kind", "活动类别"), ("date", "活动日期"), ("place", "地点"), ("youth_count", "参与青年人数"),
                        ("description", "活动过程"), ("evidence", "佐证材料")]:
        assert f'<label for="f-{name}">{label}' in page and f'id="f-{name}"' in page
    assert 'type="date"' in page and 'type="number"' in page and "讲一次团课" in page
    assert "1–100000 的整数" in page and "10–5000 个字" in page  # the schema's limits in words


def test_form_errors_are_shown_next_to_each_field_and_the_values_are_kept(client, sign_in, record_task):
    _instance, task_id = record_task()
    sign_in("zhang")
    response = post(client, f"/tasks/{task_id}/complete", {"kind": "league_lecture", "youth_count": "0",
                                                           "place": "团委"}, token_page=f"/tasks/{task_id}")
    assert response.status_code == 422
    page = response.text
    assert "请修改标出的内容后再提交" in page
    # Each message sits right after its own input, and the input points at it.
    for field in ("youth_count", "date", "description"):
        assert re.search(rf'id="f-{field}"[^>]*aria-describedby="[^"]*e-{field}"[^>]*aria-invalid="true"', page, re.DOTALL)
        assert f'<span class="field-error" id="e-{field}">' in page
    # Only the locale's half of each bilingual message (Chinese by default; tests/web/test_i18n.py: English).
    assert '<span class="field-error" id="e-date">必填</span>' in page and "this field is required" not in page
    assert '<span class="field-error" id="e-youth_count">请填写1–100000 的整数</span>' in page
    assert 'id="e-kind"' not in page and 'id="e-place"' not in page
    assert 'value="团委"' in page and '<option value="league_lecture" selected>' in page


@pytest.mark.parametrize("advance,badge", [(timedelta(0), None), (timedelta(days=3, minutes=1), "即将到期"),
                                           (timedelta(days=5, minutes=1), "已逾期")])
def test_the_deadline_gets_a_badge_as_it_nears_and_passes(client, clock, sign_in, record_task, advance, badge):
    _instance, task_id = record_task(days=5)  # reminder 2 days before the deadline
    sign_in("zhang")
    clock.advance(advance)
    page = client.get(f"/tasks/{task_id}").text
    assert "截止：" in page and "2026-05-06 08:00" in page  # Beijing time
    for word in ("即将到期", "已逾期"):
        assert (word in page) == (word == badge)


def test_an_open_task_can_be_claimed_and_given_back(app, client, sign_in, record_task):
    _instance, task_id = record_task(assignee=None)
    sign_in("li")
    page = client.get(f"/tasks/{task_id}").text
    assert "认领</button>" in page and "退回" not in page
    assert post(client, f"/tasks/{task_id}/claim").status_code == 302
    page = client.get(f"/tasks/{task_id}").text
    assert "已认领" in page and "办理人：li" in page and "退回（让其他人认领）" in page
    assert post(client, f"/tasks/{task_id}/unclaim").status_code == 302
    page = client.get(f"/tasks/{task_id}").text
    assert "认领</button>" in page and "待认领" in page


def test_a_task_the_process_assigned_cannot_be_given_back(client, sign_in, record_task):
    _instance, task_id = record_task(assignee="zhang")
    sign_in("zhang")
    assert "退回" not in client.get(f"/tasks/{task_id}").text
    response = post(client, f"/tasks/{task_id}/unclaim")
    assert response.status_code == 403
    assert "不能退回" in response.text and "Traceback" not in response.text


def test_the_diagram_marks_the_current_step_and_uses_the_local_viewer(client, sign_in, record_task):
    _instance, task_id = record_task()
    sign_in("zhang")
    page = client.get(f"/tasks/{task_id}").text
    diagram = diagram_of(page, "task-diagram")
    assert diagram["markers"]["current"] == ["Task_record"]
    assert "StartEvent_1" in diagram["markers"]["completed"]
    assert "Task_record" not in diagram["markers"]["ready"]
    assert "BPMNDiagram" in diagram["xml"] and 'id="Task_record"' in diagram["xml"]
    assert '<span class="swatch current"' in page and "当前步骤" in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == ["/static/vendor/bpmn-js/bpmn-viewer.production.min.js", "/static/diagram.js"]
    assert "/static/vendor/bpmn-js/diagram-js.css" in page and "/static/vendor/bpmn-js/bpmn-js.css" in page
    assert "cdn" not in page.lower() and "unpkg" not in page


def test_the_vendored_viewer_and_the_diagram_script_are_served(client):
    viewer = client.get("/static/vendor/bpmn-js/bpmn-viewer.production.min.js")
    assert viewer.status_code == 200
    assert viewer.mimetype in ("text/javascript", "application/javascript")
    assert b"bpmn-js - bpmn-viewer v18" in viewer.data[:200]
    viewer.close()
    for path, mimetype in [("/static/diagram.js", "javascript"), ("/static/vendor/bpmn-js/bpmn-js.css", "css"),
                           ("/static/vendor/bpmn-js/diagram-js.css", "css"), ("/static/app.css", "css")]:
        response = client.get(path)
        assert response.status_code == 200 and mimetype in response.mimetype, path
        response.close()
    licence = client.get("/static/vendor/bpmn-js/LICENSE")
    assert licence.status_code == 200 and b"bpmn.io" in licence.data
    licence.close()


def test_the_next_steps_page_lists_the_previous_steps(app, client, sign_in, record_task):
    instance_id, task_id = record_task()
    sign_in("zhang")
    page = client.get(f"/tasks/{task_id}").text
    assert "这是流程的第一步" in page
    assert post(client, f"/tasks/{task_id}/complete", GOOD_RECORD).status_code == 302
    verify_id = open_task_id(app, instance_id, "Task_verify")

    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in("S_insp")
    page = client.get(f"/tasks/{verify_id}").text
    assert "核实活动" in page and "通过电话抽查或实地查看核实活动是否真实开展" in page
    assert re.search(r"2026-05-01 08:00</time>记录活动 · zhang", page)
    diagram = diagram_of(page, "task-diagram")
    assert diagram["markers"]["current"] == ["Task_verify"]
    assert "Task_record" in diagram["markers"]["completed"]


@pytest.mark.parametrize("who,status", [("zhang", 200), ("S_insp", 200), ("P_admin", 200), ("wang", 403),
                                        ("J_org", 403)])
def test_who_may_open_the_page(client, sign_in, record_task, who, status):
    _instance, task_id = record_task()
    sign_in(who)
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == status
    if status == 403:
        assert "出错了（403）" in response.text and "没有权限" in response.text and "Traceback" not in response.text
        assert "task-diagram" not in response.text


def test_the_page_needs_sign_in(client, record_task):
    _instance, task_id = record_task()
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_completed_task_shows_who_did_it_and_no_form(app, client, sign_in, record_task):
    _instance, task_id = record_task()
    sign_in("zhang")
    post(client, f"/tasks/{task_id}/complete", GOOD_RECORD)
    page = client.get(f"/tasks/{task_id}").text
    assert "已完成" in page and "zhang 于 2026-05-01 08:00 完成" in page
    assert f'action="/tasks/{task_id}/complete"' not in page
    completed_again = post(client, f"/tasks/{task_id}/complete", GOOD_RECORD)
    assert completed_again.status_code == 409 and "已被处理" in completed_again.text
