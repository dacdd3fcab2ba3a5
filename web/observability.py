"""Seeing what the app does: request ids, structured logs, Prometheus metrics at ``/metrics``, health checks.

- **Request id.** Every request carries one: its ``X-Request-Id`` header when that is a plain token
  (at most 128 letters, digits and ``._:@/+=-``), else a new one.  It is echoed in the response and
  is in every log line written while the request runs, the engine's and the domain's included.
- **Logs.** One JSON object per line (``LIANQING_LOG_FORMAT=json``, the default outside debug and
  testing: ``time``, ``level``, ``logger``, ``message``, ``request_id``, extra fields, ``exception``)
  or plain text (``text``).  Each request ends with one ``lianqing.access`` line (method, path,
  endpoint, status, duration).  The app's own loggers (``web``, ``workflows``, ``engine``) log INFO.
- **Metrics.** HTTP requests by method, endpoint (the route pattern) and status, and their latency;
  the engine's counters (``engine/metrics.py``: tasks opened and completed, timers fired and their
  lateness); measured at each scrape: the job queue depth and the notification backlog.  The page
  is not behind sign-in: let the reverse proxy keep it (and ``/health``) to the monitoring network.
- **Several gunicorn workers.** Each worker counts for itself.  Set ``PROMETHEUS_MULTIPROC_DIR`` to
  an empty directory writable by the workers (created and emptied before gunicorn starts) and a
  scrape of any worker adds up all of them.  The job queue depth and the backlog are measured by the
  worker that answers; the in-process queue depth is that worker's own queue.  Celery workers count
  the timers they fire in their own processes: start them with the same ``PROMETHEUS_MULTIPROC_DIR``
  on a machine that also runs a web process, or their timer counts are not seen.
- **Health.** ``/health`` (in ``web/main.py``) answers with :func:`health_report`: the database, and
  with the Celery backend the broker; 503 when one does not answer.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from workflows.models import Notification

from .extensions import db

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Counting the backlog stops here, so a scrape stays cheap however large the outbox grows.
BACKLOG_COUNT_CAP = 100_000
CHECK_TIMEOUT_SECONDS = 2.0

HTTP_REQUESTS = Counter("lianqing_http_requests", "HTTP requests answered.", ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram("lianqing_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["method", "endpoint"],
                         buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10))

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("lianqing_request_id", default=None)
access_log = logging.getLogger("lianqing.access")


def current_request_id() -> str | None:
    """The id of the request being answered (``None`` outside a request)."""
    return _request_id.get()


# ------------------------------------------------------------------------------------------ logging

class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the id; never drops a record."""
        record.request_id = _request_id.get() or "-"
        return True


_STANDARD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON, with the ``extra`` fields the caller passed."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialize ``record``."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        entry.update((key, value) for key, value in vars(record).items() if key not in _STANDARD_FIELDS)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # the StreamHandler attribute, looked up late
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


_HANDLER_NAME = "lianqing"


