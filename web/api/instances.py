"""Process instances: start one, read it with its diagram state and audit trail, message it, cancel it.

Rights: ``workflows/instance_rights.py`` (shared with the pages and commands).
"""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_smorest import Blueprint
from sqlalchemy import select

from engine.errors import WorkflowFailed
from engine.models import AuditEvent, HumanTask, ProcessInstance
from workflows.instance_rights import check_run, check_start, check_view_instance

from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, requires
from .openapi import API_PREFIX, BIG_ID
from .pagination import PageArgs, decode_cursor, page, page_schema
from .tasks import TaskSchema

blp = Blueprint("api_instances", __name__, url_prefix=f"{API_PREFIX}/instances",
                description="流程实例 / process instances: start, state, audit trail, messages, cancel")

AUDIT_IN_INSTANCE = 100


class AuditEventSchema(ma.Schema):
    """One line of the audit trail."""

    id = ma.fields.Integer(required=True)
    at = ma.fields.DateTime(required=True)
    actor = ma.fields.String(allow_none=True)
    kind = ma.fields.String(required=True)
    task_id = ma.fields.String(allow_none=True)
    element_id = ma.fields.String(allow_none=True)
    before = ma.fields.Raw(allow_none=True)
    after = ma.fields.Raw(allow_none=True)
    detail = ma.fields.String(allow_none=True)


AuditPage = page_schema(AuditEventSchema, "AuditPage")


class DiagramStateSchema(ma.Schema):
    """Which BPMN elements are done, ready, waiting or cancelled."""

    completed = ma.fields.List(ma.fields.String(), required=True)
    ready = ma.fields.List(ma.fields.String(), required=True)
    waiting = ma.fields.List(ma.fields.String(), required=True)
    cancelled = ma.fields.List(ma.fields.String(), required=True)


class DiagramSchema(DiagramStateSchema):
    """The diagram state with the BPMN XML of the instance's version."""

    bpmn_xml = ma.fields.String(required=True)


class InstanceSchema(ma.Schema):
    """A process instance."""

    id = ma.fields.Integer(required=True)
    process_id = ma.fields.String(required=True)
    definition_id = ma.fields.Integer(required=True)
    business_key = ma.fields.String(allow_none=True)
    organisation = ma.fields.String(allow_none=True, attribute="organisation_id")
    status = ma.fields.String(required=True, metadata={"enum": ["running", "completed", "cancelled", "error"]})
    error = ma.fields.String(allow_none=True)
    started_by = ma.fields.String(allow_none=True)
    started_at = ma.fields.DateTime(required=True)
    ended_at = ma.fields.DateTime(allow_none=True)


class StartedSchema(InstanceSchema):
    """A new instance and the tasks its start opened."""

    new_task_ids = ma.fields.List(ma.fields.Integer(), required=True)


class InstanceDetailSchema(InstanceSchema):
    """An instance with its diagram state, open tasks and the start of its audit trail."""

    diagram = ma.fields.Nested(DiagramStateSchema, required=True)
    open_tasks = ma.fields.List(ma.fields.Nested(TaskSchema), required=True)
    audit = ma.fields.List(ma.fields.Nested(AuditEventSchema), required=True,
                           metadata={"description": f"The first {AUDIT_IN_INSTANCE} events, oldest first"})
    audit_next_cursor = ma.fields.String(allow_none=True, required=True,
                                         metadata={"description": "Cursor for `GET /instances/{id}/audit`"})


class StartArgs(ma.Schema):
    """What to start, where."""

    process_id = ma.fields.String(required=True, validate=ma.validate.Length(1, 255))
    organisation = ma.fields.String(required=True, validate=ma.validate.Length(1, 64),
                                    metadata={"description": "Code of the organisation it runs at"})
    business_key = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 255),
                                    metadata={"description": "Key that messages find it by"})
    data = ma.fields.Dict(load_default=dict, metadata={"description": "The process's start data"})


class MessageArgs(ma.Schema):
    """A BPMN message for the instances with this instance's business key."""

    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 255))
    payload = ma.fields.Raw(load_default=None, allow_none=True)


class DeliveredSchema(ma.Schema):
    """Which instances took the message."""

    delivered_to = ma.fields.List(ma.fields.Integer(), required=True)


class CancelArgs(ma.Schema):
    """Why the instance is cancelled (kept in the audit trail)."""

    reason = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))


def _visible_instance(instance_id: int) -> ProcessInstance:
    instance = current_engine().instance(db.session, instance_id)
    check_view_instance(db.session, api_actor(), instance)
    return instance


