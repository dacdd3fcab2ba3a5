"""What a person sees: their inbox, how urgent each task is, and whether they may look at a task or instance.

Queries read only the ``human_task`` projection, with its indexes, and are paginated.  The inbox
is a UNION ALL of one small query per way a task can reach a person (assigned to them, offered to a
role they hold at an organisation, offered to the cadres of an organisation above theirs), each
served by an index and cut to the page before the union; with a million open tasks a page costs
what the person's own tasks cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, exists, false, or_, select, union_all
from sqlalchemy.orm import Session

from engine.models import AuditEvent, HumanTask, ProcessDefinition, ProcessInstance

from .models import Organisation
from .organisations import ancestor_ids, is_within
from .roles import Actor

OPEN = HumanTask.OPEN_STATES
# A task is "due soon" once its BPMN reminder has passed, or within this time of its deadline.
DUE_SOON = timedelta(days=2)
# Offset pagination goes this deep at most; past it a person narrows the list with the filters.
MAX_OFFSET = 5000


def _ancestor_codes(session: Session, path: str | None) -> list[str]:
    if not path:
        return []
    return list(session.scalars(select(Organisation.code).where(Organisation.id.in_(ancestor_ids(path)))))


def _campaign_instances(campaign_id: int):
    """``SELECT instance_id`` of a campaign's targets, or ``None`` while campaigns do not exist."""
    try:
        from .campaigns import CampaignTarget
    except ImportError:
        return None
    return select(CampaignTarget.instance_id).where(CampaignTarget.campaign_id == campaign_id)


def _branches(session: Session, actor: Actor) -> list:
    """One WHERE condition per way a task reaches ``actor``; no task matches two of them."""
    branches = [HumanTask.assignee == actor.username]
    for role in sorted({role for role, _code, _path in actor.grants}):
        branches.append(and_(HumanTask.assignee.is_(None), HumanTask.candidate_role == role,
                             HumanTask.organisation_id.in_(actor.role_orgs(role))))
    if actor.cadre_id is not None:  # "cadre" is never a granted role, so this branch is disjoint from those above
        # Open cadre tasks (e.g. a question in the 英雄帖 area) go to every cadre inside the organisation.
        branches.append(and_(HumanTask.assignee.is_(None), HumanTask.candidate_role == "cadre",
                             HumanTask.organisation_id.in_(_ancestor_codes(session, actor.organisation_path))))
    return branches


def _filtered(query: Select, process_id: str | None, campaign_id: int | None) -> Select:
    if process_id:
        query = query.where(HumanTask.process_id == process_id)
    if campaign_id is not None:
        instances = _campaign_instances(campaign_id)
        query = query.where(HumanTask.instance_id.in_(instances) if instances is not None else false())
    return query


def _urgency_order(columns):
    """Overdue first, then the nearest deadline, then tasks without one; oldest first among equals."""
    return (columns.due_at.is_(None), columns.due_at, columns.id)


def _candidates(session: Session, actor: Actor, depth: int, process_id: str | None = None,
                campaign_id: int | None = None):
    """Subquery (id, due_at) of the ``depth`` most urgent open tasks of each branch, unioned."""
    parts = []
    for condition in _branches(session, actor):
        part = _filtered(select(HumanTask.id, HumanTask.due_at).where(HumanTask.state.in_(OPEN), condition),
                         process_id, campaign_id)
        parts.append(select(part.order_by(*_urgency_order(HumanTask)).limit(depth).subquery()))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def inbox(session: Session, actor: Actor, limit: int = 50, offset: int = 0,
          process_id: str | None = None, campaign_id: int | None = None) -> list[HumanTask]:
    """Open tasks for ``actor``, most urgent first (see :func:`_urgency_order`).

    Tasks assigned to them; unclaimed tasks of a role they hold, at an organisation where they hold
    it; and unclaimed cadre tasks open to every cadre of an organisation they belong to.  Optionally
    only one process's, or one campaign's (when campaigns exist).  ``offset`` is capped at
    :data:`MAX_OFFSET`.
    """
    offset = min(max(offset, 0), MAX_OFFSET)
    candidates = _candidates(session, actor, offset + limit, process_id, campaign_id)
    page_ids = select(candidates.c.id).order_by(*_urgency_order(candidates.c)).limit(limit).offset(offset)
    ids = list(session.scalars(page_ids))
    if not ids:
        return []
    rows = {task.id: task for task in session.scalars(select(HumanTask).where(HumanTask.id.in_(ids)))}
    return [rows[task_id] for task_id in ids if task_id in rows]


