"""Reading and writing instance rows with prepared Core statements, for the engine's hot paths.

Each engine step touches a handful of rows; going through the ORM unit of work for them costs
more than SpiffWorkflow's own work.  These functions run statements built once, on the tables
themselves, in the session's transaction, and keep any ORM objects of the same rows that the
session holds in step with the database.

Many rows at once (a bulk start, a batch of fired timers) go in one statement (:func:`insert_rows`).
On PostgreSQL that is ``COPY … FROM STDIN`` when no ids are needed back, else an ``INSERT`` that
takes one array per column and unnests them (updates of many rows too): either way psycopg does not
re-parse a statement of thousands of placeholders, which SQLAlchemy's multi-row ``VALUES`` batches
cost it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal_column, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .errors import ConcurrentUpdate, NotFound
from .models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance

_instances = ProcessInstance.__table__
_tasks = HumanTask.__table__
_audit = AuditEvent.__table__


@dataclass(frozen=True)
class InstanceHeader:
    """The columns of an instance the engine needs to work on it (not its state)."""

    id: int
    version: int
    status: str
    definition_id: int
    process_id: str
    organisation_id: str | None
    business_key: str | None
    next_timer_at: datetime | None


_SELECT_HEADER = select(_instances.c.id, _instances.c.version, _instances.c.status, _instances.c.definition_id,
                        _instances.c.process_id, _instances.c.organisation_id, _instances.c.business_key,
                        _instances.c.next_timer_at).where(_instances.c.id == bindparam("instance_id"))
_SELECT_HEADER_LOCKED = _SELECT_HEADER.with_for_update()
_SELECT_STATE = select(_instances.c.state).where(_instances.c.id == bindparam("instance_id"))
_INSERT_INSTANCE = insert(_instances).returning(_instances.c.id)
_INSERT_TASKS = insert(_tasks).returning(_tasks.c.id, sort_by_parameter_order=True)
_INSERT_AUDIT = insert(_audit)
_OPEN = HumanTask.OPEN_STATES
# "state IN (...)" with a Python tuple becomes an expanding parameter that SQLAlchemy re-renders
# on every execution; the equivalent OR of literals compiles once.
_IS_OPEN = or_(*[_tasks.c.state == literal_column(f"'{state}'") for state in _OPEN])
_CLOSE_TASK = (update(_tasks)
               .where(_tasks.c.instance_id == bindparam("b_instance_id"), _tasks.c.task_id == bindparam("b_task_id"),
                      _IS_OPEN)
               .values(state=bindparam("b_state"), completed_at=bindparam("b_completed_at"),
                       completed_by=bindparam("b_completed_by"),
                       assignee=func.coalesce(_tasks.c.assignee, bindparam("b_completed_by"))))


_SELECT_TASK = select(_tasks).where(_tasks.c.id == bindparam("task_id"))
_SELECT_TASK_AND_HEADER = (
    select(_tasks, *[c.label(f"i_{c.name}") for c in _SELECT_HEADER.selected_columns])
    .join(_instances, _instances.c.id == _tasks.c.instance_id).where(_tasks.c.id == bindparam("task_id")))
# Both rows locked: a second completer waits and then sees the first one's result.
_SELECT_TASK_AND_HEADER_LOCKED = _SELECT_TASK_AND_HEADER.with_for_update()
# The instance row is locked before the task row, in the order the timer sweep takes them: one
# FOR UPDATE over the join would lock them in the planner's order and deadlock with the sweep.
_LOCK_INSTANCE_OF_TASK = (select(_instances.c.id).where(_instances.c.id == select(_tasks.c.instance_id).where(
    _tasks.c.id == bindparam("task_id")).scalar_subquery()).with_for_update())
_HEADER_FIELDS = [f"i_{c.name}" for c in _SELECT_HEADER.selected_columns]


def _attach_task(session: Session, row) -> HumanTask:
    values = {c.name: row[c.name] for c in _tasks.columns}
    loaded = session.identity_map.get((HumanTask, (values["id"],), None))
    if loaded is not None:
        for key, value in values.items():
            set_committed_value(loaded, key, value)
        return loaded
    task = HumanTask(**values)
    make_transient_to_detached(task)  # detached with its identity: usable, never re-inserted
    return task


def load_task(session: Session, task_id: int) -> HumanTask | None:
    """A human task as an ORM object, read with one Core statement (refreshing a loaded copy)."""
    row = session.connection().execute(_SELECT_TASK, {"task_id": task_id}).mappings().first()
    return _attach_task(session, row) if row is not None else None


def load_task_and_header(session: Session, task_id: int) -> tuple[Any, InstanceHeader] | None:
    """A human task (a read-only row) and its instance's header in one statement.

    Both rows are locked on PostgreSQL, so a second completer waits and then sees the first's result.
    """
    statement = _SELECT_TASK_AND_HEADER
    if is_postgres(session):
        session.connection().execute(_LOCK_INSTANCE_OF_TASK, {"task_id": task_id})
        statement = _SELECT_TASK_AND_HEADER_LOCKED
    row = session.connection().execute(statement, {"task_id": task_id}).first()
    if row is None:
        return None
    return row, InstanceHeader(*(getattr(row, name) for name in _HEADER_FIELDS))


_LATEST_DEFINITION = (select(ProcessDefinition.__table__.c.id)
                      .where(ProcessDefinition.__table__.c.process_id == bindparam("process_id"))
                      .order_by(ProcessDefinition.__table__.c.version.desc()).limit(1))


def latest_definition_id(session: Session, process_id: str) -> int | None:
    """The id of the newest deployed version of a process, or ``None``."""
    return session.connection().execute(_LATEST_DEFINITION, {"process_id": process_id}).scalar()


def is_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (row locks and SKIP LOCKED are available)."""
    return session.get_bind().dialect.name == "postgresql"


