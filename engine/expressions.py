"""The restricted script engine: BPMN expressions and scripts without arbitrary Python.

SpiffWorkflow's default environment runs BPMN text with ``eval``/``exec`` and full builtins, so
an uploaded file could run shell commands.  Here every expression (gateway condition, timer,
multi-instance, service parameter) is checked against a whitelist of syntax and evaluated by
``simpleeval``; a script may only be a list of plain assignments of such expressions.  Domain
logic is reached through service tasks whose operator names a registered Python function.
"""
from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

from simpleeval import EvalWithCompoundTypes, InvalidExpression
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .errors import UnsafeExpression

_ALLOWED_NODES = (
    ast.Expression, ast.Module, ast.Expr, ast.Load, ast.Store, ast.Name, ast.Constant,
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.IfExp, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice,
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.comprehension, ast.JoinedStr, ast.FormattedValue,
)
_ALLOWED_METHODS = {"get", "keys", "values", "items", "lower", "upper", "strip", "startswith", "endswith",
                    "split", "join", "replace", "count", "index", "isoformat"}


def _add_days(moment: str, days: float) -> str:
    """Return the ISO time ``days`` after the ISO time ``moment``."""
    return (datetime.fromisoformat(moment) + timedelta(days=days)).isoformat()


def _add_hours(moment: str, hours: float) -> str:
    """Return the ISO time ``hours`` after the ISO time ``moment``."""
    return (datetime.fromisoformat(moment) + timedelta(hours=hours)).isoformat()


SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len, "str": str, "int": int, "float": float, "bool": bool, "round": round, "abs": abs,
    "min": min, "max": max, "sum": sum, "sorted": sorted, "any": any, "all": all, "list": list,
    "dict": dict, "set": set,
    "add_days": _add_days, "add_hours": _add_hours,
}


def _problem(text: str, node: ast.AST | None, why: str) -> UnsafeExpression:
    line = f" (line {node.lineno})" if node is not None and hasattr(node, "lineno") else ""
    return UnsafeExpression(f"{why}{line} in expression {text!r}")


