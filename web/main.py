"""Health check, the signed-in person's inbox and notification centre, and what every page's header shows."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_from_directory, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError

from workflows import notification_centre
from workflows.inbox import MAX_OFFSET, campaign_choices, process_choices, urgency
from workflows.inbox import inbox as inbox_query
from workflows.roles import ROLE_NAMES_ZH

from .extensions import db
from .i18n import local_time, term
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("main", __name__)

PAGE_SIZE = 50
NOTIFICATION_PAGE_SIZE = 30
INBOX = _l("我的待办")


# ------------------------------------------------------------------------------------ every page
# (Times and days are formatted by the filters of web/i18n.py, in LIANQING_TIMEZONE.)

@bp.app_template_filter("role_name")
def role_name(role: str | None) -> str:
    """A role key (a BPMN lane name) as people say it, in the request's language."""
    return term(ROLE_NAMES_ZH.get(role or "", role or ""))


@dataclass(frozen=True)
class NavLink:
    """One link of the header's menu."""

    label: str  # lazy_gettext: read in the request's language
    url: str
    current: bool = False
    count: str | None = None  # e.g. unread notifications, "99+" past the cap


@dataclass(frozen=True)
class PageHeader:
    """The signed-in person's roles and menu, for ``base.html``."""

    roles: tuple[str, ...]
    links: tuple[NavLink, ...]


def _blueprint_home(name: str) -> str | None:
    """URL of a blueprint's shortest GET page without arguments, or ``None`` while it has none."""
    homes = current_app.extensions.setdefault("lianqing_blueprint_homes", {})  # the URL map is fixed once serving
    if name not in homes:
        rules = [rule for rule in current_app.url_map.iter_rules()
                 if rule.endpoint.startswith(name + ".") and not rule.arguments and "GET" in (rule.methods or ())]
        homes[name] = min(rules, key=lambda rule: (len(rule.rule), rule.rule)).endpoint if rules else None
    return url_for(homes[name]) if homes[name] is not None else None


def _unread_text(username: str) -> str | None:
    count = notification_centre.unread_count(db.session, username)
    if not count:
        return None
    return f"{notification_centre.UNREAD_CAP}+" if count > notification_centre.UNREAD_CAP else str(count)


def page_header() -> PageHeader:
    """Roles and menu of the signed-in person (only optional parts that exist in this app are linked)."""
    try:
        return _page_header()
    except SQLAlchemyError:  # an error page must still render when the database is the problem
        db.session.rollback()
        return PageHeader((), (NavLink(INBOX, url_for("main.inbox")),))


def _page_header() -> PageHeader:
    actor = current_actor()
    endpoint = request.endpoint or ""
    links = [NavLink(INBOX, url_for("main.inbox"), endpoint == "main.inbox"),
             NavLink(_l("通知"), url_for("main.notifications"), endpoint == "main.notifications",
                     _unread_text(actor.username))]
    staff = bool(actor.grants)
    for blueprint, label, shown in (("campaigns", _l("集中活动"), staff),
                                    ("assessment", _l("考核"), staff or actor.cadre_id is not None)):
        url = _blueprint_home(blueprint) if shown else None
        if url is not None:
            links.append(NavLink(label, url, endpoint.startswith(blueprint + ".")))
    if actor.cadre_id is not None:
        links.append(NavLink(_l("我的积分"), url_for("points.mine"), endpoint.startswith("points.")))
        links.append(NavLink(_l("我的联系青年"), url_for("contacts.mine"), endpoint == "contacts.mine"))
    if actor.youth_id is not None:
        links.append(NavLink(_l("青年服务"), url_for("youth.home"), endpoint.startswith("youth.")))
    if "coordinator" in actor.roles:
        links.append(NavLink(_l("心愿池"), url_for("wish_pool.board"), endpoint.startswith("wish_pool.")))
    from .admin import may_deploy
    if may_deploy(actor):
        links.append(NavLink(_l("流程部署"), url_for("admin.processes"), endpoint.startswith("admin.")))
        links.append(NavLink(_l("名册导入"), url_for("roster_pages.index"), endpoint.startswith("roster_pages.")))
    if staff:
        links.append(NavLink(_l("API令牌"), url_for("token_pages.index"), endpoint.startswith("token_pages.")))
    roles = tuple(term(ROLE_NAMES_ZH.get(role, role)) for role in sorted(actor.roles))
    return PageHeader(roles, tuple(links))


