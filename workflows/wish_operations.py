"""Service operators of the micro-wish process (微心愿 / 心愿池) and of the 英雄帖 area of 青年之声.

``county_committee`` finds where a wish pool or an open question area is; the ``wish_*``
operators tell people what happened to a wish and record how it ended.
"""
from __future__ import annotations

from typing import Any

from engine.services import ServiceCall

from .organisations import ancestors, by_code
from .services import registry
from .task_points import award_completed_tasks
from .tree_operations import organisation_at_level
from .wishes import last_fulfilment, notify, open_tasks, task_recipients, valid_rating


@registry.register("county_committee")
def county_committee(call: ServiceCall, organisation: str | None = None) -> dict:
    """The county-level committee (县级团委) at or above an organisation: home of its 心愿池 and 英雄帖.

    It is ``organisation_at_level(kind="county")``; an organisation with no county above it (a
    cadre of a city or provincial organ, or of a university) uses its nearest leading organ
    (团的领导机关, county level or above), so a wish or question always has a home.
    """
    county = organisation_at_level(call, kind="county", organisation=organisation)
    if county["code"] is not None:
        return county
    for candidate in reversed(ancestors(call.session, by_code(call.session, organisation or call.organisation_id))):
        if candidate.is_leading_organ:
            return {"code": candidate.code, "name": candidate.name, "kind": candidate.kind}
    return county


@registry.register("wish_notify")
def wish_notify(call: ServiceCall, recipient: str, event: str, title: str = "",
                organisation: str | None = None) -> dict:
    """Tell one person (the youth) that their wish was replied to, pooled (at ``organisation``) or fulfilled."""
    org_name = by_code(call.session, organisation).name if organisation else ""
    sent = notify(call.session, [recipient], event, call.now, title=title, organisation=org_name)
    return {"event": event, "notified": sent, "at": call.now.isoformat()}


@registry.register("wish_close")
def wish_close(call: ServiceCall, outcome: str, title: str = "", confirmation: Any = None) -> dict:
    """Close a fulfilled wish: record who fulfilled it and the youth's rating, and tell the fulfiller.

    ``outcome`` is "confirmed" (the youth sent ``wish_confirmed``) or "auto_confirmed" (7 days of
    silence).  A rating outside 1-5 in the payload is dropped (``rating`` None).  The cadre's reply
    scored when it was given (``workflows/task_points.py``); this re-check adds nothing then.
    """
    award_completed_tasks(call.session, call.instance_id)
    payload = confirmation if isinstance(confirmation, dict) else {}
    rating = valid_rating(payload.get("rating"))
    comment = str(payload.get("comment") or "")[:500] or None
    done = last_fulfilment(call.session, call.instance_id)
    fulfilled_by = done.completed_by if done is not None else None
    rating_text = f"，评价{rating}星" if rating else ""
    notified = notify(call.session, [fulfilled_by] if fulfilled_by else [], outcome, call.now, title=title,
                      rating_text=rating_text + (f"：“{comment}”" if comment else ""))
    return {"outcome": outcome, "rating": rating, "comment": comment, "fulfilled_by": fulfilled_by,
            "fulfilled_in": done.organisation_id if done is not None else None,
            "fulfilled_task": done.bpmn_id if done is not None else None,
            "closed_at": call.now.isoformat(), "notified": notified}


@registry.register("wish_withdrawn")
def wish_withdrawn(call: ServiceCall, title: str = "", withdrawal: Any = None) -> dict:
    """The youth withdrew the wish: tell whoever held it (or, after fulfilment, whoever fulfilled it).

    Runs inside the step that withdraws the wish, so the task that was open is still open in the
    ``human_task`` projection (the engine closes it when the step is saved).  A reply given before
    the withdrawal keeps its points (re-checked here, as in ``wish_close``).
    """
    award_completed_tasks(call.session, call.instance_id)
    payload = withdrawal if isinstance(withdrawal, dict) else {}
    reason = str(payload.get("reason") or "")[:500] or None
    tasks = open_tasks(call.session, call.instance_id)
    if tasks:
        stage = tasks[-1].bpmn_id
        recipients = [name for task in tasks for name in task_recipients(call.session, task)]
    else:
        done = last_fulfilment(call.session, call.instance_id)
        stage = "awaiting_confirmation" if done is not None else None
        recipients = [done.completed_by] if done is not None and done.completed_by else []
    notified = notify(call.session, recipients, "withdrawn", call.now, title=title,
                      reason_text=f"（原因：{reason}）" if reason else "")
    return {"outcome": "withdrawn", "reason": reason, "stage": stage, "withdrawn_at": call.now.isoformat(),
            "notified": notified}