def _check_nodes(tree: ast.AST, text: str, names_allowed_as_calls: set[str]) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise _problem(text, node, f"'{type(node).__name__}' is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise _problem(text, node, f"name '{node.id}' is not allowed (names may not start with '_')")
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise _problem(text, node, f"attribute '{node.attr}' is not allowed")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                if func.id not in names_allowed_as_calls:
                    raise _problem(text, node, f"function '{func.id}' is not available; "
                                               f"use one of {sorted(names_allowed_as_calls)}")
            elif isinstance(func, ast.Attribute):
                if func.attr not in _ALLOWED_METHODS:
                    raise _problem(text, node, f"method '{func.attr}' is not available")
            else:
                raise _problem(text, node, "only named functions may be called")
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and len(node.value) > 10_000:
            raise _problem(text, node, "string literal longer than 10,000 characters")


@lru_cache(maxsize=4096)
def parse_expression(text: str) -> ast.Expression:
    """Parse and check one expression; raise :class:`UnsafeExpression` if it is not allowed."""
    if len(text) > 20_000:
        raise UnsafeExpression("expression longer than 20,000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error in expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):  # ast.parse's answer to deeply nested input
        raise UnsafeExpression(f"expression nested too deeply to check ({len(text):,} characters)") from None
    _check_nodes(tree, text, set(SAFE_FUNCTIONS))
    return tree


@lru_cache(maxsize=1024)
def parse_script(text: str) -> tuple[tuple[tuple[str, ...], ast.Expression, ast.operator | None], ...]:
    """Parse a script made only of assignments ``name = expression`` (or ``name += expression``).

    Returns (targets, expression, augmented operator) triples; raises :class:`UnsafeExpression`
    for anything else (imports, loops, function definitions, attribute assignment...).
    """
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise UnsafeExpression(f"syntax error in script on line {exc.lineno}: {exc.msg}") from None
    except (RecursionError, MemoryError):  # ast.parse's answer to deeply nested input
        raise UnsafeExpression(f"script nested too deeply to check ({len(text):,} characters)") from None
    steps = []
    for stmt in module.body:
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
            targets, value, op = tuple(t.id for t in stmt.targets), stmt.value, None
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            targets, value, op = (stmt.target.id,), stmt.value, stmt.op
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring or comment-like literal does nothing
        else:
            raise UnsafeExpression(
                f"line {stmt.lineno}: scripts may only assign values (name = expression); "
                f"'{type(stmt).__name__}' is not allowed. Put logic in a registered service task.")
        for name in targets:
            if name.startswith("_"):
                raise UnsafeExpression(f"line {stmt.lineno}: name '{name}' may not start with '_'")
        expression = ast.Expression(body=value)
        ast.copy_location(expression, value)
        _check_nodes(expression, ast.unparse(value), set(SAFE_FUNCTIONS))
        steps.append((targets, expression, op))
    return tuple(steps)


_AUG_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
}


class _Evaluator(EvalWithCompoundTypes):
    """simpleeval with our whitelist of functions and no attribute access to modules."""

    def __init__(self, names: dict[str, Any], functions: dict[str, Callable[..., Any]]):
        super().__init__(names=names, functions=functions)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that evaluates only whitelisted expressions."""

    def __init__(self, functions: dict[str, Callable[..., Any]] | None = None,
                 call_service: Callable[..., Any] | None = None):
        super().__init__({})
        self.functions = dict(SAFE_FUNCTIONS, **(functions or {}))
        self._call_service = call_service

    def _names(self, context: dict[str, Any], external_context: dict[str, Any] | None) -> dict[str, Any]:
        names = dict(external_context or {})
        names.update(context)
        return names

    def evaluate(self, expression, context, external_context=None):
        """Evaluate one checked expression over the task data."""
        tree = parse_expression(expression)
        evaluator = self._evaluator(self._names(context, external_context))
        try:
            return evaluator.eval(expression, previously_parsed=tree.body)
        except InvalidExpression as exc:
            raise UnsafeExpression(f"{exc} in expression {expression!r}") from None

    def _evaluator(self, names: dict[str, Any]) -> _Evaluator:
        # Building a simpleeval evaluator costs more than most evaluations (a bulk start evaluates
        # two timers per instance): one per environment, with the names of each call swapped in.
        evaluator = self.__dict__.get("_reused_evaluator")
        if evaluator is None:
            evaluator = self._reused_evaluator = _Evaluator(names, self.functions)
        evaluator.names = names
        return evaluator

    def execute(self, script, context, external_context=None):
        """Run a script of plain assignments, writing the results into the task data."""
        for targets, expression, op in parse_script(script):
            evaluator = _Evaluator(self._names(context, external_context), self.functions)
            try:
                value = evaluator.eval(ast.unparse(expression), previously_parsed=expression.body)
            except InvalidExpression as exc:
                raise UnsafeExpression(f"{exc} in script") from None
            for name in targets:
                context[name] = _AUG_OPS[type(op)](context[name], value) if op is not None else value
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        """Call a registered service function; SpiffWorkflow expects a JSON text back."""
        if self._call_service is None:
            raise UnsafeExpression(f"no service registry: cannot call '{operation_name}'")
        params = {name: spec["value"] for name, spec in (operation_params or {}).items()}
        return json.dumps(self._call_service(operation_name, params, context), default=str)


class RestrictedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine over :class:`RestrictedEnvironment`; validates with our rules."""

    def __init__(self, environment: RestrictedEnvironment | None = None):
        super().__init__(environment=environment or RestrictedEnvironment())

    def validate(self, expression):
        """Check an expression without evaluating it."""
        parse_expression(expression)

    def call_service(self, task, **kwargs):
        """Call a service; errors keep the task and the cause in the message."""
        from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:  # a failing service puts the task in ERROR, with the reason
            raise WorkflowTaskException(f"service '{kwargs.get('operation_name')}' failed: {err}",
                                        task=task, exception=err) from err


def now_iso(moment: datetime | None = None) -> str:
    """Return ``moment`` (default: now, UTC) as an ISO string, the form timers expect."""
    return (moment or datetime.now(timezone.utc)).isoformat()
