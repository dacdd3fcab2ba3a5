"""The Celery backend of the job interface (``engine/jobs.py``): Celery workers on a Redis broker.

One generic task, ``jobs.run(name, payload)``, runs the registered handler called ``name``.  It is
acknowledged only after it has run (``acks_late``), and a worker that dies mid-job gives the
message back (``reject_on_worker_lost``); a worker killed outright (``kill -9``, power loss) leaves
it unacknowledged in Redis, and after ``visibility_timeout`` seconds another worker takes it again.
So a job can run more than once, and every handler must be idempotent.

Each worker takes one message at a time (prefetch multiplier 1), so a long job never holds others
back.  All Redis keys of an app start with ``<queue>:``, so two deployments (or two tests) sharing
one Redis never see, or redeliver, each other's messages.  Periodic jobs become the beat schedule;
exactly one ``celery beat`` must run; a job registered ``singleton=True`` still runs one at a time
if a message is delivered twice (``engine/job_locks.py``).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Celery

from .errors import NotFound
from .jobs import JobContext, JobRegistry, RetryPolicy, portable_payload, run_job

log = logging.getLogger(__name__)

TASK_NAME = "jobs.run"


@dataclass(frozen=True)
class CelerySettings:
    """Where the broker is, which queue to use, and when an unacknowledged job is handed out again.

    ``visibility_timeout`` must be longer than the longest job: a job still running after it is
    handed to another worker as well (harmless for an idempotent handler, but wasted work).
    """

    broker_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "jobs"
    visibility_timeout: int = 600
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def transport_options(self) -> dict:
        """Kombu's Redis transport options for these settings."""
        return {
            "visibility_timeout": self.visibility_timeout,
            "global_keyprefix": f"{self.queue}:",
            # Look for abandoned messages every few seconds (kombu's default is every ~100 s).
            "unacked_restore_interval": max(1, min(10, self.visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
        }


class _ContextHolder:
    """Builds the job context on first use, once per process (after a prefork worker's fork)."""

    def __init__(self, factory: Callable[[], JobContext] | None):
        self.factory, self.context = factory, None
        self._lock = threading.Lock()

    def get(self) -> JobContext:
        with self._lock:
            if self.context is None:
                if self.factory is None:
                    raise RuntimeError("this Celery app only sends jobs: it was built without a context factory")
                self.context = self.factory()
            return self.context


def build_celery_app(registry: JobRegistry, settings: CelerySettings,
                     context_factory: Callable[[], JobContext] | None = None, main: str = "jobs") -> Celery:
    """A Celery app whose task runs ``registry``'s handlers, with the periodic jobs as beat schedule.

    ``context_factory`` builds the :class:`JobContext` in each worker process on its first job;
    an app that only sends jobs (a web process) may leave it out.
    """
    app = Celery(main, broker=settings.broker_url, set_as_current=False)
    retry = settings.retry
    max_delay = min(retry.max_delay, settings.visibility_timeout / 2)  # a retry waits in an unacked message
    app.conf.update(
        task_default_queue=settings.queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=settings.transport_options(),
        enable_utc=True,
        timezone="UTC",
        beat_schedule=beat_schedule(registry, settings.queue),
    )
    holder = _ContextHolder(context_factory)
    sender = CeleryJobQueue(app, registry)

    @app.task(name=TASK_NAME, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def run(task, name: str, payload: dict) -> None:
        """Run the handler registered as ``name``; retry with back-off if it raises."""
        try:
            spec = registry.get(name)
        except NotFound:
            log.error("dropping job %s: no handler of that name in this worker", name)
            return
        context = holder.get()
        if context.queue is None:
            context.queue = sender
        try:
            run_job(spec, context, payload)  # a singleton another worker is running is skipped
        except Exception as exc:
            attempt = task.request.retries + 1
            if spec.every_seconds is not None or attempt >= retry.max_attempts:
                log.exception("job %s failed (attempt %d); giving up", name, attempt)
                return
            log.warning("job %s failed (attempt %d of %d): %r; retrying", name, attempt, retry.max_attempts, exc)
            raise task.retry(exc=exc, countdown=min(retry.delay(attempt), max_delay)) from exc

    return app


def beat_schedule(registry: JobRegistry, queue: str) -> dict:
    """One beat entry per periodic job of ``registry``, sent to ``queue``.

    An entry expires if no worker starts it within a while (workers down or busy), so missed
    runs do not pile up: the next one does the same work.
    """
    return {
        spec.name: {
            "task": TASK_NAME,
            "schedule": timedelta(seconds=spec.every_seconds),
            "args": (spec.name, {}),
            "options": {"queue": queue, "expires": max(spec.every_seconds * 2, 60.0)},
        }
        for spec in registry.periodic()
    }


class CeleryJobQueue:
    """Sends jobs to the Celery workers of ``app`` (built by :func:`build_celery_app`)."""

    def __init__(self, app: Celery, registry: JobRegistry):
        self.app, self.registry = app, registry

    def enqueue(self, name: str, payload: dict) -> None:
        """Send one run of job ``name``."""
        self.enqueue_many(name, [payload])

    def enqueue_many(self, name: str, payloads: list[dict]) -> None:
        """Send one run of job ``name`` per payload, over one broker connection."""
        self.registry.get(name)
        messages = [portable_payload(p) for p in payloads]
        with self.app.producer_or_acquire() as producer:
            for payload in messages:
                self.app.send_task(TASK_NAME, args=(name, payload), producer=producer)
