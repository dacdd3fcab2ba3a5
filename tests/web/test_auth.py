"""Sign-in and rights through the web: passwords, phone codes, CSRF, rate limits, sign-out, 403s."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.models import HumanTask
from tests.league import PASSWORD
from web.extensions import db
from workflows import accounts
from workflows.models import Notification, Youth

from .conftest import GOOD_RECORD, csrf_token


def whoami(client):
    response = client.get("/whoami")
    return response.get_json()["username"] if response.status_code == 200 else None


def test_password_sign_in_and_out(client, league, sign_in):
    assert whoami(client) is None
    response = sign_in("zhang")
    assert response.headers["Location"] == "/"
    assert whoami(client) == "zhang"
    page = client.get("/").get_data(as_text=True)
    assert "张伟" in page and "市南区团委" in page  # the header shows the person and organisation
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert whoami(client) is None


def test_wrong_password_is_a_401_that_does_not_say_which_part(client, league):
    token = csrf_token(client)
    for username, password in [("zhang", "nope-nope"), ("nobody", PASSWORD)]:
        response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert response.status_code == 401
        assert "账号或密码不正确" in response.get_data(as_text=True)
    assert whoami(client) is None


def test_session_cookie_is_httponly_and_samesite(client, league, sign_in):
    response = sign_in("zhang")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_next_only_goes_to_this_site(client, league):
    token = csrf_token(client)
    for target, expected in [("/tasks/1", "/tasks/1"), ("https://evil.example/", "/"), ("//evil.example", "/")]:
        response = client.post("/login", data={"username": "zhang", "password": PASSWORD, "csrf_token": token,
                                               "next": target})
        assert response.headers["Location"] == expected


def test_a_post_without_csrf_token_is_refused(client, league):
    response = client.post("/login", data={"username": "zhang", "password": PASSWORD})
    assert response.status_code == 400
    assert "表单已过期或来源不明" in response.get_data(as_text=True)
    assert whoami(client) is None


def test_too_many_failures_answer_429_with_retry_after(client, league):
    token = csrf_token(client)
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
        client.post("/login", data={"username": "li", "password": "guess-guess", "csrf_token": token})
    response = client.post("/login", data={"username": "li", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "尝试次数过多" in response.get_data(as_text=True)


def test_youth_signs_in_with_phone_and_code(app, client, league):
    token = csrf_token(client, "/login/youth")
    page = client.post("/login/youth", data={"phone": "138 0000 0001", "csrf_token": token})
    assert page.status_code == 200 and "138****0001" in page.get_data(as_text=True)
    assert "13800000001" not in page.get_data(as_text=True)
    with app.app_context():
        sms = db.session.scalar(select(Notification).where(Notification.channel == "sms"))
        code = re.search(r"(\d{6})", sms.body).group(1)
    wrong = client.post("/login/youth/verify", data={"phone": "13800000001", "code": "12345x", "csrf_token": token})
    assert wrong.status_code == 401 and whoami(client) is None
    response = client.post("/login/youth/verify", data={"phone": "13800000001", "code": code, "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        youth_id = db.session.scalar(select(Youth.id).where(Youth.phone == "13800000001"))
    assert whoami(client) == f"youth-{youth_id}"


def test_youth_with_an_unregistered_phone_is_told_what_to_do(client, league):
    token = csrf_token(client, "/login/youth")
    response = client.post("/login/youth", data={"phone": "13912345678", "csrf_token": token})
    assert response.status_code == 401 and "请联系团干部" in response.get_data(as_text=True)
    bad = client.post("/login/youth", data={"phone": "123", "csrf_token": token})
    assert bad.status_code == 422 and "11位" in bad.get_data(as_text=True)


def test_sign_out_everywhere_ends_other_sessions(app, league):
    laptop, phone = app.test_client(), app.test_client()
    for client in (laptop, phone):
        token = csrf_token(client)
        client.post("/login", data={"username": "zhang", "password": PASSWORD, "csrf_token": token})
        assert whoami(client) == "zhang"
    laptop.post("/logout/everywhere", data={"csrf_token": csrf_token(laptop, "/")})
    assert whoami(laptop) is None and whoami(phone) is None
    assert phone.get("/").status_code == 302


# ----------------------------------------------------------------------------- rights on tasks

@pytest.fixture
def cadre_task(start_record):
    """An activity record of the county qd-sn assigned to zhang; returns the task id."""
    def make(assignee="zhang", org="qd-sn"):
        instance_id = start_record(org=org, assignee=assignee)
        return instance_id
    return make


def task_id_of(app, instance_id):
    with app.app_context():
        return db.session.scalar(select(HumanTask.id).where(HumanTask.instance_id == instance_id,
                                                            HumanTask.state.in_(("ready", "claimed"))))


@pytest.mark.parametrize("who,status", [("zhang", 200), ("S_org", 200), ("Q_org", 200), ("P_admin", 200),
                                        ("li", 403), ("wang", 403), ("J_org", 403)])
def test_who_may_open_an_assigned_task(app, client, league, sign_in, cadre_task, who, status):
    task_id = task_id_of(app, cadre_task())
    sign_in(who)
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == status
    if status == 403:
        assert "无权查看" in response.get_data(as_text=True)


@pytest.mark.parametrize("who,status", [("li", 302), ("zhang", 302), ("wang", 403), ("S_org", 403), ("J_org", 403)])
def test_who_may_claim_an_open_cadre_task(app, client, league, sign_in, cadre_task, who, status):
    task_id = task_id_of(app, cadre_task(assignee=None))
    sign_in(who)
    response = client.post(f"/tasks/{task_id}/claim", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == status
    with app.app_context():
        assignee = db.session.get(HumanTask, task_id).assignee
    assert assignee == (who if status == 302 else None)


@pytest.mark.parametrize("who,status", [("zhang", 302), ("li", 403), ("S_org", 403), ("wang", 403)])
def test_who_may_complete_an_assigned_task(app, client, league, sign_in, cadre_task, who, status):
    task_id = task_id_of(app, cadre_task())
    sign_in(who)
    response = client.post(f"/tasks/{task_id}/complete", data={**GOOD_RECORD, "csrf_token": csrf_token(client, "/")})
    assert response.status_code == status
    with app.app_context():
        state = db.session.get(HumanTask, task_id).state
    assert state == ("completed" if status == 302 else "claimed")


def test_a_form_error_shows_next_to_its_field_and_keeps_the_task(app, client, league, sign_in, cadre_task):
    task_id = task_id_of(app, cadre_task())
    sign_in("zhang")
    token = csrf_token(client, f"/tasks/{task_id}")
    response = client.post(f"/tasks/{task_id}/complete",
                           data={"kind": "league_lecture", "youth_count": "0", "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("youth_count", "date", "place", "description"):
        assert f'id="e-{field}"' in page
    assert 'id="e-kind"' not in page
    fixed = client.post(f"/tasks/{task_id}/complete", data={**GOOD_RECORD, "csrf_token": token})
    assert fixed.status_code == 302
    with app.app_context():
        assert db.session.get(HumanTask, task_id).state == "completed"


def test_a_task_that_does_not_exist_is_a_404(client, league, sign_in):
    sign_in("zhang")
    assert client.get("/tasks/987654").status_code == 404