def load_header(session: Session, instance_id: int, lock: bool) -> InstanceHeader:
    """Read an instance's header; with ``lock``, hold its row until the transaction ends (PostgreSQL)."""
    statement = _SELECT_HEADER_LOCKED if lock and is_postgres(session) else _SELECT_HEADER
    row = session.connection().execute(statement, {"instance_id": instance_id}).first()
    if row is None:
        raise NotFound(f"流程实例 {instance_id} 不存在 / instance {instance_id} does not exist")
    return InstanceHeader(*row)


def load_state(session: Session, instance_id: int) -> bytes:
    """The serialized workflow state of an instance."""
    return session.connection().execute(_SELECT_STATE, {"instance_id": instance_id}).scalar_one()


_SELECT_HEADERS = select(*_SELECT_HEADER.selected_columns).where(_instances.c.id.in_(bindparam("ids", expanding=True)))
_SELECT_STATES = select(_instances.c.id, _instances.c.state).where(_instances.c.id.in_(bindparam("ids", expanding=True)))


def load_headers(session: Session, instance_ids: list[int]) -> list[InstanceHeader]:
    """The headers of several instances (one statement), in the order of ``instance_ids``; missing ones left out.

    Takes no lock: the caller holds the rows already (the timer sweep claimed them with the query that found them).
    """
    if not instance_ids:
        return []
    rows = {row[0]: InstanceHeader(*row) for row in session.connection().execute(_SELECT_HEADERS, {"ids": instance_ids})}
    return [rows[i] for i in instance_ids if i in rows]


def load_states(session: Session, instance_ids: list[int]) -> dict[int, bytes]:
    """The serialized workflow states of several instances (one statement), by instance id."""
    if not instance_ids:
        return {}
    return dict(session.connection().execute(_SELECT_STATES, {"ids": instance_ids}).all())


_ASYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO off")


def commit_asynchronously(session: Session) -> None:
    """On PostgreSQL, let the current transaction's commit return before its WAL record is on disk.

    A crash may then lose this transaction (and only the last few hundred milliseconds of such
    transactions), never corrupt anything; any later durable commit makes it durable too.  Elsewhere
    a no-op.  It applies to the commit, so it may be set at any point of the transaction.
    """
    if is_postgres(session):
        session.connection().execute(_ASYNCHRONOUS_COMMIT)


