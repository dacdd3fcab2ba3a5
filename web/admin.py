"""The admin's process pages: upload a BPMN file with its forms, see its problems by line and element or
preview its diagram, deploy it, and list every version of every process.

Only an admin of a top organisation may use them: a deployed process serves the whole province.
"""
from __future__ import annotations

import base64
import binascii
import json
from itertools import groupby
from pathlib import PurePath

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from engine.errors import BpmnProblem, InvalidBpmn, NotAllowed
from engine.models import ProcessDefinition
from workflows.roles import Actor

from .extensions import db
from .process_diagram import drawable_xml, plain_diagram
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("admin", __name__, url_prefix="/admin")

MAX_FORM_FILES = 50


def may_deploy(actor: Actor) -> bool:
    """Whether ``actor`` holds the admin role at a top organisation ("/<id>/": the province)."""
    return any(role == "admin" and path.count("/") == 2 for role, _code, path in actor.grants)


@bp.before_request
@login_required
def _admins_only():
    if not may_deploy(current_actor()):
        raise NotAllowed("只有省级管理员可以部署流程 / only an admin of the top organisation may deploy processes")


def _versions() -> list[tuple[str, list[ProcessDefinition]]]:
    rows = db.session.scalars(select(ProcessDefinition)
                              .order_by(ProcessDefinition.process_id, ProcessDefinition.version.desc())).all()
    return [(process_id, list(group)) for process_id, group in groupby(rows, key=lambda row: row.process_id)]


def _list_page(problems: list[BpmnProblem] | None = None, status: int = 200, filename: str | None = None):
    return render_template("admin_processes.html", processes=_versions(), problems=problems or [],
                           filename=filename), status


@bp.get("/processes")
def processes():
    """Every process with its versions, and the upload form."""
    return _list_page()


def _uploaded() -> tuple[str, bytes, dict[str, bytes]]:
    """(file name, BPMN bytes, form files by name) from the upload form."""
    upload = request.files.get("bpmn")
    if upload is None or not upload.filename:
        raise InvalidBpmn(BpmnProblem("请选择要上传的 BPMN 文件 / choose a BPMN file to upload"))
    forms = {}
    for form_file in request.files.getlist("forms")[:MAX_FORM_FILES]:
        if form_file.filename:
            forms[PurePath(form_file.filename).name[:255]] = form_file.read()
    return PurePath(upload.filename).name[:255], upload.read(), forms


def _bundle(filename: str, content: bytes, forms: dict[str, bytes]) -> str:
    """The checked upload, carried by the preview page to the deploy step (checked again there)."""
    payload = {"filename": filename, "bpmn": content.decode("utf-8"),
               "forms": {name: data.decode("utf-8", errors="replace") for name, data in forms.items()}}
    return base64.b64encode(json.dumps(payload, ensure_ascii=False).encode("utf-8")).decode("ascii")


def _unbundle(text: str) -> tuple[str, bytes, dict[str, bytes]]:
    try:
        payload = json.loads(base64.b64decode(text.encode("ascii"), validate=True))
        forms = {str(name): str(data).encode("utf-8") for name, data in payload["forms"].items()}
        return str(payload["filename"]), str(payload["bpmn"]).encode("utf-8"), forms
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise InvalidBpmn(BpmnProblem("预览数据已损坏，请重新上传 / the preview was damaged; upload the file again")) \
            from None


@bp.post("/processes/preview")
def preview():
    """Check an upload: its problems by line and element, or its diagram and what deploying it would do."""
    filename = None
    try:
        filename, content, forms = _uploaded()
        parsed = current_engine().check(content, filename, forms)
    except InvalidBpmn as invalid:
        return _list_page(invalid.problems, 422, filename)
    same = db.session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == parsed.process_id,
                                                             ProcessDefinition.content_hash == parsed.content_hash))
    latest = db.session.scalar(select(ProcessDefinition.version).where(
        ProcessDefinition.process_id == parsed.process_id).order_by(ProcessDefinition.version.desc()).limit(1))
    return render_template("admin_preview.html", parsed=parsed, same=same, next_version=(latest or 0) + 1,
                           diagram_data=plain_diagram(parsed.bpmn_xml),
                           laid_out=drawable_xml(parsed.bpmn_xml) != parsed.bpmn_xml,
                           forms=sorted(forms), bundle=_bundle(filename, content, forms))


@bp.post("/processes/deploy")
def deploy():
    """Deploy a previewed upload (checked again: the bundle came back from the browser)."""
    filename, content, forms = _unbundle(request.form.get("bundle", ""))
    try:
        result = current_engine().deploy(db.session, content, filename, forms=forms, actor=current_actor().username)
    except InvalidBpmn as invalid:
        db.session.rollback()
        return _list_page(invalid.problems, 422, filename)
    db.session.commit()
    definition = result.definition
    if result.created:
        flash(_("已部署「%(name)s」第 %(version)d 版", name=definition.name, version=definition.version))
    else:
        flash(_("「%(name)s」与第 %(version)d 版相同，未新建版本", name=definition.name, version=definition.version))
    return redirect(url_for("admin.processes"))


@bp.get("/processes/versions/<int:definition_id>")
def version(definition_id: int):
    """One deployed version: its diagram and forms."""
    definition = db.get_or_404(ProcessDefinition, definition_id,
                               description=f"流程版本 {definition_id} 不存在 / version {definition_id} does not exist")
    return render_template("admin_version.html", definition=definition,
                           diagram_data=plain_diagram(definition.bpmn_xml))
