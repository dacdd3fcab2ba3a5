"""Evidence on the pages: the file input of a task form, the files a form already carries, the list an
instance shows, and the download route.

The rules live in workflows/evidence.py (types by content, limits, staging, who may read); this
module only reads the request and the app's settings.  A form's new files are stored all or none
(:func:`receive_uploads`), committed as *staged* before the task is completed, so a form that then
fails validation comes back with them listed (checked boxes: untick to remove) and nothing has to be
uploaded twice; a refused file stores nothing and its message sits beside the field.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, Flask, current_app, request, send_file
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from engine.errors import FormInvalid, TaskAlreadyCompleted
from engine.models import AuditEvent, HumanTask
from workflows.evidence import (
    JPEG,
    MP4,
    PDF,
    PNG,
    EvidenceFile,
    EvidenceRefused,
    EvidenceSettings,
    delete_staged,
    evidence_fields,
    evidence_shown_with,
    may_read,
    open_evidence,
    remove_stored_files,
    size_text,
    stage_uploads,
    usable_refs,
)

from .extensions import db
from .i18n import localized
from .runtime import current_engine
from .session_user import current_actor
from .task_forms import data_from_form, field_errors, fields_of

bp = Blueprint("evidence", __name__, url_prefix="/evidence")

TYPE_LABELS = {JPEG: _l("JPEG 图片"), PNG: _l("PNG 图片"), PDF: _l("PDF 文件"), MP4: _l("MP4 视频")}
ACCEPT_EXTENSIONS = {JPEG: ".jpg,.jpeg", PNG: ".png", PDF: ".pdf", MP4: ".mp4"}
OPEN_STATES = ("ready", "claimed")


def evidence_settings() -> EvidenceSettings:
    """The app's evidence settings; the storage directory lies outside the static folder."""
    config = current_app.config
    return EvidenceSettings(directory=config["EVIDENCE_DIR"], max_file_bytes=config["EVIDENCE_MAX_FILE_BYTES"],
                            max_record_bytes=config["EVIDENCE_MAX_RECORD_BYTES"],
                            max_files_per_record=config["EVIDENCE_MAX_FILES"], web_root=current_app.static_folder)


def file_size(size: int | None) -> str:
    """A byte count as people read it: 820 B, 35 KB, 2.4 MB."""
    return size_text(int(size or 0))


def type_label(content_type: str) -> str:
    """A stored file's type in words."""
    return str(TYPE_LABELS.get(content_type, content_type))


# ----------------------------------------------------------------------------------- the task form

@dataclass
class UploadForm:
    """What the task page needs for its evidence fields: what to accept, and the files each field carries."""

    accept: str
    rules: str
    kept: dict[str, list[EvidenceFile]] = field(default_factory=dict)


def upload_form(kept: dict[str, list[EvidenceFile]] | None = None) -> UploadForm:
    """The file input's ``accept`` list and the limits in words, with the files already carried."""
    settings = evidence_settings()
    accept = ",".join([*settings.allowed_types, *(ACCEPT_EXTENSIONS[t] for t in settings.allowed_types
                                                  if t in ACCEPT_EXTENSIONS)])
    rules = _("可上传 %(types)s；每个文件不超过 %(file)s，最多 %(count)d 个，合计不超过 %(total)s",
              types=_("、").join(type_label(t) for t in settings.allowed_types),
              file=file_size(settings.max_file_bytes), count=settings.max_files_per_record,
              total=file_size(settings.max_record_bytes))
    return UploadForm(accept=accept, rules=rules, kept=kept or {})


def with_upload_rules(fields: list, schema: dict | None, form: UploadForm) -> list:
    """The form's fields, those taking evidence shown as a file input with the upload limits."""
    names = set(evidence_fields(schema))
    return [replace(f, widget="evidence", rules=form.rules) if f.name in names else f for f in fields]


