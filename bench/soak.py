"""Crash soak (issue 9): gunicorn on PostgreSQL under steady load, killed with ``kill -9`` again and again.

The script:
  - makes a fresh PostgreSQL schema (dropped at the end unless ``--keep``), migrates it, deploys every
    process of ``bpmn/``, builds the small league of ``tests/league.py`` and issues API tokens for the
    organiser ``S_org`` (starts instances) and the cadre ``zhang`` (completes tasks);
  - runs ``gunicorn wsgi:app`` (``--workers 2 --threads 4``) with ``LIANQING_START_SWEEPER=1``: each
    worker sweeps timers every second, so two sweepers race on every due timer, on the real clock;
  - drives load over the JSON API from ``--clients`` threads: start ``activity_record`` instances
    whose deadline is a few seconds away (its reminder is due at once, its deadline escalates
    soon), and complete 张伟's open ``Task_record`` tasks (GET for the ETag, POST with ``If-Match``),
    racing with the deadline timers;
  - every ``--min-gap``..``--max-gap`` seconds sends SIGKILL to the whole gunicorn process group
    (master and workers, mid-request and mid-sweep), and starts it again;
  - after ``--duration`` seconds stops the load and checks the invariants on the database:
      1. every start answered 201 is there, every completion answered 200 is completed by zhang;
      2. no task completed twice (one ``task_completed`` event per task, one completed row per task);
      3. no running instance is stuck without an open task and without a waiting timer;
      4. the audit trail matches the state: each completed human task has exactly one
         ``task_completed`` event and each such event has its completed task;
    prints the kills survived and each invariant, and exits 1 on any violation.

Usage (by hand, not in ``make test``):
  .venv/bin/python bench/soak.py --postgres postgresql://postgres@127.0.0.1:5432/test \
      [--duration 240] [--clients 6] [--min-gap 10] [--max-gap 30] [--port 8765] [--keep]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests
from sqlalchemy import func, select, text

from engine.database import make_sql_engine
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.schema import upgrade_database

RECORD = {"kind": "league_lecture", "date": "2026-05-02", "place": "市南区团委", "youth_count": 12,
          "description": "讲了一次团课，青年们积极参与讨论并提出问题。"}
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout)


# ------------------------------------------------------------------------------------- setting up

def fresh_schema(base: str, prefix: str = "soak") -> tuple[str, str]:
    """A new schema on ``base``: (its name, a URL whose connections use it)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return schema, schema_url(base, schema)


def schema_url(base: str, schema: str) -> str:
    """A URL on ``base`` whose connections use ``schema`` (``search_path``)."""
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def prepare(url: str) -> dict[str, str]:
    """Migrate, deploy every process, build the league; return API tokens by user name."""
    from tests.league import build_league
    from web import create_app
    from web.extensions import db
    from workflows.api_tokens import SCOPES, create_token
    from workflows.models import User

    upgrade_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "START_SWEEPER": False, "LOG_FORMAT": "text"})
    tokens = {}
    with app.app_context():
        engine = app.extensions["lianqing_engine"]
        for path in sorted((REPO_ROOT / "bpmn").glob("*.bpmn")):
            engine.deploy_file(db.session, path)
        now = datetime.now(UTC)
        build_league(db.session, now)
        for username in ("S_org", "zhang"):
            user = db.session.scalar(select(User).where(User.username == username))
            tokens[username] = create_token(db.session, user, "soak", list(SCOPES), now, 7).secret
        db.session.commit()
        db.engine.dispose()
    return tokens


