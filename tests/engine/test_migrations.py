"""The Alembic migrations build exactly the models' schema, and go down and up again."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.database import make_sql_engine
from engine.models import Base
from engine.schema import alembic_config, current_revision, upgrade_database


def schema_differences(url):
    engine = make_sql_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(database_url):
    assert current_revision(database_url) is not None
    assert schema_differences(database_url) == []


def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url):
    head = current_revision(database_url)
    upgrade_database(database_url)
    assert current_revision(database_url) == head
    command.downgrade(alembic_config(database_url), "base")
    assert current_revision(database_url) is None
    upgrade_database(database_url)
    assert current_revision(database_url) == head and schema_differences(database_url) == []
