"""Every setting of the web app, read from the environment in this one place."""
from __future__ import annotations

import os
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("LIANQING_INSTANCE_DIR", Path(__file__).resolve().parent.parent / "instance"))


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'lianqing.db'}"
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


class Config:
    """Defaults, overridden by environment variables; tests pass a dict to ``create_app``."""

    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-change-me")
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    BPMN_DIR = os.environ.get("LIANQING_BPMN_DIR", str(Path(__file__).resolve().parent.parent / "bpmn"))
    # The embedded timer sweeper: a thread in the web process (make run); off in tests.
    START_SWEEPER = os.environ.get("LIANQING_START_SWEEPER", "0") == "1"
    SWEEP_INTERVAL_SECONDS = float(os.environ.get("LIANQING_SWEEP_INTERVAL", "1"))
    MAX_CONTENT_LENGTH = int(os.environ.get("LIANQING_MAX_UPLOAD_BYTES", str(8 * 1024 * 1024)))
    # Sign-in codes always go to the notification outbox; in development they are also logged.
    SHOW_DEV_CODES = os.environ.get("LIANQING_SHOW_DEV_CODES", "1") == "1"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("LIANQING_SECURE_COOKIES", "0") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