def _audit_rows(instance_id: int, after_id: int, limit: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id,
                                                            AuditEvent.id > after_id)
                                   .order_by(AuditEvent.id).limit(limit + 1)))


@blp.route("", methods=["POST"])
@blp.arguments(StartArgs)
@blp.response(201, StartedSchema)
@requires("instances:write")
def start_instance(args):
    """Start the latest version of a process at an organisation

    An organiser or admin at or above the organisation may.
    """
    actor = api_actor()
    check_start(db.session, actor, args["process_id"], args["organisation"])
    instance = current_engine().start(db.session, args["process_id"], args["data"], args["organisation"],
                                      args["business_key"], actor=actor.username)
    db.session.commit()
    new_task_ids = instance.new_task_ids
    instance = db.session.get(ProcessInstance, instance.id)
    instance.new_task_ids = new_task_ids
    return instance, 201, {"Location": url_for("api_instances.get_instance", instance_id=instance.id)}


@blp.route(f"/<{BIG_ID}:instance_id>")
@blp.response(200, InstanceDetailSchema)
@requires("instances:read")
def get_instance(instance_id: int):
    """An instance with its diagram state, open tasks and audit trail

    Its starter, anyone who held one of its tasks, and staff over its organisation may see it.
    """
    instance = _visible_instance(instance_id)
    view = current_engine().process_view(db.session, instance_id)
    instance.diagram = view
    instance.open_tasks = list(db.session.scalars(select(HumanTask).where(
        HumanTask.instance_id == instance_id, HumanTask.state.in_(HumanTask.OPEN_STATES)).order_by(HumanTask.id)))
    audit = page(_audit_rows(instance_id, 0, AUDIT_IN_INSTANCE), AUDIT_IN_INSTANCE, lambda e: {"id": e.id})
    instance.audit, instance.audit_next_cursor = audit["items"], audit["next_cursor"]
    return instance


@blp.route(f"/<{BIG_ID}:instance_id>/audit")
@blp.arguments(PageArgs, location="query")
@blp.response(200, AuditPage)
@requires("instances:read")
def instance_audit(args, instance_id: int):
    """An instance's audit trail, oldest first"""
    _visible_instance(instance_id)
    after = (decode_cursor(args["cursor"], id=int) or {"id": 0})["id"]
    return page(_audit_rows(instance_id, after, args["limit"]), args["limit"], lambda e: {"id": e.id})


@blp.route(f"/<{BIG_ID}:instance_id>/diagram")
@blp.response(200, DiagramSchema)
@requires("instances:read")
def instance_diagram(instance_id: int):
    """The BPMN XML of an instance's version and the state of each element, for drawing it"""
    _visible_instance(instance_id)
    return current_engine().process_view(db.session, instance_id)


@blp.route(f"/<{BIG_ID}:instance_id>/messages", methods=["POST"])
@blp.arguments(MessageArgs)
@blp.response(200, DeliveredSchema)
@requires("instances:write")
def send_message(args, instance_id: int):
    """Send a BPMN message to the running instances with this instance's business key

    An organiser or admin over the organisation of every such instance may.
    """
    instance = _visible_instance(instance_id)
    if not instance.business_key:
        raise WorkflowFailed(f"流程实例 {instance_id} 没有业务键，无法接收消息 / instance {instance_id} has no "
                             "business key, so it receives no messages")
    actor = api_actor()
    for receiver in db.session.scalars(select(ProcessInstance).where(
            ProcessInstance.business_key == instance.business_key, ProcessInstance.status == "running")):
        check_run(db.session, actor, receiver, "message")
    delivered = current_engine().send_message(db.session, instance.business_key, args["name"], args["payload"],
                                              actor=actor.username)
    db.session.commit()
    return {"delivered_to": delivered}


@blp.route(f"/<{BIG_ID}:instance_id>/cancel", methods=["POST"])
@blp.arguments(CancelArgs)
@blp.response(200, InstanceSchema)
@requires("instances:write")
def cancel_instance(args, instance_id: int):
    """Cancel a running instance (its open tasks are cancelled, its history kept)

    An organiser or admin over its organisation may.
    """
    actor = api_actor()
    check_run(db.session, actor, _visible_instance(instance_id), "cancel")
    current_engine().cancel(db.session, instance_id, actor.username, args["reason"])
    db.session.commit()
    return db.session.get(ProcessInstance, instance_id)