@bp.app_context_processor
def _page_context() -> dict:
    # A function, not a value: the queries run only when a page with a signed-in header renders.
    return {"page_header": page_header if current_user.is_authenticated else None}


# ------------------------------------------------------------------------------------ health

FAVICON_MAX_AGE = 7 * 24 * 3600


@bp.get("/favicon.ico")
def favicon():
    """The site icon where browsers look for it unasked (the SVG that every page also links)."""
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml",
                               max_age=FAVICON_MAX_AGE)


@bp.get("/health")
def health():
    """Answer 200 when the database (and, with Celery, the broker) answers; 503 with the problems otherwise."""
    from .observability import health_report
    return health_report()


# ------------------------------------------------------------------------------------- inbox

def _page_number() -> int:
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_OFFSET // PAGE_SIZE + 1)


def _query(**params) -> str:
    """``?a=1&b=2`` with the empty parameters left out (page first, so links read ``?page=2``)."""
    return "?" + urlencode({key: value for key, value in params.items() if value not in (None, "")})


def _due_texts(tasks) -> dict[int, str]:
    """Each task's deadline as the inbox shows it ("—" without one), formatted once per distinct moment
    (a campaign's tasks share theirs)."""
    shown: dict = {None: "—"}
    for task in tasks:
        if task.due_at not in shown:
            shown[task.due_at] = local_time(task.due_at)
    return {task.id: shown[task.due_at] for task in tasks}


@bp.get("/")
@login_required
def inbox():
    """My open tasks, most urgent first, filtered by process or campaign, paginated."""
    page = _page_number()
    process_id = request.args.get("process") or None
    campaign_id = request.args.get("campaign", type=int)
    tasks = inbox_query(db.session, current_actor(), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                        process_id=process_id, campaign_id=campaign_id)
    now = current_engine().clock.now()
    shown = tasks[:PAGE_SIZE]
    filters = {"process": process_id, "campaign": campaign_id}
    processes = process_choices(db.session)
    return render_template(
        "tasks.html", tasks=shown, urgency={task.id: urgency(task, now) for task in shown}, page=page,
        due_texts=_due_texts(shown), has_next=len(tasks) > PAGE_SIZE and page * PAGE_SIZE <= MAX_OFFSET,
        previous_url=_query(page=page - 1, **filters) if page > 1 else None,
        next_url=_query(page=page + 1, **filters),
        processes=processes, process_names={p.process_id: term(p.name) for p in processes},
        campaigns=campaign_choices(db.session, shown), process_id=process_id, campaign_id=campaign_id,
        filtered=bool(process_id or campaign_id))


# ----------------------------------------------------------------------------- notifications

@bp.get("/notifications")
@login_required
def notifications():
    """My in-app notifications, newest first, 30 a page (``?before=<id>`` for older ones)."""
    username = current_actor().username
    before = request.args.get("before", type=int)
    unread_only = request.args.get("unread") == "1"
    items = notification_centre.notifications(db.session, username, limit=NOTIFICATION_PAGE_SIZE + 1,
                                              before_id=before, unread_only=unread_only)
    shown = items[:NOTIFICATION_PAGE_SIZE]
    older = (_query(before=shown[-1].id, unread="1" if unread_only else None)
             if len(items) > NOTIFICATION_PAGE_SIZE else None)
    return render_template("notifications.html", items=shown, older_url=older, unread_only=unread_only,
                           first_page=before is None,
                           unread=notification_centre.unread_count(db.session, username))


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_notification_read(notification_id: int):
    """Mark one of my notifications read."""
    notification_centre.mark_read(db.session, current_actor().username, notification_id,
                                  current_engine().clock.now())
    db.session.commit()
    return redirect(_back_to_notifications())


@bp.post("/notifications/read-all")
@login_required
def mark_all_notifications_read():
    """Mark all my notifications read."""
    count = notification_centre.mark_all_read(db.session, current_actor().username, current_engine().clock.now())
    db.session.commit()
    flash(ngettext("已将 %(num)d 条通知标为已读", "已将 %(num)d 条通知标为已读", count))
    return redirect(_back_to_notifications())


def _back_to_notifications() -> str:
    """The notification page the form was on (only this site's notification pages)."""
    target = request.form.get("next", "")
    base = url_for("main.notifications")
    return target if target.startswith(base) and "//" not in target else base
