"""The BPMN runtime: deploy, start, claim, complete, fire timers, deliver messages, cancel.

Every operation takes a SQLAlchemy ``Session`` and leaves committing to the caller (one
operation = one unit of work; on an error the caller rolls back), except
:meth:`Engine.run_due_timers`, which is a sweeper and commits each batch of instances it fires.  Time
comes from the engine's clock; SpiffWorkflow's timers read the same clock through :mod:`engine.clock`.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence
from uuid import UUID

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, make_transient_to_detached
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import spiff_speedups, store
from .assignment import AssigneePolicy, AssignmentResolver, LaneAssignmentResolver, TaskPolicy
from .audit import AuditListener, AuditLog, write_events
from .clock import Clock, SystemClock, clock_in_effect, utc
from .definitions import FORM_PROPERTY, ParsedDefinition, parse_definition, read_xml
from .errors import (ConcurrentUpdate, EngineError, InvalidBpmn, NotFound, TaskAlreadyCompleted, UnsafeExpression,
                     WorkflowFailed)
from .expressions import RestrictedEnvironment, RestrictedScriptEngine
from .forms import validate_form
from .multi_instance import DEFAULT_MAX_MULTI_INSTANCE, fan_out_limit
from .models import HumanTask, ProcessDefinition, ProcessInstance
from .projection import (diff_ready_tasks, earliest_timer, new_task_row, ready_manual_tasks, reminded_task,
                         waiting_timers)
from .serialization import new_workflow, spec_from_json, spec_to_json, state_from_bytes, state_to_bytes
from .services import ServiceCall, ServiceRegistry
from .store import InstanceHeader

OPEN = HumanTask.OPEN_STATES

spiff_speedups.install()  # SpiffWorkflow's tree walks made cheaper (or left alone, with a warning)


@dataclass(frozen=True)
class DeployResult:
    """What :meth:`Engine.deploy` did: the stored definition, and whether it is a new version."""

    definition: ProcessDefinition
    created: bool


@dataclass(frozen=True)
class CompletedTask:
    """What :meth:`Engine.complete_task` did."""

    id: int
    name: str
    instance_id: int
    completed_by: str | None
    completed_at: datetime
    next_task_ids: tuple[int, ...] = ()  # the human tasks this completion opened


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


@dataclass(frozen=True)
class StartRequest:
    """One instance for :meth:`Engine.start_many`: its start data, organisation and business key."""

    data: dict[str, Any]
    organisation_id: str | None = None
    business_key: str | None = None


@dataclass
class _Change:
    """What one step of one instance changed, computed before anything is written."""

    header: InstanceHeader
    workflow: BpmnWorkflow | None
    log: AuditLog
    values: dict[str, Any]
    closed: list[dict[str, Any]]
    new_rows: list[dict[str, Any]]
    new_row: dict[str, Any] | None = None  # a started instance whose row is not written yet: insert, not update


@dataclass(frozen=True)
class _Started:
    """A started instance: the columns of its row and the human tasks its first step opened."""

    columns: dict[str, Any]
    new_task_ids: tuple[int, ...]


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
                 policy: TaskPolicy | None = None, clock: Clock | None = None, cache_size: int = 2000,
                 listeners: tuple[AuditListener, ...] = (), max_multi_instance: int = DEFAULT_MAX_MULTI_INSTANCE):
        self.services = services or ServiceRegistry()
        self.listeners = tuple(listeners)
        self.resolver = resolver or LaneAssignmentResolver()
        self.policy = policy or AssigneePolicy()
        self.clock = clock or SystemClock()
        self._specs: dict[int, tuple[Any, dict[str, Any], dict[str, Any]]] = {}
        self._specs_lock = threading.Lock()
        self._cache = _WorkflowCache(cache_size)
        self.max_multi_instance = max_multi_instance  # instances one multi-instance activity may create

    def _log(self, at: datetime, actor: str | None = None, instance_id: int | None = None) -> AuditLog:
        return AuditLog(at, actor, instance_id, self.listeners)

    # ----------------------------------------------------------------------------- definitions

    def check(self, content: bytes, filename: str, forms: dict[str, Any] | None = None) -> ParsedDefinition:
        """Check a BPMN file without deploying it; raise :class:`InvalidBpmn` with every problem."""
        return parse_definition(content, filename, forms, known_services=set(self.services.functions),
                                max_multi_instance=self.max_multi_instance)

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
        now = self.clock.now()
        definition = ProcessDefinition(
            process_id=parsed.process_id, name=parsed.name, version=latest + 1, content_hash=parsed.content_hash,
            filename=parsed.filename, bpmn_xml=parsed.bpmn_xml, forms=parsed.forms,
            spec_json=spec_to_json(parsed.spec, parsed.subprocess_specs), deployed_at=now, deployed_by=actor)
        session.add(definition)
        session.flush()
        with self._specs_lock:
            self._specs[definition.id] = (parsed.spec, parsed.subprocess_specs, parsed.forms)
        log = self._log(now, actor)
        log.add("deployed", after={"process_id": parsed.process_id, "version": definition.version},
                detail=parsed.filename)
        log.write(session)
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
            if definition is None:
                raise NotFound(f"流程定义 {definition_id} 不存在 / process definition {definition_id} does not exist")
            cached = (*spec_from_json(definition.spec_json), definition.forms)
            with self._specs_lock:
                self._specs[definition_id] = cached
        return cached

    # ------------------------------------------------------------------------------- instances

    def start(self, session: Session, process_id: str, data: dict[str, Any] | None = None,
              organisation_id: str | None = None, business_key: str | None = None,
              actor: str | None = None, definition_id: int | None = None) -> ProcessInstance:
        """Start an instance of ``process_id`` (latest version, or ``definition_id``) up to its first wait."""
        if definition_id is None:
            definition_id = store.latest_definition_id(session, process_id)
            if definition_id is None:
                raise NotFound(f"流程「{process_id}」尚未部署 / process '{process_id}' is not deployed")
        [started] = self._start(session, definition_id, [StartRequest(data or {}, organisation_id, business_key)],
                                actor, bulk=False)
        columns = dict(started.columns)
        instance = ProcessInstance(**columns)
        instance.new_task_ids = started.new_task_ids
        make_transient_to_detached(instance)
        session.add(instance)
        return instance

    def start_many(self, session: Session, definition_id: int, requests: Sequence[StartRequest],
                   actor: str | None = None) -> list[int]:
        """Start one instance of a deployed version per request, in bulk; return their ids in request order.

        Each instance ends up exactly as :meth:`start` would leave it (state, human tasks, audit
        events, listener side effects), but the rows are written with a few batched statements
        and the audit listeners are called once with the events of all requests.  Runs in the
        caller's transaction and never commits.  Raises :class:`NotFound` for an unknown
        ``definition_id`` and :class:`WorkflowFailed` naming the request whose first step failed
        (also as its ``request_index`` and ``business_key`` attributes); the caller then rolls
        back and nothing is left behind.
        """
        return [started.columns["id"] for started in self._start(session, definition_id, requests, actor, bulk=True)]

    def _start(self, session: Session, definition_id: int, requests: Sequence[StartRequest], actor: str | None,
               bulk: bool) -> list[_Started]:
        """Run each new workflow to its first wait, then write rows, tasks and audit in bulk.

        On PostgreSQL the ids are drawn from the sequence first and each instance row is written
        once, complete, at the end; an instance whose first step calls a service gets its row
        just before that call (a service may need it) and is updated at the end.  Elsewhere the
        rows are inserted first and updated at the end.
        """
        spec, subprocess_specs, _forms = self._spec_of(session, definition_id)
        if not requests:
            return []
        now = self.clock.now()
        rows = [{"definition_id": definition_id, "process_id": spec.name, "business_key": request.business_key,
                 "organisation_id": str(request.organisation_id) if request.organisation_id is not None else None,
                 "status": "running", "state": b"", "data": {}, "version": 1, "started_by": actor, "started_at": now}
                for request in requests]
        ids = store.reserve_instance_ids(session, len(rows))
        if ids is None:  # no sequence to draw from: the rows go in first and are updated at the end
            ids = store.insert_instances(session, rows)
            written_early = set(ids)
        else:
            written_early = set()

        running: list[Any] = [None, None]  # (index, header) of the request whose workflow runs now
        lookups: dict[Any, Any] = {}  # the resolver's reads, for every instance of this call (TaskContext.lookups)

        def write_row_before_service() -> None:
            lookups.clear()  # a service may change what the resolver read (e.g. grant a role)
            index = running[0]
            if ids[index] not in written_early:
                store.insert_instances(session, [dict(rows[index], id=ids[index])])
                written_early.add(ids[index])

        # One script engine for all: the workflows run one after the other and are not kept.
        script_engine = self._script_engine(session, lambda: running[1], write_row_before_service)
        changes = []
        for index, (request, row, instance_id) in enumerate(zip(requests, rows, ids)):
            header = InstanceHeader(instance_id, 1, "running", definition_id, spec.name, row["organisation_id"],
                                    request.business_key, None)
            running[:] = index, header
            data = dict(request.data or {})
            try:
                workflow = new_workflow(spec, subprocess_specs)
                workflow.script_engine = script_engine
                workflow.task_tree.data.update(data)
                self._step(workflow, header)
                log = self._log(now, actor, instance_id)
                log.add("started", after=_jsonable(data))
                change = self._changes(session, header, workflow, log, ready_before=set(), lookups=lookups)
                if bulk:
                    change.workflow = None  # not cached: let it go now rather than hold hundreds in memory
                changes.append(change)
            except WorkflowFailed as exc:
                if not bulk:
                    raise
                raise _request_failed(exc, index, len(requests), request.business_key) from exc
        for change, row in zip(changes, rows):
            if change.header.id not in written_early:  # every column, so that all rows have the same keys
                change.new_row = dict(row, id=change.header.id, error=None, ended_at=None, next_timer_at=None)
        written = self._write(session, changes, task_ids=not bulk, cache=not bulk)
        started = []
        for row, instance_id, (values, new_task_ids) in zip(rows, ids, written):
            columns = dict(row, id=instance_id, error=None, ended_at=None, next_timer_at=None)
            columns.update(values)
            started.append(_Started(columns, new_task_ids))
        return started

    def instance(self, session: Session, instance_id: int) -> ProcessInstance:
        """Return an instance or raise :class:`NotFound`."""
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            raise NotFound(f"流程实例 {instance_id} 不存在 / instance {instance_id} does not exist")
        return instance

    def _workflow(self, session: Session, header: InstanceHeader) -> BpmnWorkflow:
        workflow = self._cache.take(header.id, header.version)
        if workflow is None:
            spec, subprocess_specs, _forms = self._spec_of(session, header.definition_id)
            workflow = state_from_bytes(store.load_state(session, header.id), spec, subprocess_specs)
        workflow.script_engine = self._script_engine(session, lambda: header)
        return workflow

    def _workflows(self, session: Session, headers: list[InstanceHeader]) -> list[BpmnWorkflow]:
        """The workflows of several instances: cached ones, the others restored from one read of their states."""
        workflows = [self._cache.take(header.id, header.version) for header in headers]
        states = store.load_states(session, [h.id for h, w in zip(headers, workflows) if w is None])
        for index, header in enumerate(headers):
            if workflows[index] is None:
                spec, subprocess_specs, _forms = self._spec_of(session, header.definition_id)
                workflows[index] = state_from_bytes(states[header.id], spec, subprocess_specs)
        return workflows

    def _script_engine(self, session: Session, header_of: Callable[[], InstanceHeader],
                       before_service: Callable[[], None] | None = None) -> RestrictedScriptEngine:
        """A script engine whose service calls run for the instance ``header_of()`` names at the time."""
        def call_service(name: str, params: dict[str, Any], data: dict[str, Any]) -> Any:
            if before_service is not None:
                before_service()
            header = header_of()
            call = ServiceCall(session=session, instance_id=header.id, organisation_id=header.organisation_id,
                               now=self.clock.now(), task_data=data)
            return self.services.call(name, call, params)
        return RestrictedScriptEngine(RestrictedEnvironment(call_service=call_service))

    def _step(self, workflow: BpmnWorkflow, header: InstanceHeader, action: Callable[[], Any] | None = None,
              clock: Clock | None = None) -> None:
        """Run SpiffWorkflow under the engine clock; turn its failures into :class:`WorkflowFailed`."""
        try:
            with clock_in_effect(clock or self.clock), fan_out_limit(self.max_multi_instance):
                if action is not None:
                    action()
                workflow.do_engine_steps()
                workflow.get_events()  # events nobody inside caught (e.g. a signal to no one): drop them
        except (SpiffWorkflowException, UnsafeExpression, LookupError) as exc:
            raise WorkflowFailed(f"流程「{header.process_id}」运行出错 / step failed: {_describe(exc)}") from exc

    def _save(self, session: Session, header: InstanceHeader, workflow: BpmnWorkflow, log: AuditLog,
              ready_before: set[str], completed_task: str | None = None,
              status: str | None = None) -> dict[str, Any]:
        """Write state, projection, next timer and audit in the caller's transaction; return what changed."""
        change = self._changes(session, header, workflow, log, ready_before, completed_task, status)
        [(values, new_task_ids)] = self._write(session, [change])
        return dict(values, new_task_ids=new_task_ids)

    def _changes(self, session: Session, header: InstanceHeader, workflow: BpmnWorkflow, log: AuditLog,
                 ready_before: set[str], completed_task: str | None = None,
                 status: str | None = None, lookups: dict[Any, Any] | None = None) -> _Change:
        """What a step changed: instance columns, tasks to close and open, audit events (nothing written yet).

        ``lookups`` is the resolver's scratch space for the whole operation (a new one by default).
        """
        now = log.at
        ready_after = ready_manual_tasks(workflow)
        closed = diff_ready_tasks(workflow, ready_before, ready_after, completed_task, log.actor, now, log)
        new_rows = []
        lookups = {} if lookups is None else lookups
        for task_id, task in ready_after.items():  # in workflow order: the same for every instance
            if task_id in ready_before:
                continue
            row = new_task_row(header, task, self._assign,
                               lambda text, t=task: workflow.script_engine.evaluate(t, text), now, session, lookups)
            new_rows.append(row)
            log.add("task_created", task_id=task_id, element_id=row["bpmn_id"],
                    after={"name": row["name"], "process_id": row["process_id"], "assignee": row["assignee"],
                           "role": row["candidate_role"], "organisation_id": row["organisation_id"],
                           "due_at": _iso(row["due_at"])})
        values: dict[str, Any] = {"state": state_to_bytes(workflow)}
        next_timer_at = earliest_timer(workflow)
        if next_timer_at != header.next_timer_at:  # an unchanged indexed column is not rewritten
            values["next_timer_at"] = next_timer_at
        if status is not None:
            values.update(status=status, ended_at=now, next_timer_at=None)
        elif workflow.is_completed():
            values.update(status="completed", ended_at=now, next_timer_at=None, data=_jsonable(workflow.data))
            log.add("completed")
        return _Change(header, workflow, log, values, closed, new_rows)

    def _write(self, session: Session, changes: list[_Change], task_ids: bool = True,
               cache: bool = True) -> list[tuple[dict[str, Any], tuple[int, ...]]]:
        """Write the changes of one or many steps with batched statements; per change (values, new task ids).

        The versioned UPDATEs go first: they are the guard that makes a second writer of the same
        step fail before it touches the projection.  Changes with a ``new_row`` are instances
        started in this step whose row is inserted now.  Without ``task_ids`` the new task ids
        are not read back (a bulk start, a timer batch); without ``cache`` no workflow is kept in
        the cache after the commit (a bulk start: its instances wait for people).
        """
        store.insert_started_instances(session, [dict(change.new_row, **change.values, version=change.header.version + 1)
                                                 for change in changes if change.new_row is not None])
        store.update_instances(session, [(change.header, change.values) for change in changes if change.new_row is None])
        store.close_tasks_of_instances(session, [(change.header.id, row) for change in changes for row in change.closed])
        returned = store.insert_human_tasks(session, [row for change in changes for row in change.new_rows],
                                            return_ids=task_ids)
        new_ids = iter(returned)
        listeners = changes[0].log.listeners if changes else ()
        write_events(session, [event for change in changes for event in change.log.events], listeners)
        written = []
        for change in changes:
            version = change.header.version + 1
            change.log.events = []
            if cache and change.workflow is not None:  # a failed timer step keeps no workflow
                session.info.setdefault(_PENDING_KEY, []).append((self._cache, change.header.id, version,
                                                                  change.workflow))
            written.append((dict(change.values, version=version),
                            tuple(next(new_ids) for _row in change.new_rows) if returned else ()))
        return written

    def _assign(self, context):
        try:
            return self.resolver.resolve(context)
        except (SpiffWorkflowException, UnsafeExpression) as exc:
            raise WorkflowFailed(f"任务无法分配 / cannot assign a task: {_describe(exc)}") from exc

    # ----------------------------------------------------------------------------- human tasks

    def human_task(self, session: Session, human_task_id: int) -> HumanTask:
        """Return a human task or raise :class:`NotFound`."""
        row = store.load_task(session, human_task_id)
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
        return self._form_of(session, definition_id, row.form_key)

    def _form_of(self, session: Session, definition_id: int, form_key: str | None) -> dict[str, Any] | None:
        return self._spec_of(session, definition_id)[2].get(form_key) if form_key else None

    def _open_task(self, session: Session, human_task_id: int, actor: str | None, action: str) -> HumanTask:
        row = self.human_task(session, human_task_id)
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(session, actor, row, action)
        return row

    def _guard_open(self, session: Session, row: HumanTask, values: dict[str, Any]) -> None:
        """Change an open task with a conditional UPDATE: of two racing callers exactly one wins."""
        if not store.change_open_task(session, row, values):
            row = store.load_task(session, row.id) or row  # re-read (load_task refreshes the loaded copy)
            if row.state in OPEN:  # still open, but someone claimed or passed it on a moment ago
                raise ConcurrentUpdate(f"任务「{row.name}」刚被 {row.assignee or '他人'} 认领或转办，请刷新后再试 / "
                                       f"task '{row.name}' was just taken by {row.assignee or 'someone else'}; reload")
            raise _already_done(row)

    def _change_assignee(self, session: Session, row: HumanTask, actor: str | None, kind: str,
                         assignee: str | None) -> HumanTask:
        before = row.assignee
        self._guard_open(session, row, {"assignee": assignee, "state": "claimed" if assignee else "ready"})
        log = self._log(self.clock.now(), actor, row.instance_id)
        log.add(kind, task_id=row.task_id, element_id=row.bpmn_id, before={"assignee": before},
                after={"assignee": assignee})
        log.write(session)
        return row

    def claim(self, session: Session, human_task_id: int, actor: str) -> HumanTask:
        """Take an offered task for ``actor``."""
        row = self._open_task(session, human_task_id, actor, "claim")
        return self._change_assignee(session, row, actor, "claimed", actor)

    def unclaim(self, session: Session, human_task_id: int, actor: str) -> HumanTask:
        """Give a claimed task back to its role."""
        row = self._open_task(session, human_task_id, actor, "unclaim")
        return self._change_assignee(session, row, actor, "unclaimed", None)

    def reassign(self, session: Session, human_task_id: int, new_assignee: str, actor: str | None) -> HumanTask:
        """Delegate a task to another person."""
        row = self._open_task(session, human_task_id, actor, "reassign")
        return self._change_assignee(session, row, actor, "reassigned", new_assignee)

    def complete_task(self, session: Session, human_task_id: int, data: dict[str, Any] | None,
                      actor: str | None) -> CompletedTask:
        """Complete a task with form data and run the process on to its next wait.

        Raises :class:`FormInvalid` (nothing written), :class:`TaskAlreadyCompleted` (someone was
        first), :class:`NotAllowed`, or :class:`WorkflowFailed` (the process could not go on with
        this data; roll back and the task stays open).  Of two racing completions the instance's
        version column lets exactly one write; the other is told the task is already done.
        """
        loaded = store.load_task_and_header(session, human_task_id)
        if loaded is None:
            raise NotFound(f"任务 {human_task_id} 不存在 / task {human_task_id} does not exist")
        row, header = loaded
        if row.state not in OPEN:
            raise _already_done(row)
        self.policy.check(session, actor, row, "complete")
        data = {} if data is None else data
        validate_form(self._form_of(session, header.definition_id, row.form_key), data)
        data = dict(data)
        now = self.clock.now()
        workflow = self._workflow(session, header)
        ready_before = set(ready_manual_tasks(workflow))
        if row.task_id not in ready_before:
            raise TaskAlreadyCompleted(f"任务「{row.name}」已不在办理中 / task '{row.name}' is no longer open")
        task = workflow.get_task_from_id(UUID(row.task_id))

        def run_task():
            task.set_data(**data)
            task.run()
        self._step(workflow, header, run_task)
        log = self._log(now, actor, header.id)
        log.add("task_completed", task_id=row.task_id, element_id=row.bpmn_id, after=_jsonable(data))
        try:
            written = self._save(session, header, workflow, log, ready_before, completed_task=row.task_id)
        except ConcurrentUpdate:
            latest = store.load_task(session, human_task_id)
            if latest is not None and latest.state not in OPEN:
                raise _already_done(latest) from None
            raise
        return CompletedTask(row.id, row.name, header.id, actor, now, written["new_task_ids"])

    # ---------------------------------------------------------------------------------- timers

    def due_instance_ids(self, session: Session, now: datetime, limit: int) -> list[int]:
        """Ids of running instances whose next timer is due, earliest first, locking them on PostgreSQL.

        Instances due at the same moment come in index order, which nothing promises; ordering them
        by id too would make PostgreSQL read and sort every one of them (a campaign's deadline:
        100,000) for each batch.
        """
        query = (select(ProcessInstance.id).where(ProcessInstance.status == "running",
                                                  ProcessInstance.next_timer_at < now)
                 .order_by(ProcessInstance.next_timer_at).limit(limit))
        if store.is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def run_due_timers(self, session: Session, now: datetime | None = None, batch_size: int = 100,
                       one_by_one: bool = False, asynchronous_commit: bool = False) -> int:
        """Fire every due timer once, ``batch_size`` instances per transaction.  Returns how many instances fired.

        Each batch of due instances is run to its next waits in memory and written with a few bulk
        statements (state rows, human tasks, audit events; the audit listeners called once) and one
        commit, leaving exactly what firing them one at a time would.  An instance whose step fails
        is recorded as failed (status ``error``, see :meth:`retry`) with the rest of its batch; if
        anything else refuses a batch (e.g. another writer changed one of its instances), the batch
        is rolled back and fired again one instance per transaction.  ``one_by_one`` fires every
        instance in its own transaction from the start.

        ``asynchronous_commit`` lets the sweep's commits return before PostgreSQL has flushed them
        to disk (``SET LOCAL synchronous_commit = off``): a crash may lose the last of them, which
        leaves their timers due, so the next sweep fires them again; the fired workflows are then
        not kept in the workflow cache, so no process holds a state the database may lose.

        Safe with several sweepers at once: PostgreSQL hands each due row to one sweeper
        (``FOR UPDATE SKIP LOCKED``); on any database each instance is re-read and re-checked,
        and the version column refuses a second write of the same step.
        """
        now = utc(now or self.clock.now())
        fired, seen = 0, set()  # each instance at most once per sweep: the next sweep takes what is left
        lingering = 0  # instances of ``seen`` that may still be due (refused, or due again at once): skipped
        while True:
            ids = [i for i in self.due_instance_ids(session, now, batch_size + lingering) if i not in seen][:batch_size]
            if not ids:
                session.commit()
                return fired
            seen.update(ids)
            written: list[_Change] | None = None
            if not one_by_one and len(ids) > 1:
                try:
                    written = self._fire_batch(session, ids, now, cache=not asynchronous_commit)
                    self._commit_sweep(session, asynchronous_commit)
                except EngineError:
                    session.rollback()  # and again, one instance per transaction, to find the one refused
                    written = None
            if written is None:
                written = []
                for instance_id in ids:
                    try:
                        change = self._fire_instance(session, instance_id, now, cache=not asynchronous_commit)
                        self._commit_sweep(session, asynchronous_commit)
                    except EngineError:
                        session.rollback()
                        continue
                    if change is not None:
                        written.append(change)
            fired += len(written)
            lingering += len(ids) - sum(1 for change in written if not _due_after(change, now))

    @staticmethod
    def _commit_sweep(session: Session, asynchronous: bool) -> None:
        if asynchronous:
            store.commit_asynchronously(session)
        session.commit()

    def _fire_instance(self, session: Session, instance_id: int, now: datetime, cache: bool = True) -> _Change | None:
        """Fire one instance's due timers under its row lock and write the step; ``None`` if it is not due."""
        header = store.load_header(session, instance_id, lock=True)
        if not _timer_due(header, now):
            return None  # another sweeper fired it already
        change = self._timer_step(session, header, self._workflow(session, header), now)
        self._write(session, [change], cache=cache)
        return change

    def _fire_batch(self, session: Session, ids: list[int], now: datetime, cache: bool) -> list[_Change]:
        """Fire the due timers of instances this transaction claimed; write them together; the steps written.

        A service called by one instance's step first gets the changes of the instances before it
        written (and the listeners told), as it would had they been committed one by one.
        """
        headers = [header for header in store.load_headers(session, ids) if _timer_due(header, now)]
        changes: list[_Change] = []
        pending: list[_Change] = []  # the last of them, not written yet
        running: list[Any] = [None]
        lookups: dict[Any, Any] = {}  # the resolver's reads, for the whole batch (cleared when a service runs)
        failed_write: list[BaseException] = []

        def write_before_service() -> None:
            lookups.clear()  # a service may change what the resolver read (e.g. grant a role)
            if not pending:
                return
            try:
                self._write(session, pending, task_ids=False, cache=cache)
            except Exception as exc:  # SpiffWorkflow would wrap it as this instance's failure; it is the batch's
                failed_write.append(exc)
                raise
            pending.clear()

        script_engine = self._script_engine(session, lambda: running[0], write_before_service)
        for header, workflow in zip(headers, self._workflows(session, headers)):
            running[0] = header
            workflow.script_engine = script_engine
            change = self._timer_step(session, header, workflow, now, lookups)
            if failed_write:
                raise failed_write[0]
            changes.append(change)
            pending.append(change)
        self._write(session, pending, task_ids=False, cache=cache)
        return changes

    def _timer_step(self, session: Session, header: InstanceHeader, workflow: BpmnWorkflow, now: datetime,
                    lookups: dict[Any, Any] | None = None) -> _Change:
        """Fire an instance's due timers and run it to its next waits; what to write (a failed step: its error)."""
        ready_before = set(ready_manual_tasks(workflow))
        waiting = waiting_timers(workflow)
        log = self._log(now, None, header.id)
        try:
            self._step(workflow, header, workflow.refresh_timers, clock=_FixedClock(now))
        except WorkflowFailed as exc:
            log.add("error", detail=exc.message)
            return _Change(header, None, log, {"status": "error", "error": exc.message, "next_timer_at": None}, [], [])
        for task in waiting:
            if task.state != TaskState.WAITING or task.internal_data.get("event_fired"):
                log.add("timer_fired", task_id=str(task.id), element_id=task.task_spec.bpmn_id,
                        detail=str(task.internal_data.get("event_value") or ""))
                reminded = reminded_task(task)
                if reminded is not None:
                    log.add("reminded", task_id=str(reminded.id), element_id=reminded.task_spec.bpmn_id,
                            after={"name": reminded.task_spec.bpmn_name or reminded.task_spec.bpmn_id})
        return self._changes(session, header, workflow, log, ready_before, lookups=lookups)

    # ------------------------------------------------------------------------ messages, cancel

    def send_message(self, session: Session, business_key: str, name: str, payload: Any = None,
                     actor: str | None = None) -> list[int]:
        """Deliver message ``name`` to the running instances with ``business_key`` that wait for it.

        Returns the ids of the instances that took it; :class:`NotFound` if none did.
        """
        return self._deliver(session, business_key, MessageEventDefinition(name), payload, actor, "message")

    def send_signal(self, session: Session, business_key: str, name: str, payload: Any = None,
                    actor: str | None = None) -> list[int]:
        """Deliver signal ``name`` to the running instances with ``business_key`` that wait for it."""
        return self._deliver(session, business_key, SignalEventDefinition(name), payload, actor, "signal")

    def _deliver(self, session: Session, business_key: str, definition, payload: Any, actor: str | None,
                 kind: str) -> list[int]:
        ids = session.scalars(select(ProcessInstance.id).where(ProcessInstance.business_key == business_key,
                                                               ProcessInstance.status == "running")).all()
        delivered = []
        for instance_id in ids:
            header = store.load_header(session, instance_id, lock=True)
            workflow = self._workflow(session, header)
            ready_before = set(ready_manual_tasks(workflow))
            try:
                self._step(workflow, header, lambda: workflow.send_event(BpmnEvent(definition, payload=payload)))
            except WorkflowFailed as exc:
                if isinstance(exc.__cause__, WorkflowException) and "not waiting" in str(exc.__cause__):
                    continue  # this instance does not wait for it; the workflow object is discarded
                raise
            log = self._log(self.clock.now(), actor, header.id)
            log.add(kind, detail=definition.name, after={"payload": _jsonable(payload)})
            self._save(session, header, workflow, log, ready_before)
            delivered.append(instance_id)
        if not delivered:
            raise NotFound(f"没有业务键为 {business_key} 且在等待「{definition.name}」的流程 / no running instance "
                           f"with business key '{business_key}' is waiting for {kind} '{definition.name}'")
        return delivered

    def cancel(self, session: Session, instance_id: int, actor: str | None, reason: str) -> None:
        """Cancel a running (or failed) instance: every open task is cancelled, the history is kept."""
        header = store.load_header(session, instance_id, lock=True)
        if header.status not in ("running", "error"):
            raise TaskAlreadyCompleted(f"流程实例 {instance_id} 已结束（{header.status}）/ instance "
                                       f"{instance_id} is already {header.status}")
        workflow = self._workflow(session, header)
        ready_before = set(ready_manual_tasks(workflow))
        workflow.cancel()
        log = self._log(self.clock.now(), actor, header.id)
        log.add("cancelled", detail=reason)
        self._save(session, header, workflow, log, ready_before, status="cancelled")

    def retry(self, session: Session, instance_id: int, actor: str | None) -> None:
        """Put an instance whose timer step failed (status ``error``) back to running.

        The failed step kept nothing, so its timers are due again: the next sweep fires them (and
        records a new error if the step fails again).
        """
        header = store.load_header(session, instance_id, lock=True)
        if header.status != "error":
            raise TaskAlreadyCompleted(f"流程实例 {instance_id} 没有失败的步骤（{header.status}）/ instance "
                                       f"{instance_id} has no failed step (it is {header.status})")
        workflow = self._workflow(session, header)
        log = self._log(self.clock.now(), actor, header.id)
        log.add("retried")
        store.update_instance(session, header, {"status": "running", "error": None,
                                                "next_timer_at": earliest_timer(workflow)})
        log.write(session)

    # ------------------------------------------------------------------------------------ view

    def process_view(self, session: Session, instance_id: int) -> ProcessView:
        """The BPMN XML of an instance's version and the ids of its done, ready and waiting elements."""
        header = store.load_header(session, instance_id, lock=False)
        workflow = self._workflow(session, header)
        self._cache.put(header.id, header.version, workflow)  # read only: still valid
        groups: dict[str, set[str]] = {"completed": set(), "ready": set(), "waiting": set(), "cancelled": set()}
        names = {TaskState.COMPLETED: "completed", TaskState.READY: "ready", TaskState.STARTED: "ready",
                 TaskState.WAITING: "waiting", TaskState.CANCELLED: "cancelled"}
        for task in workflow.get_tasks():
            bpmn_id = getattr(task.task_spec, "bpmn_id", None)
            if bpmn_id is not None and task.state in names:
                groups[names[task.state]].add(bpmn_id)
        bpmn_xml = session.scalar(select(ProcessDefinition.bpmn_xml)
                                  .where(ProcessDefinition.id == header.definition_id))
        return ProcessView(header.id, header.process_id, bpmn_xml, **{k: sorted(v) for k, v in groups.items()},
                           status=header.status)


