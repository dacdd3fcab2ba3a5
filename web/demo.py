"""``flask demo load``: a little data to see the engine work (the demo province comes with the org model)."""
from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from engine.errors import EngineError
from engine.models import ProcessInstance

from .extensions import db
from .runtime import current_engine

demo = AppGroup("demo", help="Demo data.")

DEMO_PROCESS = "activity_record"


@demo.command("load")
def demo_load() -> None:
    """Start a few demo instances when the database has none (idempotent)."""
    if db.session.scalar(select(func.count()).select_from(ProcessInstance)):
        click.echo("demo data already present; nothing loaded")
        return
    engine = current_engine()
    now = engine.clock.now()
    samples = [("张伟", "qd-shinan", 10), ("李娜", "qd-shinan", 3), ("王芳", "yt-zhifu", 1)]
    try:
        for cadre, org, days in samples:
            engine.start(db.session, DEMO_PROCESS,
                         {"cadre_assignee": cadre, "deadline": (now + timedelta(days=days)).isoformat()},
                         organisation_id=org, actor="demo")
        db.session.commit()
    except EngineError as error:  # e.g. not deployed yet: say so, no traceback
        db.session.rollback()
        click.echo(f"错误 / error: {error.message} (flask deploy --all first)", err=True)
        raise SystemExit(1)
    click.echo(f"loaded {len(samples)} demo instances of {DEMO_PROCESS}")
