"""Background jobs: one small interface, two backends.  No league terms.

A *job* is a named handler ``handler(ctx, payload)`` registered on a :class:`JobRegistry`; the
payload is a JSON object.  A :class:`JobQueue` runs jobs elsewhere than the caller:

- :class:`InProcessJobQueue` — worker threads in this process (the embedded default; tests).
  Queued jobs live in memory: they are lost if the process ends.
- ``CeleryJobQueue`` (``engine/celery_jobs.py``) — Celery on Redis, for many processes on many
  machines; a job survives a worker killed mid-way (late acknowledgement, redelivery).

Delivery is at least once under both: **every handler must be idempotent** and commit its own
work through ``ctx.session_factory()``.  A handler that raises is logged and retried a bounded
number of times with back-off (:class:`RetryPolicy`); a periodic job (``every_seconds``) is not
retried: its next run is the retry.

A job registered with ``singleton=True`` runs one at a time across every process on the same
database (``engine/job_locks.py``: an advisory lock on PostgreSQL, a file lock on SQLite): a run
that finds another one going is skipped, logged at debug level.  Both backends run handlers
through :func:`run_job`, which applies it.
"""
from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from .clock import Clock
from .errors import NotFound
from .job_locks import cluster_lock
from .runtime import Engine

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Where jobs are sent to run in the background."""

    def enqueue(self, name: str, payload: dict) -> None: ...

    def enqueue_many(self, name: str, payloads: list[dict]) -> None: ...


@dataclass
class JobContext:
    """What a handler gets besides its payload.

    ``session_factory()`` returns a new plain SQLAlchemy session each call (the handler closes it);
    ``queue`` is the queue running the handler, for follow-up jobs (set by the backend).
    """

    session_factory: Callable[[], Session]
    engine: Engine
    queue: JobQueue | None = None


Handler = Callable[[JobContext, dict], None]


@dataclass(frozen=True)
class JobSpec:
    """A registered job: its name, handler, for a periodic job its interval, and whether it runs one at a time."""

    name: str
    handler: Handler
    every_seconds: float | None = None
    singleton: bool = False


class JobRegistry:
    """The jobs an application knows, by name."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobSpec] = {}

    def job(self, name: str, every_seconds: float | None = None, *,
            singleton: bool = False) -> Callable[[Handler], Handler]:
        """Register the decorated ``handler(ctx, payload)`` as job ``name`` (periodic if ``every_seconds``).

        ``singleton``: at most one run at a time across all processes; a run that finds another
        going is skipped (for periodic jobs whose next tick does the work anyway).
        """
        if every_seconds is not None and every_seconds <= 0:
            raise ValueError(f"every_seconds must be positive, not {every_seconds!r} (job {name!r})")

        def register(handler: Handler) -> Handler:
            if name in self._jobs:
                raise ValueError(f"job {name!r} is registered twice ({self._jobs[name].handler.__qualname__}, "
                                 f"{handler.__qualname__})")
            self._jobs[name] = JobSpec(name, handler, every_seconds, singleton)
            return handler
        return register

    def get(self, name: str) -> JobSpec:
        """The job called ``name``; :class:`NotFound` if there is none."""
        try:
            return self._jobs[name]
        except KeyError:
            raise NotFound(f"没有名为 {name!r} 的后台任务 / no background job named {name!r}") from None

    def periodic(self) -> list[JobSpec]:
        """The jobs that run on an interval."""
        return [spec for spec in self._jobs.values() if spec.every_seconds is not None]

    def names(self) -> list[str]:
        """Every registered job name."""
        return list(self._jobs)

    def __contains__(self, name: object) -> bool:
        return name in self._jobs


