"""Server-side time of the inbox and task pages at province size (issue 7; goal: under 50 ms).

Loads the generated province (workflows/demo_province.py: ~2,000 organisations, 100,000 cadres,
1,000,000 youth) into a fresh PostgreSQL schema migrated with the project's migrations, then gives
the cadres open tasks of several processes, all through the engine (``Engine.start_many``):
  - a province-wide campaign (``congress_study``) launched to every cadre, chunk by chunk as the
    ``campaign.launch_chunk`` job does (``workflows.campaign_launch``);
  - micro-wishes (``micro_wish``) and youth-voice questions (``youth_voice``) from youth to the
    cadres who contact them (the first demo cadre gets some of each), so reply tasks exist;
  - a month of activity records at one county and its spot checks (``spot_check``) for its inspector.
Then it times pages through the Flask test client (sign-in, header, template: the whole request),
each requested ``--requests`` times after three warm-up requests, with the number of SQL
statements per request:
  - the demo cadre: the inbox (first page, filtered by process), the campaign's form task, the
    reply-to-a-wish task, the answer-a-question task, and a completion posted with form errors;
  - the province's organiser: the inbox (first page, filtered) and the campaign dashboard;
  - the county's inspector: the inbox and a spot-check task.
With --export, it also times the background job that writes the province's campaign workbook
(``workflows/campaign_exports.py``: 100,000 rows).
The schema is dropped at the end unless --keep; --schema NAME reuses a kept one (no generation).

Usage: .venv/bin/python bench/page_timings.py --postgres postgresql://postgres@127.0.0.1:5432/test
                                              [--size province|small] [--requests 100] [--keep] [--schema NAME]
                                              [--explain] [--export]
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import secrets
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ranking import backend_cpu_seconds, maintain, percentile, postgres_url  # noqa: E402
from sqlalchemy import bindparam, event, func, select, text, update  # noqa: E402

from engine import ManualClock, StartRequest  # noqa: E402
from engine.database import make_session_factory, make_sql_engine  # noqa: E402
from engine.models import HumanTask, ProcessDefinition  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from workflows.campaign_launch import launch_campaign, run_launch_chunk  # noqa: E402
from workflows.campaigns import Campaign, create_campaign  # noqa: E402
from workflows.demo_province import DEMO_PASSWORD, generate_province  # noqa: E402
from workflows.league_engine import build_league_engine  # noqa: E402
from workflows.models import Activity, Cadre, Contact, Organisation, User, Youth  # noqa: E402
from workflows.roles import load_actor  # noqa: E402
from workflows.spot_checks import SpotCheckSettings, start_spot_checks  # noqa: E402

BPMN_DIR = Path(__file__).resolve().parent.parent / "bpmn"
NOW = datetime(2026, 6, 3, 2, 0, tzinfo=timezone.utc)
PROCESSES = ("congress_study", "micro_wish", "youth_voice", "spot_check")
DEMO_CADRE = "c000001"          # full-time cadre at qd-01 with 100 contacts (workflows/demo_province.py)
ORGANISER = "prov-organiser"
INSPECTOR = "qd-01-inspector"
INSPECTED_COUNTY = "qd-01"
START_CHUNK = 500
WISH_TITLES = ("想借一套考研复习资料", "希望有人辅导孩子功课", "想参加一次职业技能培训", "想找一份暑期实习",
               "希望社区开设英语角", "想学习手机摄影")
QUESTIONS = ("大学生返乡创业有哪些扶持政策？", "社区青年之家周末开放吗？", "如何申请入团？",
             "青年志愿服务时长怎么认定？", "灵活就业青年如何缴纳社保？")


def _say(line: str) -> None:
    print("  " + line, flush=True)


def deploy(session, engine) -> None:
    """Deploy the processes whose tasks the pages show."""
    for process_id in PROCESSES:
        engine.deploy_file(session, BPMN_DIR / f"{process_id}.bpmn")


def launch_province_campaign(sessions, engine) -> int:
    """A campaign to every cadre of the province, launched chunk by chunk; returns its id."""
    with sessions() as session:
        campaign = create_campaign(session, load_actor(session, ORGANISER), process_id="congress_study",
                                   title="学习宣讲党的十九大精神", organisation_code="prov", target_kind="cadre",
                                   window_start=NOW - timedelta(days=1), window_end=NOW + timedelta(days=180),
                                   parameters={"due_at": "2026-11-30T00:00:00+08:00"}, now=NOW)
        session.commit()
        campaign_id = campaign.id
        numbers = launch_campaign(session, None, campaign, NOW)
    began = time.perf_counter()
    for done, number in enumerate(numbers, start=1):
        with sessions() as session:
            run_launch_chunk(session, engine, campaign_id, number)
        if done % 40 == 0 or done == len(numbers):
            _say(f"campaign chunks: {done} / {len(numbers)} ({time.perf_counter() - began:.0f} s)")
    return campaign_id


def _youth_accounts(session, youth_ids: list[int]) -> None:
    """A user account per youth (as their first sign-in makes it), so their names show."""
    names = dict(session.execute(select(Youth.id, Youth.name).where(Youth.id.in_(youth_ids))).all())
    first = (session.scalar(select(func.max(User.id))) or 0) + 1
    rows = [{"id": first + n, "username": f"youth-{yid}", "display_name": names[yid], "active": True,
             "session_version": 1, "created_at": NOW} for n, yid in enumerate(youth_ids)]
    session.execute(User.__table__.insert(), rows)
    session.execute(update(Youth.__table__).where(Youth.__table__.c.id == bindparam("yid"))
                    .values(user_id=bindparam("uid")),
                    [{"yid": yid, "uid": first + n} for n, yid in enumerate(youth_ids)])
    session.execute(text("SELECT setval(pg_get_serial_sequence('user_account', 'id'), "
                         "(SELECT max(id) FROM user_account))"))


def start_youth_requests(sessions, engine, count: int, seed: int) -> dict[str, int]:
    """``count`` micro-wishes and ``count`` questions from youth to a cadre who contacts them."""
    rng = random.Random(seed)
    with sessions() as session:
        demo = session.execute(select(Contact.youth_id, Cadre.id).join(Cadre, Cadre.id == Contact.cadre_id)
                               .join(User, User.id == Cadre.user_id).where(User.username == DEMO_CADRE)
                               .order_by(Contact.youth_id).limit(20)).all()
        total = session.scalar(select(func.count()).select_from(Contact))
        step = max(1, total // (2 * count))  # every step-th contact: spread over the whole province
        others = session.execute(select(Contact.youth_id, Contact.cadre_id).where(Contact.id % step == 0)
                                 .order_by(Contact.id).limit(2 * count)).all()
        pairs = list(dict.fromkeys(tuple(row) for row in [*demo, *others]))[:2 * count]  # the demo cadre's first
        _youth_accounts(session, sorted({youth_id for youth_id, _cadre in pairs}))
        cadres = dict(session.execute(select(Cadre.id, User.username).join(User, User.id == Cadre.user_id)
                                      .where(Cadre.id.in_({cadre for _y, cadre in pairs}))).all())
        homes = dict(session.execute(select(Cadre.id, Organisation.code)
                                     .join(Organisation, Organisation.id == Cadre.organisation_id)
                                     .where(Cadre.id.in_({cadre for _y, cadre in pairs}))).all())
        session.commit()
    wishes, questions = pairs[0::2], pairs[1::2]
    definitions = {}
    with sessions() as session:
        for process_id in ("micro_wish", "youth_voice"):
            definitions[process_id] = session.scalar(select(ProcessDefinition.id)
                                                     .where(ProcessDefinition.process_id == process_id))

    def request(youth_id: int, cadre_id: int, process_id: str) -> StartRequest:
        data = {"youth_assignee": f"youth-{youth_id}", "cadre_assignee": cadre_usernames[cadre_id]}
        if process_id == "micro_wish":
            data.update(wish_title=rng.choice(WISH_TITLES), wish_description="家里条件有限，希望团干部帮帮忙。")
            prefix = "wish"
        else:
            data.update(question=rng.choice(QUESTIONS))
            prefix = "voice"
        return StartRequest(data, organisation_id=homes[cadre_id], business_key=f"{prefix}-{secrets.token_hex(8)}")

    cadre_usernames = cadres
    started = {}
    for process_id, pairs_of in (("micro_wish", wishes), ("youth_voice", questions)):
        began = time.perf_counter()
        for start in range(0, len(pairs_of), START_CHUNK):
            with sessions() as session:
                engine.start_many(session, definitions[process_id],
                                  [request(y, c, process_id) for y, c in pairs_of[start:start + START_CHUNK]])
                session.commit()
        started[process_id] = len(pairs_of)
        _say(f"{process_id}: {len(pairs_of):,} started ({time.perf_counter() - began:.0f} s)")
    return started


def start_county_spot_checks(sessions, engine) -> int:
    """May's activity records of the inspected county's cadres, and their spot checks (10 %, at least 1)."""
    with sessions() as session:
        county = session.scalar(select(Organisation).where(Organisation.code == INSPECTED_COUNTY))
        cadres = session.execute(select(Cadre.id, Cadre.organisation_id).join(Organisation, Organisation.id == Cadre.organisation_id)
                                 .where(Organisation.path.startswith(county.path)).order_by(Cadre.id).limit(200)).all()
        for number, (cadre_id, org_id) in enumerate(cadres):
            session.add(Activity(cadre_id=cadre_id, organisation_id=org_id, kind="league_lecture",
                                 held_on=f"2026-05-{1 + number % 28:02d}", place="青年之家", youth_count=20,
                                 description="讲了一次主题团课，青年们积极参与讨论。", evidence=["bench.jpg"],
                                 recorded_at=datetime(2026, 5, 29, tzinfo=timezone.utc)))
        session.flush()
        run = start_spot_checks(session, engine, "2026-05", SpotCheckSettings())
        session.commit()
        return len(run.started)


def generate(sql_engine, sessions, size: str, seed: int, requests_per_kind: int) -> None:
    """The province, its deployed processes, and the open tasks the pages list."""
    engine = build_league_engine(clock=ManualClock(NOW))
    with sessions() as session:
        began = time.perf_counter()
        summary = generate_province(session, size, seed=seed, now=NOW, progress=_say)
        deploy(session, engine)
        session.commit()
        print(f"province: {summary.counts_line()}, committed after {time.perf_counter() - began:.1f} s", flush=True)
    # Statistics of the new tables first: without them the campaign's plan joins 100,000 cadres blind.
    print(f"ANALYZE {maintain(sql_engine, 'ANALYZE'):.1f} s", flush=True)
    began = time.perf_counter()
    launch_province_campaign(sessions, engine)
    print(f"campaign launched in {time.perf_counter() - began:.1f} s", flush=True)
    start_youth_requests(sessions, engine, requests_per_kind, seed)
    print(f"spot checks started: {start_county_spot_checks(sessions, engine)}", flush=True)


# ---------------------------------------------------------------------------------------- timing

def _task_of(session, assignee: str | None, process_id: str, bpmn_id: str | None = None) -> int:
    query = select(HumanTask.id).where(HumanTask.process_id == process_id, HumanTask.state.in_(HumanTask.OPEN_STATES))
    if assignee is not None:
        query = query.where(HumanTask.assignee == assignee)
    if bpmn_id is not None:
        query = query.where(HumanTask.bpmn_id == bpmn_id)
    found = session.scalar(query.order_by(HumanTask.id).limit(1))
    if found is None:
        raise SystemExit(f"no open {process_id} {bpmn_id or ''} task for {assignee}: was the data generated?")
    return found


def pages(sessions) -> list[tuple[str, str, str, str, dict | None, int]]:
    """(who, page name, method, path, form, expected status) of every request timed."""
    with sessions() as session:
        form_task = _task_of(session, DEMO_CADRE, "congress_study")
        reply_task = _task_of(session, DEMO_CADRE, "micro_wish", "Task_reply")
        answer_task = _task_of(session, DEMO_CADRE, "youth_voice", "Task_answer")
        spot_task = _task_of(session, None, "spot_check")
        campaign = session.scalar(select(Campaign.id).order_by(Campaign.id).limit(1))
        tasks = session.scalar(select(func.count()).select_from(HumanTask)
                               .where(HumanTask.state.in_(HumanTask.OPEN_STATES)))
        print(f"open human tasks: {tasks:,}", flush=True)
    bad_report = {"format": "sharing_session", "topic": "宣", "youth_count": "0", "place": "团委"}
    return [
        (DEMO_CADRE, "inbox, first page", "GET", "/", None, 200),
        (DEMO_CADRE, "inbox, one process (micro_wish)", "GET", "/?process=micro_wish", None, 200),
        (DEMO_CADRE, f"inbox, one campaign ({campaign})", "GET", f"/?campaign={campaign}", None, 200),
        (DEMO_CADRE, "form task (congress_study report)", "GET", f"/tasks/{form_task}", None, 200),
        (DEMO_CADRE, "reply-to-a-wish task", "GET", f"/tasks/{reply_task}", None, 200),
        (DEMO_CADRE, "answer-a-question task", "GET", f"/tasks/{answer_task}", None, 200),
        (DEMO_CADRE, "POST completion with form errors (422)", "POST", f"/tasks/{form_task}/complete",
         bad_report, 422),
        (ORGANISER, "inbox, first page", "GET", "/", None, 200),
        (ORGANISER, "inbox, one process (congress_study)", "GET", "/?process=congress_study", None, 200),
        (ORGANISER, "campaign dashboard, province", "GET", f"/campaigns/{campaign}/dashboard", None, 200),
        (INSPECTOR, "inbox, first page", "GET", "/", None, 200),
        (INSPECTOR, "spot-check task", "GET", f"/tasks/{spot_task}", None, 200),
    ]


def time_pages(url: str, requests: int, sessions) -> list[tuple[str, str, list[float], float, float]]:
    """(who, page, milliseconds of each request, CPU milliseconds per request, SQL statements per request).

    The CPU time is this process's and its PostgreSQL backends' (not counting other processes):
    on a loaded machine it shows what a request costs when it has a core to itself.
    """
    from web import create_app
    from web.extensions import db
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "START_SWEEPER": False,
                      "WTF_CSRF_ENABLED": False, "ENGINE_CLOCK": ManualClock(NOW)})
    logging.getLogger("lianqing.access").setLevel(logging.WARNING)  # one line per request would drown the table
    statements = [0]
    backends: set[int] = set()  # the PostgreSQL backends of the app's pool, whose CPU time is added to ours

    def remember_backend(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])

    def cpu_seconds() -> float:
        return time.process_time() + sum(backend_cpu_seconds(pid) or 0.0 for pid in backends)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *_args: statements.__setitem__(0, statements[0] + 1))
        event.listen(db.engine, "connect", remember_backend)
        db.engine.dispose()  # every connection from now on is a remembered one
    results = []
    clients: dict[str, object] = {}
    for who, name, method, path, form, status in pages(sessions):
        if who not in clients:
            client = clients[who] = app.test_client()
            answer = client.post("/login", data={"username": who, "password": DEMO_PASSWORD})
            assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
        client = clients[who]

        def call():
            return client.post(path, data=form) if method == "POST" else client.get(path)
        for _ in range(3):  # warm up: templates, plan caches, the workflow cache, connections
            response = call()
            assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[:800])
        timings = []
        statements[0] = 0
        cpu_before = cpu_seconds()
        for _ in range(requests):
            began = time.perf_counter()
            response = call()
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == status, path
        cpu = (cpu_seconds() - cpu_before) * 1000 / requests
        results.append((who, name, timings, cpu, statements[0] / requests))
        print(f"  {who} {name}: median {statistics.median(timings):.1f} ms", flush=True)
    with app.app_context():
        db.engine.dispose()
    return results


def time_province_export(sessions) -> tuple[float, int, int]:
    """(seconds, rows, bytes) of the ``campaign.export`` job for the province's workbook, into a temporary directory."""
    import tempfile

    from workflows.campaign_exports import ExportSettings, build_export, request_export
    with sessions() as session, tempfile.TemporaryDirectory() as directory:
        campaign = session.scalar(select(Campaign).order_by(Campaign.id).limit(1))
        export, _new = request_export(session, load_actor(session, ORGANISER), campaign, campaign.organisation,
                                      campaign.total_targets or 0, NOW)
        session.commit()
        began = time.perf_counter()
        done = build_export(session, export.id, ExportSettings(directory=Path(directory)), NOW)
        seconds = time.perf_counter() - began
        session.delete(done)
        session.commit()
        return seconds, done.rows, done.size


