"""The BPMN runtime: deploy, start, claim, complete, fire timers, deliver messages, cancel.

Every operation takes a SQLAlchemy ``Session`` and leaves committing to the caller (one
operation = one unit of work), except :meth:`Engine.run_due_timers`, which is a sweeper and
commits each instance it fires.  Time comes from the engine's clock; SpiffWorkflow's timers read
the same clock through :mod:`engine.clock`.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable
from uuid import UUID

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import audit
from .assignment import AssigneePolicy, AssignmentResolver, LaneAssignmentResolver, TaskContext, TaskPolicy
from .clock import Clock, SystemClock, clock_in_effect, utc
from .definitions import FORM_PROPERTY, ParsedDefinition, parse_definition, read_xml
from .errors import (ConcurrentUpdate, EngineError, InvalidBpmn, NotFound, TaskAlreadyCompleted, UnsafeExpression,
                     WorkflowFailed)
from .expressions import RestrictedEnvironment, RestrictedScriptEngine
from .forms import validate_form
from .models import HumanTask, ProcessDefinition, ProcessInstance
from .serialization import spec_from_json, spec_to_json, state_from_json, state_to_json
from .services import ServiceCall, ServiceRegistry

OPEN = HumanTask.OPEN_STATES


@dataclass(frozen=True)
class DeployResult:
    """What :meth:`Engine.deploy` did: the stored definition, and whether it is a new version."""

    definition: ProcessDefinition
    created: bool


@dataclass(frozen=True)
class ProcessView:
    """An instance's diagram state: the BPMN XML and which elements are done, ready or waiting."""

    instance_id: int
    process_id: str
    bpmn_xml: str
    completed: list[str]
    ready: list[str]
    waiting: list[str]
    cancelled: list[str]
    status: str


class _WorkflowCache:
    """Deserialized workflows by instance id, valid only for the version they were stored at.

    An entry is taken out while an operation works on it and put back only after the operation's
    transaction commits, so a rolled-back change never leaks into the cache.
    """

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, instance_id: int, version: int) -> BpmnWorkflow | None:
        with self._lock:
            entry = self._entries.pop(instance_id, None)
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, instance_id: int, version: int, workflow: BpmnWorkflow) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[instance_id] = (version, workflow)
            self._entries.move_to_end(instance_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, instance_id: int) -> None:
        with self._lock:
            self._entries.pop(instance_id, None)


_PENDING_KEY = "lianqing_pending_cache"


@event.listens_for(Session, "after_commit")
def _publish_cached_workflows(session: Session) -> None:
    for cache, instance_id, version, workflow in session.info.pop(_PENDING_KEY, []):
        cache.put(instance_id, version, workflow)


