"""Fixtures of the API tests: the app on both databases with the small league, tokens, and a caller."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.web.conftest import BPMN_DIR
from web.extensions import db
from workflows.api_tokens import SCOPES, create_token
from workflows.models import User

ALL_SCOPES = list(SCOPES)


@pytest.fixture
def engine_of(app):
    """The app's engine."""
    return app.extensions["lianqing_engine"]


@pytest.fixture
def token_maker(app, clock):
    """Issue a token for ``username`` (who must exist) with ``scopes`` (all by default); returns the secret."""
    def make(username: str, scopes=None, days: int = 30) -> str:
        with app.app_context():
            user = db.session.query(User).filter_by(username=username).one()
            issued = create_token(db.session, user, f"test {username}", scopes or ALL_SCOPES, clock.now(), days)
            db.session.commit()
            return issued.secret
    return make


@pytest.fixture
def make_token(token_maker, league):
    """:func:`token_maker` with the small league built."""
    return token_maker


class Caller:
    """A test client that sends a bearer token with every call."""

    def __init__(self, client, token: str | None):
        self.client, self.token = client, token

    def _headers(self, headers):
        merged = dict(headers or {})
        if self.token is not None:
            merged.setdefault("Authorization", f"Bearer {self.token}")
        return merged

    def get(self, path, headers=None, **kwargs):
        return self.client.get(path, headers=self._headers(headers), **kwargs)

    def post(self, path, json=None, headers=None, **kwargs):
        if json is not None:
            kwargs["json"] = json
        return self.client.post(path, headers=self._headers(headers), **kwargs)

    def delete(self, path, headers=None, **kwargs):
        return self.client.delete(path, headers=self._headers(headers), **kwargs)


@pytest.fixture
def api(app, make_token):
    """``api("zhang")`` → a caller authenticated as zhang (all scopes); ``api(None)`` sends no token."""
    def caller(username: str | None, scopes=None) -> Caller:
        return Caller(app.test_client(), make_token(username, scopes) if username else None)
    return caller


@pytest.fixture
def deploy(app, engine_of):
    """Deploy ``bpmn/<name>.bpmn`` (with its forms)."""
    def do(name: str) -> None:
        with app.app_context():
            engine_of.deploy_file(db.session, BPMN_DIR / f"{name}.bpmn")
            db.session.commit()
    return do


@pytest.fixture
def record_task(app, engine_of, clock, deploy):
    """Start an activity_record at an organisation (optionally assigned); returns its open task id."""
    deploy("activity_record")

    def start(org: str = "qd-sn", assignee: str | None = None, days: float = 5) -> int:
        data = {"deadline": (clock.now() + timedelta(days=days)).isoformat()}
        if assignee is not None:
            data["cadre_assignee"] = assignee
        with app.app_context():
            instance = engine_of.start(db.session, "activity_record", data, organisation_id=org, actor="S_org")
            db.session.commit()
            return instance.new_task_ids[0]
    return start


def assert_problem(response, status: int, title: str | None = None):
    """The response is an application/problem+json of ``status`` (and ``title``)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if title is not None:
        assert body["title"] == title
    return body


@pytest.fixture
def youth_account(app, clock, league):
    """Give a young person of the league an account, as signing in on the phone does; returns the user name."""
    from workflows.models import Youth
    from workflows.people import new_user

    def make(key: str = "xiaoming") -> str:
        with app.app_context():
            person = db.session.query(Youth).filter_by(phone={"xiaoming": "13800000001",
                                                              "xiaohong": "13800000002"}[key]).one()
            user = new_user(f"youth-{person.id}", person.name, clock.now())
            db.session.add(user)
            db.session.flush()
            person.user_id, person.bound_at = user.id, clock.now()
            db.session.commit()
            return user.username
    return make
