"""Fixtures of the web tests: an app on the test database (SQLite and PostgreSQL), its client and CLI runner."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import TESTS_DIR
from web import create_app
from web.extensions import db

REPO_ROOT = TESTS_DIR.parent
BPMN_DIR = REPO_ROOT / "bpmn"

# Form data that satisfies bpmn/activity_record.json.
GOOD_RECORD = {"kind": "league_lecture", "date": "2026-05-02", "place": "市南区团委", "youth_count": 12,
               "description": "讲了一次团课，青年们积极参与讨论并提出问题。"}


@pytest.fixture
def app(database_url, clock, tmp_path):
    """The app on a fresh, migrated database, with a hand-moved clock, no sweeper thread, and uploaded evidence
    under the test's temporary directory."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                      "BPMN_DIR": str(BPMN_DIR), "START_SWEEPER": False, "EVIDENCE_DIR": str(tmp_path / "evidence")})
    yield app
    with app.app_context():  # let the database fixture drop its schema without waiting on our pool
        db.engine.dispose()


@pytest.fixture
def client(app):
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A runner of the app's ``flask`` commands."""
    return app.test_cli_runner()


@pytest.fixture
def deployed(app):
    """The demo process ``activity_record`` deployed (with its forms)."""
    with app.app_context():
        result = app.extensions["lianqing_engine"].deploy_file(db.session, BPMN_DIR / "activity_record.bpmn")
        db.session.commit()
        return result.definition.id


@pytest.fixture
def start_record(app, clock, deployed):
    """Start an ``activity_record`` instance due in ``days``; returns its id."""
    def start(days: float = 5, org: str = "qd-sn", assignee: str | None = None) -> int:
        data = {"deadline": (clock.now() + timedelta(days=days)).isoformat()}
        if assignee is not None:
            data["cadre_assignee"] = assignee
        with app.app_context():
            instance = app.extensions["lianqing_engine"].start(db.session, "activity_record", data,
                                                               organisation_id=org, actor="test")
            db.session.commit()
            return instance.id
    return start



@pytest.fixture
def league(app, clock):
    """The hand-built league of tests/league.py in the app's database (passwords: tests.league.PASSWORD)."""
    from tests.league import build_league
    with app.app_context():
        built = build_league(db.session, clock.now())
        db.session.commit()
        return built


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    import re
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def sign_in(client):
    """Sign the test client in as ``username`` through the real login form."""
    from tests.league import PASSWORD

    def do(username: str, password: str = PASSWORD):
        token = csrf_token(client)
        response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response
    return do
