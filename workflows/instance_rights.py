"""Who may see, start, message or cancel a process instance, and deploy a process.

Task-level rights are ``LeagueTaskPolicy`` (workflows/roles.py) and ``can_view_task``
(workflows/inbox.py); these are the instance-level ones, shared by every page, command and API
endpoint that acts on an instance.  Each check raises :class:`NotAllowed` with a reason.
"""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.errors import NotAllowed
from engine.models import HumanTask, ProcessInstance

from .models import Organisation
from .organisations import ancestor_ids
from .roles import Actor

# Staff roles that run processes at an organisation: start them there, message and cancel them.
RUNNING_ROLES = ("organiser", "admin")


def _org_path(session: Session, code: str | None) -> str | None:
    if code is None:
        return None
    return session.scalar(select(Organisation.path).where(Organisation.code == code))


def can_view_instance(session: Session, actor: Actor, instance: ProcessInstance) -> bool:
    """Whether ``actor`` may see an instance: started it, holds or held one of its tasks, or oversees it."""
    if instance.started_by is not None and instance.started_by == actor.username:
        return True
    if actor.oversees(_org_path(session, instance.organisation_id)):
        return True
    involved = select(HumanTask.id).where(HumanTask.instance_id == instance.id,
                                          or_(HumanTask.assignee == actor.username,
                                              HumanTask.completed_by == actor.username)).limit(1)
    return session.scalar(involved) is not None


def check_view_instance(session: Session, actor: Actor, instance: ProcessInstance) -> None:
    """Raise :class:`NotAllowed` unless ``actor`` may see ``instance``."""
    if not can_view_instance(session, actor, instance):
        raise NotAllowed(f"你无权查看流程实例 {instance.id} / you may not see instance {instance.id}")


def _runs_at(actor: Actor, org_path: str | None) -> bool:
    return any(actor.holds(role, org_path) for role in RUNNING_ROLES)


def check_start(session: Session, actor: Actor, process_id: str, organisation_code: str | None) -> None:
    """An organiser or admin at or above the organisation may start a process there."""
    path = _org_path(session, organisation_code)
    if path is None:
        raise NotAllowed("请指定本级或下级组织 / name an organisation in your subtree to start a process at")
    if not _runs_at(actor, path):
        raise NotAllowed(f"只有「{organisation_code}」及上级组织的组织者或管理员可以发起流程「{process_id}」/ only an "
                         f"organiser or admin of {organisation_code} or above may start '{process_id}' there")


def check_run(session: Session, actor: Actor, instance: ProcessInstance, action: str) -> None:
    """An organiser or admin over the instance's organisation may message or cancel it."""
    if not _runs_at(actor, _org_path(session, instance.organisation_id)):
        raise NotAllowed(f"只有流程所在组织及上级的组织者或管理员可以{_ACTIONS_ZH.get(action, action)}流程实例 "
                         f"{instance.id} / only an organiser or admin over its organisation may {action} "
                         f"instance {instance.id}")


def check_deploy(session: Session, actor: Actor) -> None:
    """Only an admin of a root organisation (团省委) may deploy: a process serves the whole province."""
    for role, _code, path in actor.grants:
        if role == "admin" and len(ancestor_ids(path)) == 1:
            return
    raise NotAllowed("只有团省委管理员可以部署流程 / only an admin of the provincial committee may deploy processes")


_ACTIONS_ZH = {"message": "发送消息给", "cancel": "取消"}
