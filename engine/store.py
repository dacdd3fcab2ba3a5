"""Reading and writing instance rows with prepared Core statements, for the engine's hot paths.

Each engine step touches a handful of rows; going through the ORM unit of work for them costs
more than SpiffWorkflow's own work.  These functions run statements built once, on the tables
themselves, in the session's transaction, and keep any ORM objects of the same rows that the
session holds in step with the database.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, insert, literal_column, or_, select, update
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
    statement = _SELECT_TASK_AND_HEADER_LOCKED if is_postgres(session) else _SELECT_TASK_AND_HEADER
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


def insert_instance(session: Session, values: dict[str, Any]) -> int:
    """Insert an instance row and return its id."""
    return session.connection().execute(_INSERT_INSTANCE, values).scalar_one()


@lru_cache(maxsize=32)
def _update_instance_statement(keys: tuple[str, ...]):
    return (update(_instances)
            .where(_instances.c.id == bindparam("b_id"), _instances.c.version == bindparam("b_version"))
            .values({key: bindparam(f"v_{key}") for key in keys}))


def update_instance(session: Session, header: InstanceHeader, values: dict[str, Any]) -> int:
    """Write new values if the row is still at ``header.version``; return the new version.

    Raises :class:`ConcurrentUpdate` when someone else wrote the instance first.
    """
    values = dict(values, version=header.version + 1)
    statement = _update_instance_statement(tuple(sorted(values)))
    params = {f"v_{key}": value for key, value in values.items()}
    params.update(b_id=header.id, b_version=header.version)
    result = session.connection().execute(statement, params)
    if result.rowcount != 1:
        raise ConcurrentUpdate(f"流程实例 {header.id} 刚被他人修改，请刷新后重试 / instance {header.id} was "
                               "changed by someone else a moment ago; reload and try again")
    loaded = session.identity_map.get((ProcessInstance, (header.id,), None))
    if loaded is not None:
        for key, value in values.items():
            set_committed_value(loaded, key, value)
    return values["version"]


def insert_human_tasks(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new human-task rows; return their ids in the same order."""
    if not rows:
        return []
    if len(rows) == 1:  # the common case; a list would take SQLAlchemy's batched "insertmanyvalues" path
        return [session.connection().execute(_INSERT_TASKS, rows[0]).scalar_one()]
    return list(session.connection().execute(_INSERT_TASKS, rows).scalars())


def close_human_tasks(session: Session, instance_id: int, closed: list[dict[str, Any]]) -> None:
    """Mark open human tasks completed or cancelled.

    ``closed`` holds dicts of ``task_id``, ``state``, ``completed_at`` and ``completed_by``.
    Raises :class:`ConcurrentUpdate` if one of them was not open any more.
    """
    if not closed:
        return
    params = [{"b_instance_id": instance_id, "b_task_id": row["task_id"], "b_state": row["state"],
               "b_completed_at": row["completed_at"], "b_completed_by": row.get("completed_by")} for row in closed]
    connection = session.connection()
    result = connection.execute(_CLOSE_TASK, params[0] if len(params) == 1 else params)
    if (len(params) == 1 or connection.dialect.supports_sane_multi_rowcount) and result.rowcount != len(params):
        raise ConcurrentUpdate(f"流程实例 {instance_id} 的任务刚被他人办理 / a task of instance {instance_id} "
                               "was closed by someone else a moment ago")
    if not session.identity_map:
        return
    by_task = {row["task_id"]: row for row in closed}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, HumanTask) and obj.instance_id == instance_id and obj.task_id in by_task:
            row = by_task[obj.task_id]
            set_committed_value(obj, "state", row["state"])
            set_committed_value(obj, "completed_at", row["completed_at"])
            if row.get("completed_by") is not None:
                set_committed_value(obj, "completed_by", row["completed_by"])
                set_committed_value(obj, "assignee", obj.assignee or row["completed_by"])


@lru_cache(maxsize=32)
def _guard_statement(keys: tuple[str, ...]):
    return (update(_tasks).where(_tasks.c.id == bindparam("b_id"), _IS_OPEN)
            .values({key: bindparam(f"v_{key}") for key in keys}))


def change_open_task(session: Session, task: HumanTask, values: dict[str, Any]) -> bool:
    """Change a task only if it is still open (one conditional UPDATE); return whether it was."""
    params = {f"v_{key}": value for key, value in values.items()}
    params["b_id"] = task.id
    result = session.connection().execute(_guard_statement(tuple(sorted(values))), params)
    if result.rowcount != 1:
        return False
    for key, value in values.items():
        set_committed_value(task, key, value)
    return True


def insert_audit_events(session: Session, events: list[dict[str, Any]]) -> None:
    """Append audit events (one statement for all of them)."""
    if events:
        session.connection().execute(_INSERT_AUDIT, events[0] if len(events) == 1 else events)
