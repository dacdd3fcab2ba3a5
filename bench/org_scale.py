"""The organisation tree at province scale: generate the demo province, then time the tree queries.

Loads the generated province (workflows/demo_province.py) into a fresh PostgreSQL schema, migrated
with the project's Alembic migrations, and times, over many runs each (median and p95):
  - the subtree of the province, of a city and of a county: organisations and cadres in it
    (``in_subtree`` range conditions, joined to the cadres);
  - who holds a role here: ``roles.holders`` at a county, ``roles.nearest_holding_organisation``
    for a branch (the walk up to the county's coordinator);
  - the ancestors of a branch (``organisations.ancestors``).
Each is measured twice: straight after the load (ANALYZE only) and after VACUUM ANALYZE, the state
autovacuum brings a live database to.  The schema is dropped at the end unless --keep.

Usage: .venv/bin/python bench/org_scale.py --postgres postgresql://postgres@127.0.0.1:5432/test
                                           [--size province|small] [--seed 2017] [--runs 200] [--keep]
"""
from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from engine.database import make_session_factory, make_sql_engine  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.demo_province import generate_province  # noqa: E402
from workflows.models import Cadre, Organisation  # noqa: E402
from workflows.organisations import ancestors, in_subtree  # noqa: E402
from workflows.roles import holders, nearest_holding_organisation  # noqa: E402


def postgres_url(url: str) -> str:
    """The psycopg (3) form of a postgresql:// URL."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def time_runs(runs: int, call: Callable[[int], object]) -> tuple[list[float], object]:
    """Milliseconds of ``runs`` calls of ``call(run_number)``, and the last result."""
    timings, result = [], None
    for run in range(runs):
        began = time.perf_counter()
        result = call(run)
        timings.append((time.perf_counter() - began) * 1000)
    return timings, result


def organisations_in(session, root: Organisation) -> int:
    """How many organisations lie in ``root``'s subtree."""
    return session.scalar(select(func.count()).select_from(Organisation)
                          .where(in_subtree(Organisation.path, root.path)))


def cadres_in(session, root: Organisation) -> int:
    """How many cadres have their home organisation in ``root``'s subtree."""
    return session.scalar(select(func.count()).select_from(Cadre)
                          .join(Organisation, Cadre.organisation_id == Organisation.id)
                          .where(in_subtree(Organisation.path, root.path)))


def measure(session, runs: int, seed: int) -> list[tuple[str, str, list[float]]]:
    """Time each query over ``runs`` runs; return (name, what the last run found, timings)."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Organisation]] = {}
    for org in session.scalars(select(Organisation).order_by(Organisation.id)):
        by_kind.setdefault(org.kind, []).append(org)
    province = by_kind["province"][0]
    cities, counties, branches = by_kind["city"], by_kind["county"], by_kind["branch"]
    pick_city = [rng.choice(cities) for _ in range(runs)]
    pick_county = [rng.choice(counties) for _ in range(runs)]
    pick_branch = [rng.choice(branches) for _ in range(runs)]
    results = []

    def record(name: str, call: Callable[[int], object], describe: Callable[[object], str]) -> None:
        call(0)  # warm up: plan caches, connection
        timings, last = time_runs(runs, call)
        results.append((name, describe(last), timings))

    record("organisations in the province's subtree", lambda _: organisations_in(session, province),
           lambda n: f"{n:,} organisations")
    record("cadres in the province's subtree", lambda _: cadres_in(session, province), lambda n: f"{n:,} cadres")
    record("organisations in a city's subtree", lambda r: organisations_in(session, pick_city[r]),
           lambda n: f"{n:,} (last city)")
    record("cadres in a city's subtree", lambda r: cadres_in(session, pick_city[r]), lambda n: f"{n:,} (last city)")
    record("organisations in a county's subtree", lambda r: organisations_in(session, pick_county[r]),
           lambda n: f"{n:,} (last county)")
    record("cadres in a county's subtree", lambda r: cadres_in(session, pick_county[r]),
           lambda n: f"{n:,} (last county)")
    record("holders(coordinator) at a county", lambda r: holders(session, "coordinator", pick_county[r]),
           lambda users: f"{len(users)} user(s)")
    record("nearest_holding_organisation(coordinator) for a branch",
           lambda r: nearest_holding_organisation(session, "coordinator", pick_branch[r]),
           lambda org: f"{org.kind} {org.code}")
    record("ancestors of a branch", lambda r: ancestors(session, pick_branch[r]),
           lambda chain: f"{len(chain)} organisations")
    return results


def maintain(sql_engine, statement: str) -> float:
    """Run ANALYZE or VACUUM ANALYZE on the schema; return the seconds it took."""
    with sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        began = time.perf_counter()
        connection.execute(text(statement))
        return time.perf_counter() - began


def main() -> None:
    """Generate, measure, print; drop the schema unless --keep."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--size", choices=("small", "province"), default="province")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    args = parser.parse_args()

    base = postgres_url(args.postgres)
    schema = f"bench_org_{uuid.uuid4().hex[:8]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    sql_engine = make_sql_engine(url)
    try:
        upgrade_database(url)
        print(f"schema {schema}; python {platform.python_version()}; size {args.size}; seed {args.seed}")
        sessions = make_session_factory(sql_engine)
        with sessions() as session:
            began = time.perf_counter()
            summary = generate_province(session, args.size, seed=args.seed, progress=lambda line: print("  " + line))
            generated = time.perf_counter() - began
            session.commit()
            committed = time.perf_counter() - began
        analysed = maintain(sql_engine, "ANALYZE")
        print(f"generated {summary.counts_line()}")
        print(f"generation {generated:.1f} s, with commit {committed:.1f} s; ANALYZE {analysed:.1f} s")
        with sessions() as session:
            after_load = measure(session, args.runs, args.seed)
        # Straight after a bulk load the visibility map is empty, so index-only scans still read the
        # table; autovacuum fixes that on a live database.  Measure that steady state too.
        vacuumed = maintain(sql_engine, "VACUUM ANALYZE")
        print(f"VACUUM ANALYZE {vacuumed:.1f} s")
        with sessions() as session:
            steady = measure(session, args.runs, args.seed)
        print()
        print(f"| query ({args.runs} runs each) | found (last run) | after load: median ms | p95 ms "
              f"| after VACUUM: median ms | p95 ms |")
        print("|---|---|---:|---:|---:|---:|")
        for (name, found, timings), (_name, _found, steady_timings) in zip(after_load, steady):
            print(f"| {name} | {found} | {statistics.median(timings):.2f} | {percentile(timings, 0.95):.2f} "
                  f"| {statistics.median(steady_timings):.2f} | {percentile(steady_timings, 0.95):.2f} |")
    finally:
        sql_engine.dispose()
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
