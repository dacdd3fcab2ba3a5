"""Backing up and restoring the whole database, on SQLite and PostgreSQL.

- **SQLite**: SQLite's online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot while the app keeps running, into a new file; restoring copies a backup's pages over the
  database the same way.
- **PostgreSQL**: ``pg_dump --format=custom`` and ``pg_restore`` (the PostgreSQL client programs of
  the server's major version must be installed).  When the URL sets a ``search_path`` (one schema
  per deployment or per test) only that schema is dumped and restored; otherwise the whole database.
  A restore runs in one transaction: if it fails, the database is as it was.

A restore refuses a database that holds any row unless ``force`` is given, refuses a backup whose
schema revision this code does not know (a backup of a newer version), and checks afterwards that
the database is at the backup's revision.  Run ``flask db upgrade`` after restoring an older backup,
and restart the app's processes afterwards: they cache workflow state in memory.
No league terms here: every table is backed up, whoever defined it.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from .database import make_sql_engine
from .errors import EngineError
from .schema import alembic_config, current_revision

VERSION_TABLE = "alembic_version"
PG_TIMEOUT_SECONDS = 3600


class BackupRefused(EngineError):
    """A backup or restore that would lose data or cannot be done; the message says why and what to do."""

    http_status = 409


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore did: the file, the database kind, the schema revision, the file's size."""

    path: Path
    dialect: str
    revision: str | None
    size: int
    at_head: bool


# ------------------------------------------------------------------------------------------- public

def backup_database(url: str, path: str | Path) -> BackupResult:
    """Write a consistent backup of the database at ``url`` to ``path`` (a new file)."""
    path = Path(path)
    if path.exists():
        raise BackupRefused(f"备份文件已存在：{path} / {path} exists already; choose a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = _dialect(url)
    partial = path.with_name(path.name + ".partial")
    try:
        if kind == "sqlite":
            _sqlite_backup(_sqlite_file(url), partial)
        else:
            _pg_dump(url, partial)
        revision = backup_revision(partial, kind)
        partial.replace(path)  # the file appears only once complete
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path, kind, revision, path.stat().st_size, _is_head(url, revision))


def restore_database(url: str, path: str | Path, force: bool = False) -> BackupResult:
    """Replace the database at ``url`` with the backup in ``path``; refuse a database with rows unless ``force``."""
    path = Path(path)
    if not path.is_file():
        raise BackupRefused(f"备份文件不存在：{path} / no backup file {path}")
    kind = _dialect(url)
    revision = backup_revision(path, kind)
    _check_known(url, revision)
    if not force:
        filled = tables_with_rows(url)
        if filled:
            raise BackupRefused(f"数据库不是空的（{', '.join(filled[:5])} 等表有数据），恢复会覆盖它；确认后加 --force / "
                                f"the database is not empty ({len(filled)} table(s) hold rows: "
                                f"{', '.join(filled[:5])}); restoring replaces everything in it — add --force if "
                                "that is what you want")
    if kind == "sqlite":
        _sqlite_restore(path, _sqlite_file(url))
    else:
        _pg_restore(url, path)
    restored = current_revision(url)
    if restored != revision:
        raise BackupRefused(f"恢复后的数据库版本 {restored} 与备份的 {revision} 不符 / the restored database is at "
                            f"revision {restored}, the backup at {revision}: the restore did not complete")
    return BackupResult(path, kind, restored, path.stat().st_size, _is_head(url, restored))


def backup_revision(path: str | Path, kind: str) -> str | None:
    """The schema revision recorded in a backup file (``None`` if it has no version table)."""
    path = Path(path)
    if kind == "sqlite":
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
                row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                return None
            raise BackupRefused(f"不是 SQLite 备份文件：{path} / {path} is not a SQLite backup ({exc})") from None
        return row[0] if row else None
    listing = _run(["pg_restore", "--data-only", f"--table={VERSION_TABLE}", "--file=-", str(path)],
                   what=f"read {path}").stdout
    copied = re.search(r"^COPY \S+ \(version_num\) FROM stdin;\n(.*?)^\\\.$", listing, re.MULTILINE | re.DOTALL)
    rows = copied.group(1).split() if copied else []
    return rows[0] if rows else None


def tables_with_rows(url: str) -> list[str]:
    """Tables of the database (its current schema on PostgreSQL) holding at least one row, the version table aside."""
    sql_engine = make_sql_engine(url)
    try:
        with sql_engine.connect() as connection:
            names = [name for name in inspect(connection).get_table_names() if name != VERSION_TABLE]
            quote = connection.dialect.identifier_preparer.quote
            return [name for name in names
                    if connection.execute(text(f"SELECT 1 FROM {quote(name)} LIMIT 1")).first() is not None]
    finally:
        sql_engine.dispose()


