"""The inbox with a million human tasks: how long one page of "my tasks" takes, query and whole page.

Fills a fresh database with 2,001 organisations and N ``human_task`` rows (default 1,000,000) shaped
like a province: 70 % assigned to 100,000 cadres, 30 % offered to a role at one of 2,000
organisations; a third open, the rest done; most with a deadline.  Then times, for a cadre, an
inspector of one organisation (about 50 offered open tasks) and the province's organiser:
``workflows.inbox.inbox`` (first page and a deep page: the query the page runs), and the whole
``GET /`` page (first page and page 50) through the Flask app, signed in as each of them (session
cookie, header with the unread count, filters, template).  Each figure is the median and p95 of
``--repeat`` calls after one warm-up.  On PostgreSQL it prints the plan.  Goal: p95 under 20 ms.

Usage: .venv/bin/python bench/inbox_query.py --postgres postgresql://postgres@127.0.0.1:5432/test [-n 1000000]
       .venv/bin/python bench/inbox_query.py -n 200000            # SQLite in a temporary directory
"""
from __future__ import annotations

import argparse
import contextlib
import os
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


# The bench's people for the page: user name, organisation id (org<i> has id i + 2 in the fill) and the
# role granted to the account (None: a cadre); the same people as :func:`actors`.
PEOPLE = {
    "cadre (4 open tasks)": ("cadre42", 44, None),
    "inspector of org7": ("insp7", 9, "inspector"),
    "province organiser": ("porg", 1, "organiser"),
}


def actors() -> dict[str, Actor]:
    """A cadre, an inspector of one organisation, the province's organiser (as the rules see them)."""
    return {
        "cadre (4 open tasks)": Actor("cadre42", "cadre 42", organisation_code="org42", organisation_path="/1/44/",
                                 cadre_id=42, roles=frozenset({"cadre"})),
        "inspector of org7": Actor("insp7", "inspector", organisation_code="org7", organisation_path="/1/9/",
                                   grants=(("inspector", "org7", "/1/9/"),), roles=frozenset({"inspector"})),
        "province organiser": Actor("porg", "organiser", organisation_code="prov", organisation_path="/1/",
                                    grants=(("organiser", "prov", "/1/"),), roles=frozenset({"organiser"})),
    }


def timed(function, repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls (after one warm-up)."""
    function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def summary(samples: list[float]) -> str:
    """``median / p95`` in ms."""
    return f"{statistics.median(samples):.2f} / {p95(samples):.2f}"


def page_timings(url: str, repeat: int) -> dict[str, tuple[list[float], list[float]]]:
    """Per person: ms of the whole ``GET /`` and ``GET /?page=50``, signed in through the session cookie."""
    from engine import ManualClock
    from web import create_app
    from web.extensions import db
    from workflows.models import Cadre, RoleGrant, User

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "ENGINE_CLOCK": ManualClock(NOW),
                      "START_SWEEPER": False})
    user_ids = {}
    with app.app_context():
        for name, (username, organisation_id, role) in PEOPLE.items():
            user = User(username=username, display_name=username, organisation_id=organisation_id, active=True,
                        session_version=1, created_at=NOW)
            db.session.add(user)
            db.session.flush()
            if role is None:
                db.session.add(Cadre(user_id=user.id, code=f"c-{username}", name=username, kind="full_time",
                                     organisation_id=organisation_id))
            else:
                db.session.add(RoleGrant(user_id=user.id, role=role, organisation_id=organisation_id))
            user_ids[name] = user.id
        db.session.commit()
    result = {}
    for name, user_id in user_ids.items():
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = f"{user_id}:1"
            session["_fresh"] = True
        assert client.get("/").status_code == 200
        # The access log line of each request is written (its cost counts), to nowhere.
        with open(os.devnull, "w") as nowhere, contextlib.redirect_stderr(nowhere):
            result[name] = (timed(lambda c=client: c.get("/").close(), repeat),
                            timed(lambda c=client: c.get("/?page=50").close(), repeat))
    with app.app_context():
        db.engine.dispose()
    return result


def run(url: str, count: int, postgres: bool, repeat: int) -> None:
    upgrade_database(url)
    sql = make_sql_engine(url)
    started = time.perf_counter()
    with sql.begin() as connection:
        fill(connection, count, postgres)
    print(f"filled {count:,} human tasks in {time.perf_counter() - started:.1f} s "
          f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    sessions = make_session_factory(sql)
    rows = []
    with sessions() as session:
        for name, actor in actors().items():
            first = timed(lambda a=actor: inbox(session, a, limit=51), repeat)
            deep = timed(lambda a=actor: inbox(session, a, limit=51, offset=2500), repeat)
            shown = len(inbox(session, actor, limit=51))
            rows.append((name, shown, first, deep))
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
    pages = page_timings(url, repeat)
    print(f"\n{repeat} calls each, ms median / p95; load average at the end "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| person | rows on page 1 | inbox() page 1 | inbox() offset 2,500 | GET / | GET /?page=50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, shown, first, deep in rows:
        page, deep_page = pages[name]
        print(f"| {name} | {shown} | {summary(first)} | {summary(deep)} | {summary(page)} | {summary(deep_page)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1_000_000, help="human tasks to create")
    parser.add_argument("--postgres", help="a PostgreSQL URL; a fresh schema is created and dropped")
    parser.add_argument("--repeat", type=int, default=100, help="timed calls of each query and page")
    args = parser.parse_args()
    if args.postgres:
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = make_sql_engine(base)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            print(f"PostgreSQL, schema {schema}")
            run(f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", args.n, postgres=True,
                repeat=args.repeat)
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    else:
        with tempfile.TemporaryDirectory() as directory:
            print("SQLite")
            run(f"sqlite:///{directory}/bench.db", args.n, postgres=False, repeat=args.repeat)


if __name__ == "__main__":
    main()
