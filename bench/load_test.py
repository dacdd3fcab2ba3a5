"""HTTP load test (issue 9): cadres working through their inboxes in the web pages, gunicorn on PostgreSQL.

The script:
  - makes a fresh PostgreSQL schema (dropped at the end unless ``--keep``; ``--schema`` reuses a kept
    one and skips the set-up), migrates it, deploys every process of ``bpmn/`` and generates the demo
    province (``--size province``: 2,000 organisations, 100,000 cadres, 1,000,000 youth; ``small``
    for a quick run);
  - gives cadres open tasks in bulk, as a province campaign does: one ``congress_study`` instance
    (task 开展并记录十九大精神宣讲) per cadre (``--campaign``: all, or a sample of N), plus
    ``--tasks-per-user`` more for each cadre who takes part in the load, started with
    ``Engine.start_many`` in two processes, chunks of 300;
  - gives ``--users`` cadres (a seeded sample) a password and starts ``gunicorn wsgi:app``
    (``--workers``, ``--threads``) with the in-process sweeper off;
  - runs locust headless (``bench/locustfile.py``, in a child process): ``--users`` users spawned at
    ``--spawn-rate``, each signed in as a different cadre through ``/login`` and repeating: list
    "my tasks" (``GET /``), open the first task (``GET /tasks/<id>``), complete it with valid form
    data and the CSRF token of the page (``POST /tasks/<id>/complete``), then think ``--think``
    seconds (a range; ``0`` for none);
  - measures ``--duration`` seconds after the ramp-up: per request kind count, failures, median,
    p95, p99, max; completions per second; every ``--sample-every`` seconds the RSS of each gunicorn
    worker (``/proc``) and the load average;
  - checks the database afterwards: every completion answered with success is completed by its
    cadre, none twice, and the completed tasks of the load's cadres are exactly those answered;
  - prints the report and writes it as JSON and Markdown (``--report PREFIX``; a temporary file
    otherwise).  Exit 1 when the check fails.

Goal of the issue: completion p95 under 50 ms at 50 concurrent users.

Usage (by hand; needs the bench extra: ``.venv/bin/pip install -e '.[bench]'``):
  .venv/bin/python bench/load_test.py --postgres postgresql://postgres@127.0.0.1:5432/test \
      [--size small|province] [--users 50] [--duration 120] [--workers 2] [--threads 4] \
      [--campaign all|N] [--tasks-per-user 150] [--think 5-15] [--keep | --schema NAME] [--report PREFIX]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: soak, start_many, locustfile

from soak import REPO_ROOT, Server, drop_schema, fresh_schema, schema_url  # noqa: E402  (puts REPO_ROOT on sys.path)
from sqlalchemy import func, select, text, update  # noqa: E402

from engine import StartRequest  # noqa: E402
from engine.database import make_sql_engine, make_session_factory  # noqa: E402
from engine.models import HumanTask, ProcessDefinition  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from start_many import START_DATA, run_start_many  # noqa: E402
from workflows.demo_province import DEMO_PASSWORD, generate_province  # noqa: E402
from workflows.league_engine import build_league_engine  # noqa: E402
from workflows.models import Cadre, Organisation, User  # noqa: E402
from workflows.people import hash_password  # noqa: E402

PROCESS = "congress_study"
START_CHUNK = 300
STARTERS = 2  # processes starting instances, as two campaign-launch workers would
COMPLETE = "POST /tasks/<id>/complete"


# ------------------------------------------------------------------------------------- set-up

def timed_step(timings: dict[str, float], name: str, began: float) -> float:
    """Record ``name`` as the seconds since ``began``, say it, return now."""
    now = time.perf_counter()
    timings[name] = round(now - began, 1)
    print(f"  {name}: {timings[name]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return now


def vacuum_analyze(url: str) -> None:
    """``VACUUM ANALYZE`` the whole schema (outside a transaction), as autovacuum would in time."""
    sql = make_sql_engine(url)
    with sql.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    sql.dispose()


def _start_share(url: str, definition_id: int, requests: list[StartRequest]) -> tuple[float, float]:
    return run_start_many(url, definition_id, requests, START_CHUNK)


def build(url: str, args) -> tuple[list[str], dict[str, float]]:
    """Migrate, deploy, generate the province, start the campaign; return the load's cadres and the timings."""
    timings: dict[str, float] = {}
    began = step = time.perf_counter()
    upgrade_database(url)
    sql = make_sql_engine(url)
    sessions = make_session_factory(sql)
    engine = build_league_engine()
    with sessions() as session:
        for path in sorted((REPO_ROOT / "bpmn").glob("*.bpmn")):
            engine.deploy_file(session, path)
        session.commit()
        step = timed_step(timings, "migrate and deploy bpmn/", step)
        summary = generate_province(session, args.size, seed=args.seed, now=datetime.now(UTC),
                                    progress=lambda line: print("    " + line, flush=True))
        session.commit()
        print(f"  province: {summary.counts_line()}")
        step = timed_step(timings, f"generate the demo province (--size {args.size})", step)
        # Statistics first: without them the planner joins 100,000 cadres by nested loops (minutes, not ms).
        vacuum_analyze(url)
        step = timed_step(timings, "VACUUM ANALYZE the province", step)

        cadres = session.execute(select(User.username, Cadre.code, Organisation.code)
                                 .join(User, User.id == Cadre.user_id)
                                 .join(Organisation, Organisation.id == Cadre.organisation_id)
                                 .order_by(Cadre.id)).all()
        if args.users > len(cadres):
            raise SystemExit(f"--users {args.users}: the {args.size} province has only {len(cadres)} cadres")
        chooser = random.Random(args.seed)
        load_cadres = chooser.sample(cadres, args.users)
        session.execute(update(User).where(User.username.in_([c.username for c in load_cadres]))
                        .values(password_hash=hash_password(DEMO_PASSWORD)))
        targets = cadres if args.campaign == "all" else chooser.sample(cadres, min(int(args.campaign), len(cadres)))
        definition_id = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == PROCESS)
                                       .order_by(ProcessDefinition.version.desc()).limit(1))
        session.commit()
    sql.dispose()

    data = START_DATA[PROCESS]
    requests = [StartRequest(dict(data, cadre_assignee=username), organisation_id=org, business_key=f"{PROCESS}-{code}")
                for username, code, org in targets]
    requests += [StartRequest(dict(data, cadre_assignee=username), organisation_id=org,
                              business_key=f"{PROCESS}-{code}-load{n}")
                 for username, code, org in load_cadres for n in range(args.tasks_per_user)]
    chooser.shuffle(requests)  # the load's extra tasks land among the campaign's, as they would in time
    shares = [requests[i::STARTERS] for i in range(STARTERS)]
    with multiprocessing.get_context("fork").Pool(STARTERS) as pool:
        pool.starmap(_start_share, [(url, definition_id, share) for share in shares])
    step = timed_step(timings, f"start {len(requests):,} {PROCESS} instances ({STARTERS} processes)", step)
    vacuum_analyze(url)
    step = timed_step(timings, "VACUUM ANALYZE the tasks", step)
    timings["set-up total"] = round(time.perf_counter() - began, 1)
    return [c.username for c in load_cadres], timings


