"""The daily ranking at province size: recompute every ranking, then render ranking pages.

Loads the generated province (workflows/demo_province.py: ~2,000 organisations, 100,000 cadres,
1,000,000 youth) into a fresh PostgreSQL schema migrated with the project's migrations, then
generates, in bulk (COPY), a year's facts up to 31 May 2026:
  - activities: 0–14 per cadre (five-ones kinds, Jan–May) and 0–25 per leading organ;
  - the points ledger: one entry per activity, per contact with complete tags, per bound youth,
    and 0–24 youth-voice answers, micro-wish replies, likes/comments and shared articles per cadre;
    ``point_tally`` rebuilt from it (``points.rebuild_tallies``);
  - one province-wide campaign with an instance per cadre, 70 % of them completed.
Then it times:
  - ``rankings.compute_rankings`` for 31 May, with its commit (goal: under 10 s), several runs;
  - ranking pages through the Flask test client, signed in as the province organiser (goal: under
    50 ms), each requested many times (median and p95): the province's cities, the province's
    cadres (first page and a deep page), a city's cadres, a county's cadres, a grassroots subtree
    (ranked on the fly), and the printable bulletin of a county.
The schema is dropped at the end unless --keep; --schema NAME reuses a kept one (no generation).

Usage: .venv/bin/python bench/ranking.py --postgres postgresql://postgres@127.0.0.1:5432/test
                                         [--size province|small] [--runs 3] [--requests 100] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402

from engine.database import make_session_factory, make_sql_engine  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.demo_province import DEMO_PASSWORD, generate_province  # noqa: E402
from workflows.models import CADRE_ACTIVITY_KINDS, LEADING_ORGAN_KINDS, ORGAN_ACTIVITY_KINDS, Organisation  # noqa: E402
from workflows.points import rebuild_tallies  # noqa: E402
from workflows.rankings import compute_rankings  # noqa: E402

DAY = date(2026, 5, 31)
NOW = datetime(2026, 6, 1, 1, 0, tzinfo=timezone.utc)
YEAR_START = date(2026, 1, 1)
CHUNK = 50_000


def postgres_url(url: str) -> str:
    """The psycopg (3) form of a postgresql:// URL."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def copy_rows(session, table: str, columns: list[str], rows) -> int:
    """COPY ``rows`` (tuples) into ``table``; return how many."""
    raw = session.connection().connection.driver_connection
    count = 0
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _moment(rng: random.Random) -> datetime:
    return datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(150 * 86400))


