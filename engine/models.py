"""The engine's tables, as plain SQLAlchemy 2.0 declarative classes on :class:`Base`.

The web layer hands ``Base`` to Flask-SQLAlchemy, so both see the same tables.  Schema changes
go through the Alembic migrations in ``migrations/``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, BigInteger, DateTime, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """An aware UTC datetime on every database (SQLite keeps no zone; we store and read UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware (UTC) datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every table of lianqing."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class ProcessDefinition(Base):
    """One deployed version of one BPMN process; never changed after deployment."""

    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("process_id", "content_hash"),
                      UniqueConstraint("process_id", "version"))

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The parsed spec serialized once per version (SpiffWorkflow's own serializer).
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    deployed_at: Mapped[datetime]
    deployed_by: Mapped[str | None] = mapped_column(String(255))


class ProcessInstance(Base):
    """A running (or finished) process; holds the serialized SpiffWorkflow state."""

    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_business_key", "business_key"),
                      # "my wishes / my questions": a youth's own instances of one process, newest first
                      Index("ix_process_instance_started_by", "started_by", "process_id", "id"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    business_key: Mapped[str | None] = mapped_column(String(255))
    organisation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Not indexed on purpose: the sweeper finds due work by next_timer_at, which is NULL for
    # every instance that is not running; an index here would be paid on every write.
    status: Mapped[str] = mapped_column(String(16), default="running")
    # SpiffWorkflow's serialized state without the spec: zlib-compressed JSON (about 4x smaller).
    state: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    next_timer_at: Mapped[datetime | None] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    definition: Mapped[ProcessDefinition] = relationship(lazy="select")

    # Not a column: set by Engine.start to the ids of the human tasks the start opened.
    new_task_ids: tuple[int, ...] = ()

    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """Query-friendly projection of one ready user or manual task; updated with the state."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_id"),
        Index("ix_human_task_assignee_state", "assignee", "state", "due_at"),
        Index("ix_human_task_role_org_state", "candidate_role", "organisation_id", "state"),
        Index("ix_human_task_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Indexed by the unique (instance_id, task_id) constraint.
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    task_id: Mapped[str] = mapped_column(String(36))
    process_id: Mapped[str] = mapped_column(String(255))
    bpmn_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(64))
    candidate_role: Mapped[str | None] = mapped_column(String(64))
    organisation_id: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(255))
    form_key: Mapped[str | None] = mapped_column(String(255))
    instructions: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None]
    remind_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="ready")
    created_at: Mapped[datetime]
    completed_by: Mapped[str | None] = mapped_column(String(255))
    completed_at: Mapped[datetime | None]

    instance: Mapped[ProcessInstance] = relationship(lazy="raise")

    OPEN_STATES = ("ready", "claimed")


class AuditEvent(Base):
    """One append-only line of the audit trail."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_instance_at", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    instance_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)
