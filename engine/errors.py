"""Typed errors raised by the engine.

Each carries a message a person can act on; the web layer turns them into HTTP answers in one
place (``web/errors.py``), the CLI prints them.
"""
from __future__ import annotations

from dataclasses import dataclass


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class BpmnProblem:
    """One thing wrong with a BPMN file: where it is and what to do about it."""

    message: str
    file: str | None = None
    line: int | None = None
    element_id: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        element = f" [{self.element_id}]" if self.element_id else ""
        return f"{where}{element}: {self.message}" if where or element else self.message


class InvalidBpmn(EngineError):
    """A BPMN file (or one of its form files) cannot be deployed."""

    http_status = 422

    def __init__(self, problems: list[BpmnProblem] | BpmnProblem):
        self.problems = problems if isinstance(problems, list) else [problems]
        super().__init__("; ".join(str(p) for p in self.problems))

    @property
    def file(self) -> str | None:
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def element_id(self) -> str | None:
        return self.problems[0].element_id


class UnsafeExpression(EngineError):
    """An expression or script uses something the restricted evaluator does not allow."""

    http_status = 422


@dataclass(frozen=True)
class FieldError:
    """One field of a submitted form that failed its JSON Schema."""

    field: str
    message: str


class FormInvalid(EngineError):
    """Submitted task data does not satisfy the task's JSON Schema."""

    http_status = 422

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("表单有误 / form invalid: " + "; ".join(f"{e.field}: {e.message}" for e in errors))


class NotFound(EngineError):
    """A definition, instance or task does not exist."""

    http_status = 404


class TaskAlreadyCompleted(EngineError):
    """The task was completed or cancelled already (perhaps by someone else a moment ago)."""

    http_status = 409


class ConcurrentUpdate(EngineError):
    """Someone else changed the same instance at the same moment; reload and try again."""

    http_status = 409


class NotAllowed(EngineError):
    """The actor may not do this to this task or instance."""

    http_status = 403


class WorkflowFailed(EngineError):
    """A step of the process failed at run time (a bad expression, a failing service)."""

    http_status = 422
