"""Faster stand-ins for a few SpiffWorkflow 3.2 functions on the hot path of a start, installed once.

Starting an instance is mostly SpiffWorkflow walking its task tree: a full walk for the ready
tasks in every round of ``do_engine_steps``, and one for the waiting ones after every task that
completes.  The replacements below do exactly what the originals do (same tasks, same order,
same laziness, same depth bookkeeping, same values) with fewer Python calls.  Each one says which
library function it replaces and why it gives the same result; each stands aside (calls the
original) for anything but SpiffWorkflow's own iterator, filter and task classes.

:func:`install` puts them in place, once (``engine.runtime`` calls it at import).  It checks
first that the installed SpiffWorkflow is a version they were written against and that every
function they replace or rely on still has the parameters it had then; if not, it logs a warning
and leaves the library as it is, so an upgrade makes the engine slower, never wrong.
:func:`unpatched` puts the originals back for a block: ``tests/engine/test_spiff_speedups.py``
runs every deployed process both ways and compares the results, and ``bench/start_many.py``
measures both.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Iterator

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.subworkflow import BpmnBaseWorkflow
from SpiffWorkflow.bpmn.util.task import BpmnTaskFilter, BpmnTaskIterator
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskFilter, TaskIterator, TaskState
from SpiffWorkflow.version import __version__ as SPIFFWORKFLOW_VERSION
from SpiffWorkflow.workflow import Workflow

log = logging.getLogger(__name__)

# The releases these replacements were checked against (tests/engine/test_spiff_speedups.py).
SUPPORTED_VERSIONS = ("3.2.",)


def _original(owner: type, name: str, inherited_only: bool = False) -> Any:
    """The library's own attribute (as stored in the class or inherited), also when a replacement is installed."""
    classes = owner.__mro__[1:] if inherited_only else owner.__mro__
    attribute = next((klass.__dict__[name] for klass in classes if name in klass.__dict__), None)
    function = attribute.__func__ if isinstance(attribute, staticmethod) else attribute
    replaced = getattr(function, "lianqing_original", None)
    return replaced if replaced is not None else attribute


def _function(attribute: Any) -> Callable:
    return attribute.__func__ if isinstance(attribute, staticmethod) else attribute


_ORIGINAL_NEXT = {TaskIterator: _original(TaskIterator, "__next__"),
                  BpmnTaskIterator: _original(BpmnTaskIterator, "__next__")}
_ORIGINAL_GET_TASKS = _original(Workflow, "get_tasks")
_ORIGINAL_UPDATE_WAITING = _original(Workflow, "update_waiting_tasks")
_ORIGINAL_SET_STATE = _original(Task, "_set_state")
_ORIGINAL_GET_DATETIME = _function(_original(TimerEventDefinition, "get_datetime"))


# ------------------------------------------------------------------------------- the tree walks

def _walk_up_after_leaf(iterator, task, task_list) -> None:
    """``TaskIterator._handle_leaf_depth`` without walking when a sibling follows (the walk would not move)."""
    following = task_list[0]
    if following.workflow is task.workflow and (following._parent is task._parent
                                                or following._parent == task._parent):
        return
    ancestor = following.parent
    current = task.parent
    while current is not None and current is not ancestor:
        current = current.parent
        iterator.depth -= 1


def _next_task(iterator):
    """Replaces ``TaskIterator.__next__``: it, ``_next`` and ``TaskFilter.matches`` in one function.

    The same pops and pushes on ``task_list`` and the same depth changes as the original, inlined;
    another iterator or filter class goes to the original.
    """
    if type(iterator) is not TaskIterator:
        return _ORIGINAL_NEXT[TaskIterator](iterator)
    task_filter = iterator.task_filter
    plain = type(task_filter) is TaskFilter
    while True:
        task_list = iterator.task_list
        if not task_list:
            raise StopIteration()
        task = task_list.pop(0)
        if (task._children and task._state >= iterator.min_state and iterator.depth < iterator.max_depth
                and task.task_spec.name != iterator.end_at_spec):
            tasks = task.workflow.tasks
            children = [tasks.get(child) for child in task._children]
            if iterator.depth_first:
                iterator.task_list = children + task_list
                iterator.depth += 1
            else:
                task_list.extend(children)
                iterator._update_depth(task)
        elif iterator.depth_first and task_list:
            _walk_up_after_leaf(iterator, task, task_list)
        if _matches(task_filter, task) if plain else task_filter.matches(task):
            return task


