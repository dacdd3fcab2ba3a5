"""Bringing a database to the current schema with the Alembic migrations in ``migrations/``."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent: an up-to-date database is left alone)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision a database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    from .database import make_sql_engine
    sql_engine = make_sql_engine(url)
    try:
        with sql_engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        sql_engine.dispose()
