"""Bearer tokens: hashed at rest, scoped, expiring, revocable; the page, the API and ``flask token``."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.web.conftest import csrf_token
from web.extensions import db
from workflows.api_tokens import ApiToken
from workflows.models import User

from .conftest import assert_problem


def test_no_token_is_a_401_with_a_bearer_challenge(api, league):
    response = api(None).get("/api/v1/me")
    assert_problem(response, 401, "TokenRefused")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lianqing"'


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer lq_000000000000_" + "A" * 43, "Basic dXNlcjpwYXNz",
                                    "Bearer "])
def test_malformed_or_unknown_tokens_are_refused(api, league, header):
    response = api(None).get("/api/v1/me", headers={"Authorization": header})
    body = assert_problem(response, 401)
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert body["type"] == "urn:lianqing:problem:token-refused"


def test_a_token_with_the_right_prefix_and_a_wrong_secret_is_refused(api, make_token, league):
    token = make_token("zhang")
    forged = token[:16] + ("B" if token[16] != "B" else "C") + token[17:]
    response = api(None).get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_valid_token_says_who_i_am_and_records_its_use(app, api, clock):
    caller = api("S_coord", ["tasks:read", "wishes:read"])
    body = caller.get("/api/v1/me").get_json()
    assert body["username"] == "S_coord" and body["roles"] == ["coordinator"]
    assert body["grants"] == [{"role": "coordinator", "organisation": "qd-sn"}]
    assert body["token"]["scopes"] == ["tasks:read", "wishes:read"]
    with app.app_context():
        token = db.session.scalar(select(ApiToken))
        assert token.last_used_at == clock.now()


def test_only_a_hash_of_the_secret_is_stored(app, make_token):
    secret = make_token("zhang")
    assert re.fullmatch(r"lq_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)
    with app.app_context():
        token = db.session.scalar(select(ApiToken))
        assert token.prefix == secret[3:15]
        assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in repr([getattr(token, c.key) for c in ApiToken.__table__.columns])


def test_expired_token_is_refused(api, clock, league):
    caller = api("zhang")
    assert caller.get("/api/v1/me").status_code == 200
    clock.advance(timedelta(days=30, seconds=1))
    response = caller.get("/api/v1/me")
    assert "过期" in assert_problem(response, 401)["detail"]


def test_revoked_token_is_refused_at_once(api, league):
    caller = api("zhang")
    token_id = caller.get("/api/v1/me").get_json()["token"]["id"]
    revoked = caller.delete(f"/api/v1/tokens/{token_id}")
    assert revoked.status_code == 200 and revoked.get_json()["state"] == "revoked"
    assert "撤销" in assert_problem(caller.get("/api/v1/me"), 401)["detail"]


def test_a_disabled_account_s_tokens_stop_working(app, api, league):
    caller = api("zhang")
    with app.app_context():
        db.session.scalar(select(User).where(User.username == "zhang")).active = False
        db.session.commit()
    assert_problem(caller.get("/api/v1/me"), 401)


def test_wrong_scope_is_a_403_naming_the_scope(api, league):
    response = api("zhang", ["wishes:read"]).get("/api/v1/tasks")
    body = assert_problem(response, 403, "ScopeMissing")
    assert "tasks:read" in body["detail"]
    assert response.headers["WWW-Authenticate"] == \
        'Bearer realm="lianqing", error="insufficient_scope", scope="tasks:read"'


def test_authentication_comes_before_validation(api, league):
    """A call without a token is a 401 whatever else is wrong with it."""
    assert_problem(api(None).post("/api/v1/tasks/1/delegate", json={"nonsense": 1}), 401)
    assert_problem(api(None).get("/api/v1/tasks?limit=100000"), 401)


def test_a_session_cookie_is_not_accepted_by_the_api(client, sign_in, league):
    """Signed in through the page: the API still wants a token, so CSRF cannot be bypassed through it."""
    sign_in("zhang")
    assert client.get("/whoami").status_code == 200
    assert_problem(client.get("/api/v1/me"), 401)
    assert_problem(client.post("/api/v1/tasks/1/claim"), 401)


def test_csrf_does_not_apply_to_token_calls_but_still_guards_the_pages(app, api, client, sign_in, league):
    app.config["WTF_CSRF_ENABLED"] = True
    created = api("zhang").post("/api/v1/tokens", json={"name": "phone", "scopes": ["tasks:read"]})
    assert created.status_code == 201  # no CSRF token needed with a bearer token
    sign_in("zhang")
    refused = client.post("/account/tokens", data={"name": "x", "scopes": "tasks:read"})
    assert refused.status_code == 400 and "表单已过期" in refused.text


# ------------------------------------------------------------------------------------- the page

def test_a_signed_in_person_creates_and_revokes_a_token_on_the_page(client, sign_in, league, api):
    sign_in("zhang")
    page = client.get("/account/tokens")
    assert page.status_code == 200 and "还没有令牌" in page.text
    created = client.post("/account/tokens", data={"name": "手机", "scopes": ["tasks:read", "tasks:write"],
                                                   "days": "7", "csrf_token": csrf_token(client, "/account/tokens")})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'<code id="new-token">(lq_[^<]+)</code>', created.text).group(1)
    caller = api(None)
    caller.token = secret
    assert caller.get("/api/v1/tasks").status_code == 200
    assert secret not in client.get("/account/tokens").text  # shown once only
    token_id = caller.get("/api/v1/me").get_json()["token"]["id"]
    revoked = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert revoked.status_code == 302
    assert caller.get("/api/v1/tasks").status_code == 401
    assert "已撤销" in client.get("/account/tokens").text


def test_the_page_lists_field_errors(client, sign_in, league):
    sign_in("zhang")
    response = client.post("/account/tokens", data={"name": "", "days": "999",
                                                    "csrf_token": csrf_token(client, "/account/tokens")})
    assert response.status_code == 422
    assert "名称必填" in response.text and "至少选择一个权限范围" in response.text and "有效期为1到365天" in response.text


def test_the_page_needs_a_sign_in(client, league):
    assert client.get("/account/tokens").status_code == 302


def test_one_cannot_revoke_someone_else_s_token_on_the_page(client, sign_in, make_token, app):
    make_token("li")
    with app.app_context():
        other = db.session.scalar(select(ApiToken.id))
    sign_in("zhang")
    response = client.post(f"/account/tokens/{other}/revoke", data={"csrf_token": csrf_token(client, "/account/tokens")})
    assert response.status_code == 404


# -------------------------------------------------------------------------------------- the API

def test_tokens_api_lists_creates_narrower_and_revokes_only_mine(api, make_token, app):
    caller = api("zhang", ["tasks:read", "tasks:write"])
    created = caller.post("/api/v1/tokens", json={"name": "rotated", "scopes": ["tasks:read"], "days": 10})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    assert body["token"].startswith("lq_") and body["scopes"] == ["tasks:read"] and body["state"] == "active"
    wider = caller.post("/api/v1/tokens", json={"name": "wider", "scopes": ["processes:deploy"]})
    assert assert_problem(wider, 422)["errors"][0]["field"] == "scopes"
    unknown = caller.post("/api/v1/tokens", json={"name": "x", "scopes": ["everything"]})
    assert_problem(unknown, 422)
    listed = caller.get("/api/v1/tokens?limit=1").get_json()
    assert [t["name"] for t in listed["items"]] == ["rotated"] and listed["next_cursor"]
    rest = caller.get(f"/api/v1/tokens?limit=1&cursor={listed['next_cursor']}").get_json()
    assert [t["name"] for t in rest["items"]] == ["test zhang"] and rest["next_cursor"] is None
    assert "token" not in rest["items"][0]
    make_token("li")
    with app.app_context():
        li_token = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "test li"))
    assert_problem(caller.delete(f"/api/v1/tokens/{li_token}"), 404)
    assert_problem(caller.delete("/api/v1/tokens/999999"), 404)


# -------------------------------------------------------------------------------------- the CLI

def test_flask_token_create_list_revoke(runner, league, api):
    created = runner.invoke(args=["token", "create", "--user", "zhang", "--name", "script", "--scope", "tasks:read",
                                  "--scope", "people:read wishes:read", "--days", "5"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    caller = api(None)
    caller.token = secret
    assert caller.get("/api/v1/me").get_json()["token"]["scopes"] == ["tasks:read", "wishes:read", "people:read"]
    listed = runner.invoke(args=["token", "list", "--user", "zhang"])
    assert "active" in listed.output and "script" in listed.output and secret not in listed.output
    token_id = listed.output.split()[0]
    assert runner.invoke(args=["token", "revoke", token_id]).exit_code == 0
    assert caller.get("/api/v1/me").status_code == 401
    bad = runner.invoke(args=["token", "create", "--user", "zhang", "--name", "x", "--scope", "root"])
    assert bad.exit_code == 1 and "unknown scope" in bad.output
    assert runner.invoke(args=["token", "create", "--user", "nobody", "--name", "x", "--scope", "tasks:read"]).exit_code == 2
    assert runner.invoke(args=["token", "revoke", "424242"]).exit_code == 1