def urgency(task: HumanTask, now: datetime) -> str | None:
    """``"overdue"``, ``"due_soon"`` (reminder passed, or deadline within :data:`DUE_SOON`) or ``None``."""
    if task.due_at is None:
        return "due_soon" if task.remind_at is not None and task.remind_at <= now else None
    if task.due_at <= now:
        return "overdue"
    if task.due_at - now <= DUE_SOON or (task.remind_at is not None and task.remind_at <= now):
        return "due_soon"
    return None


def campaign_choices(session: Session, tasks: list[HumanTask]) -> list[tuple[int, str]] | None:
    """(id, title) of the campaigns ``tasks`` belong to (a page of the inbox), newest first.

    ``None`` while campaigns do not exist.
    """
    try:
        from .campaigns import Campaign, CampaignTarget
    except ImportError:
        return None
    instance_ids = {task.instance_id for task in tasks}
    if not instance_ids:
        return []
    rows = session.execute(select(Campaign.id, Campaign.title).distinct()
                           .join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
                           .where(CampaignTarget.instance_id.in_(instance_ids)).order_by(Campaign.id.desc()))
    return [(campaign_id, title) for campaign_id, title in rows]


@dataclass(frozen=True)
class ProcessChoice:
    """A process a person can filter their inbox by."""

    process_id: str
    name: str


def process_choices(session: Session) -> list[ProcessChoice]:
    """Every deployed process with the name of its newest version (a few dozen rows)."""
    rows = session.execute(select(ProcessDefinition.process_id, ProcessDefinition.name, ProcessDefinition.version)
                           .order_by(ProcessDefinition.process_id, ProcessDefinition.version)).all()
    names = {process_id: name for process_id, name, _version in rows}
    return [ProcessChoice(process_id, name) for process_id, name in sorted(names.items())]


def can_view_task(session: Session, actor: Actor, task: HumanTask) -> bool:
    """Whether ``actor`` may see ``task``: theirs, offered to them, or in a subtree they oversee."""
    if actor.username in (task.assignee, task.completed_by):
        return True
    org_path = _org_path(session, task.organisation_id)
    if actor.oversees(org_path):
        return True
    return (task.assignee is None and task.candidate_role == "cadre" and actor.cadre_id is not None
            and org_path is not None and actor.organisation_path is not None
            and is_within(actor.organisation_path, org_path))


def claimed_by_hand(session: Session, task: HumanTask) -> bool:
    """Whether the task's assignee took it by claiming (so may give it back), not by the process naming them."""
    last = session.scalar(select(AuditEvent.kind).where(
        AuditEvent.instance_id == task.instance_id, AuditEvent.task_id == task.task_id,
        AuditEvent.kind.in_(("claimed", "unclaimed", "reassigned"))).order_by(AuditEvent.id.desc()).limit(1))
    return task.assignee is not None and last == "claimed"


@dataclass(frozen=True)
class InstanceRights:
    """What a person may do with one process instance."""

    view: bool      # the diagram, the steps and who did them
    data: bool      # the process data and what was entered at each step (may hold personal data)
    cancel: bool    # an admin over the instance's organisation

    @property
    def retry(self) -> bool:
        """Retrying a failed step is for the same people as cancelling."""
        return self.cancel


def instance_rights(session: Session, actor: Actor, instance: ProcessInstance) -> InstanceRights:
    """Who sees what of an instance.

    A participant (who started it, or who holds, held or completed one of its tasks) sees it all;
    an organiser or admin whose subtree holds its organisation sees it all; another staff role over
    that subtree sees the diagram and the steps but not the data; an admin over it may cancel it.
    """
    org_path = _org_path(session, instance.organisation_id)
    participant = actor.username == instance.started_by or bool(session.scalar(select(exists().where(
        HumanTask.instance_id == instance.id,
        or_(HumanTask.assignee == actor.username, HumanTask.completed_by == actor.username)))))
    manager = actor.holds("organiser", org_path)  # holds() counts an admin grant too
    cancel = any(role == "admin" and is_within(org_path, path) for role, _c, path in actor.grants) \
        if org_path is not None else False
    view = participant or manager or actor.oversees(org_path) or _offered_to(session, actor, instance.id, org_path)
    return InstanceRights(view=view, data=participant or manager, cancel=cancel)


def _offered_to(session: Session, actor: Actor, instance_id: int, org_path: str | None) -> bool:
    """Whether one of the instance's open tasks is offered to ``actor`` (so they may look before claiming)."""
    tasks = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                    HumanTask.state.in_(OPEN), HumanTask.assignee.is_(None))
                            .limit(20)).all()
    return any(can_view_task(session, actor, task) for task in tasks)


def _org_path(session: Session, code: str | None) -> str | None:
    if code is None:
        return None
    return session.scalar(select(Organisation.path).where(Organisation.code == code))
