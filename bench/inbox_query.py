"""The inbox with a million human tasks: how long one page of "my tasks" takes, query and whole page.

Fills a fresh database with 2,001 organisations and N ``human_task`` rows (default 1,000,000) shaped
like a province: 70 % assigned to 100,000 cadres, 30 % offered to a role at one of 2,000
organisations; a third open, the rest done; most with a deadline.  Then times, for a cadre, an
inspector of one organisation (about 50 offered open tasks) and the province's organiser:
``workflows.inbox.inbox`` (first page and a deep page), and the whole ``GET /`` page through the
Flask app (sign-in, header, unread count, filters, template).  On PostgreSQL it prints the plan.

Usage: .venv/bin/python bench/inbox_query.py --postgres postgresql://postgres@127.0.0.1:5432/test [-n 1000000]
       .venv/bin/python bench/inbox_query.py -n 200000            # SQLite in a temporary directory
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from engine.database import make_sql_engine, make_session_factory  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.inbox import inbox  # noqa: E402
from workflows.roles import Actor  # noqa: E402

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
ORGS = 2000
CADRES = 100_000

# Numbers 0..last: a recursive CTE on SQLite, generate_series on PostgreSQL (much faster there).
SQLITE_NUMBERS = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
POSTGRES_NUMBERS = "WITH n(i) AS (SELECT generate_series(0, :last)) "


def fill(connection, count: int, postgres: bool) -> None:
    """Organisations, one definition and instance, ``count`` human tasks (bulk INSERT..SELECT)."""
    numbers = POSTGRES_NUMBERS if postgres else SQLITE_NUMBERS
    connection.execute(text("INSERT INTO organisation (id, code, name, kind, parent_id, path, depth) "
                            "VALUES (1, 'prov', '团省委', 'province', NULL, '/1/', 0)"))
    connection.execute(text(numbers + "INSERT INTO organisation (id, code, name, kind, parent_id, path, depth) "
                            "SELECT i + 2, 'org' || i, 'org ' || i, 'county', 1, '/1/' || (i + 2) || '/', 1 FROM n"),
                       {"last": ORGS - 1})
    connection.execute(text("INSERT INTO process_definition (id, process_id, name, version, content_hash, filename, "
                            "bpmn_xml, forms, spec_json, deployed_at) VALUES (1, 'bench', 'bench', 1, 'x', "
                            "'bench.bpmn', '', '{}', '', :now)"), {"now": NOW if postgres else NOW.replace(tzinfo=None)})
    connection.execute(text("INSERT INTO process_instance (id, definition_id, process_id, status, state, data, version, "
                            "started_at) VALUES (1, 1, 'bench', 'running', :state, '{}', 1, :now)"),
                       {"state": b"", "now": NOW if postgres else NOW.replace(tzinfo=None)})
    due = ("(TIMESTAMP '2026-05-01 00:00:00' + ((((i % 997) * 7919) % 60) - 20) * INTERVAL '1 day')" if postgres
           else "datetime('2026-05-01', (((i % 997) * 7919) % 60) - 20 || ' days')")
    created = "TIMESTAMP '2026-04-01 00:00:00'" if postgres else "'2026-04-01 00:00:00.000000'"
    connection.execute(text(
        numbers + "INSERT INTO human_task (instance_id, task_id, process_id, bpmn_id, name, lane, candidate_role, "
        "organisation_id, assignee, due_at, state, created_at) "
        "SELECT 1, 't' || i, 'bench', 'Task_' || (i % 7), 'task ' || i, "
        "CASE WHEN i % 10 < 7 THEN 'cadre' ELSE 'inspector' END, "
        "CASE WHEN i % 10 < 7 THEN 'cadre' WHEN i % 10 = 7 THEN 'inspector' WHEN i % 10 = 8 THEN 'organiser' "
        "ELSE 'coordinator' END, "
        "'org' || (i % " + str(ORGS) + "), "
        "CASE WHEN i % 10 < 7 THEN 'cadre' || (i % " + str(CADRES) + ") ELSE NULL END, "
        "CASE WHEN i % 13 = 0 THEN NULL ELSE " + due + " END, "
        "CASE WHEN i % 3 = 0 THEN (CASE WHEN i % 10 < 7 THEN 'claimed' ELSE 'ready' END) ELSE 'completed' END, "
        + created + " FROM n"), {"last": count - 1})
    if postgres:
        connection.execute(text("ANALYZE"))


def actors() -> dict[str, Actor]:
    """A cadre, an inspector of one organisation, the province's organiser (as the rules see them)."""
    return {
        "cadre (7 tasks)": Actor("cadre42", "cadre 42", organisation_code="org42", organisation_path="/1/44/",
                                 cadre_id=42, roles=frozenset({"cadre"})),
        "inspector of org7": Actor("insp7", "inspector", organisation_code="org7", organisation_path="/1/9/",
                                   grants=(("inspector", "org7", "/1/9/"),), roles=frozenset({"inspector"})),
        "province organiser": Actor("porg", "organiser", organisation_code="prov", organisation_path="/1/",
                                    grants=(("organiser", "prov", "/1/"),), roles=frozenset({"organiser"})),
    }