def _next_bpmn_task(iterator):
    """Replaces ``BpmnTaskIterator.__next__``: it, ``_next`` and ``BpmnTaskFilter.matches`` in one function.

    As :func:`_next_task`, with the original's descent into subprocesses kept as it is.
    """
    if type(iterator) is not BpmnTaskIterator:
        return _ORIGINAL_NEXT[BpmnTaskIterator](iterator)
    task_filter = iterator.task_filter
    plain = type(task_filter) is BpmnTaskFilter and task_filter.catches_event is None
    while True:
        task_list = iterator.task_list
        if not task_list:
            raise StopIteration()
        task = task_list.pop(0)
        workflow = task.workflow
        subprocesses = workflow.top_workflow.subprocesses
        subprocess = subprocesses.get(task.id) if subprocesses else None
        if ((task._children or subprocess is not None) and (task._state >= iterator.min_state or subprocess is not None)
                and iterator.depth < iterator.max_depth and task.task_spec.name != iterator.end_at_spec):
            if (subprocess is None or iterator.skip_subprocesses
                    or (task._state >= TaskState.FINISHED_MASK and task_filter.state <= TaskState.FINISHED_MASK)):
                subprocess_tasks = []
            else:
                subprocess_tasks = [subprocess.task_tree]
            tasks = workflow.tasks
            children = [tasks.get(child) for child in task._children]
            if iterator.depth_first:
                iterator.task_list = subprocess_tasks + children + task_list
                iterator.depth += 1
            else:
                task_list.extend(children + subprocess_tasks)
                iterator._update_depth(task)
        elif iterator.depth_first and task_list:
            _walk_up_after_leaf(iterator, task, task_list)
        if _matches(task_filter, task) if plain else task_filter.matches(task):
            return task


def _matches(task_filter, task) -> bool:
    """``TaskFilter.matches`` / ``BpmnTaskFilter.matches`` (without ``catches_event``), inlined."""
    spec = task.task_spec
    return bool(task._state & task_filter.state and task.last_state_change >= task_filter.updated_ts
                and (task_filter.manual is None or spec.manual == task_filter.manual)
                and (task_filter.spec_name is None or spec.name == task_filter.spec_name)
                and (task_filter.spec_class is None or isinstance(spec, task_filter.spec_class))
                and (getattr(task_filter, "lane", None) is None or spec.lane == task_filter.lane))


# get_tasks(state=READY) in every round of do_engine_steps matches one to three tasks of a tree
# of dozens: finding those few in the task dict and ordering them costs less than the walk.
_FEW_MATCHES = 4