def generate_year(session, seed: int) -> dict[str, int]:
    """Activities, ledger entries and a campaign for January–May 2026, in bulk; how many of each."""
    rng = random.Random(seed)
    cadres = session.execute(text("SELECT id, kind, organisation_id FROM cadre ORDER BY id")).all()
    organs = session.scalars(select(Organisation.id).where(Organisation.kind.in_(LEADING_ORGAN_KINDS))).all()
    next_activity = (session.scalar(text("SELECT coalesce(max(id), 0) FROM activity")) or 0) + 1
    activities, entries = [], []
    counts = {}

    def activity(cadre_id, org_id, kind):
        nonlocal next_activity
        held = YEAR_START + timedelta(days=rng.randrange((DAY - YEAR_START).days + 1))
        row = (next_activity, cadre_id, org_id, kind, held.isoformat(), "青年之家", rng.randint(3, 40), "开展活动",
               '["bench.jpg"]', datetime(held.year, held.month, held.day, 12, tzinfo=timezone.utc))
        next_activity += 1
        return row

    rule = {"full_time": 0, "seconded": 0, "part_time": 1}
    per_activity = (Decimal("1"), Decimal("1.5"))
    per_contact = (Decimal("0.1"), Decimal("1"))
    for cadre_id, kind, org_id in cadres:
        part = rule[kind]
        for _ in range(rng.randint(0, 14)):
            row = activity(cadre_id, org_id, rng.choice(CADRE_ACTIVITY_KINDS))
            activities.append(row)
            entries.append((cadre_id, 2026, "activities", f"activity:{row[0]}", per_activity[part], row[9], "activity",
                            str(row[0])))
        for category, source, points, most in (("youth_voice", "voice_answer", Decimal("1"), 6),
                                               ("micro_wishes", "wish_reply", Decimal("2"), 3),
                                               ("likes_comments", "interaction", Decimal("0.5"), 10),
                                               ("article_sharing", "article", Decimal("0.5"), 5)):
            for number in range(rng.randint(0, most)):
                entries.append((cadre_id, 2026, category, f"{source}:{cadre_id}:{number}", points, _moment(rng),
                                source, f"{cadre_id}-{number}"))
    for org_id in organs:
        activities.extend(activity(None, org_id, rng.choice(ORGAN_ACTIVITY_KINDS)) for _ in range(rng.randint(0, 25)))
    counts["activities"] = copy_rows(session, "activity", ["id", "cadre_id", "organisation_id", "kind", "held_on",
                                                           "place", "youth_count", "description", "evidence",
                                                           "recorded_at"], activities)
    session.execute(text("SELECT setval(pg_get_serial_sequence('activity', 'id'), (SELECT max(id) FROM activity))"))
    columns = ["cadre_id", "year", "category", "dedup_key", "points", "occurred_at", "source_kind", "source_id"]
    counts["ledger entries"] = copy_rows(session, "point_entry", columns, entries)
    del activities, entries
    kinds = {cadre_id: rule[kind] for cadre_id, kind, _org in cadres}
    contact_rows = session.execute(text(
        "SELECT k.cadre_id, k.youth_id, k.since, y.bound_at, (y.occupation IS NOT NULL AND y.industry IS NOT NULL) "
        "FROM contact k JOIN youth y ON y.id = k.youth_id"))

    def contact_entries():
        for cadre_id, youth_id, since, bound_at, tagged in contact_rows:
            if tagged:
                yield (cadre_id, 2026, "contacts", f"contact:{youth_id}", per_contact[kinds[cadre_id]], since,
                       "contact", str(youth_id))
            if bound_at is not None:
                yield (cadre_id, 2026, "mobile_binding", f"binding:{youth_id}", per_contact[kinds[cadre_id]],
                       bound_at, "binding", str(youth_id))
    counts["ledger entries"] += copy_rows(session, "point_entry", columns, contact_entries())
    counts["tally rows"] = rebuild_tallies(session, 2026)

    # One province-wide campaign: an instance per cadre, 70 % completed.
    definition = session.execute(text(
        "INSERT INTO process_definition (process_id, name, version, content_hash, filename, bpmn_xml, forms, "
        "spec_json, deployed_at) VALUES ('congress_study', '十九大精神宣讲', 1, 'bench', 'bench.bpmn', '', '{}', '', "
        ":now) RETURNING id"), {"now": NOW}).scalar()
    root = session.scalar(select(Organisation.id).where(Organisation.parent_id.is_(None)))
    campaign = session.execute(text(
        "INSERT INTO campaign (process_id, definition_id, title, window_start, window_end, organisation_id, "
        "target_kind, parameters, launched_by, status, total_targets, created_at, launched_at) VALUES "
        "('congress_study', :d, '十九大精神宣讲', :start, :end, :root, 'cadre', '{}', 'bench', 'done', :n, "
        ":start, :start) RETURNING id"),
        {"d": definition, "start": datetime(2026, 3, 1, tzinfo=timezone.utc), "end": NOW, "root": root,
         "n": len(cadres)}).scalar()
    first_instance = (session.scalar(text("SELECT coalesce(max(id), 0) FROM process_instance")) or 0) + 1
    codes = dict(session.execute(select(Organisation.id, Organisation.code)).all())
    started = datetime(2026, 3, 1, tzinfo=timezone.utc)
    copy_rows(session, "process_instance", ["id", "definition_id", "process_id", "organisation_id", "status", "state",
                                            "data", "version", "started_at"],
              ((first_instance + n, definition, "congress_study", codes[org_id],
                "completed" if rng.random() < 0.7 else "running", b"", "{}", 1, started)
               for n, (_cadre_id, _kind, org_id) in enumerate(cadres)))
    counts["campaign instances"] = copy_rows(
        session, "campaign_target", ["campaign_id", "target_key", "organisation_id", "cadre_id", "chunk",
                                     "instance_id", "launched_at"],
        ((campaign, f"cadre:{cadre_id}", org_id, cadre_id, n // 500, first_instance + n, started)
         for n, (cadre_id, _kind, org_id) in enumerate(cadres)))
    session.execute(text("SELECT setval(pg_get_serial_sequence('process_instance', 'id'), "
                         "(SELECT max(id) FROM process_instance))"))
    return counts


def maintain(sql_engine, statement: str) -> float:
    """Run ANALYZE or VACUUM ANALYZE; return the seconds it took."""
    with sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        began = time.perf_counter()
        connection.execute(text(statement))
        return time.perf_counter() - began


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by a local PostgreSQL backend process (user + system), or None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_rankings(sessions, runs: int) -> list[tuple[float, float, float | None]]:
    """(compute seconds, with commit seconds, CPU seconds of this process and its PostgreSQL backend) of each run.

    The CPU seconds do not count PostgreSQL's parallel workers; on a busy machine they show what
    the run costs when it has a core to itself.
    """
    timings = []
    for _ in range(runs):
        with sessions() as session:
            pid = session.scalar(text("SELECT pg_backend_pid()"))
            backend_before, process_before = backend_cpu_seconds(pid), time.process_time()
            began = time.perf_counter()
            result = compute_rankings(session, DAY, NOW)
            computed = time.perf_counter() - began
            session.commit()
            backend_after = backend_cpu_seconds(pid)
            cpu = None if backend_before is None or backend_after is None else \
                backend_after - backend_before + time.process_time() - process_before
            timings.append((computed, time.perf_counter() - began, cpu))
        print(f"  ranked {result.cadres:,} cadres, {result.organisations:,} organisations: "
              f"{timings[-1][0]:.2f} s, with commit {timings[-1][1]:.2f} s"
              + (f"; CPU {cpu:.2f} s" if cpu is not None else ""))
    return timings


def time_pages(url: str, requests: int, sessions) -> list[tuple[str, list[float]]]:
    """Median/p95 inputs: milliseconds of ``requests`` GETs of each ranking page through the Flask test client."""
    from engine import ManualClock
    from web import create_app
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "START_SWEEPER": False,
                      "WTF_CSRF_ENABLED": False, "ENGINE_CLOCK": ManualClock(NOW)})
    with sessions() as session:
        def pick(kind: str) -> Organisation:
            return session.scalar(select(Organisation).where(Organisation.kind == kind).order_by(Organisation.id)
                                  .offset(3).limit(1))
        city, county = pick("city"), pick("county")
        grassroots = session.scalar(select(Organisation).where(Organisation.kind == "grassroots",
                                                               Organisation.depth == 3).order_by(Organisation.id)
                                    .offset(5).limit(1))
        cadres = session.scalar(text("SELECT count(*) FROM cadre"))
    pages = [("province: its cities and units ranked", "/assessment/organisations/prov"),
             ("province: cadres, page 1", "/assessment/organisations/prov/cadres"),
             (f"province: cadres, page {cadres // 100} (offset {cadres // 2:,})",
              f"/assessment/organisations/prov/cadres?page={cadres // 100}"),
             ("province: every county ranked", "/assessment/organisations/prov?depth=2"),
             (f"a city ({city.code}): cadres, page 1", f"/assessment/organisations/{city.code}/cadres"),
             (f"a county ({county.code}): cadres, page 1", f"/assessment/organisations/{county.code}/cadres"),
             (f"a grassroots committee ({grassroots.code}): cadres ranked on the fly",
              f"/assessment/organisations/{grassroots.code}/cadres"),
             (f"the bulletin of a county ({county.code}), 2026-05", f"/assessment/bulletins/{county.code}/2026-05")]
    results = []
    with app.test_client() as client:
        answer = client.post("/login", data={"username": "prov-organiser", "password": DEMO_PASSWORD})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
        for name, path in pages:
            for _ in range(3):  # warm up: templates, plan caches, connections
                assert client.get(path).status_code == 200, path
            timings = []
            for _ in range(requests):
                began = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200
            results.append((name, timings))
    with app.app_context():
        from web.extensions import db
        db.engine.dispose()
    return results