@event.listens_for(Session, "after_rollback")
def _forget_cached_workflows(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


class Engine:
    """A BPMN runtime bound to a service registry, an assignment resolver, a policy and a clock."""

    def __init__(self, services: ServiceRegistry | None = None, resolver: AssignmentResolver | None = None,
                 policy: TaskPolicy | None = None, clock: Clock | None = None, cache_size: int = 2000):
        self.services = services or ServiceRegistry()
        self.resolver = resolver or LaneAssignmentResolver()
        self.policy = policy or AssigneePolicy()
        self.clock = clock or SystemClock()
        self._specs: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._specs_lock = threading.Lock()
        self._cache = _WorkflowCache(cache_size)

    # ----------------------------------------------------------------------------- definitions

    def check(self, content: bytes, filename: str, forms: dict[str, Any] | None = None) -> ParsedDefinition:
        """Check a BPMN file without deploying it; raise :class:`InvalidBpmn` with every problem."""
        return parse_definition(content, filename, forms, known_services=set(self.services.functions))

    def deploy(self, session: Session, content: bytes, filename: str, forms: dict[str, Any] | None = None,
               actor: str | None = None) -> DeployResult:
        """Deploy a BPMN file; the same content again returns the existing version unchanged."""
        parsed = self.check(content, filename, forms)
        existing = session.scalar(select(ProcessDefinition).where(
            ProcessDefinition.process_id == parsed.process_id,
            ProcessDefinition.content_hash == parsed.content_hash))
        if existing is not None:
            return DeployResult(existing, created=False)
        latest = session.scalar(select(func.max(ProcessDefinition.version)).where(
            ProcessDefinition.process_id == parsed.process_id)) or 0
        definition = ProcessDefinition(
            process_id=parsed.process_id, name=parsed.name, version=latest + 1, content_hash=parsed.content_hash,
            filename=parsed.filename, bpmn_xml=parsed.bpmn_xml, forms=parsed.forms,
            spec_json=spec_to_json(parsed.spec, parsed.subprocess_specs), deployed_at=self.clock.now(),
            deployed_by=actor)
        session.add(definition)
        session.flush()
        with self._specs_lock:
            self._specs[definition.id] = (parsed.spec, parsed.subprocess_specs, parsed.forms)
        audit.record(session, self.clock.now(), "deployed", actor=actor,
                     after={"process_id": parsed.process_id, "version": definition.version},
                     detail=parsed.filename)
        return DeployResult(definition, created=True)

    def deploy_file(self, session: Session, path: str | Path, actor: str | None = None) -> DeployResult:
        """Deploy a BPMN file from disk together with the form files it names (next to it)."""
        path = Path(path)
        content = path.read_bytes()
        return self.deploy(session, content, path.name, forms=forms_beside(path, content), actor=actor)

    def latest_definition(self, session: Session, process_id: str) -> ProcessDefinition:
        """Return the newest deployed version of ``process_id``."""
        definition = session.scalar(select(ProcessDefinition).where(ProcessDefinition.process_id == process_id)
                                    .order_by(ProcessDefinition.version.desc()).limit(1))
        if definition is None:
            raise NotFound(f"流程「{process_id}」尚未部署 / process '{process_id}' is not deployed")
        return definition

    def _spec_of(self, session: Session, definition_id: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """(spec, subprocess specs, forms) of a deployed version, restored once and cached."""
        with self._specs_lock:
            cached = self._specs.get(definition_id)
        if cached is None:
            definition = session.get(ProcessDefinition, definition_id)
            cached = (*spec_from_json(definition.spec_json), definition.forms)
            with self._specs_lock:
                self._specs[definition_id] = cached
        return cached

    # ------------------------------------------------------------------------------- instances

    def start(self, session: Session, process_id: str, data: dict[str, Any] | None = None,
              organisation_id: str | None = None, business_key: str | None = None,
              actor: str | None = None, definition: ProcessDefinition | None = None) -> ProcessInstance:
        """Start an instance of the latest version of ``process_id`` and run it to its first wait."""
        definition = definition or self.latest_definition(session, process_id)
        spec, subprocess_specs, _forms = self._spec_of(session, definition.id)
        now = self.clock.now()
        instance = ProcessInstance(definition_id=definition.id,
                                   process_id=definition.process_id, business_key=business_key,
                                   organisation_id=str(organisation_id) if organisation_id is not None else None,
                                   status="running", state_json="", started_by=actor, started_at=now)
        session.add(instance)
        session.flush()
        workflow = BpmnWorkflow(spec, subprocess_specs)
        workflow.script_engine = self._script_engine(session, instance)
        workflow.task_tree.data.update(dict(data or {}))
        self._step(workflow, instance)
        audit.record(session, now, "started", actor=actor, instance_id=instance.id, after=dict(data or {}))
        self._save(session, instance, workflow, actor)
        return instance

    def instance(self, session: Session, instance_id: int) -> ProcessInstance:
        """Return an instance or raise :class:`NotFound`."""
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"流程实例 {instance_id} 不存在 / instance {instance_id} does not exist")
        return instance

    def _load_for_update(self, session: Session, instance_id: int) -> ProcessInstance:
        instance = session.get(ProcessInstance, instance_id, with_for_update=True, populate_existing=True)
        if instance is None:
            raise NotFound(f"流程实例 {instance_id} 不存在 / instance {instance_id} does not exist")
        return instance

    def _workflow(self, session: Session, instance: ProcessInstance) -> BpmnWorkflow:
        workflow = self._cache.take(instance.id, instance.version)
        if workflow is None:
            spec, subprocess_specs, _forms = self._spec_of(session, instance.definition_id)
            workflow = state_from_json(instance.state_json, spec, subprocess_specs)
        workflow.script_engine = self._script_engine(session, instance)
        return workflow

    def _script_engine(self, session: Session, instance: ProcessInstance) -> RestrictedScriptEngine:
        def call_service(name: str, params: dict[str, Any], data: dict[str, Any]) -> Any:
            call = ServiceCall(session=session, instance_id=instance.id, organisation_id=instance.organisation_id,
                               now=self.clock.now(), task_data=data)
            return self.services.call(name, call, params)
        return RestrictedScriptEngine(RestrictedEnvironment(call_service=call_service))

    def _step(self, workflow: BpmnWorkflow, instance: ProcessInstance, complete: Any = None) -> None:
        """Run SpiffWorkflow under the engine clock; turn its failures into :class:`WorkflowFailed`."""
        try:
            with clock_in_effect(self.clock):
                if complete is not None:
                    complete()
                workflow.do_engine_steps()
        except (SpiffWorkflowException, UnsafeExpression, LookupError) as exc:
            raise WorkflowFailed(f"流程「{instance.process_id}」运行出错 / step failed: {_describe(exc)}") from exc

    def _save(self, session: Session, instance: ProcessInstance, workflow: BpmnWorkflow, actor: str | None,
              completed_row: HumanTask | None = None) -> None:
        """Write the state, the human-task projection and the next timer in the caller's transaction."""
        now = self.clock.now()
        instance.state_json = state_to_json(workflow)
        instance.next_timer_at = _earliest_timer(workflow)
        self._sync_human_tasks(session, instance, workflow, completed_row)
        if workflow.is_completed() and instance.status == "running":
            instance.status = "completed"
            instance.ended_at = now
            instance.next_timer_at = None
            instance.data = _jsonable(workflow.data)
            audit.record(session, now, "completed", actor=actor, instance_id=instance.id)
        try:
            session.flush()
        except StaleDataError:
            raise ConcurrentUpdate(f"流程实例 {instance.id} 刚被他人修改，请刷新后重试 / instance {instance.id} "
                                   "was changed by someone else a moment ago; reload and try again") from None
        session.info.setdefault(_PENDING_KEY, []).append((self._cache, instance.id, instance.version, workflow))

    def _sync_human_tasks(self, session: Session, instance: ProcessInstance, workflow: BpmnWorkflow,
                          completed_row: HumanTask | None) -> None:
        now = self.clock.now()
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        open_rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                            HumanTask.state.in_(OPEN))).all()
        known = {row.task_id for row in open_rows}
        if completed_row is not None:
            known.add(completed_row.task_id)
        for row in open_rows:
            if row.task_id in ready:
                continue
            task = workflow.get_task_from_id(UUID(row.task_id))
            if task is not None and task.state == TaskState.COMPLETED:
                row.state, row.completed_at = "completed", now
                audit.record(session, now, "task_completed", instance_id=instance.id, task_id=row.task_id,
                             element_id=row.bpmn_id)
            else:
                row.state, row.completed_at = "cancelled", now
                escalated = task is not None and _interrupted_by_timer(task)
                audit.record(session, now, "escalated" if escalated else "task_cancelled",
                             instance_id=instance.id, task_id=row.task_id, element_id=row.bpmn_id,
                             before={"assignee": row.assignee, "due_at": _iso(row.due_at)})
        for task_id, task in ready.items():
            if task_id in known:
                continue
            row = self._new_human_task(instance, workflow, task, now)
            session.add(row)
            audit.record(session, now, "task_created", instance_id=instance.id, task_id=task_id,
                         element_id=row.bpmn_id,
                         after={"assignee": row.assignee, "role": row.candidate_role,
                                "organisation_id": row.organisation_id, "due_at": _iso(row.due_at)})

    def _new_human_task(self, instance: ProcessInstance, workflow: BpmnWorkflow, task, now: datetime) -> HumanTask:
        spec = task.task_spec
        extensions = getattr(spec, "extensions", None) or {}
        properties = extensions.get("properties", {}) or {}
        engine = workflow.script_engine
        context = TaskContext(lane=spec.lane, organisation_id=instance.organisation_id, data=task.data,
                              properties=properties, evaluate=lambda text: engine.evaluate(task, text))
        try:
            assignment = self.resolver.resolve(context)
        except (SpiffWorkflowException, UnsafeExpression) as exc:
            raise WorkflowFailed(f"任务「{spec.bpmn_name or spec.bpmn_id}」无法分配 / cannot assign: "
                                 f"{_describe(exc)}") from exc
        due_at, remind_at = _deadlines(task)
        return HumanTask(instance_id=instance.id, task_id=str(task.id), process_id=instance.process_id,
                         bpmn_id=spec.bpmn_id, name=spec.bpmn_name or spec.bpmn_id, lane=spec.lane,
                         candidate_role=assignment.candidate_role, organisation_id=assignment.organisation_id,
                         assignee=assignment.assignee, form_key=properties.get(FORM_PROPERTY),
                         instructions=extensions.get("instructionsForEndUser"),
                         due_at=due_at, remind_at=remind_at,
                         state="claimed" if assignment.assignee else "ready", created_at=now)

    # ----------------------------------------------------------------------------- human tasks

    def human_task(self, session: Session, human_task_id: int) -> HumanTask:
        """Return a human task or raise :class:`NotFound`."""
        row = session.get(HumanTask, human_task_id)
        if row is None:
            raise NotFound(f"任务 {human_task_id} 不存在 / task {human_task_id} does not exist")
        return row

    def ready_tasks(self, session: Session, instance_id: int | None = None, limit: int = 100,
                    offset: int = 0) -> list[HumanTask]:
        """Open human tasks, most urgent first (optionally of one instance)."""
        query = select(HumanTask).where(HumanTask.state.in_(OPEN))
        if instance_id is not None:
            query = query.where(HumanTask.instance_id == instance_id)
        query = query.order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.id)
        return list(session.scalars(query.limit(limit).offset(offset)))

    def form_schema(self, session: Session, row: HumanTask) -> dict[str, Any] | None:
        """The JSON Schema a task's data must satisfy, or ``None`` if it has no form."""
        if row.form_key is None:
            return None
        definition_id = session.scalar(select(ProcessInstance.definition_id)
                                       .where(ProcessInstance.id == row.instance_id))
        return self._spec_of(session, definition_id)[2].get(row.form_key)

    def _guard_open(self, session: Session, row: HumanTask, values: dict[str, Any]) -> None:
        """Change an open task with a conditional UPDATE: of two racing callers exactly one wins."""
        result = session.execute(update(HumanTask).where(HumanTask.id == row.id, HumanTask.state.in_(OPEN))
                                 .values(**values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            session.refresh(row)
            raise _already_done(row)
        for key, value in values.items():
            set_committed_value(row, key, value)

    def claim(self, session: Session, human_task_id: int, actor: str) -> HumanTask:
        """Take an offered task for ``actor``."""
        row = self.human_task(session, human_task_id)
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(actor, row, "claim")
        before = row.assignee
        self._guard_open(session, row, {"assignee": actor, "state": "claimed"})
        audit.record(session, self.clock.now(), "claimed", actor=actor, instance_id=row.instance_id,
                     task_id=row.task_id, element_id=row.bpmn_id, before={"assignee": before},
                     after={"assignee": actor})
        return row

    def unclaim(self, session: Session, human_task_id: int, actor: str) -> HumanTask:
        """Give a claimed task back to its role."""
        row = self.human_task(session, human_task_id)
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(actor, row, "unclaim")
        before = row.assignee
        self._guard_open(session, row, {"assignee": None, "state": "ready"})
        audit.record(session, self.clock.now(), "unclaimed", actor=actor, instance_id=row.instance_id,
                     task_id=row.task_id, element_id=row.bpmn_id, before={"assignee": before},
                     after={"assignee": None})
        return row

    def reassign(self, session: Session, human_task_id: int, new_assignee: str, actor: str | None) -> HumanTask:
        """Delegate a task to another person."""
        row = self.human_task(session, human_task_id)
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(actor, row, "reassign")
        before = row.assignee
        self._guard_open(session, row, {"assignee": new_assignee, "state": "claimed"})
        audit.record(session, self.clock.now(), "reassigned", actor=actor, instance_id=row.instance_id,
                     task_id=row.task_id, element_id=row.bpmn_id, before={"assignee": before},
                     after={"assignee": new_assignee})
        return row

    def complete_task(self, session: Session, human_task_id: int, data: dict[str, Any] | None,
                      actor: str | None) -> HumanTask:
        """Complete a task with form data and run the process on to its next wait.

        Raises :class:`FormInvalid` (nothing written), :class:`TaskAlreadyCompleted` (someone was
        first), :class:`NotAllowed`, or :class:`WorkflowFailed` (the process could not go on with
        this data; nothing written, the task stays open).
        """
        row = self.human_task(session, human_task_id)
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(actor, row, "complete")
        data = {} if data is None else data
        validate_form(self.form_schema(session, row), data)
        data = dict(data)
        now = self.clock.now()
        self._guard_open(session, row, {"state": "completed", "completed_by": actor, "completed_at": now,
                                        "assignee": row.assignee or actor})
        instance = self._load_for_update(session, row.instance_id)
        workflow = self._workflow(session, instance)
        task = workflow.get_task_from_id(UUID(row.task_id))
        if task is None or task.state != TaskState.READY:
            raise TaskAlreadyCompleted(f"任务「{row.name}」已不在办理中 / task '{row.name}' is no longer open")

        def run_task():
            task.set_data(**data)
            task.run()
        self._step(workflow, instance, complete=run_task)
        audit.record(session, now, "task_completed", actor=actor, instance_id=instance.id, task_id=row.task_id,
                     element_id=row.bpmn_id, after=data)
        self._save(session, instance, workflow, actor, completed_row=row)
        return row

    # ---------------------------------------------------------------------------------- timers

    def due_instance_ids(self, session: Session, now: datetime, limit: int) -> list[int]:
        """Ids of running instances whose next timer is due, locking them on PostgreSQL."""
        query = (select(ProcessInstance.id).where(ProcessInstance.status == "running",
                                                  ProcessInstance.next_timer_at <= now)
                 .order_by(ProcessInstance.next_timer_at).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def run_due_timers(self, session: Session, now: datetime | None = None, batch_size: int = 100) -> int:
        """Fire every due timer once; commit after each instance.  Returns how many instances fired.

        Safe with several sweepers at once: PostgreSQL hands each due row to one sweeper
        (``FOR UPDATE SKIP LOCKED``); on any database the instance is re-read under lock and
        re-checked, and the version column refuses a second write of the same step.
        """
        now = utc(now or self.clock.now())
        fired, skipped = 0, set()
        while True:
            ids = [i for i in self.due_instance_ids(session, now, batch_size + len(skipped)) if i not in skipped]
            if not ids:
                session.commit()
                return fired
            for instance_id in ids:
                try:
                    if self._fire_instance(session, instance_id, now):
                        fired += 1
                    else:
                        skipped.add(instance_id)
                    session.commit()
                except (ConcurrentUpdate, StaleDataError):
                    session.rollback()
                    skipped.add(instance_id)

    def _fire_instance(self, session: Session, instance_id: int, now: datetime) -> bool:
        instance = self._load_for_update(session, instance_id)
        if instance.status != "running" or instance.next_timer_at is None or utc(instance.next_timer_at) > now:
            return False  # another sweeper fired it already
        workflow = self._workflow(session, instance)
        waiting_before = {t.id: t for t in _waiting_timers(workflow)}
        try:
            with clock_in_effect(_FixedClock(now)):
                workflow.refresh_timers()
                workflow.do_engine_steps()
        except (SpiffWorkflowException, UnsafeExpression, LookupError) as exc:
            self._mark_failed(session, instance, exc, now)
            return True
        for task in waiting_before.values():
            if task.state != TaskState.WAITING or task.internal_data.get("event_fired"):
                audit.record(session, now, "timer_fired", instance_id=instance.id, task_id=str(task.id),
                             element_id=task.task_spec.bpmn_id,
                             detail=str(task.internal_data.get("event_value") or ""))
        self._save(session, instance, workflow, actor=None)
        return True

    def _mark_failed(self, session: Session, instance: ProcessInstance, exc: Exception, now: datetime) -> None:
        self._cache.drop(instance.id)
        instance.status = "error"
        instance.error = _describe(exc)
        instance.next_timer_at = None
        audit.record(session, now, "error", instance_id=instance.id, detail=instance.error)
        session.flush()

    # ------------------------------------------------------------------------ messages, cancel

    def send_message(self, session: Session, business_key: str, name: str, payload: Any = None,
                     actor: str | None = None) -> list[ProcessInstance]:
        """Deliver message ``name`` to the running instances with ``business_key`` that wait for it."""
        return self._deliver(session, business_key, MessageEventDefinition(name), payload, actor, "message")

    def send_signal(self, session: Session, business_key: str, name: str, payload: Any = None,
                    actor: str | None = None) -> list[ProcessInstance]:
        """Deliver signal ``name`` to the running instances with ``business_key`` that wait for it."""
        return self._deliver(session, business_key, SignalEventDefinition(name), payload, actor, "signal")

    def _deliver(self, session: Session, business_key: str, definition, payload: Any, actor: str | None,
                 kind: str) -> list[ProcessInstance]:
        ids = session.scalars(select(ProcessInstance.id).where(ProcessInstance.business_key == business_key,
                                                               ProcessInstance.status == "running")).all()
        delivered = []
        for instance_id in ids:
            instance = self._load_for_update(session, instance_id)
            workflow = self._workflow(session, instance)
            try:
                self._step(workflow, instance, complete=lambda: workflow.send_event(
                    BpmnEvent(definition, payload=payload)))
            except WorkflowFailed as exc:
                if isinstance(exc.__cause__, WorkflowException) and "not waiting" in str(exc.__cause__):
                    self._cache.drop(instance.id)
                    continue
                raise
            audit.record(session, self.clock.now(), kind, actor=actor, instance_id=instance.id,
                         detail=definition.name, after={"payload": _jsonable(payload)})
            self._save(session, instance, workflow, actor)
            delivered.append(instance)
        if not delivered:
            raise NotFound(f"没有业务键为 {business_key} 且在等待「{definition.name}」的流程 / no running instance "
                           f"with business key '{business_key}' is waiting for {kind} '{definition.name}'")
        return delivered

    def cancel(self, session: Session, instance_id: int, actor: str | None, reason: str) -> ProcessInstance:
        """Cancel a running instance: every open task is cancelled, the history is kept."""
        instance = self._load_for_update(session, instance_id)
        if instance.status != "running":
            raise TaskAlreadyCompleted(f"流程实例 {instance_id} 已结束（{instance.status}）/ instance "
                                       f"{instance_id} is already {instance.status}")
        workflow = self._workflow(session, instance)
        workflow.cancel()
        now = self.clock.now()
        instance.status, instance.ended_at = "cancelled", now
        audit.record(session, now, "cancelled", actor=actor, instance_id=instance.id, detail=reason)
        self._save(session, instance, workflow, actor)
        return instance

    # ------------------------------------------------------------------------------------ view

    def process_view(self, session: Session, instance_id: int) -> ProcessView:
        """The BPMN XML of an instance's version and the ids of its done, ready and waiting elements."""
        instance = self.instance(session, instance_id)
        workflow = self._workflow(session, instance)
        self._cache.put(instance.id, instance.version, workflow)
        groups: dict[str, set[str]] = {"completed": set(), "ready": set(), "waiting": set(), "cancelled": set()}
        for task in workflow.get_tasks():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if bpmn_id is None:
                continue
            if task.state == TaskState.COMPLETED:
                groups["completed"].add(bpmn_id)
            elif task.state in (TaskState.READY, TaskState.STARTED):
                groups["ready"].add(bpmn_id)
            elif task.state == TaskState.WAITING:
                groups["waiting"].add(bpmn_id)
            elif task.state == TaskState.CANCELLED:
                groups["cancelled"].add(bpmn_id)
        bpmn_xml = session.scalar(select(ProcessDefinition.bpmn_xml)
                                  .where(ProcessDefinition.id == instance.definition_id))
        return ProcessView(instance.id, instance.process_id, bpmn_xml,
                           **{k: sorted(v) for k, v in groups.items()}, status=instance.status)


class _FixedClock:
    def __init__(self, moment: datetime):
        self._moment = moment

    def now(self) -> datetime:
        return self._moment


def forms_beside(path: Path, content: bytes) -> dict[str, bytes]:
    """Read the form files a BPMN file names (``formJsonSchemaFilename``) from its directory."""
    try:
        tree = read_xml(content, path.name)
    except InvalidBpmn:
        return {}  # the deploy itself reports the problem with its line
    names = set(tree.getroot().xpath(f"//*[local-name()='property' and @name='{FORM_PROPERTY}']/@value"))
    forms = {}
    for name in names:
        candidate = (path.parent / name)
        if candidate.parent == path.parent and candidate.is_file():
            forms[name] = candidate.read_bytes()
    return forms


def _waiting_timers(workflow: BpmnWorkflow) -> Iterable:
    return [task for task in workflow.event_manager.tasks.values() if _has_timer(task.task_spec.event_definition)]


def _has_timer(definition) -> bool:
    if isinstance(definition, TimerEventDefinition):
        return True
    return any(isinstance(d, TimerEventDefinition) for d in getattr(definition, "event_definitions", None) or [])


def _timer_moment(task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if isinstance(value, dict):  # a cycle timer: {"cycles": n, "next": iso, ...}
        value = value.get("next") if value.get("cycles") != 0 else None
    return utc(datetime.fromisoformat(value)) if isinstance(value, str) else None


def _earliest_timer(workflow: BpmnWorkflow) -> datetime | None:
    """The earliest due time of the timers the workflow (and its subprocesses) waits on."""
    times = [moment for task in workflow.event_manager.tasks.values()
             if _has_timer(task.task_spec.event_definition) and (moment := _timer_moment(task)) is not None]
    return min(times) if times else None


def _deadlines(task) -> tuple[datetime | None, datetime | None]:
    """due_at from interrupting boundary timers, remind_at from non-interrupting ones."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None, None
    due, remind = [], []
    for sibling in parent.children:
        definition = getattr(sibling.task_spec, "event_definition", None)
        moment = _timer_moment(sibling) if isinstance(definition, TimerEventDefinition) else None
        if moment is None:
            continue
        (due if sibling.task_spec.cancel_activity else remind).append(moment)
    return (min(due) if due else None), (min(remind) if remind else None)


def _interrupted_by_timer(task) -> bool:
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return False
    return any(isinstance(getattr(s.task_spec, "event_definition", None), TimerEventDefinition)
               and s.task_spec.cancel_activity and s.state == TaskState.COMPLETED for s in parent.children)


def _already_done(row: HumanTask) -> TaskAlreadyCompleted:
    if row.state == "completed":
        who = f"，办理人 {row.completed_by}" if row.completed_by else ""
        return TaskAlreadyCompleted(f"任务「{row.name}」已完成{who} / task '{row.name}' was already completed"
                                    + (f" by {row.completed_by}" if row.completed_by else ""))
    return TaskAlreadyCompleted(f"任务「{row.name}」已取消（可能已超时升级）/ task '{row.name}' was cancelled "
                                "(it may have been escalated after its deadline)")


def _describe(exc: BaseException) -> str:
    parts = [str(exc)]
    cause = exc.__cause__ or getattr(exc, "exception", None)
    if cause is not None and str(cause) not in parts[0]:
        parts.append(str(cause))
    notes = getattr(exc, "__notes__", None)
    if notes:
        parts.extend(notes)
    return " — ".join(p for p in parts if p)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


__all__ = ["Engine", "DeployResult", "ProcessView", "EngineError", "forms_beside"]
