"""The web app: health check, the ready-task page, and how errors become HTTP answers."""
from __future__ import annotations

from datetime import timedelta

import pytest

import web.main
from engine import BpmnProblem, FieldError, FormInvalid, InvalidBpmn, NotAllowed, NotFound, TaskAlreadyCompleted

JSON = {"Accept": "application/json"}


def row_of(instance_id: int) -> str:
    """The text a task row of the page shows for its instance (``activity_record #7</td>``)."""
    return f"activity_record #{instance_id}</td>"


# ------------------------------------------------------------------------------------------ health

def test_health_answers_json_with_the_database_dialect(client, database_url):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.is_json
    expected = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert response.get_json() == {"status": "ok", "database": expected}


# -------------------------------------------------------------------------------------- task page

def test_task_page_needs_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


def test_task_page_without_tasks_says_so(client, league, sign_in):
    sign_in("zhang")
    response = client.get("/")
    assert response.status_code == 200
    assert "text/html" in response.content_type
    assert "暂无待办任务" in response.text


def test_task_page_lists_a_started_instances_ready_task_as_unclaimed(client, start_record, league, sign_in):
    instance_id = start_record(days=5, org="qd-sn")
    sign_in("zhang")
    page = client.get("/").text
    assert "记录活动" in page
    assert row_of(instance_id) in page
    assert "qd-sn" in page and "cadre" in page
    assert "待认领" in page
    assert "2026-05-06 08:00" in page  # the ManualClock starts at 2026-05-01 00:00 UTC; shown in Beijing time
    assert "已逾期" not in page and "暂无待办任务" not in page


def test_task_page_shows_the_assignee_instead_of_unclaimed(client, start_record, league, sign_in):
    start_record(assignee="zhang")
    sign_in("zhang")
    page = client.get("/").text
    assert "zhang" in page
    assert "待认领" not in page


def test_task_page_marks_a_task_overdue_once_the_clock_passes_its_due_date(client, clock, start_record, league,
                                                                           sign_in):
    start_record(days=1)
    sign_in("zhang")
    assert "已逾期" not in client.get("/").text
    clock.advance(timedelta(days=1, minutes=1))
    page = client.get("/").text
    assert "已逾期" in page
    assert 'class="overdue"' in page
    assert "记录活动" in page  # still listed: no timer sweep has run


def test_task_page_paginates(client, monkeypatch, start_record, league, sign_in):
    monkeypatch.setattr(web.main, "PAGE_SIZE", 2)
    sign_in("zhang")
    # Most urgent first: the order of the due dates, not of the starts.
    late, soon, middle = start_record(days=9), start_record(days=3), start_record(days=6)

    first = client.get("/").text
    assert row_of(soon) in first and row_of(middle) in first
    assert row_of(late) not in first
    assert 'href="?page=2"' in first and "上一页" not in first

    second = client.get("/?page=2")
    assert second.status_code == 200
    assert row_of(late) in second.text
    assert row_of(soon) not in second.text and row_of(middle) not in second.text
    assert 'href="?page=1"' in second.text and "下一页" not in second.text

    assert "暂无待办任务" in client.get("/?page=3").text


@pytest.mark.parametrize("page", ["0", "-4", "abc"])
def test_task_page_treats_a_bad_page_number_as_the_first_page(client, start_record, league, sign_in, page):
    instance_id = start_record()
    sign_in("zhang")
    response = client.get(f"/?page={page}")
    assert response.status_code == 200
    assert row_of(instance_id) in response.text


# ----------------------------------------------------------------------------------- error mapping

class Boom(Exception):
    """An error no handler expects."""


