"""CPU per request of what a cadre does most (issues 7 and 9): my tasks, open a task, complete it.

The load test (``bench/load_test.py``) found the gunicorn workers spending ~52 ms of CPU per round of
``GET /`` + ``GET /tasks/<id>`` + ``POST /tasks/<id>/complete`` while every SQL statement took under
half a millisecond.  This script measures that CPU in-process, where a profiler can see it:

  - a fresh database (a SQLite file, and a new PostgreSQL schema with ``--postgres``), migrated,
    with every process of ``bpmn/`` deployed and the demo province generated (``--size small``);
  - one demo cadre with a password and enough open ``congress_study`` tasks (开展并记录十九大精神宣讲,
    the load test's task) that "my tasks" shows a full page of 50 in every round, as in the load test,
    started with ``Engine.start_many``;
  - the Flask test client signs in through ``/login`` and repeats the load test's round: list my tasks,
    open the first one, complete it with valid form data, the page's CSRF token and a 320×240 JPEG
    as evidence (the completion's redirect is not followed);
  - per request kind: CPU ms (``time.process_time()`` around the test-client call: the app, the
    database driver and the test client's own small share), wall ms, and SQL statements, as the
    median over the measured rounds (the first ``--warm-up`` rounds are not counted);
  - with ``--profile``, a cProfile of the measured rounds per request kind: the CPU by library, the
    cumulative time of the functions that matter, and the top functions by own time.

The database is removed at the end (``--keep`` keeps the SQLite file / PostgreSQL schema).

Usage: .venv/bin/python bench/request_cpu.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
                                            [--no-sqlite] [--cycles 40] [--warm-up 5] [--profile] [--top 25]
                                            [--show-sql] [--keep]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: soak (puts the repository on sys.path)

from soak import REPO_ROOT, drop_schema, fresh_schema, schema_url  # noqa: E402
from sqlalchemy import event, select, update  # noqa: E402

from engine import StartRequest  # noqa: E402
from engine.models import ProcessDefinition  # noqa: E402
from engine.schema import upgrade_database  # noqa: E402
from start_many import START_DATA  # noqa: E402
from workflows.demo_province import DEMO_PASSWORD, generate_province  # noqa: E402
from workflows.models import Cadre, Organisation, User  # noqa: E402
from workflows.people import hash_password  # noqa: E402

PROCESS = "congress_study"
PAGE_FULL = 60  # open tasks left after the last round: "my tasks" shows a full page (50), as in the load test
KINDS = ("GET / (my tasks)", "GET /tasks/<id>", "POST /tasks/<id>/complete")
FORM_VALUES = {"format": "league_lecture", "kind": "league_lecture", "topic": "学习党的十九大精神",
               "date": "2026-05-20", "place": "市南区团委会议室", "youth_count": "30",
               "description": "讲了一次主题团课，青年们踊跃发言并提出问题。"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TASK_LINK = re.compile(r'href="/tasks/(\d+)"')
COMPLETE_FORM = re.compile(r'<form method="post" action="/tasks/\d+/complete".*?</form>', re.S)
FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"[^>]*>')
FILE_FIELD = re.compile(r'<input\b[^>]*\btype="file"[^>]*\bname="([^"]+)"|<input\b[^>]*\bname="([^"]+)"[^>]*\btype="file"')
# Functions whose cumulative time the profile reports (file suffix, function name).
WATCHED = [
    ("flask/templating.py", "render_template"), ("web/main.py", "page_header"),
    ("workflows/roles.py", "actor_of"), ("workflows/roles.py", "load_actor"), ("workflows/roles.py", "check"),
    ("workflows/inbox.py", "inbox"), ("workflows/inbox.py", "can_view_task"),
    ("engine/runtime.py", "complete_task"), ("engine/runtime.py", "process_view"), ("engine/runtime.py", "_workflow"),
    ("engine/serialization.py", "state_from_bytes"), ("engine/serialization.py", "state_to_bytes"),
    ("engine/runtime.py", "_step"), ("engine/runtime.py", "_write"), ("engine/forms.py", "validate_form"),
    ("web/process_diagram.py", "instance_diagram"), ("web/process_diagram.py", "element_texts"),
    ("web/evidence.py", "receive_uploads"), ("web/evidence.py", "readable_evidence"),
    ("workflows/task_subjects.py", "task_subject"), ("web/tasks.py", "_previous_steps"),
    ("sqlalchemy/engine/base.py", "_execute_context"), ("sqlalchemy/orm/session.py", "commit"),
]


def jpeg_photo() -> bytes:
    """The load test's evidence: a 320×240 JPEG."""
    from PIL import Image
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((320, 240)).convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def build(url: str, evidence_dir: str, tasks: int):
    """Migrate, deploy, generate the small province, give one cadre a password and ``tasks`` open tasks."""
    from web import create_app
    from web.extensions import db

    upgrade_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "BPMN_DIR": str(REPO_ROOT / "bpmn"), "START_SWEEPER": False,
                      "EVIDENCE_DIR": evidence_dir, "LOG_FORMAT": "text", "SECRET_KEY": "request-cpu"})
    engine = app.extensions["lianqing_engine"]
    with app.app_context():
        session = db.session
        for path in sorted((REPO_ROOT / "bpmn").glob("*.bpmn")):
            engine.deploy_file(session, path)
        generate_province(session, "small", now=datetime.now(UTC))
        username, org = session.execute(select(User.username, Organisation.code)
                                        .join(Cadre, Cadre.user_id == User.id)
                                        .join(Organisation, Organisation.id == Cadre.organisation_id)
                                        .order_by(Cadre.id).limit(1)).one()
        session.execute(update(User).where(User.username == username).values(password_hash=hash_password(DEMO_PASSWORD)))
        definition_id = session.scalar(select(ProcessDefinition.id).where(ProcessDefinition.process_id == PROCESS)
                                       .order_by(ProcessDefinition.version.desc()).limit(1))
        engine.start_many(session, definition_id, [
            StartRequest(dict(START_DATA[PROCESS], cadre_assignee=username), organisation_id=org,
                         business_key=f"{PROCESS}-cpu-{n}") for n in range(tasks)])
        session.commit()
    return app, username


