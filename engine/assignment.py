"""Who a human task goes to, and who may act on it.

Lane name = role key (``cadre``, ``organiser``, ``coordinator``, ``inspector``, ``youth``).  The
engine asks an :class:`AssignmentResolver` for each new task; the default one assigns the task
to the user that the process data names, or else offers it to the lane's role at the instance's
organisation.  ``workflows/`` supplies a resolver that knows the organisation tree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from .errors import NotAllowed


@dataclass(frozen=True)
class Assignment:
    """Where a new human task goes: a named assignee, or a role at an organisation, or both."""

    candidate_role: str | None
    organisation_id: str | None
    assignee: str | None = None


@dataclass(frozen=True)
class TaskContext:
    """What a resolver may look at: the lane, the instance's organisation, the data, the task's properties.

    ``lookups`` is scratch space for what a resolver reads from the database, shared by every new
    task of one engine operation (all the instances of a ``start_many`` call): the engine empties
    it before any service task runs and drops it when the operation ends, so nothing read there
    outlives the operation or misses a change made during it.
    """

    lane: str | None
    organisation_id: str | None
    data: dict[str, Any]
    properties: dict[str, str]
    evaluate: Callable[[str], Any]
    session: Any = None
    lookups: dict[Any, Any] | None = None


class AssignmentResolver(Protocol):
    """Decides the :class:`Assignment` of each new human task."""

    def resolve(self, context: TaskContext) -> Assignment: ...


class LaneAssignmentResolver:
    """Default resolver.

    - a task property ``assignee`` is an expression over the task data naming the user;
    - else the data key ``<lane>_assignee`` names the user;
    - a task property ``organisation`` (an expression) sends the task to another organisation;
    - the candidate role is the lane name.
    """

    def resolve(self, context: TaskContext) -> Assignment:
        """Return the assignment for one new task."""
        props = context.properties
        if props.get("assignee"):  # the property decides, even when it says None (an open task)
            assignee = context.evaluate(props["assignee"])
        else:
            assignee = context.data.get(f"{context.lane}_assignee") if context.lane else None
        organisation = context.evaluate(props["organisation"]) if props.get("organisation") else None
        return Assignment(candidate_role=context.lane,
                          organisation_id=str(organisation) if organisation is not None else context.organisation_id,
                          assignee=str(assignee) if assignee is not None else None)


class TaskPolicy(Protocol):
    """Decides whether an actor may claim, complete or reassign a task.  Raise :class:`NotAllowed`."""

    def check(self, session: Any, actor: str | None, task: Any, action: str) -> None: ...


class AssigneePolicy:
    """Default policy: a claimed or assigned task belongs to its assignee; ``None`` is the system.

    Role and organisation checks are the caller's (``workflows/`` knows the tree); this keeps the
    engine from letting one person act on a task another holds.
    """

    def check(self, session: Any, actor: str | None, task: Any, action: str) -> None:
        """Raise :class:`NotAllowed` if ``actor`` may not do ``action`` on ``task``."""
        if actor is None or task.assignee is None or task.assignee == actor:
            return
        raise NotAllowed(f"任务「{task.name}」已分配给 {task.assignee}，你不能{_ACTION_ZH.get(action, action)} / "
                         f"task '{task.name}' is assigned to {task.assignee}; {actor} may not {action} it")


_ACTION_ZH = {"complete": "办理", "claim": "认领", "unclaim": "退回", "reassign": "转办"}