def load_cadres_of(url: str, users: int, seed: int) -> list[str]:
    """The cadres a kept schema gave a password to (with ``--schema``): those with open load tasks."""
    sql = make_sql_engine(url)
    with make_session_factory(sql)() as session:
        names = list(session.scalars(
            select(HumanTask.assignee).where(HumanTask.state.in_(HumanTask.OPEN_STATES),
                                             HumanTask.assignee.in_(select(User.username).where(
                                                 User.password_hash.is_not(None))))
            .group_by(HumanTask.assignee).having(func.count() > 1).order_by(HumanTask.assignee)))
    sql.dispose()
    random.Random(seed).shuffle(names)
    return names[:users]


# ----------------------------------------------------------------------------------- the load

def rss_mib(pid: int) -> float | None:
    """Resident set size of a process in MiB (``VmRSS`` of ``/proc/<pid>/status``), ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process has used (``/proc/<pid>/stat``), ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def run_load(server: Server, host: str, accounts: list[tuple[str, str]], args) -> dict:
    """Run ``bench/locustfile.py`` headless in its own process; sample the workers' RSS meanwhile."""
    memory: list[dict] = []
    stop = threading.Event()

    def sample_memory():
        began = time.monotonic()
        while True:
            memory.append({"t": round(time.monotonic() - began, 1), "at": time.time(),
                           "load": round(os.getloadavg()[0], 2),
                           "rss_mib": {pid: rss_mib(pid) for pid in server.worker_pids()},
                           "cpu_s": {pid: cpu_seconds(pid) for pid in server.worker_pids()}})
            if stop.wait(args.sample_every):
                return

    sampler = threading.Thread(target=sample_memory, name="rss-sampler", daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as directory:
        settings, results = Path(directory) / "settings.json", Path(directory) / "results.json"
        settings.write_text(json.dumps({"host": host, "accounts": accounts, "users": args.users,
                                        "spawn_rate": args.spawn_rate, "settle": args.settle,
                                        "duration": args.duration, "think": args.think}), encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, str(Path(__file__).with_name("locustfile.py")), str(settings), str(results)],
                       check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = json.loads(results.read_text(encoding="utf-8"))
    load["locust_cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    stop.set()
    sampler.join()
    load["memory"] = memory
    return load


def worker_memory(memory: list[dict], window: list[float]) -> dict[str, dict[str, float]]:
    """Per worker: first, last and largest RSS sampled, the samples taken, and the CPU seconds it used
    between the samples nearest the measured ``window`` (start, end as epoch seconds)."""
    series: dict[int, list[float]] = defaultdict(list)
    cpu: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for sample in memory:
        for pid, mib in sample["rss_mib"].items():
            if mib is not None:
                series[pid].append(mib)
        for pid, seconds in sample.get("cpu_s", {}).items():
            if seconds is not None and "at" in sample:
                cpu[pid].append((sample["at"], seconds))

    def cpu_in_window(points: list[tuple[float, float]]) -> float | None:
        inside = [seconds for at, seconds in points if window[0] - 1 <= at <= window[1] + 1]
        return round(inside[-1] - inside[0], 1) if len(inside) > 1 else None

    return {str(pid): {"first_mib": round(values[0], 1), "last_mib": round(values[-1], 1),
                       "max_mib": round(max(values), 1), "samples": len(values),
                       "cpu_s_measured": cpu_in_window(cpu.get(pid, []))}
            for pid, values in sorted(series.items())}


# ---------------------------------------------------------------------------------- the check

def check_completions(url: str, completed: list[tuple[str, int]], usernames: list[str], open_before: int,
                      done_earlier: int = 0) -> dict:
    """Every completion answered with success is in the database, completed by its cadre, once.

    ``done_earlier``: tasks the cadres completed before this run (a reused schema).
    """
    acknowledged = {task_id: username for username, task_id in completed}
    sql = make_sql_engine(url)
    with sql.connect() as db:
        rows = {row.id: row for row in db.execute(select(HumanTask.id, HumanTask.state, HumanTask.completed_by)
                                                  .where(HumanTask.id.in_(list(acknowledged) or [0])))}
        completed_by_load = db.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state == "completed", HumanTask.completed_by.in_(usernames))) - done_earlier
        open_after = db.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state.in_(HumanTask.OPEN_STATES), HumanTask.assignee.in_(usernames)))
    sql.dispose()
    missing = [task_id for task_id, username in acknowledged.items()
               if task_id not in rows or rows[task_id].state != "completed" or rows[task_id].completed_by != username]
    return {"successful_completions": len(completed), "distinct_tasks": len(acknowledged),
            "completed_in_database": completed_by_load, "open_before": open_before, "open_after": open_after,
            "missing": missing[:20],
            "ok": not missing and len(acknowledged) == len(completed) == completed_by_load
                  and open_before - open_after == completed_by_load}