def timed(function, repeat: int = 30) -> float:
    """Median milliseconds of ``repeat`` calls (after one warm-up)."""
    function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def page_timings(url: str) -> dict[str, float]:
    """Median ms of the whole ``GET /`` for the bench cadre, signed in through the session cookie."""
    from engine import ManualClock
    from web import create_app
    from web.extensions import db
    from workflows.models import Cadre, User

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "ENGINE_CLOCK": ManualClock(NOW),
                      "START_SWEEPER": False})
    with app.app_context():
        user = User(username="cadre42", display_name="cadre 42", organisation_id=44, active=True, session_version=1,
                    created_at=NOW)
        db.session.add(user)
        db.session.flush()
        db.session.add(Cadre(user_id=user.id, code="c42", name="cadre 42", kind="full_time", organisation_id=44))
        db.session.commit()
        user_id = user.id
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = f"{user_id}:1"
        session["_fresh"] = True
    assert client.get("/").status_code == 200
    result = {"GET / (page 1)": timed(lambda: client.get("/").close()),
              "GET /?page=50": timed(lambda: client.get("/?page=50").close())}
    with app.app_context():
        db.engine.dispose()
    return result


def run(url: str, count: int, postgres: bool) -> None:
    upgrade_database(url)
    sql = make_sql_engine(url)
    started = time.perf_counter()
    with sql.begin() as connection:
        fill(connection, count, postgres)
    print(f"filled {count:,} human tasks in {time.perf_counter() - started:.1f} s")
    sessions = make_session_factory(sql)
    with sessions() as session:
        for name, actor in actors().items():
            first = timed(lambda a=actor: inbox(session, a, limit=51))
            deep = timed(lambda a=actor: inbox(session, a, limit=51, offset=2500))
            shown = len(inbox(session, actor, limit=51))
            print(f"  inbox {name:<20} page 1: {first:6.2f} ms ({shown} rows)   offset 2500: {deep:6.2f} ms")
        if postgres:
            from sqlalchemy import select
            from sqlalchemy.dialects import postgresql

            from workflows.inbox import _candidates  # the statement the page runs, to explain it
            candidates = _candidates(session, actors()["inspector of org7"], 51)
            statement = select(candidates.c.id).order_by(candidates.c.due_at.is_(None), candidates.c.due_at,
                                                         candidates.c.id).limit(51)
            compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            plan = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + str(compiled))).scalars().all()
            print("  plan (inspector of org7):\n    " + "\n    ".join(plan))
    sql.dispose()
    for name, ms in page_timings(url).items():
        print(f"  {name:<28} {ms:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="human tasks to create")
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh schema is created and dropped")
    args = parser.parse_args()
    if args.postgres:
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_sql_engine(base)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            print(f"PostgreSQL, schema {schema}")
            run(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", args.n, postgres=True)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    else:
        with tempfile.TemporaryDirectory() as directory:
            print("SQLite")
            run(f"sqlite:///{directory}/bench.db", args.n, postgres=False)


if __name__ == "__main__":
    main()