def configure_logging(log_format: str) -> None:
    """Install (once per process) the root handler that writes ``json`` or ``text`` lines with request ids."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LIANQING_LOG_FORMAT 只能是 json 或 text / must be 'json' or 'text', not {log_format!r}")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    for name in ("web", "workflows", "engine", "lianqing"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


# ------------------------------------------------------------------------------- request hooks

def _begin_request() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = offered if _SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    g.lianqing_request_token = _request_id.set(request_id)
    g.lianqing_request_id = request_id
    g.lianqing_request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = g.get("lianqing_request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    seconds = time.perf_counter() - g.get("lianqing_request_started", time.perf_counter())
    method = request.method if request.method in _METHODS else "OTHER"
    endpoint = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    HTTP_REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
    HTTP_LATENCY.labels(method, endpoint).observe(seconds)
    access_log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, seconds * 1000,
                    extra={"method": request.method, "path": request.path, "endpoint": endpoint,
                           "status": response.status_code, "duration_ms": round(seconds * 1000, 2)})
    return response


def _end_request(_error: BaseException | None) -> None:
    token = g.pop("lianqing_request_token", None)
    if token is not None:
        _request_id.reset(token)


# ------------------------------------------------------------------------------------- metrics

def job_queue_depth(app: Flask) -> int | None:
    """Jobs waiting in the app's queue: the in-process queue's own count, or the Celery list in Redis."""
    queue = app.extensions.get("lianqing_jobs")
    if hasattr(queue, "depth"):
        return queue.depth()
    if app.config.get("JOB_BACKEND") == "celery":
        import redis
        name = app.config["CELERY_QUEUE"]
        key = f"{name}:{name}"  # kombu: the global key prefix "<queue>:" and the queue's list
        client = redis.Redis.from_url(app.config["BROKER_URL"], socket_timeout=CHECK_TIMEOUT_SECONDS,
                                      socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            # Messages sent with a priority wait in sibling lists (kombu's default priority steps).
            return sum(client.llen(k) for k in (key, *(f"{key}\x06\x16{step}" for step in (3, 6, 9))))
        finally:
            client.close()
    return None


def notification_backlog(session) -> dict[str, int]:
    """Outbox rows not sent yet, by delivery state (``new``: not triaged; ``pending``), each capped."""
    counts = {}
    for label, condition in (("new", Notification.delivery_state.is_(None)),
                             ("pending", Notification.delivery_state == "pending")):
        capped = select(Notification.id).where(condition, Notification.sent_at.is_(None)).limit(BACKLOG_COUNT_CAP)
        counts[label] = session.scalar(select(func.count()).select_from(capped.subquery()))
    return counts


class _ScrapeTimeCollector:
    """Gauges measured when Prometheus scrapes: job queue depth, notification backlog."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        """Measure; a measurement that fails is left out (and logged), the page still answers."""
        try:
            depth = job_queue_depth(self.app)
        except Exception:  # a broker that is down must not break the metrics page
            logging.getLogger(__name__).warning("cannot measure the job queue depth", exc_info=True)
            depth = None
        if depth is not None:
            yield GaugeMetricFamily("lianqing_job_queue_depth", "Background jobs waiting to run.", value=depth)
        try:
            backlog = notification_backlog(db.session)
        except Exception:  # same for the database
            db.session.rollback()
            logging.getLogger(__name__).warning("cannot measure the notification backlog", exc_info=True)
            return
        family = GaugeMetricFamily("lianqing_notification_backlog",
                                   f"Notifications not sent yet (each state counted up to {BACKLOG_COUNT_CAP:,}).",
                                   labels=["state"])
        for state, count in backlog.items():
            family.add_metric([state], count)
        yield family


def metrics_view() -> Response:
    """The Prometheus text exposition of every metric of this process (or of all workers, multi-process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    measured = CollectorRegistry(auto_describe=False)
    measured.register(_ScrapeTimeCollector(current_app._get_current_object()))
    return Response(generate_latest(registry) + generate_latest(measured), mimetype=CONTENT_TYPE_LATEST)


# -------------------------------------------------------------------------------------- health

def _database_problem() -> str | None:
    try:
        db.session.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"; the class says enough
        db.session.rollback()
        return f"数据库无响应 / the database does not answer ({type(exc).__name__})"


def _broker_problem(url: str) -> str | None:
    import redis
    try:
        client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT_SECONDS,
                                      socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"消息队列无响应 / the broker does not answer ({type(exc).__name__})"


def health_report() -> tuple[dict[str, Any], int]:
    """``/health``: 200 with the database dialect (and broker) when all answer, else 503 with the problems."""
    problems = {"database": _database_problem()}
    body: dict[str, Any] = {"status": "ok", "database": db.engine.dialect.name}
    if current_app.config.get("JOB_BACKEND") == "celery":
        problems["broker"] = _broker_problem(current_app.config["BROKER_URL"])
        body["broker"] = "redis"
    problems = {name: problem for name, problem in problems.items() if problem}
    if problems:
        body.update(status="unavailable", problems=problems)
        return body, 503
    return body, 200


# ---------------------------------------------------------------------------------------- wiring

def init_app(app: Flask) -> None:
    """Logging, request ids, request metrics and ``/metrics`` for ``app``."""
    log_format = app.config.get("LOG_FORMAT") or ("text" if app.debug or app.testing else "json")
    configure_logging(log_format)
    from flask.logging import default_handler
    app.logger.removeHandler(default_handler)  # the root handler writes the app's lines, once
    # First of all before-request hooks, so lines logged by the others carry the id too.
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_request)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
