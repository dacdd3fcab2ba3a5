"""Background jobs in tests: an in-process queue on a test database, and real Celery worker processes.

In-process (no Redis; the league's jobs, a ManualClock, no ticker thread: call ``tick()``)::

    from tests.job_support import inprocess_queue
    with inprocess_queue(database_url, clock) as queue:
        queue.enqueue("campaign.launch", {"campaign_id": 7})
        queue.drain(30)                 # wait until idle; TimeoutError if not
        clock.advance(timedelta(seconds=5)); queue.tick(); queue.drain(30)   # periodic jobs
        assert not queue.failed         # jobs given up after their retries

Celery on Redis (skipped if Redis is down; a failure in CI, where LIANQING_REQUIRE_SERVICES=1)::

    from tests.job_support import CeleryWorkers, wait_until
    with CeleryWorkers(database_url, visibility_timeout=3) as workers:   # a unique queue for this test
        first = workers.start()          # `celery -A workflows.worker worker --pool=solo`, waits until ready
        workers.queue.enqueue("campaign.launch", {"campaign_id": 7})
        wait_until(lambda: launch_started(), timeout=30)                  # poll the database
        first.kill9()                    # SIGKILL the worker and its pool children, as a power cut would
        workers.start()                  # the job is handed out again after ``visibility_timeout`` s
        wait_until(lambda: launch_done(), timeout=60)
    # leaving the block stops every worker and deletes the queue's Redis keys

``CeleryWorkers(database_url, pool="prefork", concurrency=4)`` runs a pool; ``job_modules=("tests.x",)``
makes the workers import modules that register test-only jobs; ``workers.start_beat()`` runs
``celery beat``.  A worker's log is ``handle.log()``, worth printing when a test fails.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from engine import Clock
from engine.database import make_sql_engine
from engine.jobs import (
    CeleryJobQueue,
    InProcessJobQueue,
    JobRegistry,
    RetryPolicy,
    build_celery_app,
)
from tests.conftest import require_service
from workflows.jobs import build_job_context, celery_settings, league_jobs

REPO_ROOT = Path(__file__).resolve().parent.parent
QUICK_RETRIES = RetryPolicy(max_attempts=3, first_delay=0.0)


@contextlib.contextmanager
def inprocess_queue(database_url: str, clock: Clock | None = None, *, registry: JobRegistry = league_jobs,
                    workers: int = 1, retry: RetryPolicy = QUICK_RETRIES,
                    periodic_jobs: tuple[str, ...] | None = None) -> Iterator[InProcessJobQueue]:
    """A started in-process queue running ``registry``'s jobs on ``database_url`` with the league engine.

    Periodic jobs (all, or only ``periodic_jobs``) run only when the test calls ``queue.tick()``;
    retries happen without waiting.
    """
    sql_engine = make_sql_engine(database_url)
    context = build_job_context(clock=clock, sql_engine=sql_engine)
    queue = InProcessJobQueue(registry, context, workers=workers, clock=context.engine.clock,
                              run_periodic=False, periodic_jobs=periodic_jobs, retry=retry)
    try:
        with queue:
            yield queue
    finally:
        sql_engine.dispose()


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1,
               message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something true; ``AssertionError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout}s")
        time.sleep(interval)


def broker_url() -> str:
    """The Redis the tests use: ``LIANQING_BROKER_URL`` or the local default."""
    return celery_settings().broker_url


def require_redis(url: str | None = None) -> None:
    """Skip (or fail in CI) unless Redis answers at ``url``."""
    import redis
    url = url or broker_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the service is missing
        require_service("redis", f"cannot reach {url}: {exc}")


class CeleryProcess:
    """One ``celery worker`` or ``celery beat`` subprocess (its own process group)."""

    def __init__(self, process: subprocess.Popen, log_path: Path, name: str):
        self.process, self.log_path, self.name = process, log_path, name

    @property
    def pid(self) -> int:
        """The main process id."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def log(self) -> str:
        """Everything the process has logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL the whole process group (main process and pool children), no goodbye."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown (SIGTERM: finish the job in hand); SIGKILL after ``timeout`` seconds."""
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()


class CeleryWorkers:
    """Celery workers (and beat) for one test: a unique queue on the test Redis, against ``database_url``."""

    def __init__(self, database_url: str, *, pool: str = "solo", concurrency: int = 1, visibility_timeout: int = 3,
                 job_modules: tuple[str, ...] = (), environ: dict | None = None, ready_timeout: float = 60.0):
        self.database_url, self.pool, self.concurrency = database_url, pool, concurrency
        self.ready_timeout = ready_timeout
        self.queue_name = f"test-{uuid.uuid4().hex[:12]}"
        self.broker_url = broker_url()
        self.env = {**os.environ, **(environ or {}),
                    "DATABASE_URL": database_url, "LIANQING_BROKER_URL": self.broker_url,
                    "LIANQING_CELERY_QUEUE": self.queue_name, "LIANQING_VISIBILITY_TIMEOUT": str(visibility_timeout),
                    "LIANQING_JOB_MODULES": ",".join(job_modules),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        settings = celery_settings(self.env)
        self.app = build_celery_app(league_jobs, settings, main="lianqing-test")
        self.queue = CeleryJobQueue(self.app, league_jobs)  # sends jobs to this test's workers
        self.processes: list[CeleryProcess] = []
        self._dir = Path(tempfile.mkdtemp(prefix=f"{self.queue_name}-"))

    def __enter__(self) -> CeleryWorkers:
        require_redis(self.broker_url)
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _spawn(self, kind: str, args: list[str], ready_mark: str) -> CeleryProcess:
        number = len(self.processes) + 1
        log_path = self._dir / f"{kind}-{number}.log"
        with open(self._dir / f"{kind}-{number}.out", "wb") as output:
            process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workflows.worker", kind, *args,
                                        "--loglevel=INFO", f"--logfile={log_path}"],
                                       cwd=REPO_ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        handle = CeleryProcess(process, log_path, f"{kind}-{number}")
        self.processes.append(handle)
        try:
            wait_until(lambda: ready_mark in handle.log() or not handle.alive, self.ready_timeout, 0.1,
                       f"celery {kind} ready")
        except AssertionError:
            handle.kill9()
            raise
        if not handle.alive:
            output_text = (self._dir / f"{kind}-{number}.out").read_text(errors="replace")
            raise RuntimeError(f"celery {kind} exited ({process.returncode}):\n{output_text}\n{handle.log()}")
        return handle

    def start(self) -> CeleryProcess:
        """Start one more worker and wait until it takes jobs."""
        number = len(self.processes) + 1
        return self._spawn("worker", [f"--pool={self.pool}", f"--concurrency={self.concurrency}",
                                      f"--hostname=w{number}.{self.queue_name}@%h", "--without-gossip",
                                      "--without-mingle"], " ready.")

    def start_beat(self) -> CeleryProcess:
        """Start ``celery beat`` (schedule file in a temporary folder) and wait until it runs."""
        return self._spawn("beat", [f"--schedule={self._dir / 'beat-schedule'}"], "beat: Starting")

    def close(self) -> None:
        """Kill every process started here and delete the queue's Redis keys."""
        for handle in self.processes:
            handle.kill9()
        try:
            import redis
            client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2)
            keys = list(client.scan_iter(match=f"{self.queue_name}:*", count=1000))
            if keys:
                client.delete(*keys)
        except Exception:  # noqa: BLE001, S110 - cleaning up is best effort
            pass
