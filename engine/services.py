"""The registry of Python functions that BPMN service tasks may call.

A service task names an operator (``spiffworkflow:serviceTaskOperator id="..."``); only the
operators registered here can run, so an uploaded BPMN file reaches domain logic in
``workflows/`` and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


@dataclass(frozen=True)
class ServiceCall:
    """What a service function is told about the call: the session, the instance, the time."""

    session: Any
    instance_id: int | None
    organisation_id: str | None
    now: Any
    task_data: dict[str, Any]


class ServiceFunction(Protocol):
    """A registered operation: takes the call context and keyword parameters, returns JSON-able data."""

    def __call__(self, call: ServiceCall, **params: Any) -> Any: ...


@dataclass
class ServiceRegistry:
    """Maps operator names to Python functions."""

    functions: dict[str, ServiceFunction] = field(default_factory=dict)

    def register(self, name: str, function: ServiceFunction | None = None):
        """Register ``function`` under ``name``; usable as a decorator."""
        def add(fn: ServiceFunction) -> ServiceFunction:
            if name in self.functions and self.functions[name] is not fn:
                raise ValueError(f"service operator '{name}' is registered twice")
            self.functions[name] = fn
            return fn
        return add(function) if function is not None else add

    def __contains__(self, name: str) -> bool:
        return name in self.functions

    def call(self, name: str, call: ServiceCall, params: dict[str, Any]) -> Any:
        """Run operator ``name``; an unknown name is an error, never a lookup elsewhere."""
        try:
            function: Callable[..., Any] = self.functions[name]
        except KeyError:
            raise LookupError(f"no service operator named '{name}' is registered") from None
        return function(call, **params)
