"""Bulk start (issue 5): instances/s of ``Engine.start_many`` for the processes a campaign launches.

A province campaign starts one instance per cadre (~100,000).  For each database (a SQLite file in
a temporary directory; PostgreSQL with ``--postgres URL``, in a fresh schema dropped at the end)
and each process (``congress_study`` and ``service_month``), the script:

  - migrates a new database, builds organisations (province, cities, counties, branches) and as
    many cadres as the largest total needs, written in bulk with Core executemany;
  - deploys the process with the league engine (resolver, task policy, notification listener);
  - starts one instance per cadre in chunks, each chunk one ``start_many`` call and one commit, as
    a campaign launch job does; every chunk size and total is timed separately (wall clock, and the
    CPU time of this process);
  - for reference, starts 1,000 instances with ``Engine.start`` one by one (commit per chunk), and
    measures SpiffWorkflow alone in memory (a new workflow run to its first wait, no serialization,
    no database), both as the library stands and with lianqing's shortcuts.

``--workers 2`` also runs the campaign shape of the goal: the largest total split over two
processes, each calling ``start_many`` on its own chunks of 300, on the same database.
``--full`` makes that total 100,000 and adds a single-process run of 100,000.

Usage:
  .venv/bin/python bench/start_many.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
      [--chunks 100,300,1000] [--totals 1000,10000] [--full] [--workers 2] [--no-sqlite]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402

from engine import StartRequest  # noqa: E402
from engine.clock import clock_in_effect  # noqa: E402
from engine.database import make_sql_engine, make_session_factory  # noqa: E402
from engine.expressions import RestrictedEnvironment, RestrictedScriptEngine  # noqa: E402
from engine.runtime import forms_beside  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.league_engine import build_league_engine  # noqa: E402
from workflows.models import Cadre, Organisation, User  # noqa: E402

BPMN_DIR = Path(__file__).resolve().parent.parent / "bpmn"
PROCESSES = ("congress_study", "service_month")
# The campaign's dates: far enough ahead that no timer is due while the bench runs.
START_DATA = {"congress_study": {"remind_at": "2099-11-27T00:00:00+08:00", "due_at": "2099-11-30T00:00:00+08:00"},
              "service_month": {"remind_at": "2099-02-21T09:00:00+08:00", "due_at": "2099-02-28T00:00:00+08:00"}}
CADRES_PER_BRANCH = 100
BRANCHES_PER_COUNTY = 10
COUNTIES_PER_CITY = 8
INSERT_CHUNK = 5000


# ------------------------------------------------------------------------------------ databases

@contextmanager
def sqlite_database(directory: str, name: str):
    """A migrated SQLite file."""
    url = f"sqlite:///{directory}/{name}.db"
    upgrade_database(url)
    yield url


@contextmanager
def postgres_database(base: str):
    """A migrated fresh PostgreSQL schema, dropped afterwards (as tests/conftest.py does)."""
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        upgrade_database(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def build_cadres(url: str, count: int, now: datetime) -> None:
    """A province of cities, counties and branches with ``count`` cadres (users too), in bulk."""
    from workflows.organisations import create_organisation
    sql = make_sql_engine(url)
    with make_session_factory(sql)() as session:
        province = create_organisation(session, "bp", "团省委", "province", None)
        branches = []
        city = county = None
        for index in range(-(-count // CADRES_PER_BRANCH)):
            if index % (BRANCHES_PER_COUNTY * COUNTIES_PER_CITY) == 0:
                city = create_organisation(session, f"bp-{len(branches)}", f"市{index}", "city", province)
            if index % BRANCHES_PER_COUNTY == 0:
                county = create_organisation(session, f"{city.code}-{index}", f"县{index}", "county", city)
            branches.append(create_organisation(session, f"{county.code}-{index}", f"支部{index}", "branch",
                                                county))
        session.flush()
        branch_ids = [branch.id for branch in branches]
        for first in range(0, count, INSERT_CHUNK):
            numbers = range(first, min(first + INSERT_CHUNK, count))
            session.execute(insert(User), [{"username": f"cadre{n}", "display_name": f"团干部{n}", "password_hash": None,
                                            "organisation_id": branch_ids[n // CADRES_PER_BRANCH], "active": True,
                                            "session_version": 1, "created_at": now} for n in numbers])
        users = dict(session.execute(select(User.username, User.id).where(User.username.like("cadre%"))).all())
        for first in range(0, count, INSERT_CHUNK):
            numbers = range(first, min(first + INSERT_CHUNK, count))
            session.execute(insert(Cadre), [{"user_id": users[f"cadre{n}"], "code": f"c{n}", "name": f"团干部{n}",
                                             "kind": "part_time", "organisation_id": branch_ids[n // CADRES_PER_BRANCH]}
                                            for n in numbers])
        session.commit()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
    sql.dispose()


def campaign_requests(url: str, process_id: str, count: int, offset: int = 0) -> list[StartRequest]:
    """One start request per cadre, as a campaign's fan-out reads them from the database."""
    sql = make_sql_engine(url)
    with make_session_factory(sql)() as session:
        rows = session.execute(select(Cadre.code, User.username, Organisation.code)
                               .join(User, User.id == Cadre.user_id)
                               .join(Organisation, Organisation.id == Cadre.organisation_id)
                               .order_by(Cadre.id).offset(offset).limit(count)).all()
    sql.dispose()
    data = START_DATA[process_id]
    return [StartRequest(dict(data, cadre_assignee=username), organisation_id=org, business_key=f"{process_id}-{code}")
            for code, username, org in rows]


