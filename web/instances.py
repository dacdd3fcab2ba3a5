"""A process instance's page: the diagram with done, current and waiting steps, the audit trail, the
data (for those allowed to see it) and, for an admin over it, cancel and retry."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.audit import trail
from engine.errors import FieldError, FormInvalid, NotAllowed
from engine.models import HumanTask
from workflows.inbox import instance_rights

from .evidence import readable_evidence
from .extensions import db
from .process_diagram import element_texts, instance_diagram, name_of
from .runtime import current_engine
from .session_user import current_actor

bp = Blueprint("instances", __name__, url_prefix="/instances")

TRAIL_LIMIT = 500
STATUS_NAMES = {"running": _l("进行中"), "completed": _l("已完成"), "cancelled": _l("已取消"), "error": _l("出错暂停")}
EVENT_NAMES = {"started": _l("发起流程"), "task_created": _l("生成待办"), "claimed": _l("认领"),
               "unclaimed": _l("退回待认领"), "reassigned": _l("转交"), "task_completed": _l("完成"),
               "task_cancelled": _l("步骤取消"), "escalated": _l("逾期升级"), "timer_fired": _l("定时触发"),
               "reminded": _l("到期提醒"), "message": _l("收到消息"), "signal": _l("收到信号"),
               "cancelled": _l("流程取消"), "completed": _l("流程结束"), "error": _l("运行出错"),
               "retried": _l("重新执行")}


def _instance_and_rights(instance_id: int):
    engine = current_engine()
    instance = engine.instance(db.session, instance_id)
    rights = instance_rights(db.session, current_actor(), instance)
    if not rights.view:
        raise NotAllowed(f"你无权查看流程实例 {instance_id} / you may not see instance {instance_id}")
    return engine, instance, rights


def _timeline(instance_id: int, texts, with_data: bool) -> list[dict]:
    events = []
    for event in trail(db.session, instance_id, limit=TRAIL_LIMIT):
        events.append({"kind": event.kind, "label": EVENT_NAMES.get(event.kind, event.kind), "at": event.at,
                       "actor": event.actor, "element": name_of(texts, event.element_id) if event.element_id else "",
                       "detail": event.detail or "",
                       # What was entered and before/after values may hold personal data.
                       "data": (event.after or event.before) if with_data else None})
    return events


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int):
    """The instance: diagram with legend, timeline, open tasks, data and admin actions."""
    engine, instance, rights = _instance_and_rights(instance_id)
    view = engine.process_view(db.session, instance_id)
    texts = element_texts(view.bpmn_xml)
    open_tasks = list(db.session.scalars(db.select(HumanTask).where(
        HumanTask.instance_id == instance_id, HumanTask.state.in_(HumanTask.OPEN_STATES)).order_by(HumanTask.id)))
    events = _timeline(instance_id, texts, rights.data)
    data = None
    if rights.data:
        data = instance.data if instance.status == "completed" else _entered_data(events)
    return render_template(
        "instance.html", instance=instance, rights=rights, status=STATUS_NAMES.get(instance.status, instance.status),
        process_name=name_of(texts, view.process_id), diagram_data=instance_diagram(view),
        events=events, trail_limit=TRAIL_LIMIT, open_tasks=open_tasks,
        data=data, names={key: name_of(texts, key) for key in view.ready + view.waiting},
        view=view, evidence_files=readable_evidence(instance_id))


def _entered_data(events: list[dict]) -> dict:
    """The data of an instance that has not ended, as given at its start and entered at each step.

    (The engine writes the whole process data to the instance row when it ends; until then the
    audit trail holds what people entered, which is what a person wants to read.)
    """
    data: dict = {}
    for event in events:
        if event["kind"] in ("started", "task_completed") and isinstance(event["data"], dict):
            data.update(event["data"])
    return data


def _admin_only(rights, action: str) -> None:
    if not rights.cancel:
        raise NotAllowed(f"只有该组织及上级的管理员可以{action} / only an admin over this instance's organisation "
                         f"may do this")


@bp.post("/<int:instance_id>/cancel")
@login_required
def cancel(instance_id: int):
    """Cancel the instance (an admin over its organisation; a reason and a ticked confirmation are required)."""
    engine, _instance, rights = _instance_and_rights(instance_id)
    _admin_only(rights, "取消流程")
    reason = (request.form.get("reason") or "").strip()
    problems = []
    if len(reason) < 2:
        problems.append(FieldError("reason", "请写明取消原因 / give the reason for cancelling"))
    if request.form.get("confirm") != "yes":
        problems.append(FieldError("confirm", "请勾选确认 / tick the box to confirm"))
    if problems:
        raise FormInvalid(problems)
    engine.cancel(db.session, instance_id, current_actor().username, reason[:1000])
    db.session.commit()
    flash(_("流程 #%(id)d 已取消", id=instance_id))
    return redirect(url_for("instances.show", instance_id=instance_id))


@bp.post("/<int:instance_id>/retry")
@login_required
def retry(instance_id: int):
    """Run a failed step again (an admin over the instance's organisation)."""
    engine, _instance, rights = _instance_and_rights(instance_id)
    _admin_only(rights, "重新执行")
    engine.retry(db.session, instance_id, current_actor().username)
    db.session.commit()
    flash(_("流程 #%(id)d 已重新排队执行，稍后刷新查看结果", id=instance_id))
    return redirect(url_for("instances.show", instance_id=instance_id))