def _get_tasks(workflow, first_task=None, **kwargs) -> list:
    """Replaces ``Workflow.get_tasks``: the tasks the iterator would give, collected without the iterator.

    The original makes a list of the iterator before anything runs, so the tree does not change
    while it is walked.  In that case the iterator's depth counter is always the depth of the
    next task below the first one, which is what the pass below keeps on its stack; and when few
    tasks match at all they are found in the task dict and put in walk order
    (:func:`_in_walk_order`).  For SpiffWorkflow's own workflow classes and the usual filter
    arguments the iterator is not even built: its defaults are the ones below.  Subprocesses,
    breadth-first walks and other filter, iterator or workflow classes go to the original.
    """
    factory = _ITERATOR_OF.get(type(workflow).get_tasks_iterator)
    first = first_task or workflow.task_tree
    if factory is not None and kwargs.keys() <= _FILTER_ARGUMENTS and not (
            factory is BpmnTaskIterator and first.workflow.top_workflow.subprocesses):
        state = kwargs.get("state", TaskState.ANY_MASK)
        return _collect(first, state, kwargs.get("updated_ts", 0), kwargs.get("manual"), kwargs.get("spec_name"),
                        kwargs.get("spec_class"), kwargs.get("lane"), _min_state(state),
                        kwargs.get("max_depth", 1000), kwargs.get("end_at_spec"))
    iterator = workflow.get_tasks_iterator(first_task, **kwargs)
    kind, task_filter = type(iterator), type(iterator.task_filter)
    if not (iterator.depth_first and ((kind is TaskIterator and task_filter is TaskFilter)
                                      or (kind is BpmnTaskIterator and task_filter is BpmnTaskFilter
                                          and iterator.task_filter.catches_event is None
                                          and not iterator.task_list[0].workflow.top_workflow.subprocesses))):
        return list(iterator)
    task_filter = iterator.task_filter
    return _collect(iterator.task_list[0], task_filter.state, task_filter.updated_ts, task_filter.manual,
                    task_filter.spec_name, task_filter.spec_class, getattr(task_filter, "lane", None),
                    iterator.min_state, iterator.max_depth, iterator.end_at_spec)


# Workflow.get_tasks_iterator / BpmnBaseWorkflow.get_tasks_iterator → the iterator class they build.
_ITERATOR_OF = {Workflow.__dict__["get_tasks_iterator"]: TaskIterator,
                BpmnBaseWorkflow.__dict__["get_tasks_iterator"]: BpmnTaskIterator}
# What such a get_tasks call may pass for the walk below: TaskFilter's and BpmnTaskFilter's fields
# (catches_event aside), and the iterator's max_depth and end_at_spec.
_FILTER_ARGUMENTS = frozenset({"state", "updated_ts", "manual", "spec_name", "spec_class", "lane", "max_depth",
                               "end_at_spec"})


def _min_state(state: int) -> int:
    """``TaskIterator.__init__``'s ``min_state``: which states of a parent the walk descends through."""
    if state & TaskState.PREDICTED_MASK:
        return TaskState.MAYBE
    if state & TaskState.DEFINITE_MASK:
        return TaskState.FUTURE
    return TaskState.COMPLETED


def _collect(first, state, updated_ts, manual, spec_name, spec_class, lane, min_state, max_depth, end_at_spec) -> list:
    """The tasks a depth-first walk from ``first`` yields with these filter values, in walk order."""
    matching = [task for task in first.workflow.tasks.values()
                if task._state & state and task.last_state_change >= updated_ts]
    if manual is not None:
        matching = [task for task in matching if task.task_spec.manual == manual]
    if spec_name is not None:
        matching = [task for task in matching if task.task_spec.name == spec_name]
    if spec_class is not None:
        matching = [task for task in matching if isinstance(task.task_spec, spec_class)]
    if lane is not None:
        matching = [task for task in matching if task.task_spec.lane == lane]
    if len(matching) <= _FEW_MATCHES:
        return _in_walk_order(first, matching, min_state, max_depth, end_at_spec)
    matched = set(map(id, matching))
    found, stack = [], [(first, 0)]
    while stack:
        task, depth = stack.pop()
        if task._children and task._state >= min_state and depth < max_depth and task.task_spec.name != end_at_spec:
            tasks = task.workflow.tasks
            stack.extend([(tasks.get(child), depth + 1) for child in reversed(task._children)])
        if id(task) in matched:
            found.append(task)
    return found


