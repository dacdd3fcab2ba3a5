"""Timer sweep at scale (issue 9): 1,000,000 waiting timers in PostgreSQL, 1,000 of them due.

Goals: the sweep finds the 1,000 due among 1,000,000 waiting in under 100 ms, and fires timers within
1 s of their due time.  In a fresh PostgreSQL schema (dropped at the end unless ``--keep``), the script:

1. deploys a small process (a task with an interrupting deadline timer, ``due_at`` from the start
   data, leading to a follow-up task) with the league engine;
2. **waiting timers**: starts ``--templates`` instances with ``Engine.start_many``, each with its own
   deadline 1 to 30 days ahead, then copies each one in SQL (``INSERT … SELECT … generate_series``)
   until there are ``--waiting`` instances: every copy has its template's state, data, next timer,
   human task and audit events, byte for byte (only the ids differ; the SpiffWorkflow task UUIDs
   inside the state repeat across copies, which nothing reads across instances).  That is what a
   campaign launch leaves: many instances with one deadline;
3. **due timers**: starts ``--due`` instances whose deadlines passed in the last hour;
4. times the sweep's query (``Engine.due_instance_ids``: ``… WHERE status = 'running' AND
   next_timer_at < now ORDER BY next_timer_at LIMIT n FOR UPDATE SKIP LOCKED``) for the
   sweeper's batch (``--batch``) and for all due (1,000), with ``EXPLAIN (ANALYZE, BUFFERS)``;
5. for each of ``--modes`` (how the sweep writes; the same run, so the same database and load):
   ``one-by-one`` (one transaction and one durable commit per instance: the sweep before issue 9's
   batching), ``batch`` (``--batch`` instances per transaction, bulk statements, durable commits)
   and ``batch-async`` (the same with ``synchronous_commit = off`` for the sweep's commits: what the
   sweep job does by default):
   a. **one sweep**: ``--due`` more instances whose deadlines passed (the first mode fires those of
      step 3), fired by one ``Engine.run_due_timers``: milliseconds per fired instance, and CPU per
      fired instance of this process and of its PostgreSQL backends (``/proc``; on a loaded machine
      that is what a fire costs with a core to itself);
   b. **lateness**, in two rounds: ``--trickle`` instances falling due evenly over
      ``--trickle-seconds``, then ``--burst`` falling due at one instant (a campaign deadline); each
      round runs the real sweep job (``engine.run_due_timers`` of ``workflows.timer_jobs``, in the
      mode) on ``--sweepers`` ``InProcessJobQueue`` with its ticker (every ``LIANQING_SWEEP_INTERVAL``
      s, default 0.25), and measures for each timer the time from its due time to the commit that
      wrote its firing.  min/p50/p95/max for each round (a burst's min is about how long it waited
      for the next sweep to start, max − min how long the sweep took), and the CPU per fire as above;
6. a summary table, one row per mode.

Usage (the full size, as in docs/benchmarks.md; about 10–12 minutes on a quiet machine):
  .venv/bin/python bench/timer_sweep.py --postgres postgresql://postgres@127.0.0.1:5432/test
      [--waiting 1000000] [--due 1000] [--templates 200] [--trickle 600] [--trickle-seconds 60]
      [--burst 1000] [--interval 0.25] [--sweepers 1] [--batch 100] [--modes one-by-one,batch,batch-async] [--keep]
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROCESS_ID = "bench_timer_wait"
BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_timer_wait"
                  targetNamespace="http://lianqing.example/bench">
  <bpmn:process id="{PROCESS_ID}" name="按期完成，逾期督办" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_cadre" name="cadre">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_wait</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Timer_due</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_late</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>End_done</bpmn:flowNodeRef><bpmn:flowNodeRef>End_late</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_wait" name="按期完成">
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="Timer_due" name="到期" attachedToRef="Task_wait">
      <bpmn:outgoing>Flow_late</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TimerDef_due"><bpmn:timeDate>due_at</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="Task_late" name="督办逾期">
      <bpmn:incoming>Flow_late</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_done"><bpmn:incoming>Flow_2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="End_late"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_wait" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_wait" targetRef="End_done" />
    <bpmn:sequenceFlow id="Flow_late" sourceRef="Timer_due" targetRef="Task_late" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Task_late" targetRef="End_late" />
  </bpmn:process>
</bpmn:definitions>
""".encode()
START_CHUNK = 500
# How each mode calls Engine.run_due_timers (besides the batch size).
MODES = {"one-by-one": {"one_by_one": True, "asynchronous_commit": False},
         "batch": {"one_by_one": False, "asynchronous_commit": False},
         "batch-async": {"one_by_one": False, "asynchronous_commit": True}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="PostgreSQL URL (a fresh schema is made in it)")
    parser.add_argument("--waiting", type=int, default=1_000_000, help="waiting timers in all (not due)")
    parser.add_argument("--due", type=int, default=1000, help="timers already due when the sweep runs")
    parser.add_argument("--templates", type=int, default=200, help="really started instances the waiting ones copy")
    parser.add_argument("--trickle", type=int, default=600, help="timers falling due evenly while the sweeper runs")
    parser.add_argument("--trickle-seconds", type=float, default=60.0)
    parser.add_argument("--burst", type=int, default=1000, help="timers falling due at one instant")
    parser.add_argument("--interval", type=float, default=None,
                        help="sweep interval, s (default: LIANQING_SWEEP_INTERVAL, else 0.25)")
    parser.add_argument("--sweepers", type=int, default=1,
                        help="in-process queues sweeping at once (as several web workers would)")
    parser.add_argument("--batch", type=int, default=100, help="instances per sweep transaction (LIANQING_SWEEP_BATCH)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"how the sweep writes, comma-separated, in this order: {', '.join(MODES)}")
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.interval is not None:
    os.environ["LIANQING_SWEEP_INTERVAL"] = str(ARGS.interval)  # read when workflows.timer_jobs is imported
if ARGS is not None and (unknown := set(ARGS.modes.split(",")) - set(MODES)):
    raise SystemExit(f"unknown mode(s) {', '.join(sorted(unknown))}: choose from {', '.join(MODES)}")

from ranking import backend_cpu_seconds  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import workflows.timer_jobs as timer_jobs  # noqa: E402
from engine import Engine  # noqa: E402

from engine import StartRequest  # noqa: E402
from engine.clock import ManualClock  # noqa: E402
from engine.database import make_session_factory, make_sql_engine  # noqa: E402
from engine.jobs import InProcessJobQueue  # noqa: E402
from engine.models import AuditEvent, HumanTask, ProcessInstance  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.jobs import build_job_context, league_jobs  # noqa: E402
from workflows.league_engine import build_league_engine  # noqa: E402


@contextmanager
def postgres_schema(base: str, keep: bool):
    """A migrated fresh PostgreSQL schema; dropped afterwards unless ``keep``."""
    base = base.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"bench_timers_{uuid.uuid4().hex[:8]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        upgrade_database(url)
        yield url, schema
    finally:
        if keep:
            print(f"schema kept: {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def start(sessions, engine, definition_id: int, due_times: list[datetime]) -> None:
    """Start one instance per due time, in ``start_many`` chunks (one commit each)."""
    for first in range(0, len(due_times), START_CHUNK):
        with sessions() as session:
            engine.start_many(session, definition_id, [StartRequest({"due_at": due.isoformat()})
                                                       for due in due_times[first:first + START_CHUNK]])
            session.commit()


def _columns(table, skip: set[str]) -> list[str]:
    return [column.name for column in table.columns if column.name not in skip]


def copy_instances(sessions, template_ids: list[int], total: int) -> None:
    """Copy each template instance (row, human task, audit events) in SQL until there are ``total`` in all."""
    instance_columns = _columns(ProcessInstance.__table__, {"id"})
    task_columns = _columns(HumanTask.__table__, {"id", "instance_id"})
    event_columns = _columns(AuditEvent.__table__, {"id", "instance_id"})
    quoted = lambda names, prefix: ", ".join(f'{prefix}"{name}"' for name in names)  # noqa: E731
    statement = text(f"""
        WITH new AS (
            INSERT INTO process_instance ({quoted(instance_columns, '')})
            SELECT {quoted(instance_columns, 't.')} FROM process_instance t, generate_series(1, :copies)
            WHERE t.id = :template RETURNING id),
        tasks AS (
            INSERT INTO human_task (instance_id, {quoted(task_columns, '')})
            SELECT new.id, {quoted(task_columns, 'h.')} FROM new, human_task h WHERE h.instance_id = :template)
        INSERT INTO audit_event (instance_id, {quoted(event_columns, '')})
        SELECT new.id, {quoted(event_columns, 'a.')} FROM new, audit_event a WHERE a.instance_id = :template""")
    missing = total - len(template_ids)
    for index, template in enumerate(template_ids):
        copies = missing // len(template_ids) + (1 if index < missing % len(template_ids) else 0)
        if copies:
            with sessions() as session:
                session.execute(statement, {"copies": copies, "template": template})
                session.commit()
        if index % 20 == 19:
            print(f"  … {index + 1}/{len(template_ids)} templates copied", flush=True)


class CpuMeter:
    """CPU seconds of this process and of the PostgreSQL backends of ``sql`` (remembered as they connect)."""

    def __init__(self, sql):
        self.backends: set[int] = set()
        event.listen(sql, "connect", self._remember)

    def _remember(self, dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backends.add(cursor.fetchone()[0])
        dbapi_connection.commit()

    def read(self) -> tuple[float, float]:
        """(this process, its PostgreSQL backends) CPU seconds so far."""
        return time.process_time(), sum(backend_cpu_seconds(pid) or 0.0 for pid in self.backends)

    def since(self, before: tuple[float, float]) -> tuple[float, float]:
        """CPU seconds used since ``before`` (a :meth:`read`)."""
        now = self.read()
        return now[0] - before[0], now[1] - before[1]


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def explain(sessions, limit: int, now: datetime) -> tuple[str, float]:
    """EXPLAIN (ANALYZE, BUFFERS) of the sweep's query with ``limit``; (plan, execution ms)."""
    with sessions() as session:
        engine = session.get_bind()
        query = (ProcessInstance.__table__.select().with_only_columns(ProcessInstance.__table__.c.id)
                 .where(ProcessInstance.status == "running", ProcessInstance.next_timer_at < now)
                 .order_by(ProcessInstance.next_timer_at).limit(limit).with_for_update(skip_locked=True))
        compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
        rows = session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        session.rollback()
    plan = "\n".join(rows)
    execution = next(float(line.split(":")[1].split()[0]) for line in rows if line.startswith("Execution Time"))
    return plan, execution


def time_query(sessions, engine, limit: int, now: datetime, rounds: int = 20) -> list[float]:
    """Milliseconds of ``Engine.due_instance_ids`` (what the sweeper runs), each in its own transaction."""
    timings = []
    for _ in range(rounds):
        with sessions() as session:
            began = time.perf_counter()
            found = engine.due_instance_ids(session, now, limit)
            timings.append((time.perf_counter() - began) * 1000)
            session.rollback()
    assert found, "no due instance found"
    return timings


class FiringRecorder:
    """Audit listener: each ``timer_fired`` event's due time, and the wall-clock moment its transaction committed."""

    _KEY = "bench_timer_firings"

    def __init__(self):
        self.lateness: dict[str, list[float]] = {}
        self.group_of: dict[int, str] = {}
        event.listen(Session, "after_commit", self._committed)
        event.listen(Session, "after_rollback", lambda session: session.info.pop(self._KEY, None))

    def __call__(self, session, events) -> None:
        session.info.setdefault(self._KEY, []).extend(
            (self.group_of.get(item["instance_id"], "other"), datetime.fromisoformat(item["detail"]))
            for item in events if item["kind"] == "timer_fired")

    def _committed(self, session) -> None:
        committed = datetime.now(timezone.utc)
        for group, due in session.info.pop(self._KEY, []):
            self.lateness.setdefault(group, []).append((committed - due).total_seconds())

    def fired(self, group: str) -> int:
        """How many timers of ``group`` have fired (committed) so far."""
        return len(self.lateness.get(group, []))


def measure_lateness(sessions, engine, definition_id: int, context, recorder: FiringRecorder, group: str,
                     offsets: list[float], sweepers: int, cpu: CpuMeter) -> dict | None:
    """Start instances falling due ``offsets`` seconds after a lead, sweep them as they fall due; print the lateness."""
    lead = 10.0 + len(offsets) / 100  # time to start them all before the first falls due
    first_due = datetime.now(timezone.utc) + timedelta(seconds=lead)
    with sessions() as session:
        last_id = session.scalar(text("SELECT max(id) FROM process_instance"))
    start(sessions, engine, definition_id, [first_due + timedelta(seconds=offset) for offset in offsets])
    with sessions() as session:
        recorder.group_of.update({i: group for i in session.scalars(
            text("SELECT id FROM process_instance WHERE id > :last"), {"last": last_id})})
    if datetime.now(timezone.utc) > first_due:
        print("warning: starting took longer than the lead; the first timers were already due")
    queues = [InProcessJobQueue(league_jobs, context, workers=1, periodic_jobs=("engine.run_due_timers",))
              for _ in range(sweepers)]
    before = cpu.read()
    for queue in queues:
        queue.start()
    try:
        deadline = time.monotonic() + lead + max(offsets) + 600
        while recorder.fired(group) < len(offsets) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for queue in queues:
            queue.stop()
    own, backends = cpu.since(before)
    values = recorder.lateness.get(group, [])
    spread = f"over {max(offsets):g} s" if max(offsets) else "at one instant"
    if not values:
        print(f"{group} ({len(offsets):,} due {spread}): nothing fired")
        return None
    result = {"min": min(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "max": max(values),
              "within": sum(v <= 1 for v in values) / len(values), "cpu": own / len(values) * 1000,
              "pg_cpu": backends / len(values) * 1000}
    print(f"{group} ({len(offsets):,} due {spread}): {len(values):,} fired; lateness min {result['min']:.2f} s, "
          f"p50 {result['p50']:.2f} s, "
          f"p95 {result['p95']:.2f} s, max {result['max']:.2f} s; within 1 s: {result['within']:.0%}; CPU per fire "
          f"{result['cpu']:.2f} ms here + {result['pg_cpu']:.2f} ms PostgreSQL; load {os.getloadavg()[0]:.1f}")
    return result


def start_due(sessions, definition_id: int, count: int, real_now: datetime) -> None:
    """Start ``count`` instances whose deadlines passed in the last hour (by an engine whose clock is a day back)."""
    due_engine = build_league_engine(clock=ManualClock(real_now - timedelta(days=1)), cache_size=0)
    start(sessions, due_engine, definition_id,
          [real_now - timedelta(hours=1) + timedelta(milliseconds=i) for i in range(count)])


def sweep_once(sessions, engine, mode: str, batch: int, cpu: CpuMeter) -> dict:
    """One ``Engine.run_due_timers`` in ``mode`` over what is due; ms per fired instance and CPU; printed."""
    with sessions() as session:
        before, began = cpu.read(), time.perf_counter()
        fired = engine.run_due_timers(session, batch_size=batch, **MODES[mode])
        took = time.perf_counter() - began
        own, backends = cpu.since(before)
    result = {"fired": fired, "ms": took / max(fired, 1) * 1000, "cpu": own / max(fired, 1) * 1000,
              "pg_cpu": backends / max(fired, 1) * 1000}
    print(f"{mode}: fired {fired:,} instances in {took:.2f} s ({result['ms']:.2f} ms each, {fired / took:.0f}/s); "
          f"CPU per fire {result['cpu']:.2f} ms here + {result['pg_cpu']:.2f} ms PostgreSQL; "
          f"load {os.getloadavg()[0]:.1f}")
    return result


def main() -> None:
    args = ARGS
    modes = args.modes.split(",")
    print(f"# timer sweep — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f}/{os.getloadavg()[1]:.1f}/{os.getloadavg()[2]:.1f}")
    print(f"waiting {args.waiting:,}, due {args.due:,}, templates {args.templates}, trickle {args.trickle} over "
          f"{args.trickle_seconds:g} s, burst {args.burst}, sweep interval {timer_jobs.SWEEP_INTERVAL_SECONDS:g} s, "
          f"{args.sweepers} sweeper(s), batch {args.batch}, modes {', '.join(modes)}")
    with postgres_schema(args.postgres, args.keep) as (url, _schema):
        sql = make_sql_engine(url, pool_size=10)
        cpu = CpuMeter(sql)
        sessions = make_session_factory(sql)
        real_now = datetime.now(timezone.utc)
        engine = build_league_engine(cache_size=0)
        with sessions() as session:
            definition_id = engine.deploy(session, BPMN, "bench_timer_wait.bpmn").definition.id
            session.commit()

        began = time.perf_counter()
        deadlines = [real_now + timedelta(days=1 + 29 * i / max(1, args.templates - 1)) for i in range(args.templates)]
        start(sessions, engine, definition_id, deadlines)
        with sessions() as session:
            templates = session.scalars(text("SELECT id FROM process_instance ORDER BY id")).all()
        copy_instances(sessions, list(templates), args.waiting)
        with sessions() as session:
            session.execute(text("ANALYZE"))
            session.commit()
        print(f"\n{args.waiting:,} waiting instances in {time.perf_counter() - began:.0f} s "
              f"({args.templates} started, the rest copied)")

        began = time.perf_counter()
        start_due(sessions, definition_id, args.due, real_now)
        with sessions() as session:
            session.execute(text("ANALYZE process_instance"))
            session.commit()
            counts = session.execute(text(
                "SELECT count(*), count(*) FILTER (WHERE next_timer_at < now()), "
                "pg_size_pretty(pg_total_relation_size('process_instance')), "
                "pg_size_pretty(pg_total_relation_size('human_task')), "
                "pg_size_pretty(pg_total_relation_size('audit_event')) FROM process_instance")).one()
        print(f"{args.due:,} due instances started in {time.perf_counter() - began:.1f} s; rows: {counts[0]:,} "
              f"instances, {counts[1]:,} due; sizes: process_instance {counts[2]}, human_task {counts[3]}, "
              f"audit_event {counts[4]}")

        now = datetime.now(timezone.utc)
        print("\n## finding the due ones (Engine.due_instance_ids, 20 rounds each)")
        for limit in (args.batch, args.due):
            timings = time_query(sessions, engine, limit, now)
            print(f"LIMIT {limit}: median {statistics.median(timings):.2f} ms, max {max(timings):.2f} ms")
        for limit in (args.batch, args.due):
            plan, execution = explain(sessions, limit, now)
            print(f"\nEXPLAIN (ANALYZE, BUFFERS), LIMIT {limit} — execution {execution:.2f} ms\n{plan}")

        recorder = FiringRecorder()
        sweep_engine = build_league_engine(cache_size=0)
        sweep_engine.listeners = (*sweep_engine.listeners, recorder)
        context = build_job_context(sql_engine=sql, engine=sweep_engine)
        timer_jobs.SWEEP_BATCH_SIZE = args.batch  # the sweep job reads these when it runs
        results: dict[str, dict] = {}
        for index, mode in enumerate(modes):
            print(f"\n## {mode}: one sweep (Engine.run_due_timers)")
            if index:
                start_due(sessions, definition_id, args.due, datetime.now(timezone.utc))
            results[mode] = {"sweep": sweep_once(sessions, engine, mode, args.batch, cpu)}
            print(f"\n## {mode}: lateness with the in-process sweeper (the real sweep job on InProcessJobQueue)")
            timer_jobs.SWEEP_ASYNC_COMMIT = MODES[mode]["asynchronous_commit"]
            # The job passes batch size and commit mode; the shim adds one_by_one for the mode that needs it.
            sweep_engine.run_due_timers = functools.partial(Engine.run_due_timers, sweep_engine,
                                                            one_by_one=MODES[mode]["one_by_one"])
            for group, offsets in (("trickle", [args.trickle_seconds * i / max(1, args.trickle)
                                                for i in range(args.trickle)]),
                                   ("burst", [0.0] * args.burst)):
                if offsets:
                    results[mode][group] = measure_lateness(sessions, engine, definition_id, context, recorder,
                                                            f"{mode} {group}", offsets, args.sweepers, cpu)

        print(f"\n## summary (batch {args.batch}, sweep interval {timer_jobs.SWEEP_INTERVAL_SECONDS:g} s, "
              f"{args.sweepers} sweeper(s); CPU: this process + PostgreSQL backends, ms per fired instance)")
        print("| mode | one sweep: ms per fire | CPU ms per fire | burst lateness min / p50 / p95 / max | burst ≤ 1 s "
              "| burst CPU ms per fire | trickle lateness p50 / p95 / max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for mode, result in results.items():
            sweep, burst, trickle = result["sweep"], result.get("burst"), result.get("trickle")
            lateness = (lambda r: f"{r['p50']:.2f} / {r['p95']:.2f} / {r['max']:.2f} s" if r else "—")  # noqa: E731
            burst_lateness = f"{burst['min']:.2f} / {lateness(burst)}" if burst else "—"
            print(f"| {mode} | {sweep['ms']:.2f} | {sweep['cpu']:.2f} + {sweep['pg_cpu']:.2f} | {burst_lateness} | "
                  f"{burst['within']:.0%} | {burst['cpu']:.2f} + {burst['pg_cpu']:.2f} | {lateness(trickle)} |"
                  if burst else f"| {mode} | {sweep['ms']:.2f} | {sweep['cpu']:.2f} + {sweep['pg_cpu']:.2f} | — | — "
                  f"| — | {lateness(trickle)} |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}/{os.getloadavg()[1]:.1f}/{os.getloadavg()[2]:.1f}")
        sql.dispose()


if __name__ == "__main__":
    main()
