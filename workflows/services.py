"""The service-task operators of the "1+100" processes, registered with the engine.

A BPMN service task can call only what is registered here (``spiffworkflow:serviceTaskOperator``).
"""
from __future__ import annotations

from engine.services import ServiceCall, ServiceRegistry

registry = ServiceRegistry()


@registry.register("record_outcome")
def record_outcome(call: ServiceCall, outcome: str, note: str = "") -> dict:
    """Return a small outcome record that the process keeps in its data (used by the demo process)."""
    return {"outcome": outcome, "note": note, "recorded_at": call.now.isoformat(),
            "instance_id": call.instance_id}
