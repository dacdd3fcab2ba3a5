"""Fixtures shared by every test: databases (SQLite always, PostgreSQL when given), clock, engine.

Persistence tests take the ``database_url`` fixture, parametrised over SQLite and PostgreSQL.
PostgreSQL runs when ``TEST_DATABASE_URL`` is set (``.ci/run`` sets it); otherwise its half is
skipped with the reason, unless ``LIANQING_REQUIRE_SERVICES=1`` turns that skip into a failure.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from engine import Engine, ManualClock
from engine.database import make_sql_engine, make_session_factory
from engine.schema import upgrade_database

TESTS_DIR = Path(__file__).resolve().parent
ENGINE_BPMN = TESTS_DIR / "engine" / "bpmn"


def require_service(name: str, reason: str) -> None:
    """Skip (on a user's machine) or fail (in CI) when a service a test needs is missing."""
    message = f"{name} not available: {reason}"
    if os.environ.get("LIANQING_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (LIANQING_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, sqlite_template):
    """A fresh, migrated database URL: a SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    base = _postgres_url()
    if not base:
        require_service("PostgreSQL", "set TEST_DATABASE_URL=postgresql://user@host:5432/db to run this half")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_sql_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        admin.dispose()
        require_service("PostgreSQL", f"cannot connect to {base}: {exc}")
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options=-csearch_path%3D{schema}"
    try:
        upgrade_database(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sql_engine(database_url):
    """A SQLAlchemy engine on the test database."""
    engine = make_sql_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(sql_engine):
    """A session factory on the test database."""
    return make_session_factory(sql_engine)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that tests move by hand."""
    return ManualClock()


@pytest.fixture
def engine(clock) -> Engine:
    """An engine with no workflow cache, so every step saves to and restores from the database."""
    import workflows.services
    return Engine(services=workflows.services.registry, clock=clock, cache_size=0)
