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
    # Background jobs: "inprocess" (threads in this process, the embedded default) or "celery"
    # (Celery workers on Redis: `celery -A workflows.worker worker` and one `... beat`).
    JOB_BACKEND = os.environ.get("LIANQING_JOB_BACKEND", "inprocess")
    BROKER_URL = os.environ.get("LIANQING_BROKER_URL") or "redis://127.0.0.1:6379/0"
    CELERY_QUEUE = os.environ.get("LIANQING_CELERY_QUEUE") or "lianqing"
    BROKER_VISIBILITY_TIMEOUT = int(os.environ.get("LIANQING_VISIBILITY_TIMEOUT") or "600")
    # With the in-process backend: also run the periodic jobs (the timer sweep, every
    # LIANQING_SWEEP_INTERVAL seconds) in this process (make run); off in tests.
    START_SWEEPER = os.environ.get("LIANQING_START_SWEEPER", "0") == "1"
    # Log lines: "json" (one object per line, with the request id) or "text"; empty: json unless debugging/testing.
    LOG_FORMAT = os.environ.get("LIANQING_LOG_FORMAT", "")
    # Times are shown in this zone (Flask-Babel's default zone); the web UI defaults to Chinese (web/i18n.py).
    BABEL_DEFAULT_TIMEZONE = os.environ.get("LIANQING_TIMEZONE") or "Asia/Shanghai"
    BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
    # Evidence uploads (workflows/evidence.py; the cleanup job reads the same variables): stored outside
    # the web root, checked by content; limits per file and per record (count and total bytes).
    EVIDENCE_DIR = os.environ.get("LIANQING_EVIDENCE_DIR") or str(INSTANCE_DIR / "evidence")
    EVIDENCE_MAX_FILE_BYTES = int(os.environ.get("LIANQING_EVIDENCE_MAX_FILE_BYTES") or 8 * 1024 * 1024)
    EVIDENCE_MAX_RECORD_BYTES = int(os.environ.get("LIANQING_EVIDENCE_MAX_RECORD_BYTES") or 40 * 1024 * 1024)
    EVIDENCE_MAX_FILES = int(os.environ.get("LIANQING_EVIDENCE_MAX_FILES") or 20)
    EVIDENCE_FORM_OVERHEAD_BYTES = 1024 * 1024  # the other fields and the multipart framing of a task form
    # Roster files checked on /admin/roster wait here for the admin's confirmation (an hour at most);
    # with several web machines, a directory they share (like LIANQING_EVIDENCE_DIR).
    ROSTER_UPLOAD_DIR = os.environ.get("LIANQING_ROSTER_UPLOAD_DIR") or str(INSTANCE_DIR / "roster-uploads")
    # The request size limit; unset, one record's evidence plus the form (web/evidence.py works it out).
    MAX_CONTENT_LENGTH = int(os.environ["LIANQING_MAX_UPLOAD_BYTES"]) if os.environ.get("LIANQING_MAX_UPLOAD_BYTES") \
        else None
    # Sign-in codes always go to the notification outbox; in development they are also logged.
    SHOW_DEV_CODES = os.environ.get("LIANQING_SHOW_DEV_CODES", "1") == "1"
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("LIANQING_SECURE_COOKIES", "0") == "1"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
