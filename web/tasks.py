"""A task's page: its instructions, form, deadline and place in the process; claim, give back, complete.

Every request checks the rights (:func:`workflows.inbox.can_view_task`; the engine's task policy
decides who may act).
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine.audit import trail
from engine.errors import NotAllowed
from workflows.inbox import can_view_task, claimed_by_hand, urgency
from workflows.task_subjects import task_subject

from .evidence import (
    complete_with_evidence,
    readable_evidence,
    upload_form,
    with_upload_rules,
)
from .extensions import db
from .i18n import term
from .process_diagram import element_texts, instance_diagram, name_of
from .runtime import current_engine
from .session_user import current_actor
from .task_forms import fields_of

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _visible_task(task_id: int):
    engine = current_engine()
    task = engine.human_task(db.session, task_id)
    if not can_view_task(db.session, current_actor(), task):
        raise NotAllowed(f"你无权查看任务 {task_id} / you may not see task {task_id}")
    return engine, task


def _previous_steps(instance_id: int, texts) -> list[dict]:
    """Who completed which step of the instance, and when (no data: that is for the instance page)."""
    return [{"name": name_of(texts, event.element_id), "actor": event.actor, "at": event.at}
            for event in trail(db.session, instance_id) if event.kind == "task_completed"]


def _render(task, schema, values, errors, status: int = 200, kept=None):
    engine, actor = current_engine(), current_actor()
    upload = upload_form(kept)  # evidence fields: the file input, its limits, the files already carried
    view = engine.process_view(db.session, task.instance_id)
    texts = element_texts(view.bpmn_xml)
    element = texts.get(task.bpmn_id)
    open_task = task.state in ("ready", "claimed")
    page = render_template(
        "task.html", task=task, fields=with_upload_rules(fields_of(schema), schema, upload), values=values,
        errors=errors, upload=upload, evidence_files=readable_evidence(task.instance_id),
        schema_title=(schema or {}).get("title"), documentation=element.documentation if element else "",
        process_name=name_of(texts, view.process_id), diagram_data=instance_diagram(view, current=task.bpmn_id),
        steps=_previous_steps(task.instance_id, texts), level=urgency(task, engine.clock.now()) if open_task else None,
        can_claim=task.state == "ready" and task.assignee is None,
        can_unclaim=open_task and task.assignee == actor.username and claimed_by_hand(db.session, task),
        open_task=open_task, subject=task_subject(db.session, actor, task))
    return page, status


@bp.get("/<int:task_id>")
@login_required
def show(task_id: int):
    """The task, its instructions, its form and where it stands in the process."""
    engine, task = _visible_task(task_id)
    return _render(task, engine.form_schema(db.session, task), {}, {})


@bp.post("/<int:task_id>/claim")
@login_required
def claim(task_id: int):
    """Take an offered task."""
    engine, _task = _visible_task(task_id)
    engine.claim(db.session, task_id, current_actor().username)
    db.session.commit()
    flash(_("已认领"))
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<int:task_id>/unclaim")
@login_required
def unclaim(task_id: int):
    """Give back a task one claimed, so others of its role can take it."""
    engine, task = _visible_task(task_id)
    username = current_actor().username
    if task.assignee == username and not claimed_by_hand(db.session, task):
        raise NotAllowed(f"任务「{task.name}」是流程指定给你的，不能退回；需要转交请联系管理员 / task '{task.name}' was "
                         "assigned to you by the process and cannot be given back; ask an admin to reassign it")
    engine.unclaim(db.session, task_id, username)
    db.session.commit()
    flash(_("已退回，其他人可以认领"))
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<int:task_id>/complete")
@login_required
def complete(task_id: int):
    """Complete a task with its form; field errors come back next to the fields.

    Uploaded evidence is stored first (web/evidence.py): kept when the form fails validation (listed
    on the page again), removed when the task cannot be completed at all.
    """
    engine, task = _visible_task(task_id)
    schema = engine.form_schema(db.session, task)
    username = current_actor().username
    submitted = complete_with_evidence(
        task, schema, lambda data: engine.complete_task(db.session, task_id, data, username))
    if submitted.errors:
        return _render(engine.human_task(db.session, task_id), schema, request.form, submitted.errors, 422,
                       submitted.kept)
    done = submitted.result
    db.session.commit()
    flash(_("已完成「%(task)s」", task=term(done.name)))
    if len(done.next_task_ids) == 1:
        next_task = engine.human_task(db.session, done.next_task_ids[0])
        if next_task.assignee == current_actor().username:
            return redirect(url_for("tasks.show", task_id=next_task.id))
    return redirect(url_for("main.inbox"))
