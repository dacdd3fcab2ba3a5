"""``flask`` commands that drive the engine from a shell, for admins and scripts."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from engine.errors import EngineError, InvalidBpmn

from .extensions import db
from .runtime import current_engine, migrate


def _json_option(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg} (at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"place\": \"团委\"}'")
    return value


def _fail(error: EngineError) -> None:
    db.session.rollback()
    click.echo(f"错误 / error: {error.message}", err=True)
    raise SystemExit(1)


@click.command("deploy")
@with_appcontext
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--all", "deploy_all", is_flag=True, help="Deploy every .bpmn file in the BPMN directory.")
@click.option("--as", "actor", default=None, help="Who deploys (recorded in the audit trail).")
def deploy_command(files: tuple[Path, ...], deploy_all: bool, actor: str | None) -> None:
    """Deploy BPMN files (with the form files they name); exit 1 if any file is refused."""
    paths = list(files)
    if deploy_all:
        paths += sorted(Path(current_app.config["BPMN_DIR"]).glob("*.bpmn"))
    if not paths:
        raise click.UsageError("name one or more BPMN files, or --all")
    failed = False
    for path in paths:
        if not path.is_file():
            click.echo(f"{path}: 文件不存在 / no such file", err=True)
            failed = True
            continue
        try:
            result = current_engine().deploy_file(db.session, path, actor=actor)
            db.session.commit()
        except InvalidBpmn as error:
            db.session.rollback()
            failed = True
            for problem in error.problems:
                click.echo(f"refused {problem}", err=True)
            continue
        d = result.definition
        state = "deployed" if result.created else "unchanged"
        click.echo(f"{state} {d.process_id} version {d.version} ({path.name}, {d.content_hash[:12]})")
    if failed:
        raise SystemExit(1)


@click.command("start")
@with_appcontext
@click.argument("process_id")
@click.option("--data", default=None, help="Initial data as a JSON object.")
@click.option("--org", "organisation_id", default=None, help="Organisation the instance belongs to.")
@click.option("--key", "business_key", default=None, help="Business key, for messages.")
@click.option("--as", "actor", default=None, help="Who starts it.")
def start_command(process_id, data, organisation_id, business_key, actor) -> None:
    """Start an instance of the latest version of PROCESS_ID; print its id."""
    try:
        instance = current_engine().start(db.session, process_id, _json_option(data), organisation_id,
                                          business_key, actor)
        db.session.commit()
    except EngineError as error:
        _fail(error)
    click.echo(instance.id)


@click.command("tasks")
@with_appcontext
@click.option("--instance", "instance_id", type=int, default=None, help="Only this instance's tasks.")
def tasks_command(instance_id: int | None) -> None:
    """List ready tasks, one per line: id, instance, task, lane, assignee, due."""
    for t in current_engine().ready_tasks(db.session, instance_id=instance_id, limit=10_000):
        due = t.due_at.isoformat() if t.due_at else "-"
        click.echo(f"{t.id}\t{t.instance_id}\t{t.bpmn_id}\t{t.name}\t{t.lane or '-'}\t{t.assignee or '-'}\t{due}")


@click.command("complete")
@with_appcontext
@click.argument("task_id", type=int)
@click.option("--data", default=None, help="Form data as a JSON object.")
@click.option("--as", "actor", default=None, help="Who completes it.")
def complete_command(task_id: int, data: str | None, actor: str | None) -> None:
    """Complete a task with data."""
    try:
        row = current_engine().complete_task(db.session, task_id, _json_option(data), actor)
        db.session.commit()
    except EngineError as error:
        _fail(error)
    click.echo(f"completed {row.id} {row.name}")


@click.command("claim")
@with_appcontext
@click.argument("task_id", type=int)
@click.option("--as", "actor", required=True, help="Who claims it.")
def claim_command(task_id: int, actor: str) -> None:
    """Claim a task for a person."""
    try:
        row = current_engine().claim(db.session, task_id, actor)
        db.session.commit()
    except EngineError as error:
        _fail(error)
    click.echo(f"claimed {row.id} for {actor}")


timers = AppGroup("timers", help="Fire due timers.")


@timers.command("tick")
def timers_tick() -> None:
    """Fire what is due now, once."""
    click.echo(f"fired {current_engine().run_due_timers(db.session)}")


@timers.command("run")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between sweeps.")
def timers_run(interval: float) -> None:
    """Sweep for due timers until interrupted."""
    click.echo(f"timer sweeper running every {interval}s; Ctrl-C to stop")
    try:
        while True:
            fired = current_engine().run_due_timers(db.session)
            if fired:
                click.echo(f"fired {fired}")
            db.session.remove()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


dbgroup = AppGroup("db", help="Database schema.")


@dbgroup.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations (idempotent)."""
    migrate(current_app)
    click.echo("database is at the current schema")


def init_app(app: Flask) -> None:
    """Register the commands on ``app``."""
    for command in (deploy_command, start_command, tasks_command, complete_command, claim_command, timers, dbgroup):
        app.cli.add_command(command)
    from .backup_cli import register as register_backup
    register_backup(dbgroup)
    from .demo import demo
    from .roster_cli import roster
    app.cli.add_command(demo)
    app.cli.add_command(roster)