# ---------------------------------------------------------------------------------------- runs

def deploy(url: str, process_id: str) -> int:
    """Deploy the process; return its definition id."""
    sql = make_sql_engine(url)
    with make_session_factory(sql)() as session:
        definition = build_league_engine().deploy_file(session, BPMN_DIR / f"{process_id}.bpmn").definition
        session.commit()
        definition_id = definition.id
    sql.dispose()
    return definition_id


def run_start_many(url: str, definition_id: int, requests: list[StartRequest], chunk: int) -> tuple[float, float]:
    """Start every request with ``start_many`` in chunks, one commit each; (wall s, CPU s)."""
    sql = make_sql_engine(url)
    sessions = make_session_factory(sql)
    engine = build_league_engine()
    with sessions() as session:  # warm up: connection, cached spec, prepared statements
        engine.start_many(session, definition_id, requests[:2])
        session.rollback()
    wall, cpu = time.perf_counter(), time.process_time()
    with sessions() as session:
        for first in range(0, len(requests), chunk):
            engine.start_many(session, definition_id, requests[first:first + chunk])
            session.commit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sql.dispose()
    return wall, cpu


def run_start_one_by_one(url: str, process_id: str, requests: list[StartRequest], chunk: int) -> tuple[float, float]:
    """The same with ``Engine.start`` per request (commit per chunk): what bulk start replaces."""
    sql = make_sql_engine(url)
    sessions = make_session_factory(sql)
    engine = build_league_engine()
    wall, cpu = time.perf_counter(), time.process_time()
    with sessions() as session:
        for first in range(0, len(requests), chunk):
            for request in requests[first:first + chunk]:
                engine.start(session, process_id, request.data, organisation_id=request.organisation_id,
                             business_key=request.business_key)
            session.commit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sql.dispose()
    return wall, cpu


def _worker(url: str, definition_id: int, process_id: str, count: int, offset: int, chunk: int) -> tuple[float, float]:
    return run_start_many(url, definition_id, campaign_requests(url, process_id, count, offset), chunk)


def run_workers(url: str, definition_id: int, process_id: str, total: int, chunk: int, workers: int,
                offset: int) -> float:
    """``total`` starts split over ``workers`` processes on one database; wall seconds of the whole launch."""
    share = total // workers
    began = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.starmap(_worker, [(url, definition_id, process_id, share, offset + i * share, chunk)
                               for i in range(workers)])
    return time.perf_counter() - began


def stock_spiffworkflow():
    """SpiffWorkflow's own functions, without lianqing's replacements (engine/spiff_speedups.py)."""
    from engine import spiff_speedups
    return spiff_speedups.unpatched()


