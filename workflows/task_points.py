"""Points for answers and replies given in human tasks: an audit listener of the league engine.

Who completed a task is known only to the engine (a service task of the same step cannot see it,
and an open 英雄帖 task may be completed without being claimed first), so the points for these
facts are awarded from the ``task_completed`` audit event, in the transaction of the completion:

- 青年之声 (``youth_voice``): the asked cadre answering (``Task_answer``) scores 1, a cadre answering
  from the open 英雄帖 area (``Task_hero``) scores 0.5; a question scores once per cadre, however
  many answers it gets ("多次回答同一问题按1次计算"): the key is the question (the instance);
- 微心愿 (``micro_wish``): the cadre's reply (``Task_reply``) scores 2 once per wish, whichever the
  decision — promising to fulfil it, or saying frankly it is beyond their means so that it goes
  to the wish pool, is a reply to the youth; a reply that never came (the timer) scores nothing.

Only a cadre's completion scores (an admin completing a task for someone scores nobody).  The
closing step of each process calls :func:`award_completed_tasks` as well, which reads the same facts
from the ``human_task`` projection: idempotent with the listener, and enough on its own (later) for
an engine composed without it.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import HumanTask, ProcessInstance

from .models import Cadre, User
from .points import award

# (process id, task element id) → (category, variant, source kind, de-duplication key prefix)
TASK_POINTS: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("youth_voice", "Task_answer"): ("youth_voice", "question", "voice_answer", "question"),
    ("youth_voice", "Task_hero"): ("youth_voice", "hero_board", "voice_answer", "question"),
    ("micro_wish", "Task_reply"): ("micro_wishes", "reply", "wish_reply", "wish"),
}
_ELEMENTS = {element for _, element in TASK_POINTS}


def cadre_of_username(session: Session, username: str | None) -> Cadre | None:
    """The cadre signed in as ``username``, if that account is a cadre's."""
    if not username:
        return None
    return session.scalar(select(Cadre).join(User, User.id == Cadre.user_id).where(User.username == username))


def award_task_points(session: Session, *, process_id: str, element_id: str, instance_id: int, username: str | None,
                      at) -> bool:
    """Award the points of one completed task, if it is a scoring one; whether an entry was added."""
    rule = TASK_POINTS.get((process_id, element_id))
    cadre = cadre_of_username(session, username) if rule else None
    if rule is None or cadre is None:
        return False
    category, variant, source_kind, prefix = rule
    return award(session, cadre, category, f"{prefix}:{instance_id}", at, source_kind, str(instance_id),
                 variant=variant) is not None


def award_from_audit(session: Session, events: list[dict[str, Any]]) -> None:
    """The engine listener: award points for every scoring task completed in one engine operation."""
    for event in events:
        if event["kind"] != "task_completed" or event.get("element_id") not in _ELEMENTS or not event.get("actor"):
            continue
        process_id = session.scalar(select(ProcessInstance.process_id)
                                    .where(ProcessInstance.id == event["instance_id"]))
        award_task_points(session, process_id=process_id, element_id=event["element_id"],
                          instance_id=event["instance_id"], username=event["actor"], at=event["at"])


def award_completed_tasks(session: Session, instance_id: int) -> int:
    """Award what the completed scoring tasks of one instance are worth (already awarded ones add nothing)."""
    rows = session.execute(select(HumanTask.process_id, HumanTask.bpmn_id, HumanTask.completed_by,
                                  HumanTask.completed_at)
                           .where(HumanTask.instance_id == instance_id, HumanTask.bpmn_id.in_(_ELEMENTS),
                                  HumanTask.state == "completed")).all()
    return sum(award_task_points(session, process_id=process_id, element_id=element_id, instance_id=instance_id,
                                 username=username, at=at)
               for process_id, element_id, username, at in rows if at is not None)
