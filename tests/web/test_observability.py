"""Observability: request ids in answers and in every log line, JSON logs, ``/metrics``, ``/health``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.conftest import TESTS_DIR, require_service
from web import create_app
from web.extensions import db
from web.observability import BACKLOG_COUNT_CAP, configure_logging
from workflows.models import Notification

from .conftest import GOOD_RECORD

REPO_ROOT = TESTS_DIR.parent


def sample(name: str, **labels) -> float:
    """The current value of a metric sample of this process (0 when it was never touched)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(client) -> dict[str, float]:
    """``/metrics`` as {sample with labels: value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


# ---------------------------------------------------------------------------- request id, logs

def test_a_sane_request_id_is_honoured_and_echoed(client):
    response = client.get("/health", headers={"X-Request-Id": "lb-7f3a.42"})
    assert response.headers["X-Request-Id"] == "lb-7f3a.42"


@pytest.mark.parametrize("offered", ["", "with space", "x" * 129, '{"json": 1}', "中文"])
def test_an_odd_request_id_is_replaced_by_a_new_one(client, offered):
    response = client.get("/health", headers={"X-Request-Id": offered})
    given = response.headers["X-Request-Id"]
    assert given != offered and len(given) == 32 and int(given, 16) >= 0


def test_every_log_line_of_a_request_carries_its_id(database_url, clock, capsys):
    import logging
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                      "START_SWEEPER": False, "LOG_FORMAT": "json"})

    def noisy():
        logging.getLogger("workflows.somewhere").info("domain says %s", "hello")
        logging.getLogger("engine.somewhere").warning("engine warns", extra={"instance_id": 7})
        return "ok"
    app.add_url_rule("/_test/noisy", "noisy", noisy)
    try:
        capsys.readouterr()
        request_id = uuid.uuid4().hex
        assert app.test_client().get("/_test/noisy", headers={"X-Request-Id": request_id}).status_code == 200
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        with app.app_context():
            db.engine.dispose()
    mine = [line for line in lines if line["request_id"] == request_id]
    assert [line["logger"] for line in mine] == ["workflows.somewhere", "engine.somewhere", "lianqing.access"]
    assert mine[0]["message"] == "domain says hello" and mine[0]["level"] == "INFO"
    assert mine[1]["instance_id"] == 7 and mine[1]["level"] == "WARNING"
    access = mine[2]
    assert (access["method"], access["path"], access["endpoint"], access["status"]) == \
        ("GET", "/_test/noisy", "/_test/noisy", 200)
    assert access["duration_ms"] >= 0
    datetime.fromisoformat(access["time"])
    assert all(line["request_id"] == request_id for line in lines if line["logger"] == "workflows.somewhere")


def test_text_logs_carry_the_id_too(capsys):
    import logging
    configure_logging("text")
    try:
        logging.getLogger("workflows.somewhere").info("plain line")
        assert "INFO [-] workflows.somewhere: plain line" in capsys.readouterr().err
    finally:
        configure_logging("json")


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="json"):
        configure_logging("xml")


# ------------------------------------------------------------------------------------- metrics

def test_requests_are_counted_by_route_pattern_and_status(client):
    before = sample("lianqing_http_requests_total", method="GET", endpoint="<unmatched>", status="404")
    client.get("/no/such/page/42")
    client.get("/no/such/page/43")
    values = scraped(client)
    assert sample("lianqing_http_requests_total", method="GET", endpoint="<unmatched>", status="404") == before + 2
    assert values['lianqing_http_request_duration_seconds_count{endpoint="<unmatched>",method="GET"}'] >= 2


def test_tasks_opened_and_completed_are_counted_once_committed(app, start_record):
    opened, completed = sample("lianqing_tasks_opened_total"), sample("lianqing_tasks_completed_total")
    instance_id = start_record(days=5, assignee="张伟")
    assert sample("lianqing_tasks_opened_total") == opened + 1
    engine = app.extensions["lianqing_engine"]
    with app.app_context():
        [task] = engine.ready_tasks(db.session, instance_id=instance_id)
        engine.complete_task(db.session, task.id, GOOD_RECORD, None)
        db.session.rollback()  # a completion that is rolled back is not counted
        assert sample("lianqing_tasks_completed_total") == completed
        engine.complete_task(db.session, task.id, GOOD_RECORD, None)
        db.session.commit()
    assert sample("lianqing_tasks_completed_total") == completed + 1
    assert sample("lianqing_tasks_opened_total") == opened + 2  # the verification task it opened


def test_timers_fired_and_their_lateness(app, clock, start_record, client):
    fired, late_count = sample("lianqing_timers_fired_total"), sample("lianqing_timer_lateness_seconds_count")
    within_5_min = sample("lianqing_timer_lateness_seconds_bucket", le="300.0")
    within_15_min = sample("lianqing_timer_lateness_seconds_bucket", le="900.0")
    start_record(days=5)
    clock.advance(timedelta(days=3, minutes=10))  # the reminder was due two days before the deadline
    with app.app_context():
        assert app.extensions["lianqing_engine"].run_due_timers(db.session) == 1
    assert sample("lianqing_timers_fired_total") == fired + 1
    assert sample("lianqing_timer_lateness_seconds_count") == late_count + 1
    # Fired 600 s late: counted in the 900 s bucket, not in the 300 s one.
    assert sample("lianqing_timer_lateness_seconds_bucket", le="900.0") == within_15_min + 1
    assert sample("lianqing_timer_lateness_seconds_bucket", le="300.0") == within_5_min
    assert scraped(client)["lianqing_timers_fired_total"] == fired + 1


def test_the_in_process_queue_depth_is_measured(app, client):
    from engine.jobs import InProcessJobQueue, JobContext, JobRegistry
    registry = JobRegistry()

    @registry.job("observability.test")
    def _never(ctx, payload):  # never runs: the queue is not started
        raise AssertionError

    queue = InProcessJobQueue(registry, JobContext(session_factory=lambda: None, engine=app.extensions["lianqing_engine"]))
    queue.enqueue_many("observability.test", [{"n": n} for n in range(3)])
    assert queue.depth() == 3
    app.extensions["lianqing_jobs"] = queue
    assert scraped(client)["lianqing_job_queue_depth"] == 3


def test_the_celery_queue_depth_is_read_from_redis(database_url, clock):
    import redis
    url = os.environ.get("LIANQING_BROKER_URL") or "redis://127.0.0.1:6379/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        require_service("Redis", f"cannot reach {url}: {exc}")
    queue = f"obs{uuid.uuid4().hex[:8]}"
    client.rpush(f"{queue}:{queue}", "a", "b", "c", "d")
    client.rpush(f"{queue}:{queue}\x06\x163", "e")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                      "START_SWEEPER": False, "JOB_BACKEND": "celery", "BROKER_URL": url, "CELERY_QUEUE": queue})
    try:
        assert scraped(app.test_client())["lianqing_job_queue_depth"] == 5
    finally:
        client.delete(f"{queue}:{queue}", f"{queue}:{queue}\x06\x163")
        with app.app_context():
            db.engine.dispose()


def test_the_notification_backlog_counts_unsent_rows(app, client, clock):
    now = clock.now()
    with app.app_context():
        db.session.add_all([Notification(recipient="a", channel="in_app", subject="s", body="b", created_at=now),
                            Notification(recipient="b", channel="in_app", subject="s", body="b", created_at=now),
                            Notification(recipient="c", channel="email", subject="s", body="b", created_at=now,
                                         delivery_state="pending", next_attempt_at=now),
                            Notification(recipient="d", channel="email", subject="s", body="b", created_at=now,
                                         delivery_state="sent", sent_at=now),
                            Notification(recipient="e", channel="in_app", subject="s", body="b", created_at=now,
                                         delivery_state="skipped")])
        db.session.commit()
    values = scraped(client)
    assert values['lianqing_notification_backlog{state="new"}'] == 2
    assert values['lianqing_notification_backlog{state="pending"}'] == 1
    assert BACKLOG_COUNT_CAP >= 100_000


def test_metrics_from_several_processes_add_up(tmp_path):
    """With PROMETHEUS_MULTIPROC_DIR, what one process counted shows in another's /metrics."""
    environment = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"), PYTHONPATH=str(REPO_ROOT),
                       LIANQING_INSTANCE_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    os.makedirs(environment["PROMETHEUS_MULTIPROC_DIR"])
    count = "from engine.metrics import TASKS_COMPLETED; TASKS_COMPLETED.inc({})"
    for amount in (3, 4):  # two "workers"
        subprocess.run([sys.executable, "-c", count.format(amount)], env=environment, check=True, timeout=60)
    scrape = ("from engine.schema import upgrade_database; import os; upgrade_database(os.environ['DATABASE_URL']); "
              "from web import create_app; "
              "print(create_app({'TESTING': True, 'START_SWEEPER': False}).test_client().get('/metrics').text)")
    text = subprocess.run([sys.executable, "-c", scrape], env=environment, check=True, timeout=120,
                          capture_output=True, text=True).stdout
    assert "lianqing_tasks_completed_total 7.0" in text
    assert "lianqing_notification_backlog" in text  # measured by the answering process, not summed


# -------------------------------------------------------------------------------------- health

def test_health_is_ok_with_the_database(client, database_url):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_health_is_503_when_the_database_does_not_answer(tmp_path, clock):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
                      "ENGINE_CLOCK": clock, "START_SWEEPER": False})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and "database" in body["problems"]
    assert "nobody" not in response.text  # no connection string in the answer


def test_health_checks_the_broker_with_celery(database_url, clock):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                      "START_SWEEPER": False, "JOB_BACKEND": "celery", "BROKER_URL": "redis://127.0.0.1:1/0"})
    try:
        response = app.test_client().get("/health")
    finally:
        with app.app_context():
            db.engine.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["broker"] == "redis" and "broker" in body["problems"] and "database" not in body["problems"]