ERRORS = {
    "not_found": (NotFound("流程实例 99 不存在 / instance 99 does not exist"), 404, "流程实例 99 不存在"),
    "form_invalid": (FormInvalid([FieldError("place", "必填 / this field is required"),
                                  FieldError("youth_count", "0 is less than the minimum of 1")]),
                     422, "表单有误"),
    "already_completed": (TaskAlreadyCompleted("任务「记录活动」已完成，办理人 张伟 / task was already completed"),
                          409, "任务「记录活动」已完成，办理人 张伟"),
    "not_allowed": (NotAllowed("任务「记录活动」已分配给 张伟，你不能办理 / assigned to someone else"),
                    403, "任务「记录活动」已分配给 张伟，你不能办理"),
    "invalid_bpmn": (InvalidBpmn(BpmnProblem("XML 格式错误 / not well-formed XML", file="broken.bpmn", line=7,
                                             element_id="Task_1")), 422, "XML 格式错误"),
}


@pytest.fixture
def raising_client(app):
    """A client of an app with test-only routes that raise an engine error (or any exception)."""
    def raise_(kind: str):
        if kind == "boom":
            raise Boom("secret internal detail: password=hunter2")
        raise ERRORS[kind][0]
    app.add_url_rule("/_test/raise/<kind>", "test_raise", raise_)
    app.add_url_rule("/api/_test/raise/<kind>", "test_api_raise", raise_)
    return app.test_client()


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_engine_error_becomes_a_json_problem_when_json_is_asked_for(raising_client, kind):
    error, status, _ = ERRORS[kind]
    response = raising_client.get(f"/_test/raise/{kind}", headers=JSON)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] == type(error).__name__
    assert body["detail"] == error.message


@pytest.mark.parametrize("kind", sorted(ERRORS))
def test_engine_error_becomes_a_page_with_the_chinese_message_for_a_person(raising_client, kind):
    _, status, chinese = ERRORS[kind]
    response = raising_client.get(f"/_test/raise/{kind}", headers={"Accept": "text/html"})
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert f"出错了（{status}）" in response.text
    assert chinese in response.text
    assert "返回待办任务" in response.text


def test_api_paths_answer_json_without_an_accept_header(raising_client):
    response = raising_client.get("/api/_test/raise/not_found")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "NotFound"


def test_form_invalid_lists_the_fields(raising_client):
    body = raising_client.get("/_test/raise/form_invalid", headers=JSON).get_json()
    assert [e["field"] for e in body["errors"]] == ["place", "youth_count"]
    assert body["errors"][0]["message"] == "必填 / this field is required"

    page = raising_client.get("/_test/raise/form_invalid").text
    assert "place" in page and "youth_count" in page and "必填" in page


def test_invalid_bpmn_lists_file_line_and_element(raising_client):
    body = raising_client.get("/_test/raise/invalid_bpmn", headers=JSON).get_json()
    assert body["errors"] == [{"file": "broken.bpmn", "line": 7, "element_id": "Task_1",
                               "message": "XML 格式错误 / not well-formed XML"}]
    page = raising_client.get("/_test/raise/invalid_bpmn").text
    assert "broken.bpmn:7 [Task_1]" in page


def test_unexpected_exception_gives_a_500_page_without_a_traceback(raising_client):
    response = raising_client.get("/_test/raise/boom")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "出错了（500）" in response.text and "服务器内部错误" in response.text
    for leak in ("Traceback", "Boom", "secret internal detail", "hunter2", "test_app.py"):
        assert leak not in response.text

    as_json = raising_client.get("/_test/raise/boom", headers=JSON)
    assert as_json.status_code == 500
    assert as_json.mimetype == "application/problem+json"
    assert as_json.get_json()["status"] == 500
    assert "hunter2" not in as_json.text and "Traceback" not in as_json.text


def test_unknown_url_is_a_404_page_or_problem(client):
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "出错了（404）" in page.text
    problem = client.get("/no/such/page", headers=JSON)
    assert problem.status_code == 404
    assert problem.mimetype == "application/problem+json" and problem.get_json()["status"] == 404


def test_an_error_leaves_the_app_working(raising_client):
    assert raising_client.get("/_test/raise/boom").status_code == 500
    assert raising_client.get("/_test/raise/not_allowed").status_code == 403
    assert raising_client.get("/health").status_code == 200
    assert raising_client.get("/login").status_code == 200
