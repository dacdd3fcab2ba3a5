"""A cap on how many instances one multi-instance activity (or standard loop) may create.

A parallel multi-instance activity creates all its instances in one step: a cardinality of 100,000
(or a 100,000-item input collection) holds the request, the worker and the instance row for as long
as SpiffWorkflow takes to build and serialise a tree that size.  The cap is checked twice:

- at deploy (``engine/definitions.py``): a cardinality written as a number (or arithmetic on
  numbers) above it, and a standard loop's ``loopMaximum`` above it, refuse the file at the element;
- at run time, here: SpiffWorkflow's multi-instance specs are wrapped so that, before any instance
  is created, the evaluated cardinality or the size of the input collection is compared with the
  cap of the engine running the step (:func:`fan_out_limit`).  Over it, the step fails with a
  :class:`MultiInstanceRefused` that the engine reports as ``WorkflowFailed``; nothing of
  the step is kept.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import operator
from collections.abc import Sized
from typing import Iterator

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import (ParallelMultiInstanceTask,
                                                                SequentialMultiInstanceTask)

DEFAULT_MAX_MULTI_INSTANCE = 1000
_FOLDABLE = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}
_HUGE = 2 ** 63  # folding stops here: anything this large is over any sensible cap

_active_limit: contextvars.ContextVar[int] = contextvars.ContextVar("lianqing_multi_instance_limit",
                                                                    default=DEFAULT_MAX_MULTI_INSTANCE)


class MultiInstanceRefused(WorkflowDataException):
    """A multi-instance activity would create more instances than the engine allows, or has no usable count."""


@contextlib.contextmanager
def fan_out_limit(limit: int) -> Iterator[None]:
    """Let multi-instance activities run in this block create at most ``limit`` instances each."""
    token = _active_limit.set(limit)
    try:
        yield
    finally:
        _active_limit.reset(token)


def literal_cardinality(expression: str) -> int | None:
    """The count a cardinality expression always gives when it is made of integer literals only, else ``None``.

    ``"100000"``, ``"1000 * 100"`` and ``"-1"`` are literal; ``"len(members)"`` is not.  Results
    beyond 2**63 are returned as 2**63.
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    nodes: list[ast.AST] = [tree.body]
    for node in nodes:  # only literals and + - * // (walked iteratively: deep nesting is safe)
        if len(nodes) > 200:
            return None  # a long formula of literals is not worth folding; the run-time check still applies
        if isinstance(node, ast.BinOp) and type(node.op) in _FOLDABLE:
            nodes += (node.left, node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            nodes.append(node.operand)
        elif not (isinstance(node, ast.Constant) and type(node.value) is int):
            return None
    return _fold(tree.body)


def _fold(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant):
        return max(-_HUGE, min(_HUGE, node.value))
    if isinstance(node, ast.UnaryOp):
        value = _fold(node.operand)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    left, right = _fold(node.left), _fold(node.right)
    if left is None or right is None or (isinstance(node.op, ast.FloorDiv) and right == 0):
        return None
    return max(-_HUGE, min(_HUGE, _FOLDABLE[type(node.op)](left, right)))


def _name(task_spec, my_task) -> str:
    """The activity's name and id; the name sits on the spec of its instances."""
    child = my_task.workflow.spec.task_specs.get(task_spec.task_spec)
    name = getattr(task_spec, "bpmn_name", None) or getattr(child, "bpmn_name", None)
    return f"{name} ({task_spec.bpmn_id})" if name else str(task_spec.bpmn_id)


def _check_count(task_spec, my_task, count, what: str) -> None:
    """Refuse a count that is not a whole number of at most the active limit."""
    limit = _active_limit.get()
    name = _name(task_spec, my_task)
    if type(count) is not int or count < 0:
        raise MultiInstanceRefused(
            f"多实例活动「{name}」的数量必须是非负整数，实际为 {count!r} / multi-instance activity '{name}': "
            f"the cardinality must be a whole number of at least 0, not {count!r}", my_task)
    if count > limit:
        raise MultiInstanceRefused(
            f"多实例活动「{name}」要创建 {count:,} 个实例，超过上限 {limit:,} 个；请减少{what}或分批处理 / "
            f"multi-instance activity '{name}' would create {count:,} instances; the limit is {limit:,} "
            f"(reduce the {'collection' if what == '集合' else 'cardinality'} or split the work)", my_task)


def _check_collection(task_spec, my_task) -> None:
    collection = task_spec.data_input.get(my_task) if task_spec.data_input.exists(my_task) else None
    if not isinstance(collection, Sized):  # SpiffWorkflow's parallel task would fail with a bare TypeError
        name, data = _name(task_spec, my_task), task_spec.data_input.bpmn_id
        raise MultiInstanceRefused(
            f"多实例活动「{name}」的输入集合「{data}」缺失或不是列表 / multi-instance activity '{name}': its input "
            f"collection '{data}' is missing or not a list (found {type(collection).__name__})", my_task)
    _check_count(task_spec, my_task, len(collection), "集合")


_original_create_children = ParallelMultiInstanceTask.create_children
_original_add_next_child = SequentialMultiInstanceTask.add_next_child


def _guarded_create_children(self, my_task):
    """Parallel: check the number of instances before SpiffWorkflow creates all of them at once."""
    if self.data_input is not None:
        _check_collection(self, my_task)
    else:  # expressions are side-effect free (engine/expressions.py): evaluating twice is safe
        _check_count(self, my_task, my_task.workflow.script_engine.evaluate(my_task, self.cardinality), "数量")
    return _original_create_children(self, my_task)


def _guarded_add_next_child(self, my_task):
    """Sequential: check before each instance (a script or service body would otherwise loop in one step)."""
    if self.data_input is not None:
        _check_collection(self, my_task)
    else:
        _check_count(self, my_task, my_task.internal_data.get("cardinality"), "数量")
    return _original_add_next_child(self, my_task)


if not hasattr(ParallelMultiInstanceTask.create_children, "__wrapped__"):
    _guarded_create_children.__wrapped__ = _original_create_children
    _guarded_add_next_child.__wrapped__ = _original_add_next_child
    ParallelMultiInstanceTask.create_children = _guarded_create_children
    SequentialMultiInstanceTask.add_next_child = _guarded_add_next_child
