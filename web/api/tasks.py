"""Tasks: my inbox, one task with its form, claim, unclaim, delegate, complete (with ``If-Match``).

Rights are the web pages' own: ``can_view_task`` before anything, then the engine's task policy
(``LeagueTaskPolicy``) inside every engine call.
"""
from __future__ import annotations

import hashlib

import marshmallow as ma
from flask import abort, request
from flask_smorest import Blueprint

from engine.errors import NotAllowed, NotFound
from engine.models import HumanTask
from workflows.inbox import can_view_task, inbox
from workflows.roles import load_actor

from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, requires
from .openapi import API_PREFIX, BIG_ID
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_tasks", __name__, url_prefix=f"{API_PREFIX}/tasks",
                description="待办任务 / tasks: my inbox, claim, delegate, complete")


class TaskSchema(ma.Schema):
    """One human task."""

    id = ma.fields.Integer(required=True)
    instance_id = ma.fields.Integer(required=True)
    process_id = ma.fields.String(required=True)
    element_id = ma.fields.String(required=True, attribute="bpmn_id")
    name = ma.fields.String(required=True)
    lane = ma.fields.String(allow_none=True)
    candidate_role = ma.fields.String(allow_none=True)
    organisation = ma.fields.String(allow_none=True, attribute="organisation_id")
    assignee = ma.fields.String(allow_none=True)
    state = ma.fields.String(required=True, metadata={"enum": ["ready", "claimed", "completed", "cancelled"]})
    due_at = ma.fields.DateTime(allow_none=True)
    remind_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    completed_by = ma.fields.String(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)


class TaskDetailSchema(TaskSchema):
    """A task with its instructions and the JSON Schema of its form."""

    instructions = ma.fields.String(allow_none=True)
    form_schema = ma.fields.Dict(allow_none=True, metadata={"description": "JSON Schema the `data` of a "
                                                                          "completion must satisfy; null: any object"})


TaskPage = page_schema(TaskSchema, "TaskPage")


class InboxArgs(PageArgs):
    """Filters of my inbox."""

    process_id = ma.fields.String(load_default=None, validate=ma.validate.Length(max=255),
                                  metadata={"description": "Only tasks of this process"})


class DelegateArgs(ma.Schema):
    """Whom to hand a task to."""

    assignee = ma.fields.String(required=True, validate=ma.validate.Length(1, 64),
                                metadata={"description": "User name of the new assignee"})


class CompleteArgs(ma.Schema):
    """The form data of a completion."""

    data = ma.fields.Dict(load_default=dict, metadata={"description": "The form's fields (see `form_schema`)"})


class CompletedSchema(ma.Schema):
    """What a completion did."""

    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    instance_id = ma.fields.Integer(required=True)
    completed_by = ma.fields.String(allow_none=True)
    completed_at = ma.fields.DateTime(required=True)
    next_task_ids = ma.fields.List(ma.fields.Integer(), required=True,
                                   metadata={"description": "Tasks this completion opened"})


ETAG_HEADER = {"ETag": {"description": "The task's version; send it back as `If-Match` to complete it",
                        "schema": {"type": "string"}}}
IF_MATCH = {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string"},
            "description": "The `ETag` of the task as the client last saw it (412 if it changed since; 428 if "
                           "missing)"}
IF_MATCH_OPTIONAL = dict(IF_MATCH, required=False,
                         description="Optional: the `ETag` the client last saw (412 if the task changed since)")


def task_etag(task: HumanTask) -> str:
    """A strong ETag of what a client may act on: state, assignee and deadlines of the task."""
    parts = (task.id, task.state, task.assignee, task.completed_by, task.due_at, task.remind_at)
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _visible_task(task_id: int) -> HumanTask:
    task = current_engine().human_task(db.session, task_id)
    if not can_view_task(db.session, api_actor(), task):
        raise NotAllowed(f"你无权查看任务 {task_id} / you may not see task {task_id}")
    return task


def _check_if_match(task: HumanTask, required: bool) -> None:
    if not request.headers.get("If-Match"):
        if required:
            abort(428, description="请带上 If-Match 头（任务的 ETag）后再办理 / send If-Match with the task's ETag "
                                   "(GET the task first)")
        return
    if request.if_match.star_tag:
        return
    if not request.if_match.contains(task_etag(task)):
        abort(412, description="任务已被他人更改，请重新读取后再操作 / the task changed since you read it; GET it "
                               "again and retry")


