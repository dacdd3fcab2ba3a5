"""lianqing's generic BPMN runtime on SpiffWorkflow and SQLAlchemy.  No Flask, no league terms."""
from .assignment import Assignment, AssignmentResolver, LaneAssignmentResolver, TaskContext, TaskPolicy
from .clock import Clock, ManualClock, SystemClock
from .errors import (BpmnProblem, ConcurrentUpdate, EngineError, FieldError, FormInvalid, InvalidBpmn,
                     NotAllowed, NotFound, TaskAlreadyCompleted, UnsafeExpression, WorkflowFailed)
from .models import AuditEvent, Base, HumanTask, ProcessDefinition, ProcessInstance
from .runtime import CompletedTask, DeployResult, Engine, ProcessView, StartRequest
from .services import ServiceCall, ServiceRegistry

__all__ = [
    "Assignment", "AssignmentResolver", "LaneAssignmentResolver", "TaskContext", "TaskPolicy",
    "Clock", "ManualClock", "SystemClock",
    "BpmnProblem", "ConcurrentUpdate", "EngineError", "FieldError", "FormInvalid", "InvalidBpmn",
    "NotAllowed", "NotFound", "TaskAlreadyCompleted", "UnsafeExpression", "WorkflowFailed",
    "AuditEvent", "Base", "HumanTask", "ProcessDefinition", "ProcessInstance",
    "CompletedTask", "DeployResult", "Engine", "ProcessView", "ServiceCall", "ServiceRegistry", "StartRequest",
]