def main() -> None:
    """Generate (or reuse), measure, print; drop the schema unless --keep."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--size", choices=("small", "province"), default="province")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--runs", type=int, default=3, help="recomputations of the ranking")
    parser.add_argument("--requests", type=int, default=100, help="requests of each page")
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    parser.add_argument("--schema", default=None, help="reuse a schema kept by an earlier run (skips generation)")
    args = parser.parse_args()

    base = postgres_url(args.postgres)
    schema = args.schema or f"bench_rank_{uuid.uuid4().hex[:8]}"
    admin = make_sql_engine(base)
    if not args.schema:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    sql_engine = make_sql_engine(url)
    keep = args.keep or bool(args.schema)
    try:
        upgrade_database(url)
        sessions = make_session_factory(sql_engine)
        print(f"schema {schema}; python {platform.python_version()}; size {args.size}; seed {args.seed}")
        if not args.schema:
            with sessions() as session:
                began = time.perf_counter()
                summary = generate_province(session, args.size, seed=args.seed, now=NOW,
                                            progress=lambda line: print("  " + line))
                session.commit()
                print(f"province: {summary.counts_line()}, committed after {time.perf_counter() - began:.1f} s")
                began = time.perf_counter()
                counts = generate_year(session, args.seed)
                session.commit()
                print(f"year: {json.dumps(counts)} in {time.perf_counter() - began:.1f} s")
            print(f"VACUUM ANALYZE {maintain(sql_engine, 'VACUUM ANALYZE'):.1f} s")
        with sessions() as session:
            print(f"ledger: {session.scalar(text('SELECT count(*) FROM point_entry')):,} entries, "
                  f"{session.scalar(text('SELECT count(*) FROM activity')):,} activities, "
                  f"{session.scalar(select(func.count()).select_from(Organisation)):,} organisations")
        print("recomputing the ranking of 2026-05-31:")
        timings = time_rankings(sessions, args.runs)
        after_load = time_pages(url, args.requests, sessions)
        # What autovacuum does on a live database: visibility map and statistics of the new snapshot.
        print(f"VACUUM ANALYZE {maintain(sql_engine, 'VACUUM ANALYZE cadre_ranking, organisation_ranking'):.1f} s")
        analysed = time_pages(url, args.requests, sessions)
        print()
        print(f"| recompute all rankings ({args.runs} runs) | compute s | with commit s | CPU s (client + backend) |")
        print("|---|---:|---:|---:|")
        for number, (computed, committed, cpu) in enumerate(timings, start=1):
            print(f"| run {number} | {computed:.2f} | {committed:.2f} | {'—' if cpu is None else f'{cpu:.2f}'} |")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print()
        print(f"| page ({args.requests} requests each) | straight after the ranking: median ms | p95 ms "
              f"| after VACUUM ANALYZE: median ms | p95 ms |")
        print("|---|---:|---:|---:|---:|")
        for (name, first), (_name, second) in zip(after_load, analysed):
            print(f"| {name} | {statistics.median(first):.1f} | {percentile(first, 0.95):.1f} "
                  f"| {statistics.median(second):.1f} | {percentile(second, 0.95):.1f} |")
    finally:
        sql_engine.dispose()
        if keep:
            print(f"kept schema {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
