"""The service-task operators of the "1+100" processes, registered with the engine.

A BPMN service task can call only what is registered here (``spiffworkflow:serviceTaskOperator``).
Operators live in the modules named ``*_operations.py`` of this package; each registers its
functions on :data:`registry`, and every such module is imported below, so adding a module is
all it takes.
"""
from __future__ import annotations

import importlib
import pkgutil

from engine.services import ServiceCall, ServiceRegistry

registry = ServiceRegistry()


@registry.register("record_outcome")
def record_outcome(call: ServiceCall, outcome: str, note: str = "") -> dict:
    """Return a small outcome record that the process keeps in its data (used by the demo process)."""
    return {"outcome": outcome, "note": note, "recorded_at": call.now.isoformat(),
            "instance_id": call.instance_id}


def _load_operation_modules() -> None:
    package = importlib.import_module(__package__)  # already being imported: this only looks it up
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.endswith("_operations"):
            importlib.import_module(f"{__package__}.{module.name}")


_load_operation_modules()
