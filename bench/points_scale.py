"""The points ledger at province scale: bulk awards, the tally, and ``year_scores`` for 100,000 cadres.

Loads the generated province (workflows/demo_province.py: ~100,000 cadres, ~1,000,000 youth) into a
fresh PostgreSQL schema, then times:
  - ``award_contact_points`` for every contact (the bulk INSERT … SELECT … ON CONFLICT path of a
    roster import), twice: the second run finds everything awarded and adds nothing;
  - extra ledger entries (``--activities`` per cadre, by SQL) and ``rebuild_tallies`` over the year;
  - ``year_scores`` for the province and for one city (median and p95 of ``--runs`` runs);
  - single ``award`` and ``revoke_source`` calls (the per-fact hot path), per call.
The schema is dropped at the end unless --keep; --reuse SCHEMA times ``year_scores`` again on a kept one.

Usage: .venv/bin/python bench/points_scale.py --postgres postgresql://postgres@127.0.0.1:5432/test
                                              [--size province|small] [--activities 30] [--runs 10] [--keep]
                                              [--reuse bench_points_xxxxxxxx]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from engine.database import make_session_factory, make_sql_engine  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.contact_points import award_contact_points  # noqa: E402
from workflows.demo_province import generate_province  # noqa: E402
from workflows.models import Cadre, Organisation  # noqa: E402
from workflows.points import PointEntry, award, rebuild_tallies, revoke_source, year_scores  # noqa: E402

NOW = datetime(2017, 6, 1, 2, 0, tzinfo=timezone.utc)


def postgres_url(url: str) -> str:
    """The psycopg (3) form of a postgresql:// URL."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def timed(label: str, call):
    """Run ``call`` once, print how long it took, return its result."""
    began = time.perf_counter()
    result = call()
    print(f"{label}: {time.perf_counter() - began:.2f} s", flush=True)
    return result


def time_year_scores(session, runs: int) -> None:
    """Print the median and p95 of ``year_scores`` for the province and for its first city."""
    city = session.scalar(select(Organisation).where(Organisation.kind == "city").order_by(Organisation.id))
    for label, org in (("province", None), (f"city {city.code}", city)):
        timings = []
        for _ in range(runs):
            began = time.perf_counter()
            scores = year_scores(session, 2017, org)
            timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        print(f"year_scores {label}: {len(scores):,} cadres, median {statistics.median(timings):.0f} ms, "
              f"p95 {timings[max(0, round(0.95 * len(timings)) - 1)]:.0f} ms, max {max(scores.values())} points",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--size", default="province")
    parser.add_argument("--activities", type=int, default=30)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", help="a schema kept by an earlier --keep run: time year_scores only")
    args = parser.parse_args()
    base = postgres_url(args.postgres)
    if args.reuse:
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{args.reuse}"
        with make_session_factory(make_sql_engine(url))() as session:
            time_year_scores(session, args.runs)
        return
    schema = f"bench_points_{uuid.uuid4().hex[:8]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        upgrade_database(url)
        sql_engine = make_sql_engine(url)
        sessions = make_session_factory(sql_engine)
        with sessions() as session:
            timed(f"generate the {args.size} province", lambda: generate_province(session, args.size, now=NOW))
            session.commit()
            session.execute(text("ANALYZE"))
            cadres = session.scalar(select(func.count()).select_from(Cadre))
            print(f"cadres: {cadres:,}", flush=True)
            added = timed("award_contact_points, every contact", lambda: award_contact_points(session, NOW))
            session.commit()
            print(f"  entries added: {added:,}")
            again = timed("award_contact_points again (nothing due)", lambda: award_contact_points(session, NOW))
            session.commit()
            print(f"  entries added: {again:,}")
            timed(f"{args.activities} activity entries per cadre (SQL)", lambda: session.execute(text(
                "INSERT INTO point_entry (cadre_id, year, category, dedup_key, points, occurred_at, source_kind,"
                " source_id) SELECT c.id, 2017, 'activities', 'activity:' || c.id || ':' || n,"
                " CASE c.kind WHEN 'part_time' THEN 1.5 ELSE 1 END, :now, 'activity', c.id || ':' || n"
                " FROM cadre c CROSS JOIN generate_series(1, :n) n"), {"now": NOW, "n": args.activities}))
            session.commit()
            session.execute(text("ANALYZE"))
            entries = session.scalar(select(func.count()).select_from(PointEntry))
            print(f"ledger entries: {entries:,}", flush=True)
            rows = timed("rebuild_tallies(2017)", lambda: rebuild_tallies(session, 2017))
            session.commit()
            session.execute(text("ANALYZE"))
            print(f"  tally rows: {rows:,}")
            time_year_scores(session, args.runs)
            some = list(session.scalars(select(Cadre).order_by(Cadre.id).limit(1000)))
            began = time.perf_counter()
            for i, cadre in enumerate(some):
                award(session, cadre, "article_sharing", f"bench:{i}", NOW, "article", f"bench-{i}")
            session.commit()
            print(f"award: {(time.perf_counter() - began) * 1000 / len(some):.2f} ms per call", flush=True)
            began = time.perf_counter()
            for i in range(len(some)):
                revoke_source(session, "article", f"bench-{i}", "bench", NOW)
            session.commit()
            print(f"revoke_source: {(time.perf_counter() - began) * 1000 / len(some):.2f} ms per call", flush=True)
        sql_engine.dispose()
    finally:
        if args.keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
