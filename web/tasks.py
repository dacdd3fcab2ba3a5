"""A task's page: see it, claim it, complete it with its form.  Every request checks the rights."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required

from engine.errors import FormInvalid, NotAllowed
from workflows.inbox import can_view_task

from .extensions import db
from .runtime import current_engine
from .session_user import current_actor
from .task_forms import data_from_form, fields_of

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _visible_task(task_id: int):
    engine = current_engine()
    task = engine.human_task(db.session, task_id)
    if not can_view_task(db.session, current_actor(), task):
        raise NotAllowed(f"你无权查看任务 {task_id} / you may not see task {task_id}")
    return engine, task


@bp.get("/<int:task_id>")
@login_required
def show(task_id: int):
    """The task, its instructions and its form."""
    engine, task = _visible_task(task_id)
    schema = engine.form_schema(db.session, task)
    return render_template("task.html", task=task, fields=fields_of(schema), values={}, errors={},
                           schema_title=(schema or {}).get("title"))


@bp.post("/<int:task_id>/claim")
@login_required
def claim(task_id: int):
    """Take an offered task."""
    engine, _task = _visible_task(task_id)
    engine.claim(db.session, task_id, current_actor().username)
    db.session.commit()
    flash("已认领 / claimed")
    return redirect(url_for("tasks.show", task_id=task_id))


@bp.post("/<int:task_id>/complete")
@login_required
def complete(task_id: int):
    """Complete a task with its form; field errors come back next to the fields."""
    engine, task = _visible_task(task_id)
    schema = engine.form_schema(db.session, task)
    data = data_from_form(schema, request.form)
    try:
        done = engine.complete_task(db.session, task_id, data, current_actor().username)
    except FormInvalid as invalid:
        db.session.rollback()
        errors = {error.field: error.message for error in invalid.errors}
        task = engine.human_task(db.session, task_id)
        return render_template("task.html", task=task, fields=fields_of(schema), values=request.form,
                               errors=errors, schema_title=(schema or {}).get("title")), 422
    db.session.commit()
    flash(f"已完成「{done.name}」/ completed")
    if len(done.next_task_ids) == 1:
        next_task = engine.human_task(db.session, done.next_task_ids[0])
        if next_task.assignee == current_actor().username:
            return redirect(url_for("tasks.show", task_id=next_task.id))
    return redirect(url_for("main.inbox"))


