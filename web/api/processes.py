"""Process definitions: list them, read one and its BPMN XML, deploy a new version.

Deploying takes a BPMN file as ``multipart/form-data`` (``file``, plus any ``forms`` it names) or
as the raw XML body (``Content-Type: application/xml``, ``?filename=x.bpmn``).  A refused file is a
422 problem whose ``errors`` give the file, line and element of each problem.
"""
from __future__ import annotations

import re

import marshmallow as ma
from flask import current_app, request
from flask_smorest import Blueprint
from sqlalchemy import func, select

from engine.errors import BpmnProblem, InvalidBpmn, NotFound
from engine.models import ProcessDefinition
from workflows.instance_rights import check_deploy

from ..extensions import db
from ..runtime import current_engine
from .auth import api_actor, requires
from .openapi import API_PREFIX
from .pagination import PageArgs, decode_cursor, page, page_schema

blp = Blueprint("api_processes", __name__, url_prefix=f"{API_PREFIX}/processes",
                description="流程定义 / process definitions: list, BPMN XML, deploy")

PROCESS_ID = "string(maxlength=255)"
XML_TYPES = ("application/xml", "text/xml", "application/bpmn+xml")


class DefinitionSchema(ma.Schema):
    """One deployed version of a process."""

    id = ma.fields.Integer(required=True)
    process_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    filename = ma.fields.String(required=True)
    content_hash = ma.fields.String(required=True)
    forms = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Names of its form files"})
    deployed_at = ma.fields.DateTime(required=True)
    deployed_by = ma.fields.String(allow_none=True)


class ProcessSchema(DefinitionSchema):
    """A process: its latest version, and the numbers of every version."""

    versions = ma.fields.List(ma.fields.Integer(), required=True)


class DeployedSchema(DefinitionSchema):
    """The deployed definition; ``created`` is false when the same content was deployed before."""

    created = ma.fields.Boolean(required=True)


DefinitionPage = page_schema(DefinitionSchema, "DefinitionPage")


class XmlArgs(ma.Schema):
    """Which version's XML."""

    version = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2_147_483_647),
                                metadata={"description": "Version number; the latest if omitted"})


class DeployQuery(ma.Schema):
    """The file name of a raw XML body."""

    filename = ma.fields.String(load_default="process.bpmn", validate=ma.validate.Length(1, 200))


DEPLOY_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "The .bpmn file"},
        "forms": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "JSON-Schema form files the BPMN names (formJsonSchemaFilename)"}}}},
    "application/xml": {"schema": {"type": "string", "description": "The BPMN XML itself"}},
}}


def definition_fields(definition: ProcessDefinition) -> dict:
    """What :class:`DefinitionSchema` shows of a definition (its forms by name)."""
    return {**{key: getattr(definition, key) for key in ("id", "process_id", "name", "version", "filename",
                                                         "content_hash", "deployed_at", "deployed_by")},
            "forms": sorted(definition.forms or {})}


def _definition(process_id: str, version: int | None) -> ProcessDefinition:
    if version is None:
        return current_engine().latest_definition(db.session, process_id)
    definition = db.session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id,
                                                                   ProcessDefinition.version == version))
    if definition is None:
        raise NotFound(f"流程「{process_id}」没有第 {version} 版 / process '{process_id}' has no version {version}")
    return definition


def _safe_name(name: str | None, default: str) -> str:
    name = re.sub(r"[\x00-\x1f/\\]", "", (name or "").rsplit("/", 1)[-1])[:200]
    return name or default


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, DefinitionPage)
@requires("processes:read")
def list_processes(args):
    """Every deployed process, by process id, each at its latest version"""
    after = (decode_cursor(args["cursor"], process_id=str) or {"process_id": ""})["process_id"]
    latest = (select(ProcessDefinition.process_id, func.max(ProcessDefinition.version).label("version"))
              .where(ProcessDefinition.process_id > after).group_by(ProcessDefinition.process_id)
              .order_by(ProcessDefinition.process_id).limit(args["limit"] + 1).subquery())
    rows = list(db.session.scalars(select(ProcessDefinition).join(
        latest, (ProcessDefinition.process_id == latest.c.process_id) & (ProcessDefinition.version == latest.c.version))
        .order_by(ProcessDefinition.process_id)))
    return page(rows, args["limit"], lambda d: {"process_id": d.process_id}, definition_fields)


@blp.route(f"/<{PROCESS_ID}:process_id>")
@blp.response(200, ProcessSchema)
@requires("processes:read")
def get_process(process_id: str):
    """A process's latest version and its version numbers"""
    definition = _definition(process_id, None)
    result = definition_fields(definition)
    result["versions"] = list(db.session.scalars(select(ProcessDefinition.version).where(
        ProcessDefinition.process_id == process_id).order_by(ProcessDefinition.version)))
    return result


@blp.route(f"/<{PROCESS_ID}:process_id>/xml")
@blp.arguments(XmlArgs, location="query")
@blp.response(200, {"type": "string"}, content_type="application/xml", description="The BPMN XML")
@requires("processes:read")
def process_xml(args, process_id: str):
    """The BPMN XML of a process (latest version, or ``version``)"""
    definition = _definition(process_id, args["version"])
    return current_app.response_class(definition.bpmn_xml, mimetype="application/xml")


@blp.route("", methods=["POST"])
@blp.arguments(DeployQuery, location="query")
@blp.doc(requestBody=DEPLOY_BODY)
@blp.response(201, DeployedSchema, description="A new version was deployed")
@blp.alt_response(200, schema=DeployedSchema, description="The same content was deployed before; nothing changed")
@requires("processes:deploy")
def deploy_process(args):
    """Deploy a BPMN file (a new version if its content changed)

    Only an admin of the provincial committee may.  A refused file answers 422 with each
    problem's `file`, `line` and `element_id` in `errors`.
    """
    actor = api_actor()
    check_deploy(db.session, actor)
    if request.mimetype in XML_TYPES:
        content, filename, forms = request.get_data(), _safe_name(args["filename"], "process.bpmn"), {}
    elif request.mimetype == "multipart/form-data" and "file" in request.files:
        upload = request.files["file"]
        content, filename = upload.read(), _safe_name(upload.filename, "process.bpmn")
        forms = {_safe_name(f.filename, f"form{i}.json"): f.read() for i, f in enumerate(request.files.getlist("forms"))}
    else:
        raise InvalidBpmn(BpmnProblem("请上传BPMN文件（multipart 的 file 字段，或 Content-Type: application/xml 的请求体）/ "
                                      "send the BPMN file as multipart field 'file' or as an application/xml body"))
    result = current_engine().deploy(db.session, content, filename, forms=forms, actor=actor.username)
    db.session.commit()
    return {**definition_fields(result.definition), "created": result.created}, 201 if result.created else 200