def open_tasks_of(url: str, usernames: list[str]) -> int:
    """Open tasks assigned to ``usernames``."""
    sql = make_sql_engine(url)
    with sql.connect() as db:
        count = db.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state.in_(HumanTask.OPEN_STATES), HumanTask.assignee.in_(usernames)))
    sql.dispose()
    return count


def completed_before(url: str, usernames: list[str]) -> int:
    """Tasks ``usernames`` completed before this run (a reused schema)."""
    sql = make_sql_engine(url)
    with sql.connect() as db:
        count = db.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.state == "completed", HumanTask.completed_by.in_(usernames)))
    sql.dispose()
    return count


# --------------------------------------------------------------------------------- the report

def markdown(report: dict) -> str:
    """The report as Markdown, for docs/reliability.md."""
    load = report["load"]
    lines = [f"`{report['command']}`", "",
             f"Machine: {report['machine']}. Set-up: "
             + (", ".join(f"{k} {v} s" for k, v in report["setup"].items())
                or f"none, schema {report['schema']} reused")
             + ".", "",
             f"Load average (1/5/15 min): {' / '.join(map(str, report['load_average_at_start']))} before the set-up, "
             f"{' / '.join(map(str, load['load_before']))} when measuring began, "
             f"{' / '.join(map(str, load['load_after']))} at its end.", "",
             f"{report['users']} users, {report['workers']} gunicorn workers × {report['threads']} threads, think time "
             f"{report['think']} s; ramp-up {load['ramp_up_s']} s until {load['signed_in']} had signed in, "
             f"then measured {load['seconds']} s.", "",
             "| request | count | failures | per s | median ms | p95 ms | p99 ms | max ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, kind in load["kinds"].items():
        lines.append(f"| {name} | {kind['count']:,} | {kind['failures']} | {kind['per_s']} | {kind['median_ms']} "
                     f"| {kind['p95_ms']} | {kind['p99_ms']} | {kind['max_ms']} |")
    lines += ["", f"**Sustained completions: {load['completions_per_s']} per second** "
                  f"({load['completions_in_window']:,} in {load['seconds']} s).", "",
              f"RSS of each gunicorn worker, sampled every {report['sample_every']:g} s from before the first "
              "sign-in to after the last request:", "",
              "| gunicorn worker | RSS first MiB | last MiB | max MiB | samples | CPU s while measured |",
              "|---|---:|---:|---:|---:|---:|"]
    for pid, rss in report["worker_memory"].items():
        lines.append(f"| pid {pid} | {rss['first_mib']} | {rss['last_mib']} | {rss['max_mib']} | {rss['samples']} "
                     f"| {rss['cpu_s_measured']} |")
    lines += ["", "RSS over time (every third sample; seconds from the start of the measured window):", "",
              "| s | load | " + " | ".join(f"pid {pid} MiB" for pid in report["worker_memory"]) + " |",
              "|---:|---:|" + "---:|" * len(report["worker_memory"])]
    for sample in load["memory"][::3]:
        by_pid = {str(pid): mib for pid, mib in sample["rss_mib"].items()}  # int keys live, str keys from JSON
        cells = " | ".join(f"{by_pid.get(pid) or 0:.1f}" for pid in report["worker_memory"])
        lines.append(f"| {sample['at'] - load['window'][0]:.0f} | {sample['load']} | {cells} |")
    lines += ["", f"The load generator (locust, one process) used {load['locust_cpu_s']} CPU s in all."]
    check = report["check"]
    lines += ["", f"Check: {'OK' if check['ok'] else 'FAILED'}: {check['successful_completions']:,} completions "
                  f"answered with success, {check['distinct_tasks']:,} distinct tasks, "
                  f"{check['completed_in_database']:,} completed in the database by the load's cadres; open tasks "
                  f"{check['open_before']:,} → {check['open_after']:,}"
                  + (f"; missing {check['missing']}" if check["missing"] else "") + "."]
    if load["exhausted_users"]:
        lines.append(f"Users whose inbox ran empty: {len(load['exhausted_users'])}.")
    if load["errors"]:
        lines += ["", "Failures: " + "; ".join(f"{k} ×{v}" for k, v in load["errors"].items())]
    lines += ["", "Slowest requests: " + ", ".join(f"{s['request']} {s['ms']} ms" for s in load["slowest"])]
    return "\n".join(lines) + "\n"


def think_range(value: str) -> tuple[float, float]:
    """``"0.5-2"`` → (0.5, 2.0); ``"1"`` → (1.0, 1.0); ``"0"``: no think time."""
    low, _dash, high = value.partition("-")
    low_f = float(low)
    high_f = float(high) if high else low_f
    if low_f < 0 or high_f < low_f:
        raise argparse.ArgumentTypeError(f"think time {value!r}: give SECONDS or LOW-HIGH")
    return low_f, high_f


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="PostgreSQL URL (a fresh schema is made in it)")
    parser.add_argument("--size", choices=("small", "province"), default="province")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--users", type=int, default=50, help="concurrent users, each a different cadre")
    parser.add_argument("--spawn-rate", type=float, default=None, help="users started per second (users/10)")
    parser.add_argument("--settle", type=float, default=5, help="seconds after the ramp-up before measuring")
    parser.add_argument("--duration", type=float, default=120, help="seconds measured")
    parser.add_argument("--think", type=think_range, default=(5.0, 15.0),
                        help="seconds a user waits between tasks: LOW-HIGH (0: none, the saturation throughput)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--campaign", default="all", help="cadres given one campaign task: all, or N")
    parser.add_argument("--tasks-per-user", type=int, default=150, help="more open tasks for each load cadre")
    parser.add_argument("--sample-every", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    parser.add_argument("--schema", help="reuse a schema kept by an earlier run (skips the set-up)")
    parser.add_argument("--report", help="write PREFIX.json and PREFIX.md (default: a temporary file)")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or TEST_DATABASE_URL)")
    if args.campaign != "all" and not args.campaign.isdigit():
        parser.error("--campaign: all, or a number of cadres")
    args.spawn_rate = args.spawn_rate or max(1.0, args.users / 10)
    base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    machine = (f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"load {load_at_start[0]} at the start")
    print(f"machine: {machine}")
    if args.schema:
        schema, url = args.schema, schema_url(base, args.schema)
    else:
        schema, url = fresh_schema(base, prefix="load")
    print(f"schema {schema}")
    log_path = Path(tempfile.gettempdir()) / f"{schema}-gunicorn.log"
    evidence_dir = tempfile.mkdtemp(prefix=f"{schema}-evidence-")  # uploaded evidence, removed at the end
    server = Server(url, args.port, log_path, workers=args.workers, threads=args.threads, sweeper=False,
                    env={"SECRET_KEY": "load-test", "LIANQING_SHOW_DEV_CODES": "0",
                         "LIANQING_EVIDENCE_DIR": evidence_dir})
    keep = args.keep or bool(args.schema)
    try:
        if args.schema:
            usernames, timings = load_cadres_of(url, args.users, args.seed), {}
            if len(usernames) < args.users:
                raise SystemExit(f"schema {schema} has only {len(usernames)} cadres with a password and open tasks")
        else:
            print("set-up:")
            usernames, timings = build(url, args)
        open_before = open_tasks_of(url, usernames)
        done_earlier = completed_before(url, usernames)
        server.start()
        print(f"gunicorn: {args.workers} workers × {args.threads} threads on :{args.port}, log {log_path}")
        load = run_load(server, f"http://127.0.0.1:{args.port}", [(u, DEMO_PASSWORD) for u in usernames], args)
        server.stop()
        check = check_completions(url, load["completed"], usernames, open_before, done_earlier)
    finally:
        server.stop()
        shutil.rmtree(evidence_dir, ignore_errors=True)
        if keep:
            print(f"kept schema {schema}")
        else:
            drop_schema(base, schema)
    report = {"command": " ".join(shlex.quote(a) for a in ["bench/load_test.py", *sys.argv[1:]]),
              "machine": machine, "date": datetime.now(UTC).isoformat(timespec="seconds"), "schema": schema,
              "size": args.size, "users": args.users, "workers": args.workers, "threads": args.threads,
              "think": "-".join(f"{x:g}" for x in args.think), "sample_every": args.sample_every, "setup": timings,
              "load_average_at_start": load_at_start, "load": {k: v for k, v in load.items() if k != "completed"},
              "worker_memory": worker_memory(load["memory"], load["window"]), "check": check}
    prefix = args.report or str(Path(tempfile.gettempdir()) / f"{schema}-report")
    Path(prefix + ".json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    text_report = markdown(report)
    Path(prefix + ".md").write_text(text_report, encoding="utf-8")
    print()
    print(text_report)
    print(f"report: {prefix}.json, {prefix}.md")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
