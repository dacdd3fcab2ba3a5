"""What a task is about: the micro-wish a cadre replies to, the question a cadre answers.

A task page shows the task's form; someone replying to a youth must also see what the youth wrote.
:func:`task_subject` gives that, by process: for ``micro_wish`` the wish (title, text, the youth's
display name, when it was posted, where it stands and its history), for ``youth_voice`` the
question (text, the youth, when it was asked, where it stands, the answer once there is one).
Other processes have no subject (``None``).  Everything is read from what the engine already
writes (the start event, the open tasks, the audit trail), a fixed handful of queries per page.

What the youth wrote is personal: :func:`may_read_subject` lets it be read by the person who holds
or did the task, the people it is offered to, and those who may read the instance's data.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import HumanTask, ProcessInstance

from .inbox import instance_rights
from .models import Organisation, User
from .organisations import is_within
from .roles import Actor
from .wish_pool import HistoryLine, wish_history
from .wishes import CADRE_TASKS, open_tasks
from .wishes import PROCESS_ID as WISH_PROCESS
from .youth_requests import VOICE_PROCESS, posted, question_status


@dataclass(frozen=True)
class WishSubject:
    """The micro-wish a task is about."""

    business_key: str | None
    title: str | None
    description: str | None
    youth_name: str | None
    posted_at: datetime
    stage: str                          # workflows.wishes.WishStatus.stage: cadre_reply, pool, confirmed, ...
    history: tuple[HistoryLine, ...]    # oldest first, in plain words
    kind: str = "wish"


@dataclass(frozen=True)
class QuestionSubject:
    """The youth-voice question a task is about."""

    business_key: str | None
    question: str | None
    youth_name: str | None
    asked_at: datetime
    stage: str                          # workflows.youth_requests.QuestionStatus.stage: awaiting_answer, ...
    open_question: bool                 # posted to the 英雄帖 area, to no cadre in particular
    answer: str | None
    answered_by_name: str | None
    kind: str = "question"


Subject = WishSubject | QuestionSubject


def _youth_name(session: Session, start: dict) -> str | None:
    username = start.get("youth_assignee")
    return session.scalar(select(User.display_name).where(User.username == username)) if username else None


def wish_stage(session: Session, instance: ProcessInstance) -> str:
    """Where a wish stands, as :attr:`workflows.wishes.WishStatus.stage` says it (without the youth's wording).

    One query at most: the open tasks of a running wish.
    """
    if instance.status == "running":
        tasks = open_tasks(session, instance.id)
        if not tasks:
            return "awaiting_confirmation"
        return CADRE_TASKS.get(tasks[-1].bpmn_id, "pool")
    outcome = ((instance.data or {}).get("wish_outcome") or {}).get("outcome")
    if instance.status == "completed" and outcome in ("confirmed", "auto_confirmed", "withdrawn"):
        return outcome
    return instance.status


def wish_subject(session: Session, instance: ProcessInstance) -> WishSubject:
    """The wish of a ``micro_wish`` instance, where it stands and its history."""
    start = posted(session, instance.id)
    return WishSubject(instance.business_key, start.get("wish_title"), start.get("wish_description"),
                       _youth_name(session, start), instance.started_at, wish_stage(session, instance),
                       tuple(wish_history(session, instance.id)))


def question_subject(session: Session, instance: ProcessInstance) -> QuestionSubject:
    """The question of a ``youth_voice`` instance, where it stands and its answer."""
    status = question_status(session, instance)
    start = posted(session, instance.id)
    return QuestionSubject(instance.business_key, status.question, _youth_name(session, start), instance.started_at,
                           status.stage, status.open_question, status.answer,
                           status.answered_by_name or status.answered_by)


SUBJECTS: dict[str, Callable[[Session, ProcessInstance], Subject]] = {
    WISH_PROCESS: wish_subject,
    VOICE_PROCESS: question_subject,
}


def may_read_subject(session: Session, actor: Actor, task: HumanTask, instance: ProcessInstance) -> bool:
    """Whether ``actor`` may read what the youth wrote: they hold, did or are offered the task, or may read the data."""
    if actor.username in (task.assignee, task.completed_by):
        return True
    if task.assignee is None and task.state in HumanTask.OPEN_STATES and task.candidate_role:
        org_path = session.scalar(select(Organisation.path).where(Organisation.code == task.organisation_id))
        if task.candidate_role == "cadre":
            if actor.cadre_id is not None and org_path is not None and actor.organisation_path is not None \
                    and is_within(actor.organisation_path, org_path):
                return True
        elif actor.holds(task.candidate_role, org_path):
            return True
    return instance_rights(session, actor, instance).data


def task_subject(session: Session, actor: Actor, task: HumanTask) -> Subject | None:
    """What ``task`` is about, if its process has a subject and ``actor`` may read it; else ``None``."""
    provider = SUBJECTS.get(task.process_id)
    if provider is None:
        return None
    instance = session.get(ProcessInstance, task.instance_id)
    if instance is None or not may_read_subject(session, actor, task, instance):
        return None
    return provider(session, instance)
