"""Engine throughput: N instances of a three-user-task process, started and finished.

Runs, in one process and one run, the same work three or four ways and prints instances/s:
  - in-memory SpiffWorkflow, no persistence (the ceiling);
  - naive full-JSON round trips of the whole workflow with no database (what a simple design costs);
  - lianqing's engine on SQLite (a file in a temporary directory), every step its own transaction;
  - the same on PostgreSQL when --postgres URL is given (a fresh schema, dropped afterwards).

Usage: .venv/bin/python bench/engine_throughput.py [-n 500] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.spiff.parser import SpiffBpmnParser  # noqa: E402
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG as SPIFF_CONFIG  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402

from engine import Engine  # noqa: E402
from engine.database import make_sql_engine, make_session_factory  # noqa: E402
from engine.expressions import RestrictedScriptEngine  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402

BPMN = Path(__file__).resolve().parent / "three_tasks.bpmn"
PROCESS = "three_tasks"


def in_memory(n: int) -> float:
    """Instances/s with SpiffWorkflow alone."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec, subs = parser.get_spec(PROCESS), parser.get_subprocess_specs(PROCESS)
    began = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine())
        wf.do_engine_steps()
        while not wf.is_completed():
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.set_data(done=True)
            task.run()
            wf.do_engine_steps()
    return n / (time.perf_counter() - began)


def naive_json(n: int) -> float:
    """Instances/s when every step serializes and deserializes the whole workflow (no database)."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec, subs = parser.get_spec(PROCESS), parser.get_subprocess_specs(PROCESS)
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    began = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec, subs, script_engine=RestrictedScriptEngine())
        wf.do_engine_steps()
        state = ser.serialize_json(wf)
        while True:
            wf = ser.deserialize_json(state)
            wf.script_engine = RestrictedScriptEngine()
            if wf.is_completed():
                break
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.set_data(done=True)
            task.run()
            wf.do_engine_steps()
            state = ser.serialize_json(wf)
    return n / (time.perf_counter() - began)


def _run_instances(url: str, n: int, cache_size: int) -> None:
    """Start and finish ``n`` instances, one transaction per start and per completion."""
    sql = make_sql_engine(url)
    sessions = make_session_factory(sql)
    engine = Engine(cache_size=cache_size)
    with sessions() as session:
        for _ in range(n):
            instance = engine.start(session, PROCESS, {"n": 1}, organisation_id="bench")
            session.commit()
            open_tasks = instance.new_task_ids
            while open_tasks:  # each completion tells which tasks it opened, as the UI's "next task"
                done = engine.complete_task(session, open_tasks[0], {"done": True}, "bench")
                session.commit()
                open_tasks = done.next_task_ids
    sql.dispose()


def persisted(url: str, n: int, cache_size: int, workers: int = 1) -> float:
    """Instances/s through lianqing's engine, in ``workers`` processes sharing one database."""
    upgrade_database(url)
    sql = make_sql_engine(url)
    with make_session_factory(sql)() as session:
        Engine().deploy_file(session, BPMN)
        session.commit()
    sql.dispose()
    began = time.perf_counter()
    if workers == 1:
        _run_instances(url, n, cache_size)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.starmap(_run_instances, [(url, n // workers, cache_size)] * workers)
        n = (n // workers) * workers
    return n / (time.perf_counter() - began)


def state_sizes() -> list[tuple[str, int, int]]:
    """Bytes stored per instance: SpiffWorkflow's full JSON (spec included) vs lianqing's state."""
    from engine.serialization import state_to_bytes
    ser = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    sizes = []
    for path, process, data in [(BPMN, PROCESS, {}),
                                (BPMN.parent.parent / "bpmn" / "activity_record.bpmn", "activity_record",
                                 {"deadline": "2099-01-01T00:00:00+00:00", "cadre_assignee": "x"})]:
        parser = SpiffBpmnParser()
        parser.add_bpmn_file(str(path))
        wf = BpmnWorkflow(parser.get_spec(process), parser.get_subprocess_specs(process),
                          script_engine=RestrictedScriptEngine())
        wf.task_tree.data.update(data)
        wf.do_engine_steps()
        sizes.append((process, len(ser.serialize_json(wf)), len(state_to_bytes(wf))))
    return sizes


def main() -> None:
    """Run every variant once and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=500, help="instances per variant (default 500)")
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL to measure too")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}, n={args.n}")
    results = {"in-memory SpiffWorkflow": in_memory(args.n), "naive full-JSON round trips": naive_json(args.n)}
    with tempfile.TemporaryDirectory() as tmp:
        results["lianqing, SQLite, cache on"] = persisted(f"sqlite:///{tmp}/a.db", args.n, 2000)
        results["lianqing, SQLite, cache off"] = persisted(f"sqlite:///{tmp}/b.db", args.n, 0)
        results["lianqing, SQLite, 2 processes"] = persisted(f"sqlite:///{tmp}/c.db", args.n, 2000, workers=2)
    if args.postgres:
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = make_sql_engine(base)
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
            results["lianqing, PostgreSQL, cache on"] = persisted(url, args.n, 2000)
            results["lianqing, PostgreSQL, 2 processes"] = persisted(url, args.n, 2000, workers=2)
        finally:
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    for process, full, ours in state_sizes():
        print(f"state of a waiting {process}: full SpiffWorkflow JSON {full:,} B, stored by lianqing {ours:,} B")
    ceiling = results["in-memory SpiffWorkflow"]
    print(f"{'variant':34} {'instances/s':>12} {'x slower than in-memory':>24}")
    for name, rate in results.items():
        print(f"{name:34} {rate:12.0f} {ceiling / rate:24.2f}")


if __name__ == "__main__":
    main()