def explain_inbox(sessions) -> None:
    """EXPLAIN ANALYZE of the demo cadre's inbox page query (what the slowest part of the inbox costs)."""
    from sqlalchemy.dialects import postgresql

    from workflows.inbox import _candidates, _urgency_order
    with sessions() as session:
        actor = load_actor(session, DEMO_CADRE)
        candidates = _candidates(session, actor, 51)
        query = select(candidates.c.id).order_by(*_urgency_order(candidates.c)).limit(51)
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        for line in session.execute(text("EXPLAIN ANALYZE " + sql)):
            print("    " + line[0])


def main() -> None:
    """Generate (or reuse), measure, print; drop the schema unless --keep."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--size", choices=("small", "province"), default="province")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--youth-requests", type=int, default=None,
                        help="micro-wishes and as many questions (default 20,000 at province size, 300 small)")
    parser.add_argument("--requests", type=int, default=100, help="requests of each page")
    parser.add_argument("--keep", action="store_true", help="keep the schema (its name is printed)")
    parser.add_argument("--schema", default=None, help="reuse a schema kept by an earlier run (skips generation)")
    parser.add_argument("--explain", action="store_true", help="print the plan of the cadre's inbox query")
    parser.add_argument("--export", action="store_true", help="also time the province's workbook export job")
    args = parser.parse_args()
    per_kind = args.youth_requests or (20_000 if args.size == "province" else 300)

    base = postgres_url(args.postgres)
    schema = args.schema or f"bench_pages_{uuid.uuid4().hex[:8]}"
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
        print(f"schema {schema}; python {platform.python_version()}; size {args.size}; seed {args.seed}; "
              f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        if not args.schema:
            began = time.perf_counter()
            generate(sql_engine, sessions, args.size, args.seed, per_kind)
            print(f"generated in {time.perf_counter() - began:.0f} s; "
                  f"VACUUM ANALYZE {maintain(sql_engine, 'VACUUM ANALYZE'):.1f} s", flush=True)
        if args.explain:
            explain_inbox(sessions)
        results = time_pages(url, args.requests, sessions)
        print()
        print(f"| who | page ({args.requests} requests each) | median ms | p95 ms | CPU ms per request "
              f"(client + PostgreSQL) | SQL statements per request |")
        print("|---|---|---:|---:|---:|---:|")
        for who, name, timings, cpu, count in results:
            print(f"| {who} | {name} | {statistics.median(timings):.1f} | {percentile(timings, 0.95):.1f} "
                  f"| {cpu:.1f} | {count:.0f} |")
        if args.export:
            seconds, rows, size = time_province_export(sessions)
            print(f"the province's workbook as a background job (campaign.export): {rows:,} rows, "
                  f"{size / 1e6:.1f} MB in {seconds:.1f} s")
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
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
