"""Service operators of the education practice "一学一做" (bpmn/education_practice.bpmn)."""
from __future__ import annotations

from engine.services import ServiceCall

from .education_practice import PRACTICE_ITEMS, cadre_by_username, choose_guidance, close_practice, record_item
from .services import registry


@registry.register("choose_guided_branch")
def choose_guided_branch(call: ServiceCall, cadre: str, committee: str, branch: str) -> dict:
    """Check and store the committee and branch a cadre chose; refuses a branch outside the committee."""
    guidance = choose_guidance(call.session, cadre_by_username(call.session, cadre), committee, branch)
    return guidance.as_data()


@registry.register("record_practice_item")
def record_practice_item(call: ServiceCall, cadre: str, item: str, date: str, place: str, participants: int,
                         description: str, evidence: list, details: dict | None = None) -> dict:
    """Store one done task-list item with its evidence; returns what the process keeps of it."""
    row = record_item(call.session, cadre=cadre_by_username(call.session, cadre), item=item, held_on=date,
                      place=place, participants=participants, description=description, evidence=evidence,
                      details=details, now=call.now, instance_id=call.instance_id)
    return {"item": row.item, "label": PRACTICE_ITEMS[row.item], "date": row.held_on,
            "recorded_at": row.recorded_at.isoformat()}


@registry.register("close_education_practice")
def close_education_practice(call: ServiceCall, cadre: str, guidance: dict | None = None) -> dict:
    """Close a cadre's practice: items not done are stored as missed; the summary goes to the organiser."""
    summary = close_practice(call.session, cadre=cadre_by_username(call.session, cadre),
                             instance_id=call.instance_id, now=call.now)
    return dict(summary, cadre=cadre, chosen=guidance is not None, guidance=guidance)
