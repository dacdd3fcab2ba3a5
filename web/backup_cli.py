"""``flask db backup FILE`` and ``flask db restore FILE [--force]``: the whole database to a file and back."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from engine.backup import BackupResult, backup_database, restore_database
from engine.errors import EngineError

from .extensions import db


def _url() -> str:
    db.engine.dispose()  # no pooled connection of this process stays open across the copy
    return current_app.config["SQLALCHEMY_DATABASE_URI"]


def _describe(result: BackupResult) -> str:
    head = "" if result.at_head else "；请运行 flask db upgrade / run `flask db upgrade` next"
    return f"{result.dialect}, schema revision {result.revision}, {result.size:,} bytes{head}"


def _fail(error: EngineError) -> None:
    click.echo(f"错误 / error: {error.message}", err=True)
    raise SystemExit(1)


@click.command("backup")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(file: Path) -> None:
    """Write a consistent backup of the database to FILE (SQLite: online backup; PostgreSQL: pg_dump -Fc)."""
    try:
        result = backup_database(_url(), file)
    except EngineError as error:
        _fail(error)
    click.echo(f"backed up to {result.path} ({_describe(result)})")


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def restore_command(file: Path, force: bool) -> None:
    """Replace the database with the backup in FILE; a database with data needs --force.  Restart the app after."""
    try:
        result = restore_database(_url(), file, force=force)
    except EngineError as error:
        _fail(error)
    click.echo(f"restored from {result.path} ({_describe(result)}); restart the app's processes")


def register(group: AppGroup) -> None:
    """Add the commands to the ``flask db`` group."""
    group.add_command(backup_command)
    group.add_command(restore_command)
