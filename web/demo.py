"""``flask demo load``: a generated demo province with its work so far, ranked, a few demo instances, and
accounts to try them with."""
from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import func, select, text

from engine.errors import EngineError
from workflows import rankings
from workflows.demo_facts import generate_demo_facts
from workflows.demo_province import SIZES, DemoSummary, generate_province
from workflows.models import Organisation

from .extensions import db
from .runtime import current_engine

demo = AppGroup("demo", help="Demo data.")

DEMO_PROCESS = "activity_record"
DEMO_DEADLINE_DAYS = (10, 3, 1)  # one instance per demo cadre, due in this many days


@demo.command("load")
@click.option("--size", type=click.Choice(SIZES), default="small", show_default=True,
              help="small: for trying the app (seconds); province: ~1,000,000 youth, for benchmarks (minutes).")
@click.option("--seed", type=int, default=2017, show_default=True, help="Same seed, same province.")
def demo_load(size: str, seed: int) -> None:
    """Generate the demo province into an empty database and print the demo accounts (idempotent)."""
    if db.session.scalar(select(func.count()).select_from(Organisation)):
        click.echo("demo data already present (the database has organisations); nothing loaded")
        return
    engine = current_engine()
    now = engine.clock.now()
    progress = click.echo if size == "province" else None
    summary = generate_province(db.session, size, seed=seed, now=now, progress=progress)
    facts = generate_demo_facts(db.session, size, seed=seed, now=now, progress=progress)
    started = 0
    if size == "small":
        try:  # the province and the instances go in together, or not at all
            for cadre, days in zip(summary.demo_cadres, DEMO_DEADLINE_DAYS):
                engine.start(db.session, DEMO_PROCESS,
                             {"cadre_assignee": cadre.username, "deadline": (now + timedelta(days=days)).isoformat()},
                             organisation_id=cadre.organisation_code, actor="demo")
                started += 1
        except EngineError as error:  # e.g. not deployed yet: say so, no traceback
            db.session.rollback()
            click.echo(f"错误 / error: {error.message} (flask deploy --all first)", err=True)
            raise SystemExit(1)
    db.session.commit()
    _vacuum_generated_tables()
    click.echo(f"loaded the demo province (size {size}, seed {seed}): {summary.counts_line()}")
    click.echo(f"recorded its work so far: {facts.counts_line()}")
    days = ranking_days(rankings.local_today(now), size)
    for day in days:
        rankings.compute_rankings(db.session, day, now)
        db.session.commit()
    click.echo(f"ranked {len(days)} day(s): {', '.join(day.isoformat() for day in days)}")
    if size == "small":
        click.echo(f"loaded {started} demo instances of {DEMO_PROCESS}")
    click.echo("")
    click.echo(accounts_table(summary))


def ranking_days(today: date, size: str) -> list[date]:
    """The days the demo ranks at once: today; for the small size also this year's past month ends (so the
    charts over time have points, and last month's bulletin its snapshot).

    Never a day of last year: a year with a snapshot gets its year-end evaluation from the
    ``bulletins.issue`` job, and the demo's sparse last year would fail every cadre, barring them
    from nomination (``eligibility.nomination_refusal`` looks at the year before too).
    """
    if size != "small":
        return [today]
    return [date(today.year, month + 1, 1) - timedelta(days=1) for month in range(1, today.month)] + [today]


GENERATED_TABLES = ("organisation", "user_account", "role_grant", "cadre", "youth", "contact", "activity",
                    "point_entry", "point_tally")


def _vacuum_generated_tables() -> None:
    """On PostgreSQL, VACUUM ANALYZE what was just loaded.

    Straight after a bulk load the planner has no statistics and the visibility map is empty, so
    subtree queries scan every cadre (8-13 ms at province size instead of 0.5-1 ms; see
    docs/benchmarks.md).  Autovacuum would get there later; this gets there now.
    """
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {', '.join(GENERATED_TABLES)}"))


def _width(cell: str) -> int:
    """Columns ``cell`` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in cell)


def _pad(cell: str, width: int) -> str:
    return cell + " " * (width - _width(cell))


def accounts_table(summary: DemoSummary) -> str:
    """The demo accounts as an aligned text table: role, username, password, name, organisation."""
    header = ("角色 role", "用户名 username", "密码 password", "姓名 name", "组织 organisation")
    rows = [header] + [(a.role, a.username, a.password, a.name, a.organisation) for a in summary.accounts]
    widths = [max(_width(row[column]) for row in rows) for column in range(len(header))]
    lines = ["演示账号 / demo accounts"]
    for number, row in enumerate(rows):
        lines.append("  ".join(_pad(cell, width) for cell, width in zip(row, widths)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
