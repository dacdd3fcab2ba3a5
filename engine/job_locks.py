"""One run at a time across processes: the lock behind ``JobRegistry.job(..., singleton=True)``.

Several processes may run the same periodic jobs: every gunicorn worker with its in-process queue
ticking, or a Celery message handed out again while its first delivery still runs.  For a job
that should not run twice at once (a daily ranking that rewrites a whole day's snapshot), a run
first takes a lock named after the job; when another process holds it, the run is skipped (its
next tick is the retry) rather than queued behind it.

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a connection of its
  own, in autocommit mode, held while the job runs (the job commits through its own sessions, as
  often as it likes; no transaction is left open meanwhile).  The key is a stable 64-bit hash of
  the schema and the job name, so two deployments in two schemas of one database do not block
  each other.  A process that dies loses its connection, and the lock with it.
- **SQLite**: an exclusive ``flock`` on a file beside the database (``<db>.<job>.lock``), which
  the kernel releases when the holder exits.  SQLite itself serialises writers, but two processes
  would still both compute the job and the second would fail on the first one's unique keys; the
  file lock spares that.  An in-memory database (one process) and systems without ``fcntl``
  (Windows) run without a lock: the handlers stay idempotent, as every job must be.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine as SqlEngine, text
from sqlalchemy.orm import Session

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

KEY_PREFIX = "lianqing.job:"
POLL_SECONDS = 0.2  # how often a waiting caller tries again


def advisory_key(schema: str, name: str) -> int:
    """The signed 64-bit advisory-lock key of job ``name`` in ``schema`` (the same in every process)."""
    digest = hashlib.blake2b(f"{KEY_PREFIX}{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_file_path(database: str, name: str) -> str:
    """The lock file of job ``name`` beside the SQLite file ``database``."""
    return f"{database}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"


def _until(take: Callable[[], bool], wait_seconds: float) -> bool:
    """Call ``take`` until it succeeds or ``wait_seconds`` have passed (once when 0); whether it succeeded."""
    deadline = time.monotonic() + wait_seconds
    while not take():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


@contextmanager
def _postgres_lock(sql_engine: SqlEngine, name: str, wait_seconds: float) -> Iterator[bool]:
    with sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        key = advisory_key(connection.scalar(text("SELECT current_schema()")) or "", name)
        held = _until(lambda: bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})),
                      wait_seconds)
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def _file_lock(path: str, wait_seconds: float) -> Iterator[bool]:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def take() -> bool:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    try:
        if not _until(take, wait_seconds):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def cluster_lock(session_factory: Callable[[], Session], name: str, wait_seconds: float = 0.0) -> Iterator[bool]:
    """Try to take the lock called ``name`` on the jobs' database; yields whether this caller holds it.

    Waits at most ``wait_seconds`` (by default not at all): ``False`` means another process (or
    thread) holds it.  Released on leaving the block, also when the block raises.  Not reentrant:
    a caller holding a lock must not ask for it again.
    """
    with session_factory() as session:
        sql_engine = session.get_bind()
    if sql_engine.dialect.name == "postgresql":
        with _postgres_lock(sql_engine, name, wait_seconds) as held:
            yield held
        return
    database = sql_engine.url.database
    if sql_engine.dialect.name != "sqlite" or fcntl is None or not database or database == ":memory:" \
            or database.startswith("file:"):
        yield True  # one process, or no way to lock: see the module's docstring
        return
    with _file_lock(lock_file_path(database, name), wait_seconds) as held:
        yield held


__all__ = ["cluster_lock", "advisory_key", "lock_file_path"]