def insert_instance(session: Session, values: dict[str, Any]) -> int:
    """Insert an instance row and return its id."""
    return session.connection().execute(_INSERT_INSTANCE, values).scalar_one()


def insert_instances(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert instance rows (one statement) and return their ids in the same order."""
    if len(rows) == 1:
        return [insert_instance(session, rows[0])]
    return insert_rows(session, _instances, rows, return_ids=True)


def insert_started_instances(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert complete instance rows whose ids were drawn with :func:`reserve_instance_ids`."""
    if len(rows) == 1:
        insert_instance(session, rows[0])
    else:
        insert_rows(session, _instances, rows)


_RESERVE_IDS = text("SELECT nextval(pg_get_serial_sequence('process_instance', 'id')) FROM generate_series(1, :count)")


def reserve_instance_ids(session: Session, count: int) -> list[int] | None:
    """On PostgreSQL, draw ``count`` instance ids from the id sequence (rows written later); else ``None``."""
    if not is_postgres(session):
        return None
    return sorted(session.connection().execute(_RESERVE_IDS, {"count": count}).scalars())


# Below this many rows a plain multi-row INSERT costs psycopg less than COPY or one array per column.
BULK_FROM_ROWS = 8


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], return_ids: bool = False) -> list[int]:
    """Insert rows that all have the same keys with one statement; with ``return_ids``, their ids in order.

    PostgreSQL gets ``COPY`` without ``return_ids``, else ``INSERT … SELECT … FROM unnest(:a::type[],
    :b::type[], …) WITH ORDINALITY`` in row order: the serial ids are drawn in that order, so
    sorting the returned ids gives them in the order of ``rows``.  A few rows, and other
    databases, get SQLAlchemy's executemany (batched ``VALUES … RETURNING``, sorted by parameter
    order).
    """
    if not rows:
        return []
    connection = session.connection()
    names = tuple(rows[0])
    if connection.dialect.name == "postgresql" and len(rows) >= BULK_FROM_ROWS:
        if not return_ids:
            _copy_rows(connection, table, names, rows)
            return []
        result = connection.execute(_unnest_insert(table, names),
                                    {f"u_{name}": [row[name] for row in rows] for name in names})
        return sorted(result.scalars())
    if return_ids:
        statement = _executemany_insert(table)
        return list(connection.execute(statement, rows).scalars())
    connection.execute(insert(table), rows)
    return []


def _copy_rows(connection, table: Table, names: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """``COPY table (names) FROM STDIN`` in the connection's transaction, values bound as SQLAlchemy would.

    psycopg formats COPY rows in C; an array parameter per column costs far more (it quotes each
    element with a regular expression in Python).
    """
    processors = _bind_processors(connection.dialect, table, names)
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(_copy_statement(table, names)) as copy:
            for row in rows:
                copy.write_row([row[name] if process is None else process(row[name])
                                for name, process in zip(names, processors)])
    finally:
        cursor.close()


@lru_cache(maxsize=64)
def _bind_processors(dialect, table: Table, names: tuple[str, ...]) -> tuple:
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)


@lru_cache(maxsize=64)
def _copy_statement(table: Table, names: tuple[str, ...]) -> str:
    return f"""COPY "{table.name}" ({', '.join(f'"{name}"' for name in names)}) FROM STDIN"""


@lru_cache(maxsize=64)
def _unnest_insert(table: Table, names: tuple[str, ...]):
    arrays = func.unnest(*[bindparam(f"u_{name}", type_=ARRAY(table.c[name].type)) for name in names])
    rows = arrays.table_valued(*names, with_ordinality="u_order").render_derived()
    statement = insert(table).from_select(names, select(*[rows.c[name] for name in names]).order_by(rows.c.u_order))
    return statement.returning(table.c.id)


@lru_cache(maxsize=16)
def _executemany_insert(table: Table):
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