# ------------------------------------------------------------------------------------------ SQLite

def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupRefused(f"只能备份 SQLite 文件数据库 / only a SQLite database file can be backed up, not {url!r}")
    return Path(database)


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupRefused(f"数据库文件不存在：{source} / no database file {source}")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)
        # A standalone file: no write-ahead log beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        problems = dst.execute("PRAGMA integrity_check").fetchall()
    if problems != [("ok",)]:
        raise BackupRefused(f"备份文件校验失败 / the backup failed its integrity check: {problems[:3]}")


def _sqlite_restore(backup: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target)) as dst:
        if src.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
            raise BackupRefused(f"备份文件已损坏 / the backup {backup} fails its integrity check")
        dst.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)


# -------------------------------------------------------------------------------------- PostgreSQL

def _pg_connection(url: str) -> tuple[list[str], dict[str, str], str | None]:
    """(connection arguments, environment, schema) for the client programs, the password kept off the command line."""
    parsed = make_url(url)
    args = [f"--dbname={parsed.database}"]
    if parsed.host:
        args.append(f"--host={parsed.host}")
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    environment = dict(os.environ)
    if parsed.password is not None:
        environment["PGPASSWORD"] = str(parsed.password)
    options = parsed.query.get("options") or ""
    options = options if isinstance(options, str) else " ".join(options)
    found = re.search(r"-c\s*search_path\s*=\s*([^\s,]+)", options)
    return args, environment, found.group(1).strip('"') if found else None


def _pg_dump(url: str, target: Path) -> None:
    args, environment, schema = _pg_connection(url)
    schema_args = [f"--schema={schema}"] if schema else []
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", *schema_args, f"--file={target}", *args],
         environment, what="pg_dump")


def _pg_restore(url: str, backup: Path) -> None:
    args, environment, schema = _pg_connection(url)
    listing = _run(["pg_restore", "--list", str(backup)], what=f"read {backup}").stdout
    in_backup = set(re.findall(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", listing, re.MULTILINE))
    sql_engine = make_sql_engine(url)
    try:
        with sql_engine.connect() as connection:
            current = connection.execute(text("SELECT current_schema()")).scalar()
            present = inspect(connection).get_table_names()
    finally:
        sql_engine.dispose()
    extra = sorted(name for name in present if (current, name) not in in_backup)
    if extra:
        raise BackupRefused(f"数据库中有备份里没有的表（{', '.join(extra[:5])}），可能来自更新的版本；请恢复到空数据库 / the "
                            f"database has tables the backup does not ({', '.join(extra[:5])}): it is probably of a "
                            "newer version; restore into an empty database instead")
    schema_args = [f"--schema={schema}"] if schema else []
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          "--exit-on-error", *schema_args, *args, str(backup)], environment, what="pg_restore")


def _run(command: list[str], environment: dict[str, str] | None = None, what: str = "") -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        raise BackupRefused(f"找不到 {command[0]}，请安装与数据库同一大版本的 PostgreSQL 客户端 / {command[0]} not found: "
                            "install the PostgreSQL client programs of the server's major version")
    try:
        return subprocess.run(command, env=environment, capture_output=True, text=True, check=True,
                              timeout=PG_TIMEOUT_SECONDS)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or "").strip().splitlines()[-3:]
        raise BackupRefused(f"{what} 失败 / {what} failed: {' | '.join(detail) or exc.returncode}") from None
    except subprocess.TimeoutExpired:
        raise BackupRefused(f"{what} 超时 / {what} took longer than {PG_TIMEOUT_SECONDS} s") from None


# ------------------------------------------------------------------------------------------ common

def _dialect(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupRefused(f"不支持的数据库 {backend} / cannot back up a {backend} database (SQLite or PostgreSQL only)")
    return backend


def _scripts(url: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(url))


def _check_known(url: str, revision: str | None) -> None:
    if revision is None:
        raise BackupRefused("备份里没有数据库版本（不是 lianqing 的备份？）/ the backup records no schema revision: "
                            "it is not a backup of this application's database")
    try:
        known = _scripts(url).get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupRefused(f"备份的数据库版本 {revision} 比本程序新，请先升级程序 / the backup is at schema revision "
                            f"{revision}, which this version of the application does not know: upgrade it first")


def _is_head(url: str, revision: str | None) -> bool:
    return revision is not None and revision in _scripts(url).get_heads()