def _in_walk_order(first, matching: list, min_state: int, max_depth: int, end_at_spec) -> list:
    """The tasks of ``matching`` the depth-first walk from ``first`` reaches, in the order it reaches them.

    The walk reaches a task when it descends through every ancestor between ``first`` and the
    task (state at least ``min_state``, depth below ``max_depth``, not the ``end_at_spec``);
    depth-first order is the order of the child positions along the path from ``first``.
    """
    tasks = first.workflow.tasks
    placed = []
    for task in matching:
        path, ancestors, node = [], [], task
        while node is not first:
            parent = tasks.get(node._parent) if node._parent is not None else None
            if parent is None:
                break  # not below ``first``
            path.append(parent._children.index(node.id))
            ancestors.append(parent)
            node = parent
        else:
            depth = len(ancestors)
            if all(a._state >= min_state and depth - 1 - i < max_depth and a.task_spec.name != end_at_spec
                   for i, a in enumerate(ancestors)):
                path.reverse()
                placed.append((path, task))
    placed.sort(key=lambda item: item[0])
    return [task for _path, task in placed]


def _update_waiting_tasks(workflow) -> None:
    """Replaces ``Workflow.update_waiting_tasks``, skipping its walk of the tree when no task waits at all.

    It runs after every task that completes and finds nothing while a start walks up to its
    first wait; the walk only reads the tree until it finds a waiting task, so when none is in
    the task dict it would do nothing.
    """
    waiting = TaskState.WAITING
    for task in workflow.tasks.values():
        if task._state == waiting:
            _ORIGINAL_UPDATE_WAITING(workflow)
            return


# ------------------------------------------------------------------------------- state and time

_TASK_LOGGER = logging.getLogger("spiff.task")


def _set_state(task: Task, value: int) -> None:
    """Replaces ``Task._set_state``: no log record nobody reads when INFO is off for ``spiff.task``.

    The original formats a message and collects a dict of extras on every state change even when
    the level is off (about a sixth of a start's CPU time); with logging on it runs as it is.
    The state and ``last_state_change`` change exactly as the original changes them.
    """
    if _TASK_LOGGER.isEnabledFor(logging.INFO):
        _ORIGINAL_SET_STATE(task, value)
    elif value != task._state:
        task.last_state_change = time.time()
        task._state = value


@lru_cache(maxsize=1024)
def _parsed_datetime(expression: str) -> datetime:
    return _ORIGINAL_GET_DATETIME(expression)


def _get_datetime(expression):
    """Replaces ``TimerEventDefinition.get_datetime``: an ISO text parsed once, not on every look at the timer.

    Every waiting timer parses its due time again each time the workflow updates its waiting tasks
    (after every task that completes) and in every sweep; a campaign's instances all wait on the
    same few moments.  The original is a function of the text alone (and the module's fixed
    local zone), and a datetime cannot be changed, so handing out the one parsed the first time is
    the same.  Anything but a ``str`` (and a text that fails, which is not cached) goes to the original.
    """
    if type(expression) is str:
        return _parsed_datetime(expression)
    return _ORIGINAL_GET_DATETIME(expression)


# ---------------------------------------------------------------------------------- installing

@dataclass(frozen=True)
class _Patch:
    """One replacement: ``owner.name`` becomes ``replacement``; ``original`` is the library's."""

    owner: type
    name: str
    replacement: Callable
    original: Any
    static: bool = False

    def install(self) -> None:
        self.replacement.lianqing_original = self.original
        setattr(self.owner, self.name, staticmethod(self.replacement) if self.static else self.replacement)

    def remove(self) -> None:
        if self.original is _original(self.owner, self.name, inherited_only=True):
            delattr(self.owner, self.name)  # the class had none of its own: inherit the library's again
        else:
            setattr(self.owner, self.name, self.original)


PATCHES = (
    _Patch(Workflow, "get_tasks", _get_tasks, _ORIGINAL_GET_TASKS),
    _Patch(Workflow, "update_waiting_tasks", _update_waiting_tasks, _ORIGINAL_UPDATE_WAITING),
    _Patch(TaskIterator, "__next__", _next_task, _ORIGINAL_NEXT[TaskIterator]),
    _Patch(BpmnTaskIterator, "__next__", _next_bpmn_task, _ORIGINAL_NEXT[BpmnTaskIterator]),
    _Patch(Task, "_set_state", _set_state, _ORIGINAL_SET_STATE),
    _Patch(TimerEventDefinition, "get_datetime", _get_datetime, _original(TimerEventDefinition, "get_datetime"),
           static=True),
)