@lru_cache(maxsize=32)
def _update_instance_statement(keys: tuple[str, ...]):
    return (update(_instances)
            .where(_instances.c.id == bindparam("b_id"), _instances.c.version == bindparam("b_version"))
            .values({key: bindparam(f"v_{key}") for key in keys}))


def update_instance(session: Session, header: InstanceHeader, values: dict[str, Any]) -> int:
    """Write new values if the row is still at ``header.version``; return the new version.

    Raises :class:`ConcurrentUpdate` when someone else wrote the instance first.
    """
    return update_instances(session, [(header, values)])[0]


def update_instances(session: Session, changes: list[tuple[InstanceHeader, dict[str, Any]]]) -> list[int]:
    """:func:`update_instance` for many instances: one statement per set of changed columns.

    Returns the new versions in the same order.  Raises :class:`ConcurrentUpdate` if any of the
    instances is no longer at the version its header says.
    """
    groups: dict[tuple[str, ...], list[tuple[InstanceHeader, dict[str, Any]]]] = {}
    for header, values in changes:
        groups.setdefault(tuple(sorted(values)), []).append((header, values))
    connection = session.connection()
    for keys, group in groups.items():
        keys = tuple(sorted((*keys, "version")))
        if len(group) >= BULK_FROM_ROWS and connection.dialect.name == "postgresql":
            params = {"u_b_id": [header.id for header, _v in group],
                      "u_b_version": [header.version for header, _v in group]}
            for key in keys:
                params[f"u_{key}"] = [header.version + 1 if key == "version" else values[key] for header, values in group]
            result = connection.execute(_unnest_update(keys), params)
            checked = True
        else:
            params = [{f"v_{key}": header.version + 1 if key == "version" else values[key] for key in keys}
                      | {"b_id": header.id, "b_version": header.version} for header, values in group]
            result = connection.execute(_update_instance_statement(keys), params[0] if len(params) == 1 else params)
            checked = len(params) == 1 or connection.dialect.supports_sane_multi_rowcount
        if checked and result.rowcount != len(group):
            who = group[0][0].id if len(group) == 1 else "、".join(str(header.id) for header, _v in group[:5])
            raise ConcurrentUpdate(f"流程实例 {who} 刚被他人修改，请刷新后重试 / instance {who} was "
                                   "changed by someone else a moment ago; reload and try again")
    if session.identity_map:
        for header, values in changes:
            loaded = session.identity_map.get((ProcessInstance, (header.id,), None))
            if loaded is not None:
                for key, value in values.items():
                    set_committed_value(loaded, key, value)
                set_committed_value(loaded, "version", header.version + 1)
    return [header.version + 1 for header, _values in changes]


@lru_cache(maxsize=32)
def _unnest_update(keys: tuple[str, ...]):
    names = ("b_id", "b_version", *keys)
    types = {"b_id": _instances.c.id.type, "b_version": _instances.c.version.type}
    arrays = func.unnest(*[bindparam(f"u_{name}", type_=ARRAY(types.get(name) or _instances.c[name].type))
                           for name in names])
    rows = arrays.table_valued(*names).render_derived()
    return (update(_instances)
            .where(_instances.c.id == rows.c.b_id, _instances.c.version == rows.c.b_version)
            .values({key: rows.c[key] for key in keys}))


def insert_human_tasks(session: Session, rows: list[dict[str, Any]], return_ids: bool = True) -> list[int]:
    """Insert new human-task rows; return their ids in the same order (if asked)."""
    if not rows:
        return []
    if len(rows) == 1:  # the common case; a list would take SQLAlchemy's batched "insertmanyvalues" path
        return [session.connection().execute(_INSERT_TASKS, rows[0]).scalar_one()]
    return insert_rows(session, _tasks, rows, return_ids=return_ids)


