"""Service operator of the spot-check process (bpmn/spot_check.bpmn): record the inspector's verdict."""
from __future__ import annotations

from sqlalchemy import select

from engine.models import HumanTask
from engine.services import ServiceCall

from .services import registry
from .spot_checks import record_verdict

CHECK_TASK = "Task_check"


@registry.register("spot_check_verdict")
def spot_check_verdict(call: ServiceCall, activity_id: int, method: str, verdict: str, note: str | None = None) -> dict:
    """Store the verdict on the drawn record; "false" revokes it, removes its points and tells the people concerned.

    Runs in the step that completes the check task, so that task is still open in the ``human_task``
    projection: its assignee is the inspector who decided.
    """
    task = call.session.scalar(select(HumanTask).where(HumanTask.instance_id == call.instance_id,
                                                       HumanTask.bpmn_id == CHECK_TASK)
                               .order_by(HumanTask.id.desc()).limit(1))
    check = record_verdict(call.session, int(activity_id), method, verdict, note,
                           task.assignee if task is not None else None, call.now)
    return {"activity_id": check.activity_id, "method": check.method, "verdict": check.verdict,
            "decided_by": check.decided_by, "decided_at": check.decided_at.isoformat() if check.decided_at else None,
            "revoked": check.verdict == "false"}