def run_job(spec: JobSpec, context: JobContext, payload: dict) -> bool:
    """Run ``spec``'s handler; a singleton only under its cluster-wide lock.  Whether it ran (not skipped).

    The handler's exceptions propagate (the backend logs and retries them).
    """
    if not spec.singleton:
        spec.handler(context, payload)
        return True
    with cluster_lock(context.session_factory, spec.name) as held:
        if not held:
            log.debug("job %s skipped: another process is running it", spec.name)
            return False
        spec.handler(context, payload)
        return True


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing job is tried in all, and how long to wait before each retry."""

    max_attempts: int = 4
    first_delay: float = 2.0
    factor: float = 4.0
    max_delay: float = 300.0

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure (1, 2, ...)."""
        return min(self.first_delay * self.factor ** (failed_attempts - 1), self.max_delay)


def portable_payload(payload: Any) -> dict:
    """``payload`` as it will reach the handler: a JSON object, checked now rather than in a worker."""
    if not isinstance(payload, dict):
        raise TypeError(f"后台任务参数必须是字典 / a job payload must be a dict, not {type(payload).__name__}")
    try:
        return json.loads(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"后台任务参数必须能写成 JSON / a job payload must be JSON-serialisable: {exc}") from None


@dataclass
class _Job:
    name: str
    payload: dict
    attempts: int = 0
    periodic: bool = False


@dataclass(frozen=True)
class FailedJob:
    """A job the in-process queue gave up on, kept for inspection (tests, logs)."""

    name: str
    payload: dict
    attempts: int
    error: str