class Statements:
    """Counts the SQL statements the app's engine executes."""

    def __init__(self, sql_engine):
        self.count = 0
        self.shown: list[str] | None = None  # the statements' text while a caller collects them
        event.listen(sql_engine, "before_cursor_execute", self._seen)

    def _seen(self, _connection, _cursor, statement, *_args) -> None:
        self.count += 1
        if self.shown is not None:
            self.shown.append(" ".join(statement.split())[:160])


def measured(call, statements: Statements, profiler: cProfile.Profile | None):
    """(response, CPU s, wall s, statements) of one test-client call."""
    before = statements.count
    if profiler is not None:
        profiler.enable()
    cpu, wall = time.process_time(), time.perf_counter()
    response = call()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None:
        profiler.disable()
    return response, cpu, wall, statements.count - before


def one_round(client, photo: bytes, statements: Statements, profilers: dict | None) -> dict[str, tuple]:
    """List, open, complete; per kind (CPU s, wall s, statements)."""
    results = {}
    prof = (profilers or {}).get
    listing, *results[KINDS[0]] = measured(lambda: client.get("/"), statements, prof(KINDS[0]))
    assert listing.status_code == 200, listing.status_code
    task_id = int(TASK_LINK.findall(listing.text)[0])
    page, *results[KINDS[1]] = measured(lambda: client.get(f"/tasks/{task_id}"), statements, prof(KINDS[1]))
    form = COMPLETE_FORM.search(page.text)
    assert page.status_code == 200 and form, page.status_code
    names = list(dict.fromkeys(FIELD.findall(form.group(0))))
    files = {a or b for a, b in FILE_FIELD.findall(form.group(0))}
    data: dict = {"csrf_token": CSRF.search(form.group(0)).group(1)}
    data.update({name: FORM_VALUES[name] for name in names if name in FORM_VALUES and name not in files})
    data.update({name: (io.BytesIO(photo), "evidence.jpg", "image/jpeg") for name in files})
    done, *results[KINDS[2]] = measured(
        lambda: client.post(f"/tasks/{task_id}/complete", data=data, content_type="multipart/form-data"),
        statements, prof(KINDS[2]))
    assert done.status_code == 302 and "/login" not in done.headers["Location"], (done.status_code, done.text[:2000])
    return results


def area(filename: str) -> str:
    """The library (or our package) a profiled function's file belongs to."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    root = str(REPO_ROOT) + "/"
    if path.startswith(root):
        return path[len(root):].removesuffix(".py")  # engine/runtime, web/tasks, ...
    if path == "~":
        return "C functions (database driver, zlib, str, dict, ...)"
    if path.startswith("<") or "/python3" in path:
        return "python standard library"
    return path


def profile_report(profiler: cProfile.Profile, rounds: int, top: int) -> str:
    """CPU by library, the watched functions' cumulative time, and the top functions by own time; ms per request."""
    stats = pstats.Stats(profiler)
    per_area: dict[str, float] = defaultdict(float)
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():
        per_area[area(filename)] += own
        total += own
    lines = [f"  profiled total {total / rounds * 1000:.1f} ms per request (cProfile overhead included)",
             "  by library/module (own time):"]
    for name, seconds in sorted(per_area.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"    {seconds / rounds * 1000:7.2f} ms  {name}")
    lines.append("  watched functions (cumulative):")
    for suffix, function in WATCHED:
        cumulative = sum(cum for (filename, _line, name), (_cc, _nc, _own, cum, _c) in stats.stats.items()
                         if name == function and filename.replace("\\", "/").endswith(suffix))
        calls = sum(nc for (filename, _line, name), (_cc, nc, _own, _cum, _c) in stats.stats.items()
                    if name == function and filename.replace("\\", "/").endswith(suffix))
        if calls:
            lines.append(f"    {cumulative / rounds * 1000:7.2f} ms  {calls / rounds:4.1f}×  {suffix}:{function}")
    ours = sorted(((cum, nc, area(filename), name) for (filename, _line, name), (_cc, nc, _own, cum, _c)
                   in stats.stats.items() if filename.startswith(str(REPO_ROOT)) and "site-packages" not in filename
                   and not filename.endswith(".html") and "bench/" not in filename), reverse=True)
    lines.append("  our functions by cumulative time:")
    lines += [f"    {cum / rounds * 1000:7.2f} ms  {nc / rounds:5.1f}×  {module}:{name}" for cum, nc, module, name in ours[:top]]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    lines.append("  top functions by own time (all measured rounds):")
    lines += ["    " + line for line in text.getvalue().splitlines() if line.strip()][-(top + 1):]
    return "\n".join(lines)