class Server:
    """gunicorn on ``port`` in its own process group, so one SIGKILL takes master and workers at once.

    ``sweeper``: each worker also runs the periodic jobs (``LIANQING_START_SWEEPER=1``, the soak's
    racing sweepers); ``env``: more environment variables for the app.
    """

    def __init__(self, url: str, port: int, log_path: Path, workers: int = 2, threads: int = 4,
                 sweeper: bool = True, env: dict[str, str] | None = None):
        self.url, self.port, self.log_path = url, port, log_path
        self.workers, self.threads, self.sweeper, self.env = workers, threads, sweeper, env or {}
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """The gunicorn master's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 60) -> None:
        """Start gunicorn and wait until ``/health`` answers."""
        env = dict(os.environ, DATABASE_URL=self.url, LIANQING_START_SWEEPER="1" if self.sweeper else "0",
                   LIANQING_SWEEP_INTERVAL="1", SECRET_KEY="soak", LIANQING_LOG_FORMAT="json",
                   PYTHONPATH=str(REPO_ROOT))
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.process = subprocess.Popen(
            [str(REPO_ROOT / ".venv" / "bin" / "gunicorn"), "--workers", str(self.workers), "--threads",
             str(self.threads), "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "1", "wsgi:app"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except NETWORK_ERRORS:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not come up in {timeout}s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        """Process ids of the gunicorn workers (the master's children), from ``/proc``."""
        if self.process is None:
            return []
        workers = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
            except (OSError, IndexError):
                continue  # the process ended meanwhile
            if int(fields[1]) == self.process.pid:
                workers.append(int(stat.parent.name))
        return sorted(workers)

    def stop(self) -> None:
        """Stop gunicorn the ordinary way (SIGTERM to the master), SIGKILL if it hangs."""
        if self.process is None:
            return
        try:
            self.process.terminate()
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            pass
        self.kill9()

    def kill9(self) -> None:
        """SIGKILL the whole process group (the master and its workers), as a power cut would."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)
        self.process = None


# ------------------------------------------------------------------------------------------ load

class Load:
    """Client threads starting instances and completing tasks; what the server acknowledged is kept."""

    def __init__(self, base_url: str, tokens: dict[str, str], clients: int, seed: int):
        self.base = f"{base_url}/api/v1"
        self.tokens = tokens
        self.clients = clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.started: set[int] = set()          # instance ids answered 201
        self.completed: list[int] = []          # human task ids answered 200
        self.answers: Counter = Counter()
        self.random = random.Random(seed)
        self.threads: list[threading.Thread] = []

    def run(self) -> None:
        """Start the client threads."""
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i,), name=f"client-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self) -> None:
        """Stop the clients and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _count(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1

    def _client(self, i: int) -> None:
        http = requests.Session()
        pick = random.Random(self.random.random())
        while not self.stop.is_set():
            try:
                if pick.random() < 0.5:
                    self._start(http, pick)
                else:
                    self._complete(http, pick)
            except NETWORK_ERRORS:
                self._count("network error (server down)")
                time.sleep(0.3)

    def _headers(self, username: str, **more) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}", **more}

    def _start(self, http: requests.Session, pick: random.Random) -> None:
        deadline = datetime.now(UTC) + timedelta(seconds=pick.uniform(1, 20))
        response = http.post(f"{self.base}/instances", headers=self._headers("S_org"), timeout=30, json={
            "process_id": "activity_record", "organisation": "qd-sn",
            "data": {"deadline": deadline.isoformat(), "cadre_assignee": "zhang"}})
        self._count(f"start {response.status_code}")
        if response.status_code == 201:
            with self.lock:
                self.started.add(response.json()["id"])

    def _complete(self, http: requests.Session, pick: random.Random) -> None:
        listing = http.get(f"{self.base}/tasks", params={"process_id": "activity_record", "limit": 20},
                           headers=self._headers("zhang"), timeout=30)
        if listing.status_code != 200:
            self._count(f"list {listing.status_code}")
            return
        tasks = [t for t in listing.json()["items"] if t.get("bpmn_id", "Task_record") == "Task_record"]
        if not tasks:
            time.sleep(0.2)
            return
        task_id = pick.choice(tasks)["id"]
        task = http.get(f"{self.base}/tasks/{task_id}", headers=self._headers("zhang"), timeout=30)
        if task.status_code != 200:
            self._count(f"get {task.status_code}")
            return
        response = http.post(f"{self.base}/tasks/{task_id}/complete", json={"data": RECORD}, timeout=30,
                             headers=self._headers("zhang", **{"If-Match": task.headers["ETag"]}))
        self._count(f"complete {response.status_code}")
        if response.status_code == 200:
            with self.lock:
                self.completed.append(task_id)


# ------------------------------------------------------------------------------------ invariants

def check_invariants(url: str, load: Load) -> tuple[list[tuple[str, list]], dict[str, int]]:
    """Each invariant's name and its violations (empty: it holds), and totals of what happened."""
    sql_engine = make_sql_engine(url)
    results = []
    with sql_engine.connect() as db:
        missing_starts = sorted(load.started - set(db.scalars(select(ProcessInstance.id))))
        results.append(("every start answered 201 is in the database", missing_starts))

        acknowledged = Counter(load.completed)
        rows = {r.id: r for r in db.execute(select(HumanTask.id, HumanTask.state, HumanTask.completed_by,
                                                   HumanTask.instance_id, HumanTask.task_id)
                                            .where(HumanTask.id.in_(list(acknowledged) or [0])))}
        lost = [t for t in acknowledged if t not in rows or rows[t].state != "completed"
                or rows[t].completed_by != "zhang"]
        results.append(("every completion answered 200 is completed in the database", lost))
        results.append(("no task acknowledged as completed twice",
                        [t for t, n in acknowledged.items() if n > 1]))

        events = db.execute(select(AuditEvent.instance_id, AuditEvent.task_id, func.count())
                            .where(AuditEvent.kind == "task_completed")
                            .group_by(AuditEvent.instance_id, AuditEvent.task_id)).all()
        results.append(("no task completed twice in the audit trail",
                        [(i, t, n) for i, t, n in events if n > 1]))
        double_rows = db.execute(select(HumanTask.instance_id, HumanTask.task_id, func.count())
                                 .where(HumanTask.state == "completed", HumanTask.completed_by.is_not(None))
                                 .group_by(HumanTask.instance_id, HumanTask.task_id)
                                 .having(func.count() > 1)).all()
        results.append(("no task completed twice in the task rows", [tuple(r) for r in double_rows]))

        open_states = list(HumanTask.OPEN_STATES)
        has_open = select(HumanTask.id).where(HumanTask.instance_id == ProcessInstance.id,
                                              HumanTask.state.in_(open_states)).exists()
        stuck = list(db.scalars(select(ProcessInstance.id).where(
            ProcessInstance.status == "running", ProcessInstance.next_timer_at.is_(None), ~has_open)))
        results.append(("no running instance without an open task or a waiting timer", stuck))
        errored = list(db.scalars(select(ProcessInstance.id).where(ProcessInstance.status == "error")))
        results.append(("no instance in error", errored))

        completed_rows = {(i, t) for i, t in db.execute(select(HumanTask.instance_id, HumanTask.task_id).where(
            HumanTask.state == "completed", HumanTask.completed_by.is_not(None)))}
        event_keys = {(i, t) for i, t, _n in events}
        results.append(("each completed task has its completion event", sorted(completed_rows - event_keys)[:20]))
        results.append(("each completion event has its completed task", sorted(event_keys - completed_rows)[:20]))
        totals = {
            "instances": db.scalar(select(func.count()).select_from(ProcessInstance)),
            "completed tasks": len(completed_rows),
            "timers fired": db.scalar(select(func.count()).select_from(AuditEvent)
                                      .where(AuditEvent.kind == "timer_fired")),
            "instances ended": db.scalar(select(func.count()).select_from(ProcessInstance)
                                         .where(ProcessInstance.status == "completed")),
        }
    sql_engine.dispose()
    return results, totals


# -------------------------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="PostgreSQL URL (a fresh schema is made in it)")
    parser.add_argument("--duration", type=float, default=240, help="seconds of load")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--min-gap", type=float, default=10, help="fewest seconds between kills")
    parser.add_argument("--max-gap", type=float, default=30, help="most seconds between kills")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the schema for inspection")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or TEST_DATABASE_URL)")
    base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    schema, url = fresh_schema(base)
    log_path = Path(tempfile.gettempdir()) / f"{schema}-gunicorn.log"
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"schema {schema}; gunicorn log {log_path}")
    server = Server(url, args.port, log_path)
    kills, chooser = 0, random.Random(args.seed)
    try:
        tokens = prepare(url)
        server.start()
        load = Load(f"http://127.0.0.1:{args.port}", tokens, args.clients, args.seed)
        load.run()
        began = time.monotonic()
        while True:
            gap = chooser.uniform(args.min_gap, args.max_gap)
            if time.monotonic() - began + gap >= args.duration:
                break
            time.sleep(gap)
            server.kill9()
            kills += 1
            down = chooser.uniform(0, 2)
            print(f"  kill -9 #{kills} at {time.monotonic() - began:.0f}s; restarting after {down:.1f}s", flush=True)
            time.sleep(down)
            server.start()
        time.sleep(max(0.0, args.duration - (time.monotonic() - began)))
        load.join()
        time.sleep(3)  # let the sweepers of the last server fire what came due
        server.kill9()  # the last one too (not counted): the checks read what survived
        results, totals = check_invariants(url, load)
    finally:
        server.kill9()
        if not args.keep:
            drop_schema(base, schema)
    print(f"kills survived: {kills} (kill -9 of gunicorn master and workers, restarted each time)")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(load.answers.items())))
    print("totals: " + ", ".join(f"{k}: {v}" for k, v in totals.items()))
    failed = False
    for name, violations in results:
        print(f"  {'OK  ' if not violations else 'FAIL'} {name}" + (f": {violations[:20]}" if violations else ""))
        failed = failed or bool(violations)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