# The parameters of every function replaced, and of those whose attributes the replacements read
# (the iterators' and filters' constructors set what the walks use), when the patches were written.
EXPECTED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "Workflow.get_tasks": ("self", "first_task", "**kwargs"),
    "Workflow.get_tasks_iterator": ("self", "first_task", "**kwargs"),
    "Workflow.update_waiting_tasks": ("self",),
    "TaskIterator.__init__": ("self", "task", "end_at_spec", "max_depth", "depth_first", "task_filter", "**kwargs"),
    "TaskIterator.__next__": ("self",),
    "TaskIterator._next": ("self",),
    "TaskIterator._handle_leaf_depth": ("self", "task"),
    "TaskFilter.__init__": ("self", "state", "updated_ts", "manual", "spec_name", "spec_class"),
    "TaskFilter.matches": ("self", "task"),
    "BpmnTaskIterator.__init__": ("self", "task", "end_at_spec", "max_depth", "depth_first", "skip_subprocesses",
                                  "task_filter", "**kwargs"),
    "BpmnTaskIterator.__next__": ("self",),
    "BpmnTaskIterator._next": ("self",),
    "BpmnTaskFilter.__init__": ("self", "catches_event", "lane", "**kwargs"),
    "BpmnTaskFilter.matches": ("self", "task"),
    "Task._set_state": ("self", "value"),
    "TimerEventDefinition.get_datetime": ("expression",),
}
_OWNERS = {cls.__name__: cls for cls in (Workflow, TaskIterator, TaskFilter, BpmnTaskIterator, BpmnTaskFilter, Task,
                                         TimerEventDefinition)}

_installed = False


def _parameters(function: Callable) -> tuple[str, ...]:
    return tuple(("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name
                 for p in inspect.signature(function).parameters.values())


def unexpected_library(version: str | None = None) -> list[str]:
    """Why the patches do not fit the installed SpiffWorkflow (or ``version``): an empty list when they do."""
    version = version or SPIFFWORKFLOW_VERSION
    problems = []
    if not version.startswith(SUPPORTED_VERSIONS):
        problems.append(f"SpiffWorkflow {version} is not {' or '.join(v + 'x' for v in SUPPORTED_VERSIONS)}")
    for qualified, expected in EXPECTED_PARAMETERS.items():
        owner_name, name = qualified.split(".", 1)
        owner = _OWNERS[owner_name]
        attribute = next((klass.__dict__[name] for klass in owner.__mro__ if name in klass.__dict__), None)
        if attribute is None:
            problems.append(f"{qualified} is gone")
            continue
        function = _function(attribute)
        function = getattr(function, "lianqing_original", function)
        found = _parameters(_function(function))
        if found != expected:
            problems.append(f"{qualified} takes ({', '.join(found)}), not ({', '.join(expected)})")
    return problems


def install() -> bool:
    """Put every replacement in place, once; whether they are in place.

    When the installed SpiffWorkflow is not one they were written for, nothing is replaced and a
    warning says why: the library then runs as it is (slower, the same results).
    """
    global _installed
    if _installed:
        return True
    problems = unexpected_library()
    if problems:
        log.warning("SpiffWorkflow speed-ups not installed, running the library unpatched (slower): %s",
                    "; ".join(problems))
        return False
    for patch in PATCHES:
        patch.install()
    _installed = True
    return True


def installed() -> bool:
    """Whether the replacements are in place."""
    return _installed


@contextlib.contextmanager
def unpatched() -> Iterator[None]:
    """SpiffWorkflow's own functions for the duration of the block (for comparisons; not thread-safe)."""
    if not _installed:
        yield
        return
    for patch in PATCHES:
        patch.remove()
    try:
        yield
    finally:
        for patch in PATCHES:
            patch.install()


def original_next(iterator_class: type) -> Callable:
    """The library's own ``__next__`` of ``TaskIterator`` or ``BpmnTaskIterator``."""
    return _ORIGINAL_NEXT[iterator_class]
