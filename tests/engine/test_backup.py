"""Backup and restore, a round trip on SQLite and PostgreSQL: data written, backed up, changed, restored exactly."""
from __future__ import annotations

import sqlite3
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, select, text, update
from sqlalchemy.exc import DBAPIError

from engine import Engine
from engine.backup import BackupRefused, backup_database, backup_revision, restore_database, tables_with_rows
from engine.database import make_session_factory, make_sql_engine
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.schema import current_revision
from tests.conftest import ENGINE_BPMN

RECORD = {"date": "2026-05-02", "place": "市南区团委", "participants": 12}


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    sql_engine = make_sql_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(sql_engine)
        with sql_engine.connect() as connection:
            return {name: [tuple(row) for row in connection.execute(
                        select(table).order_by(*(table.primary_key.columns or table.columns)))]
                    for name, table in sorted(metadata.tables.items())}
    finally:
        sql_engine.dispose()


def write_work(engine: Engine, sessions, clock, instances: int = 3) -> list[int]:
    """Deploy the two-lane review, start instances, claim and complete the first task of the first."""
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn", actor="admin")
        ids = [engine.start(session, "two_lane_review", {"deadline": (clock.now() + timedelta(days=5)).isoformat()},
                            organisation_id="qd-shinan", business_key=f"rec-{n}", actor="organiser").id
               for n in range(instances)]
        session.commit()
        [task] = engine.ready_tasks(session, instance_id=ids[0])
        engine.claim(session, task.id, "cadre-zhang")
        engine.complete_task(session, task.id, RECORD, "cadre-zhang")
        session.commit()
        return ids


def change_everything(engine: Engine, sessions, clock, ids: list[int]) -> None:
    """After the backup: more work, a changed row, deleted rows, an escalation by timer."""
    with sessions() as session:
        [task] = engine.ready_tasks(session, instance_id=ids[1])
        engine.complete_task(session, task.id, RECORD, None)
        engine.start(session, "two_lane_review", {"deadline": (clock.now() + timedelta(days=1)).isoformat()},
                     organisation_id="qd-laoshan", actor="organiser")
        session.execute(update(ProcessInstance).where(ProcessInstance.id == ids[2]).values(business_key="changed"))
        session.commit()
        clock.advance(timedelta(days=6))
        engine.run_due_timers(session)
        session.execute(text("DELETE FROM human_task WHERE instance_id = :id"), {"id": ids[0]})
        session.commit()


def test_round_trip_brings_every_row_back(database_url, engine, sessions, clock, tmp_path):
    ids = write_work(engine, sessions, clock)
    before = snapshot(database_url)
    with sessions() as session:
        trail_before = [(e.id, e.kind, e.task_id) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert len(before["audit_event"]) >= 8 and len(before["human_task"]) == 4

    result = backup_database(database_url, tmp_path / "lianqing.backup")
    assert result.path.is_file() and result.size > 0
    assert result.revision == current_revision(database_url) and result.at_head

    change_everything(engine, sessions, clock, ids)
    changed = snapshot(database_url)
    assert changed != before
    assert len(changed["audit_event"]) > len(before["audit_event"])

    with pytest.raises(BackupRefused, match="not empty"):
        restore_database(database_url, result.path)
    assert snapshot(database_url) == changed  # the refusal touched nothing

    restored = restore_database(database_url, result.path, force=True)
    assert restored.revision == result.revision and restored.at_head
    assert snapshot(database_url) == before

    # The audit trail is the one of the backup, still append-only, and the restored work goes on.
    with sessions() as session:
        assert [(e.id, e.kind, e.task_id) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))] == \
            trail_before
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("DELETE FROM audit_event"))
        session.rollback()
    fresh = Engine(services=engine.services, clock=clock, cache_size=0)
    with sessions() as session:
        [review] = fresh.ready_tasks(session, instance_id=ids[0])
        fresh.complete_task(session, review.id, {"approved": True}, None)
        session.commit()
        assert session.get(ProcessInstance, ids[0]).status == "completed"


def test_restore_into_an_empty_database_needs_no_force(database_url, engine, sessions, clock, tmp_path):
    write_work(engine, sessions, clock, instances=1)
    before = snapshot(database_url)
    backup = backup_database(database_url, tmp_path / "one.backup").path
    empty_the_database(database_url)
    assert tables_with_rows(database_url) == []
    restore_database(database_url, backup)
    assert snapshot(database_url) == before


def empty_the_database(url: str) -> None:
    """Drop everything: the schema of a PostgreSQL test, the whole SQLite file."""
    sql_engine = make_sql_engine(url)
    try:
        if sql_engine.dialect.name == "sqlite":
            sql_engine.dispose()
            path = sql_engine.url.database
            for suffix in ("", "-wal", "-shm"):
                subprocess.run(["rm", "-f", path + suffix], check=True)
            return
        with sql_engine.begin() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar()
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        sql_engine.dispose()


def test_a_backup_of_a_newer_version_is_refused(database_url, sessions, tmp_path):
    with sessions() as session:
        revision = session.scalar(text("SELECT version_num FROM alembic_version"))
        session.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        session.commit()
        backup = backup_database(database_url, tmp_path / "future.backup")
        session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        session.commit()
    assert backup.revision == "from_the_future" and not backup.at_head
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    assert backup_revision(backup.path, kind) == "from_the_future"
    empty_the_database(database_url)
    with pytest.raises(BackupRefused, match="from_the_future"):
        restore_database(database_url, backup.path)


def test_backup_never_overwrites_a_file(database_url, tmp_path):
    existing = tmp_path / "existing.backup"
    existing.write_text("keep me")
    with pytest.raises(BackupRefused, match="exists already"):
        backup_database(database_url, existing)
    assert existing.read_text() == "keep me"
    assert not list(tmp_path.glob("*.partial"))


def test_a_file_that_is_no_backup_is_refused(database_url, tmp_path):
    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(b"not a backup at all" * 100)
    empty_the_database(database_url)
    with pytest.raises(BackupRefused):
        restore_database(database_url, bogus)


def test_sqlite_backup_is_a_standalone_consistent_file(tmp_path, engine, clock):
    """Taken while a writer holds an open transaction: the copy has what was committed, and no WAL beside it."""
    from engine.schema import upgrade_database
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade_database(url)
    sessions = make_session_factory(make_sql_engine(url))
    write_work(engine, sessions, clock, instances=2)
    committed = snapshot(url)
    with sessions() as writer:
        writer.execute(update(HumanTask).values(assignee="uncommitted"))
        writer.flush()  # holds the write lock; not committed while the backup runs
        backup = backup_database(url, tmp_path / "live.backup").path
        writer.rollback()
    assert not (tmp_path / "live.backup-wal").exists()
    with sqlite3.connect(backup) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert snapshot(f"sqlite:///{backup}") == committed