class InProcessJobQueue:
    """Runs jobs on worker threads of this process, and periodic jobs on their interval.

    ``start()`` starts ``workers`` threads and, if ``run_periodic``, a ticker thread that calls
    :meth:`tick` every ``tick_seconds``.  :meth:`tick` enqueues each periodic job whose time has
    come by ``clock`` (a test moves a ``ManualClock`` and calls ``tick()`` itself, no ticker).
    A periodic job is not enqueued again while a run of it is still queued or running;
    ``periodic_jobs`` limits which periodic jobs this queue runs (default: all of the registry's).
    ``autostart`` starts the threads on the first :meth:`enqueue`.
    """

    def __init__(self, registry: JobRegistry, context: JobContext, *, workers: int = 1,
                 clock: Clock | None = None, run_periodic: bool = True, periodic_jobs: Collection[str] | None = None,
                 tick_seconds: float | None = None, retry: RetryPolicy = RetryPolicy(), autostart: bool = False):
        self.registry = registry
        self.context = dataclasses.replace(context, queue=self)
        self.clock = clock or context.engine.clock
        self.workers, self.run_periodic, self.retry, self.autostart = workers, run_periodic, retry, autostart
        self.periodic = [spec for spec in registry.periodic() if periodic_jobs is None or spec.name in periodic_jobs]
        intervals = [spec.every_seconds for spec in self.periodic]
        self.tick_seconds = tick_seconds or min([1.0, *intervals])
        self.failed: collections.deque[FailedJob] = collections.deque(maxlen=100)
        self._ready: collections.deque[_Job] = collections.deque()
        self._delayed: list[tuple[float, int, _Job]] = []  # (monotonic due time, sequence, job), a heap
        self._sequence = itertools.count()
        self._running = 0
        self._next_periodic: dict[str, datetime] = {}
        self._periodic_in_flight: set[str] = set()
        self._state = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- the JobQueue protocol ---------------------------------------------------------------
    def enqueue(self, name: str, payload: dict) -> None:
        """Queue one run of job ``name``."""
        self.enqueue_many(name, [payload])

    def enqueue_many(self, name: str, payloads: list[dict]) -> None:
        """Queue one run of job ``name`` per payload."""
        self.registry.get(name)
        jobs = [_Job(name, portable_payload(p)) for p in payloads]
        if self.autostart and not self.started:
            self.start()
        with self._state:
            self._ready.extend(jobs)
            self._state.notify_all()

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether the worker threads are running."""
        return bool(self._threads) and not self._stopping.is_set()

    def start(self) -> InProcessJobQueue:
        """Start the worker threads (and the ticker, if periodic jobs run here).  Idempotent."""
        with self._state:
            if self.started:
                return self
            self._stopping.clear()
            self._threads = [threading.Thread(target=self._work, name=f"jobs-worker-{i}", daemon=True)
                             for i in range(self.workers)]
            if self.run_periodic and self.periodic:
                self._threads.append(threading.Thread(target=self._tick_forever, name="jobs-ticker", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the jobs now running; jobs still queued are dropped (and logged)."""
        self._stopping.set()
        with self._state:
            self._state.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        with self._state:
            left = len(self._ready) + len(self._delayed)
            self._ready.clear()
            self._delayed.clear()
            self._periodic_in_flight.clear()
        if left:
            log.warning("job queue stopped with %d job(s) not run", left)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is queued, waiting for a retry or running; ``TimeoutError`` if not by ``timeout``."""
        if not self.started:
            raise RuntimeError("队列未启动 / the job queue is not started: call start() first")
        with self._state:
            if not self._state.wait_for(self._idle, timeout):
                raise TimeoutError(f"job queue still busy after {timeout}s: {len(self._ready)} queued, "
                                   f"{len(self._delayed)} waiting to retry, {self._running} running")

    def __enter__(self) -> InProcessJobQueue:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def depth(self) -> int:
        """Jobs waiting to run: queued, or waiting to be retried (not those running now)."""
        with self._state:
            return len(self._ready) + len(self._delayed)

    # -- periodic jobs -----------------------------------------------------------------------
    def tick(self) -> list[str]:
        """Enqueue every periodic job that is due by the clock; return their names."""
        now = self.clock.now()
        due = []
        with self._state:
            for spec in self.periodic:
                next_at = self._next_periodic.get(spec.name)
                if (next_at is not None and now < next_at) or spec.name in self._periodic_in_flight:
                    continue
                self._next_periodic[spec.name] = now + timedelta(seconds=spec.every_seconds)
                self._periodic_in_flight.add(spec.name)
                self._ready.append(_Job(spec.name, {}, periodic=True))
                due.append(spec.name)
            if due:
                self._state.notify_all()
        return due

    def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # a broken clock must not end periodic work for good
                log.exception("job ticker failed")
            self._stopping.wait(self.tick_seconds)

    # -- the worker loop ---------------------------------------------------------------------
    def _idle(self) -> bool:
        return not self._ready and not self._delayed and self._running == 0

    def _next_job(self) -> _Job | None:
        with self._state:
            while not self._stopping.is_set():
                while self._delayed and self._delayed[0][0] <= time.monotonic():
                    self._ready.append(heapq.heappop(self._delayed)[2])
                if self._ready:
                    self._running += 1
                    return self._ready.popleft()
                wait = self._delayed[0][0] - time.monotonic() if self._delayed else None
                self._state.wait(wait)
            return None

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            job.attempts += 1
            error = None
            try:
                run_job(self.registry.get(job.name), self.context, job.payload)
            except Exception as exc:  # a failing handler never ends the worker thread
                error = exc
                log.exception("job %s failed (attempt %d of %d)", job.name, job.attempts,
                              1 if job.periodic else self.retry.max_attempts)
            with self._state:
                self._running -= 1
                if error is not None and not job.periodic and job.attempts < self.retry.max_attempts:
                    due = time.monotonic() + self.retry.delay(job.attempts)
                    heapq.heappush(self._delayed, (due, next(self._sequence), job))
                else:
                    if error is not None:
                        self.failed.append(FailedJob(job.name, job.payload, job.attempts, repr(error)))
                    if job.periodic:
                        self._periodic_in_flight.discard(job.name)
                self._state.notify_all()


def __getattr__(name: str):
    # The Celery backend lives in its own module and is imported only when asked for, so the
    # embedded default never loads Celery.
    if name in ("CeleryJobQueue", "CelerySettings", "build_celery_app"):
        from . import celery_jobs
        return getattr(celery_jobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


