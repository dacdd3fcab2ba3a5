"""Health check and the signed-in person's inbox."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import login_required
from sqlalchemy import text

from workflows.inbox import inbox as inbox_query

from .extensions import db
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("main", __name__)

PAGE_SIZE = 50


@bp.get("/health")
def health():
    """Answer 200 when the database answers."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok", "database": db.engine.dialect.name}


@bp.get("/")
@login_required
def inbox():
    """My open tasks, most urgent first, paginated."""
    page = max(request.args.get("page", 1, type=int), 1)
    tasks = inbox_query(db.session, current_actor(), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return render_template("tasks.html", tasks=tasks[:PAGE_SIZE], page=page, has_next=len(tasks) > PAGE_SIZE,
                           now=current_engine().clock.now())
