"""The web app's job queue: in-process by default (its thread sweeps timers with START_SWEEPER), or Celery."""
from __future__ import annotations

from datetime import timedelta

import pytest

from engine.audit import trail
from engine.jobs import CeleryJobQueue, InProcessJobQueue
from tests.job_support import wait_until
from tests.web.conftest import BPMN_DIR
from web import create_app
from web.extensions import db


def make_app(database_url, clock, **config):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "ENGINE_CLOCK": clock,
                       "BPMN_DIR": str(BPMN_DIR), "START_SWEEPER": False, **config})


def test_the_default_queue_is_in_process_and_idle_until_used(app):
    queue = app.extensions["lianqing_jobs"]
    assert isinstance(queue, InProcessJobQueue) and not queue.started
    assert queue.autostart and not queue.run_periodic


def test_with_start_sweeper_the_job_thread_fires_due_timers(database_url, clock):
    app = make_app(database_url, clock, START_SWEEPER=True)
    queue = app.extensions["lianqing_jobs"]
    try:
        assert queue.started
        with app.app_context():
            engine = app.extensions["lianqing_engine"]
            engine.deploy_file(db.session, BPMN_DIR / "activity_record.bpmn")
            instance = engine.start(db.session, "activity_record",
                                    {"deadline": (clock.now() + timedelta(days=5)).isoformat()},
                                    organisation_id="qd-sn", actor="test")
            db.session.commit()
            instance_id = instance.id
        clock.advance(timedelta(days=3, seconds=1))  # the ticker sees the jump on its next tick

        def fired():
            with app.app_context():
                events = [e.element_id for e in trail(db.session, instance_id) if e.kind == "timer_fired"]
                db.session.remove()
                return events
        assert wait_until(fired, 30, message="reminder fired by the job thread") == ["Timer_remind"]
    finally:
        queue.stop()
        with app.app_context():
            db.engine.dispose()


def test_the_celery_backend_sends_jobs_to_the_broker(database_url, clock):
    app = make_app(database_url, clock, JOB_BACKEND="celery", BROKER_URL="redis://127.0.0.1:6379/0",
                   CELERY_QUEUE="web-test")
    queue = app.extensions["lianqing_jobs"]
    assert isinstance(queue, CeleryJobQueue)
    assert queue.app.conf.task_default_queue == "web-test"
    with app.app_context():
        db.engine.dispose()


def test_an_unknown_backend_is_refused(database_url, clock):
    with pytest.raises(ValueError, match="inprocess"):
        make_app(database_url, clock, JOB_BACKEND="cron")
