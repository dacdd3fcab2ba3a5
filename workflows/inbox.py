"""What a person sees: their inbox, and whether they may look at a task at all.

Queries read only the ``human_task`` projection, with its indexes, and are paginated.
"""
from __future__ import annotations

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from engine.models import HumanTask

from .models import Organisation
from .organisations import ancestor_ids, is_within
from .roles import Actor

OPEN = HumanTask.OPEN_STATES


def _ancestor_codes(session: Session, path: str | None) -> list[str]:
    if not path:
        return []
    return list(session.scalars(select(Organisation.code).where(Organisation.id.in_(ancestor_ids(path)))))


def inbox(session: Session, actor: Actor, limit: int = 50, offset: int = 0,
          process_id: str | None = None) -> list[HumanTask]:
    """Open tasks for ``actor``, most urgent first.

    Tasks assigned to them; unclaimed tasks of a role they hold, at an organisation where they hold
    it; and unclaimed cadre tasks open to every cadre of an organisation they belong to.
    """
    offered = []
    for role in {role for role, _code, _path in actor.grants}:
        offered.append(and_(HumanTask.candidate_role == role, HumanTask.organisation_id.in_(actor.role_orgs(role))))
    if actor.cadre_id is not None:
        offered.append(and_(HumanTask.candidate_role == "cadre",
                            HumanTask.organisation_id.in_(_ancestor_codes(session, actor.organisation_path))))
    unclaimed = and_(HumanTask.assignee.is_(None), or_(*offered)) if offered else false()
    query = select(HumanTask).where(HumanTask.state.in_(OPEN), or_(HumanTask.assignee == actor.username, unclaimed))
    if process_id:
        query = query.where(HumanTask.process_id == process_id)
    query = query.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def can_view_task(session: Session, actor: Actor, task: HumanTask) -> bool:
    """Whether ``actor`` may see ``task``: theirs, offered to them, or in a subtree they oversee."""
    if actor.username in (task.assignee, task.completed_by):
        return True
    org_path = session.scalar(select(Organisation.path).where(Organisation.code == task.organisation_id))
    if actor.oversees(org_path):
        return True
    return (task.assignee is None and task.candidate_role == "cadre" and actor.cadre_id is not None
            and org_path is not None and actor.organisation_path is not None
            and is_within(actor.organisation_path, org_path))
