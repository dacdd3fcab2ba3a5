"""Service operators of the youth-voice process (青年之声) and its open 英雄帖 area.

The 英雄帖 area itself is found with ``county_committee`` (workflows/wish_operations.py).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.models import HumanTask
from engine.services import ServiceCall

from .models import Notification
from .organisations import by_code
from .services import registry
from .task_points import award_completed_tasks
from .wishes import valid_rating

ANSWER_TASKS = ("Task_answer", "Task_hero")

MESSAGES = {
    "posted": ("您的提问已发布到英雄帖：{question}",
               "您的提问「{question}」暂未得到回答，已发布到{organisation}“英雄帖”专区，本地团干部都可以认领回答。"),
    "answered": ("您的提问已有回答：{question}",
                 "您的提问「{question}」已有回答。满意吗？欢迎在7天内评价（1-5星）。"),
    "rated": ("青年评价了您的回答：{question}", "青年为您对「{question}」的回答打了{rating}星{comment_text}。"),
}


def _short(text: Any, limit: int = 30) -> str:
    text = str(text or "").strip()
    return text if len(text) <= limit else text[:limit] + "…"


def _notify(call: ServiceCall, recipient: str | None, event: str, **values: Any) -> list[str]:
    if not recipient:
        return []
    subject, body = MESSAGES[event]
    call.session.add(Notification(recipient=recipient, channel="in_app", subject=subject.format(**values)[:255],
                                  body=body.format(**values)[:4000], created_at=call.now))
    return [recipient]


@registry.register("voice_notify")
def voice_notify(call: ServiceCall, recipient: str, event: str, question: str = "",
                 organisation: str | None = None) -> dict:
    """Tell the youth that their question went to the 英雄帖 area (``organisation``) or was answered."""
    org_name = by_code(call.session, organisation).name if organisation else ""
    sent = _notify(call, recipient, event, question=_short(question), organisation=org_name)
    return {"event": event, "notified": sent, "at": call.now.isoformat()}


@registry.register("voice_close")
def voice_close(call: ServiceCall, question: str = "", answered_via: str = "cadre", rating: Any = None,
                comment: str | None = None) -> dict:
    """Record who answered (the asked cadre, or whoever took it from the 英雄帖) and the youth's rating.

    The answerer is read from the completed answer task of the ``human_task`` projection (the
    answer was saved in an earlier step); a rating tells them how the youth found the answer.
    The answer's points (1, or 0.5 from the 英雄帖) were awarded when it was given
    (``workflows/task_points.py``); this re-check adds nothing then.
    """
    award_completed_tasks(call.session, call.instance_id)
    answer = call.session.scalar(select(HumanTask).where(HumanTask.instance_id == call.instance_id,
                                                         HumanTask.bpmn_id.in_(ANSWER_TASKS),
                                                         HumanTask.state == "completed")
                                 .order_by(HumanTask.completed_at.desc(), HumanTask.id.desc()).limit(1))
    answered_by = answer.completed_by if answer is not None else None
    stars = valid_rating(rating)
    notified: list[str] = []
    if stars is not None:
        comment_text = f"，留言：“{_short(comment, 200)}”" if comment else ""
        notified = _notify(call, answered_by, "rated", question=_short(question), rating=stars,
                           comment_text=comment_text)
    return {"answered_by": answered_by, "answered_via": answered_via,
            "answered_in": answer.organisation_id if answer is not None else None,
            "rating": stars, "comment": (str(comment)[:500] if comment else None),
            "closed_at": call.now.isoformat(), "notified": notified}