def _timer_due(header: InstanceHeader, now: datetime) -> bool:
    # SpiffWorkflow fires a timer strictly after its time, so "due" means next_timer_at < now.
    return header.status == "running" and header.next_timer_at is not None and header.next_timer_at < now


def _due_after(change: _Change, now: datetime) -> bool:
    """Whether an instance is still due after this step (a new timer already past): the next sweep fires it."""
    status = change.values.get("status", change.header.status)
    next_timer_at = change.values.get("next_timer_at", change.header.next_timer_at)
    return status == "running" and next_timer_at is not None and next_timer_at < now


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
        candidate = path.parent / name
        if candidate.parent == path.parent and candidate.is_file():
            forms[name] = candidate.read_bytes()
    return forms


def _request_failed(exc: WorkflowFailed, index: int, count: int, business_key: str | None) -> WorkflowFailed:
    key = f"（业务键 {business_key}）" if business_key else ""
    key_en = f" (business key {business_key})" if business_key else ""
    failure = WorkflowFailed(f"第 {index + 1}/{count} 个启动请求{key}失败 / start request {index + 1} of {count}"
                             f"{key_en} failed: {exc.message}")
    failure.request_index, failure.business_key = index, business_key
    return failure


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
    parts.extend(getattr(exc, "__notes__", None) or [])
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
