"""The job interface: registry, the in-process queue (threads, retries, periodic ticks, drain) and the
Celery backend's app (its one task run in the test process; real workers are in
tests/workflows/test_jobs_backends.py)."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.errors import NotFound
from engine.jobs import (
    CeleryJobQueue,
    CelerySettings,
    InProcessJobQueue,
    JobContext,
    JobRegistry,
    RetryPolicy,
    build_celery_app,
)
from engine.models import ProcessInstance
from tests.conftest import ENGINE_BPMN

NO_WAIT = RetryPolicy(max_attempts=3, first_delay=0.0)


@pytest.fixture
def context(sessions, engine):
    """A job context on the test database (both databases)."""
    return JobContext(session_factory=sessions, engine=engine)


def make_queue(registry, context, clock, **options) -> InProcessJobQueue:
    options = {"run_periodic": False, "retry": NO_WAIT, **options}
    return InProcessJobQueue(registry, context, clock=clock, **options)


def test_registry_refuses_duplicates_and_bad_intervals():
    registry = JobRegistry()
    registry.job("a")(lambda ctx, payload: None)
    with pytest.raises(ValueError, match="twice"):
        registry.job("a")(lambda ctx, payload: None)
    with pytest.raises(ValueError, match="positive"):
        registry.job("b", every_seconds=0)
    with pytest.raises(NotFound, match="no background job named 'zzz'"):
        registry.get("zzz")
    assert "a" in registry and registry.periodic() == []


def test_handlers_run_on_worker_threads_and_commit_their_work(context, sessions, engine, clock):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn")
        session.commit()
    registry = JobRegistry()

    @registry.job("start")
    def start(ctx: JobContext, payload: dict) -> None:
        with ctx.session_factory() as session:
            ctx.engine.start(session, "two_lane_review", {"deadline": payload["deadline"]},
                             business_key=payload["key"])
            session.commit()

    deadline = (clock.now() + timedelta(days=5)).isoformat()
    with make_queue(registry, context, clock, workers=2) as queue:
        queue.enqueue("start", {"key": "one", "deadline": deadline})
        queue.enqueue_many("start", [{"key": k, "deadline": deadline} for k in ("two", "three")])
        queue.drain(30)
        assert not queue.failed
    with sessions() as session:
        keys = session.scalars(select(ProcessInstance.business_key)).all()
    assert sorted(keys) == ["one", "three", "two"]


def test_workers_run_jobs_side_by_side(context, clock):
    registry, barrier = JobRegistry(), threading.Barrier(2, timeout=10)
    registry.job("meet")(lambda ctx, payload: barrier.wait())  # only returns once two run at once
    with make_queue(registry, context, clock, workers=2) as queue:
        queue.enqueue_many("meet", [{}, {}])
        queue.drain(30)
        assert not queue.failed


def test_a_failing_handler_is_retried_then_given_up_and_the_worker_goes_on(context, clock):
    registry, calls = JobRegistry(), []

    @registry.job("flaky")
    def flaky(ctx, payload):
        calls.append(payload["n"])
        if calls.count(payload["n"]) <= payload["failures"]:
            raise RuntimeError("not yet")

    with make_queue(registry, context, clock) as queue:
        queue.enqueue("flaky", {"n": 1, "failures": 2})      # fails twice, third attempt works
        queue.enqueue("flaky", {"n": 2, "failures": 99})     # never works: given up after 3 attempts
        queue.drain(30)
        queue.enqueue("flaky", {"n": 3, "failures": 0})      # the thread is still there
        queue.drain(30)
        assert [(f.name, f.payload["n"], f.attempts) for f in queue.failed] == [("flaky", 2, 3)]
        assert "not yet" in queue.failed[0].error
    assert sorted(calls) == [1, 1, 1, 2, 2, 2, 3]


def test_back_off_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=5, first_delay=2, factor=4, max_delay=60)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [2, 8, 32, 60]


def test_periodic_jobs_run_when_the_clock_says_so(context, clock):
    registry, runs = JobRegistry(), []
    registry.job("sweep", every_seconds=10)(lambda ctx, payload: runs.append(clock.now()))
    registry.job("other")(lambda ctx, payload: None)
    with make_queue(registry, context, clock) as queue:
        assert queue.tick() == ["sweep"]           # due at once
        queue.drain(30)
        clock.advance(timedelta(seconds=9))
        assert queue.tick() == []                  # not yet
        clock.advance(timedelta(seconds=1))
        assert queue.tick() == ["sweep"]
        queue.drain(30)
    assert len(runs) == 2


def test_a_periodic_job_is_not_queued_again_while_it_runs(context, clock):
    registry, release = JobRegistry(), threading.Event()
    registry.job("slow", every_seconds=1)(lambda ctx, payload: release.wait(10))
    with make_queue(registry, context, clock) as queue:
        assert queue.tick() == ["slow"]
        clock.advance(timedelta(seconds=5))
        assert queue.tick() == []                  # the first run is still going
        release.set()
        queue.drain(30)
        assert queue.tick() == ["slow"]
        queue.drain(30)


def test_a_failing_periodic_job_is_not_retried(context, clock):
    registry, runs = JobRegistry(), []

    @registry.job("broken", every_seconds=1)
    def broken(ctx, payload):
        runs.append(1)
        raise RuntimeError("boom")

    with make_queue(registry, context, clock) as queue:
        queue.tick()
        queue.drain(30)
        assert len(runs) == 1 and queue.failed[0].attempts == 1
        clock.advance(timedelta(seconds=1))
        assert queue.tick() == ["broken"]          # the next run is the retry
        queue.drain(30)


def test_the_ticker_thread_runs_periodic_jobs(context, clock):
    registry, ran = JobRegistry(), threading.Event()
    registry.job("sweep", every_seconds=1)(lambda ctx, payload: ran.set())
    with make_queue(registry, context, clock, run_periodic=True):
        assert ran.wait(10)


def test_handlers_can_queue_follow_up_jobs(context, clock):
    registry, done = JobRegistry(), []
    registry.job("fan_out")(lambda ctx, payload: ctx.queue.enqueue_many("part", [{"i": i} for i in range(3)]))
    registry.job("part")(lambda ctx, payload: done.append(payload["i"]))
    with make_queue(registry, context, clock) as queue:
        queue.enqueue("fan_out", {})
        queue.drain(30)
    assert sorted(done) == [0, 1, 2]


def test_payloads_are_checked_and_travel_as_json(context, clock):
    registry, seen = JobRegistry(), []
    registry.job("echo")(lambda ctx, payload: seen.append(payload))
    queue = make_queue(registry, context, clock, autostart=True)
    with pytest.raises(NotFound):
        queue.enqueue("nope", {})
    with pytest.raises(TypeError, match="JSON"):
        queue.enqueue("echo", {"when": clock.now()})
    assert not queue.started
    queue.enqueue("echo", {"ids": (1, 2)})                 # autostart: the first job starts the threads
    queue.drain(30)
    queue.stop()
    assert seen == [{"ids": [1, 2]}]


def test_drain_times_out_on_a_stuck_job_and_needs_a_started_queue(context, clock):
    registry, release = JobRegistry(), threading.Event()
    registry.job("stuck")(lambda ctx, payload: release.wait(10))
    queue = make_queue(registry, context, clock)
    with pytest.raises(RuntimeError, match="not started"):
        queue.drain(1)
    with queue:
        queue.enqueue("stuck", {})
        with pytest.raises(TimeoutError, match="1 running"):
            queue.drain(0.2)
        release.set()
        queue.drain(30)


# -- the Celery backend's app, without a broker --------------------------------------------------
def celery_registry(calls: list) -> JobRegistry:
    registry = JobRegistry()

    @registry.job("flaky")
    def flaky(ctx, payload):
        calls.append((payload["n"], ctx.queue))
        if len(calls) <= payload["failures"]:
            raise RuntimeError("not yet")

    registry.job("tick", every_seconds=30)(lambda ctx, payload: calls.append(("tick", ctx.queue)))
    return registry


def test_celery_app_is_configured_for_redelivery_and_beat():
    registry = celery_registry([])
    app = build_celery_app(registry, CelerySettings(queue="q1", visibility_timeout=120))
    conf = app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.task_default_queue == "q1"
    assert conf.broker_transport_options["visibility_timeout"] == 120
    assert conf.broker_transport_options["global_keyprefix"] == "q1:"
    assert list(conf.beat_schedule) == ["tick"]
    assert conf.beat_schedule["tick"]["schedule"] == timedelta(seconds=30)
    assert conf.beat_schedule["tick"]["args"] == ("tick", {})


def test_celery_task_runs_the_handler_and_retries(context):
    calls: list = []
    registry = celery_registry(calls)
    settings = CelerySettings(queue="q2", retry=RetryPolicy(max_attempts=3, first_delay=0))
    app = build_celery_app(registry, settings, lambda: context)
    app.conf.task_always_eager = True  # run in this process: no broker
    run = app.tasks["jobs.run"]
    run.apply(args=("flaky", {"n": 1, "failures": 2}))
    assert [n for n, _ in calls] == [1, 1, 1]
    assert isinstance(calls[0][1], CeleryJobQueue)    # handlers can queue follow-up jobs
    run.apply(args=("no-such-job", {}))               # dropped with a log line, not retried forever
    assert len(calls) == 3


def test_celery_queue_checks_jobs_before_sending():
    queue = CeleryJobQueue(build_celery_app(celery_registry([]), CelerySettings(broker_url="redis://127.0.0.1:1/0")),
                           celery_registry([]))
    with pytest.raises(NotFound):
        queue.enqueue("nope", {})
    with pytest.raises(TypeError):
        queue.enqueue("flaky", {"bad": object()})