def run(label: str, url: str, args) -> dict[str, dict[str, float]]:
    """Build, sign in, run the rounds; print and return the medians per request kind."""
    from web.extensions import db

    evidence_dir = tempfile.mkdtemp(prefix="request-cpu-evidence-")
    try:
        began = time.perf_counter()
        app, username = build(url, evidence_dir, args.cycles + args.warm_up + 1 + PAGE_FULL)
        print(f"[{label}] set-up {time.perf_counter() - began:.1f} s; cadre {username}", flush=True)
        logging.disable(logging.INFO)  # no access log line per request: it is not what is measured
        with app.app_context():
            statements = Statements(db.engine)
        client = app.test_client()
        token = CSRF.search(client.get("/login").text).group(1)
        signed_in = client.post("/login", data={"csrf_token": token, "username": username,
                                                "password": DEMO_PASSWORD, "next": ""})
        assert signed_in.status_code == 302, signed_in.status_code
        photo = jpeg_photo()
        for _ in range(args.warm_up):
            one_round(client, photo, statements, None)
        if args.show_sql:
            statements.shown = []
            one_round(client, photo, statements, None)
            print(f"[{label}] the statements of one round:\n  " + "\n  ".join(statements.shown))
            statements.shown = None
        profilers = {kind: cProfile.Profile(time.process_time) for kind in KINDS} if args.profile else None
        samples: dict[str, list[tuple]] = defaultdict(list)
        load = os.getloadavg()[0]
        for _ in range(args.cycles):
            for kind, values in one_round(client, photo, statements, profilers).items():
                samples[kind].append(values)
        load = (load, os.getloadavg()[0])
        with app.app_context():
            db.engine.dispose()
    finally:
        shutil.rmtree(evidence_dir, ignore_errors=True)
    result = {}
    print(f"[{label}] {args.cycles} rounds, load average {load[0]:.1f} → {load[1]:.1f}"
          f"{' (profiled: CPU includes cProfile overhead)' if args.profile else ''}")
    print(f"  {'request':<28} {'CPU ms median':>13} {'mean':>7} {'wall ms median':>15} {'SQL statements':>15}")
    for kind in KINDS:
        cpu = [c * 1000 for c, _w, _s in samples[kind]]
        wall = [w * 1000 for _c, w, _s in samples[kind]]
        sql = [s for _c, _w, s in samples[kind]]
        result[kind] = {"cpu_ms": statistics.median(cpu), "cpu_mean_ms": statistics.fmean(cpu),
                        "wall_ms": statistics.median(wall), "statements": max(sql)}
        print(f"  {kind:<28} {result[kind]['cpu_ms']:13.1f} {result[kind]['cpu_mean_ms']:7.1f} "
              f"{result[kind]['wall_ms']:15.1f} {min(sql):>7}–{max(sql)}")
    round_cpu = sum(values["cpu_mean_ms"] for values in result.values())
    print(f"  one round (list + open + complete): {round_cpu:.1f} ms CPU (sum of the means)")
    if profilers:
        for kind in KINDS:
            print(f"\n[{label}] profile of {kind}")
            print(profile_report(profilers[kind], args.cycles, args.top))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL"),
                        help="PostgreSQL URL (a fresh schema is made in it); default $TEST_DATABASE_URL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--cycles", type=int, default=40, help="measured rounds (list + open + complete)")
    parser.add_argument("--warm-up", type=int, default=5, help="rounds before measuring")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured rounds")
    parser.add_argument("--top", type=int, default=25, help="lines of each profile table")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one more warm-up round")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    print(f"load average at start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    if not args.no_sqlite:
        directory = tempfile.mkdtemp(prefix="request-cpu-")
        try:
            run("SQLite", f"sqlite:///{directory}/request_cpu.db", args)
        finally:
            if args.keep:
                print(f"kept {directory}/request_cpu.db")
            else:
                shutil.rmtree(directory, ignore_errors=True)
    if args.postgres:
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        schema, _url = fresh_schema(base, prefix="request_cpu")
        try:
            run("PostgreSQL", schema_url(base, schema), args)
        finally:
            if args.keep:
                print(f"kept schema {schema}")
            else:
                drop_schema(base, schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