@dataclass
class Received:
    """A task form's evidence after the uploads: the data to complete with, the files per field, any refusals."""

    data: dict
    kept: dict[str, list[EvidenceFile]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    new_ids: list[int] = field(default_factory=list)


def _new_files(name: str) -> list[tuple[str, object]]:
    """The files posted under ``name``; an empty file input (no name, no bytes) posts nothing."""
    files = []
    for upload in request.files.getlist(name):
        if not upload.filename:
            if not upload.stream.read(1):
                continue
            upload.stream.seek(0)
        files.append((upload.filename or "", upload.stream))
    return files


def _check_may_complete(task: HumanTask, username: str) -> None:
    """Refuse before anything is stored: a task no longer open (409), or one this person may not complete (403)."""
    if task.state not in OPEN_STATES:
        raise TaskAlreadyCompleted(f"任务「{task.name}」已经办结，无需再提交 / task '{task.name}' is already done")
    current_engine().policy.check(db.session, username, task, "complete")


def receive_uploads(task: HumanTask, schema: dict | None, data: dict) -> Received:
    """Store the form's new files (all or none, committed as staged) and put every carried file into ``data``.

    Refuses first, storing nothing, a task no longer open or not this person's to complete.  A
    refused upload, or a ref the person may not use, gives a message beside its field and stores
    nothing of this request; the files the form already carried stay listed.
    """
    names = evidence_fields(schema)
    received = Received(data=dict(data))
    if not names:
        return received
    actor = current_actor()
    _check_may_complete(task, actor.username)
    settings, now = evidence_settings(), current_engine().clock.now()
    batches = {}
    for name in names:
        refs = [line.strip() for value in request.form.getlist(name) for line in value.splitlines() if line.strip()]
        received.kept[name], unknown = usable_refs(db.session, refs, actor.username, task.instance_id)
        if unknown:
            received.errors[name] = _(
                "有 %(n)d 个已选的文件已失效（超过一天未提交已被清理，或不属于这个任务），请重新上传", n=len(unknown))
        batches[name] = _new_files(name)
    if received.errors:
        return received
    new: dict[str, list[EvidenceFile]] = {}
    try:
        for name in names:
            new[name] = stage_uploads(db.session, batches[name], received.kept[name], actor.username, now, settings)
        db.session.commit()
    except BaseException as error:
        db.session.rollback()
        remove_stored_files(settings, [row.stored_name for rows in new.values() for row in rows])
        if not isinstance(error, EvidenceRefused):
            raise
        received.errors[name] = localized(error.message)
        return received
    for name in names:
        received.kept[name] = received.kept[name] + new[name]
        received.new_ids.extend(row.id for row in new[name])
        refs = [row.stored_name for row in received.kept[name]]
        if refs:
            received.data[name] = refs
        else:
            received.data.pop(name, None)
    return received


def discard_uploads(received: Received) -> None:
    """Remove the files this request stored (the task could not be completed: done by someone else, refused)."""
    names = delete_staged(db.session, received.new_ids)
    db.session.commit()
    remove_stored_files(evidence_settings(), names)


def evidence_messages(errors: dict[str, str], schema: dict | None) -> dict[str, str]:
    """The form validator's words about an evidence field (too few items, …) as an upload instruction."""
    names = set(evidence_fields(schema))
    if not names & set(errors):
        return errors
    rules = upload_form().rules
    return {name: (_("请上传佐证材料（照片或文件）：%(rules)s", rules=rules) if name in names else message)
            for name, message in errors.items()}


@dataclass
class Submitted:
    """A task form posted with its evidence: what completing it returned, or the errors to show beside the fields."""

    result: Any = None
    errors: dict[str, str] = field(default_factory=dict)
    kept: dict[str, list[EvidenceFile]] = field(default_factory=dict)


def complete_with_evidence(task: HumanTask, schema: dict | None, complete: Callable[[dict], Any]) -> Submitted:
    """Complete a task from the posted form and its uploads (every page whose form may take evidence).

    The form's new files are stored first (:func:`receive_uploads`), then ``complete(data)`` runs with
    the carried files in ``data``.  A refused upload, or a form the validator refuses, comes back as
    ``errors`` with the files the form now carries in ``kept`` (listed again: nothing is uploaded twice);
    any other failure removes this request's files and is raised.  The caller commits on success.
    """
    received = receive_uploads(task, schema, data_from_form(schema, request.form))
    if received.errors:
        return Submitted(errors=received.errors, kept=received.kept)
    try:
        result = complete(received.data)
    except FormInvalid as invalid:
        db.session.rollback()
        errors = evidence_messages(field_errors(invalid.errors, fields_of(schema)), schema)
        return Submitted(errors=errors, kept=received.kept)
    except BaseException:
        db.session.rollback()
        if received.new_ids:
            discard_uploads(received)
        raise
    return Submitted(result=result, kept=received.kept)


# ------------------------------------------------------------------------------ showing and serving

def _about_activity(instance_id: int) -> int | None:
    """The record an instance is about, named by its start data (a spot check's ``activity_id``)."""
    started = db.session.scalar(select(AuditEvent.after).where(AuditEvent.instance_id == instance_id,
                                                                AuditEvent.kind == "started")
                                .order_by(AuditEvent.id).limit(1))
    activity_id = started.get("activity_id") if isinstance(started, dict) else None
    return activity_id if isinstance(activity_id, int) and not isinstance(activity_id, bool) else None


def readable_evidence(instance_id: int) -> list[EvidenceFile]:
    """The files an instance shows that the signed-in person may open."""
    actor = current_actor()
    rows = evidence_shown_with(db.session, instance_id, _about_activity(instance_id))
    return [row for row in rows if may_read(db.session, actor, row)]


@bp.get("/<stored_name>")
@login_required
def download(stored_name: str):
    """A stored file, for those allowed to read it: its recorded type, never sniffed; images inline, the rest
    as a download."""
    row, handle = open_evidence(db.session, stored_name, current_actor(), evidence_settings())
    inline = row.content_type in (JPEG, PNG)
    response = send_file(handle, mimetype=row.content_type, as_attachment=not inline, download_name=row.original_name,
                         etag=row.sha256, max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def init_app(app: Flask) -> None:
    """Mount the download route, the template filters, and the request size limit (one record's evidence plus
    the form, unless ``LIANQING_MAX_UPLOAD_BYTES`` sets it)."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        config = app.config
        config["MAX_CONTENT_LENGTH"] = config["EVIDENCE_MAX_RECORD_BYTES"] + config["EVIDENCE_FORM_OVERHEAD_BYTES"]
    app.register_blueprint(bp)
    app.add_template_filter(file_size, "file_size")
    app.add_template_filter(type_label, "evidence_type")