def _with_etag(task: HumanTask):
    return task, {"ETag": f'"{task_etag(task)}"'}


def _detail(task: HumanTask):
    task.form_schema = current_engine().form_schema(db.session, task)
    return _with_etag(task)


@blp.route("")
@blp.arguments(InboxArgs, location="query")
@blp.response(200, TaskPage)
@requires("tasks:read")
def list_tasks(args):
    """My open tasks, most urgent first

    Tasks assigned to me, and unclaimed tasks offered to a role I hold where I hold it (the same
    inbox as the web page).
    """
    position = decode_cursor(args["cursor"], offset=int) or {"offset": 0}
    offset = max(position["offset"], 0)
    rows = inbox(db.session, api_actor(), limit=args["limit"] + 1, offset=offset, process_id=args["process_id"])
    return page(rows, args["limit"], lambda _row: {"offset": offset + args["limit"]})


@blp.route(f"/<{BIG_ID}:task_id>")
@blp.response(200, TaskDetailSchema, headers=ETAG_HEADER)
@requires("tasks:read")
def get_task(task_id: int):
    """One task, its instructions and its form's JSON Schema, with its ETag"""
    return _detail(_visible_task(task_id))


@blp.route(f"/<{BIG_ID}:task_id>/claim", methods=["POST"])
@blp.doc(parameters=[IF_MATCH_OPTIONAL])
@blp.response(200, TaskDetailSchema, headers=ETAG_HEADER)
@requires("tasks:write")
def claim_task(task_id: int):
    """Claim an offered task"""
    _check_if_match(_visible_task(task_id), required=False)
    task = current_engine().claim(db.session, task_id, api_actor().username)
    db.session.commit()
    return _detail(task)


@blp.route(f"/<{BIG_ID}:task_id>/unclaim", methods=["POST"])
@blp.doc(parameters=[IF_MATCH_OPTIONAL])
@blp.response(200, TaskDetailSchema, headers=ETAG_HEADER)
@requires("tasks:write")
def unclaim_task(task_id: int):
    """Give a claimed task back to its role"""
    _check_if_match(_visible_task(task_id), required=False)
    task = current_engine().unclaim(db.session, task_id, api_actor().username)
    db.session.commit()
    return _detail(task)


@blp.route(f"/<{BIG_ID}:task_id>/delegate", methods=["POST"])
@blp.doc(parameters=[IF_MATCH_OPTIONAL])
@blp.arguments(DelegateArgs)
@blp.response(200, TaskDetailSchema, headers=ETAG_HEADER)
@requires("tasks:write")
def delegate_task(args, task_id: int):
    """Hand a task to another person (its assignee, or an admin over its organisation, may)"""
    _check_if_match(_visible_task(task_id), required=False)
    if load_actor(db.session, args["assignee"]) is None:
        raise NotFound(f"账号 {args['assignee']} 不存在或已停用 / no active account {args['assignee']!r}")
    task = current_engine().reassign(db.session, task_id, args["assignee"], api_actor().username)
    db.session.commit()
    return _detail(task)


@blp.route(f"/<{BIG_ID}:task_id>/complete", methods=["POST"])
@blp.doc(parameters=[IF_MATCH])
@blp.arguments(CompleteArgs)
@blp.response(200, CompletedSchema)
@blp.alt_response(412, response="PRECONDITION_FAILED")
@blp.alt_response(428, response="PRECONDITION_REQUIRED")
@blp.alt_response(409, response="CONFLICT")
@requires("tasks:write")
def complete_task(args, task_id: int):
    """Complete a task with its form data

    `If-Match` must carry the task's current `ETag` (from `GET /tasks/{task_id}`): 412 if the task
    changed since (claimed, delegated or completed by someone else), 428 if the header is missing.
    Invalid data is a 422 listing each field.
    """
    _check_if_match(_visible_task(task_id), required=True)
    done = current_engine().complete_task(db.session, task_id, args["data"], api_actor().username)
    db.session.commit()
    return done