def in_memory_rate(process_id: str, count: int, stock: bool) -> float:
    """Instances/s of SpiffWorkflow alone: a new workflow run to its first wait, no serialization, no database.

    ``stock``: ``BpmnWorkflow(...)`` and SpiffWorkflow's own code; else lianqing's shortcuts
    (:func:`engine.serialization.new_workflow` and :mod:`engine.spiff_speedups`).
    """
    from engine.definitions import parse_definition
    from engine.serialization import new_workflow
    from workflows.services import registry
    path = BPMN_DIR / f"{process_id}.bpmn"
    content = path.read_bytes()
    parsed = parse_definition(content, path.name, forms_beside(path, content), known_services=set(registry.functions))
    data = dict(START_DATA[process_id], cadre_assignee="cadre0")
    clock = build_league_engine().clock
    make = BpmnWorkflow if stock else new_workflow
    with stock_spiffworkflow() if stock else nullcontext():
        began = time.perf_counter()
        for _ in range(count):
            workflow = make(parsed.spec, parsed.subprocess_specs)
            workflow.script_engine = RestrictedScriptEngine(RestrictedEnvironment())
            workflow.task_tree.data.update(data)
            with clock_in_effect(clock):
                workflow.do_engine_steps()
        return count / (time.perf_counter() - began)


# ---------------------------------------------------------------------------------------- main

def measure(label: str, url: str, args, process_id: str) -> list[tuple]:
    """Every chunk size and total for one process on one database; rows for the table."""
    rows = []
    largest = args.largest
    definition_id = deploy(url, process_id)
    requests = campaign_requests(url, process_id, largest)
    runs = [(total, chunk) for total in args.totals for chunk in args.chunks]
    if args.full:
        runs.append((100_000, 300))
    for total, chunk in runs:
        wall, cpu = run_start_many(url, definition_id, requests[:total], chunk)
        rows.append((label, process_id, "start_many", chunk, total, total / wall, cpu / total * 1000))
        print(*_fmt(rows[-1]), flush=True)
    wall, cpu = run_start_one_by_one(url, process_id, requests[:1000], 300)
    rows.append((label, process_id, "start, one by one", 300, 1000, 1000 / wall, cpu / 1000 * 1000))
    print(*_fmt(rows[-1]), flush=True)
    if args.workers > 1:
        total = largest
        wall = run_workers(url, definition_id, process_id, total, 300, args.workers, 0)
        rows.append((label, process_id, f"start_many, {args.workers} processes", 300, total, total / wall, None))
        print(*_fmt(rows[-1]), flush=True)
    return rows


def _fmt(row: tuple) -> tuple[str, ...]:
    label, process_id, how, chunk, total, rate, cpu_ms = row
    cpu = f"{cpu_ms:.3f}" if cpu_ms is not None else "-"
    return (f"{label:10}", f"{process_id:15}", f"{how:24}", f"{chunk:>6}", f"{total:>7,}", f"{rate:>9,.0f}", f"{cpu:>9}")


def main() -> None:
    """Run every measurement and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--chunks", default="100,300,1000", help="chunk sizes (requests per start_many call)")
    parser.add_argument("--totals", default="1000,10000", help="instances per measurement")
    parser.add_argument("--full", action="store_true",
                        help="add 100,000 instances (a province campaign) at chunk 300, and for --workers")
    parser.add_argument("--workers", type=int, default=1,
                        help="also start the largest total split over N processes (chunks of 300)")
    parser.add_argument("--processes", default=",".join(PROCESSES), help="process ids to measure")
    args = parser.parse_args()
    args.chunks = [int(c) for c in args.chunks.split(",")]
    args.totals = [int(t) for t in args.totals.split(",")]
    largest = args.largest = 100_000 if args.full else max(args.totals)
    processes = args.processes.split(",")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for process_id in processes:
        for stock in (True, False):
            how = "stock" if stock else "with lianqing's shortcuts"
            print(f"in-memory SpiffWorkflow only ({how}), {process_id}: "
                  f"{in_memory_rate(process_id, 2000, stock):,.0f} instances/s", flush=True)
    print(f"{'database':10} {'process':15} {'how':24} {'chunk':>6} {'total':>7} {'inst/s':>9} {'cpu ms/i':>9}")
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as directory:
        for process_id in processes:
            if not args.no_sqlite:
                with sqlite_database(directory, process_id) as url:
                    build_cadres(url, largest, now)
                    measure("SQLite", url, args, process_id)
            if args.postgres:
                with postgres_database(args.postgres) as url:
                    build_cadres(url, largest, now)
                    measure("PostgreSQL", url, args, process_id)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