def close_tasks_of_instances(session: Session, closed: list[tuple[int, dict[str, Any]]]) -> None:
    """Mark open human tasks of one or many instances completed or cancelled, with one statement.

    ``closed`` holds (instance id, dict of ``task_id``, ``state``, ``completed_at`` and
    ``completed_by``).  Raises :class:`ConcurrentUpdate` if one of them was not open any more.
    """
    if not closed:
        return
    params = [{"b_instance_id": instance_id, "b_task_id": row["task_id"], "b_state": row["state"],
               "b_completed_at": row["completed_at"], "b_completed_by": row.get("completed_by")}
              for instance_id, row in closed]
    connection = session.connection()
    if len(params) >= BULK_FROM_ROWS and connection.dialect.name == "postgresql":
        result = connection.execute(_UNNEST_CLOSE_TASKS, {f"u_{name}": [p[name] for p in params]
                                                          for name in _CLOSE_TASK_COLUMNS})
        checked = True
    else:
        result = connection.execute(_CLOSE_TASK, params[0] if len(params) == 1 else params)
        checked = len(params) == 1 or connection.dialect.supports_sane_multi_rowcount
    if checked and result.rowcount != len(params):
        who = "、".join(sorted({str(instance_id) for instance_id, _row in closed})[:5])
        raise ConcurrentUpdate(f"流程实例 {who} 的任务刚被他人办理 / a task of instance {who} "
                               "was closed by someone else a moment ago")
    if not session.identity_map:
        return
    by_task = {(instance_id, row["task_id"]): row for instance_id, row in closed}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, HumanTask) and (row := by_task.get((obj.instance_id, obj.task_id))) is not None:
            set_committed_value(obj, "state", row["state"])
            set_committed_value(obj, "completed_at", row["completed_at"])
            if row.get("completed_by") is not None:
                set_committed_value(obj, "completed_by", row["completed_by"])
                set_committed_value(obj, "assignee", obj.assignee or row["completed_by"])


_CLOSE_TASK_COLUMNS = ("b_instance_id", "b_task_id", "b_state", "b_completed_at", "b_completed_by")


def _unnest_close_tasks():
    types = dict(zip(_CLOSE_TASK_COLUMNS, (_tasks.c.instance_id.type, _tasks.c.task_id.type, _tasks.c.state.type,
                                           _tasks.c.completed_at.type, _tasks.c.completed_by.type)))
    arrays = func.unnest(*[bindparam(f"u_{name}", type_=ARRAY(types[name])) for name in _CLOSE_TASK_COLUMNS])
    rows = arrays.table_valued(*_CLOSE_TASK_COLUMNS).render_derived()
    return (update(_tasks)
            .where(_tasks.c.instance_id == rows.c.b_instance_id, _tasks.c.task_id == rows.c.b_task_id, _IS_OPEN)
            .values(state=rows.c.b_state, completed_at=rows.c.b_completed_at, completed_by=rows.c.b_completed_by,
                    assignee=func.coalesce(_tasks.c.assignee, rows.c.b_completed_by)))


_UNNEST_CLOSE_TASKS = _unnest_close_tasks()


@lru_cache(maxsize=32)
def _guard_statement(keys: tuple[str, ...]):
    # The assignee must still be the one the caller read: else of fifty racing claims, each would
    # overwrite the last (the row stays open) and all fifty would be told they hold the task.
    return (update(_tasks).where(_tasks.c.id == bindparam("b_id"), _IS_OPEN,
                                 _tasks.c.assignee.is_not_distinct_from(bindparam("b_assignee")))
            .values({key: bindparam(f"v_{key}") for key in keys}))


def change_open_task(session: Session, task: HumanTask, values: dict[str, Any]) -> bool:
    """Change a task only if it is still open and held by whom ``task`` says (one conditional UPDATE)."""
    params = {f"v_{key}": value for key, value in values.items()}
    params["b_id"] = task.id
    params["b_assignee"] = task.assignee
    result = session.connection().execute(_guard_statement(tuple(sorted(values))), params)
    if result.rowcount != 1:
        return False
    for key, value in values.items():
        set_committed_value(task, key, value)
    return True


def insert_audit_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Append audit events (one statement for all of them)."""
    if len(events) == 1:
        session.connection().execute(_INSERT_AUDIT, events[0])
    elif events:
        insert_rows(session, _audit, events)
