"""Engine.start_many: the instances Engine.start would make, written in bulk; and the shortcuts behind it.

The instances of a bulk start are compared with ones started one by one from the same requests:
rows, human tasks, audit trail, notifications and the stored workflow state (task ids and times
aside), then again after completing, firing timers on and cancelling both.  The serialization
shortcuts (template copy of a new workflow, direct state dict) are compared with SpiffWorkflow's
own code on every process we deploy; the replaced SpiffWorkflow functions are compared in
``test_spiff_speedups.py``.
"""
from __future__ import annotations

import re
import zlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import Engine, NotFound, ServiceCall, ServiceRegistry, StartRequest, WorkflowFailed
from engine.clock import clock_in_effect
from engine.definitions import parse_definition
from engine.expressions import RestrictedEnvironment, RestrictedScriptEngine
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.runtime import forms_beside
from engine.serialization import _state_bytes_by_registry, new_workflow, state_to_bytes
from tests.conftest import ENGINE_BPMN
from tests.workflows import conftest as workflow_fixtures
from workflows.models import Activity, Notification
from workflows.services import registry

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
CONGRESS = {"remind_at": "2026-05-20T00:00:00+08:00", "due_at": "2026-05-30T00:00:00+08:00"}
REPORT = {"format": "sharing_session", "topic": "新时代青年的使命担当", "date": "2026-05-10", "place": "市南区青年之家",
          "youth_count": 35, "description": "与所联系的青年一起学习，分组交流心得。", "evidence": ["sign-in.pdf"]}

# A script, a parallel split to a cadre task with two boundary timers, an organiser task (offered to
# the role: notifies its holders) and an embedded subprocess (its workflow is stored apart).
MIXED_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_mix"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="bulk_mix" name="bulk mix" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_cadre" name="cadre">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef><bpmn:flowNodeRef>Greet</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Fork</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_cadre</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Remind</bpmn:flowNodeRef><bpmn:flowNodeRef>Overdue</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>End_reminded</bpmn:flowNodeRef><bpmn:flowNodeRef>End_overdue</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Sub</bpmn:flowNodeRef><bpmn:flowNodeRef>Join</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>End_all</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="Lane_organiser" name="organiser"><bpmn:flowNodeRef>Task_org</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="Greet" name="greet"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:script>greeting = "hello " + cadre_assignee</bpmn:script></bpmn:scriptTask>
    <bpmn:parallelGateway id="Fork"><bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:outgoing>F4</bpmn:outgoing><bpmn:outgoing>F5</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="Task_cadre" name="cadre task"><bpmn:incoming>F3</bpmn:incoming>
      <bpmn:outgoing>F6</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="Remind" cancelActivity="false" attachedToRef="Task_cadre">
      <bpmn:outgoing>F9</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TD_remind"><bpmn:timeDate>remind_at</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="End_reminded"><bpmn:incoming>F9</bpmn:incoming></bpmn:endEvent>
    <bpmn:boundaryEvent id="Overdue" attachedToRef="Task_cadre"><bpmn:outgoing>F10</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TD_due"><bpmn:timeDate>due_at</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="End_overdue"><bpmn:incoming>F10</bpmn:incoming></bpmn:endEvent>
    <bpmn:userTask id="Task_org" name="organiser task"><bpmn:incoming>F4</bpmn:incoming>
      <bpmn:outgoing>F7</bpmn:outgoing></bpmn:userTask>
    <bpmn:subProcess id="Sub" name="sub"><bpmn:incoming>F5</bpmn:incoming><bpmn:outgoing>F8</bpmn:outgoing>
      <bpmn:startEvent id="Sub_start"><bpmn:outgoing>S1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:userTask id="Task_sub" name="sub task"><bpmn:incoming>S1</bpmn:incoming>
        <bpmn:outgoing>S2</bpmn:outgoing></bpmn:userTask>
      <bpmn:endEvent id="Sub_end"><bpmn:incoming>S2</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="S1" sourceRef="Sub_start" targetRef="Task_sub"/>
      <bpmn:sequenceFlow id="S2" sourceRef="Task_sub" targetRef="Sub_end"/>
    </bpmn:subProcess>
    <bpmn:parallelGateway id="Join"><bpmn:incoming>F6</bpmn:incoming><bpmn:incoming>F7</bpmn:incoming>
      <bpmn:incoming>F8</bpmn:incoming><bpmn:outgoing>F11</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="End_all"><bpmn:incoming>F11</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Greet"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Greet" targetRef="Fork"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Fork" targetRef="Task_cadre"/>
    <bpmn:sequenceFlow id="F4" sourceRef="Fork" targetRef="Task_org"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Fork" targetRef="Sub"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Task_cadre" targetRef="Join"/>
    <bpmn:sequenceFlow id="F7" sourceRef="Task_org" targetRef="Join"/>
    <bpmn:sequenceFlow id="F8" sourceRef="Sub" targetRef="Join"/>
    <bpmn:sequenceFlow id="F9" sourceRef="Remind" targetRef="End_reminded"/>
    <bpmn:sequenceFlow id="F10" sourceRef="Overdue" targetRef="End_overdue"/>
    <bpmn:sequenceFlow id="F11" sourceRef="Join" targetRef="End_all"/>
  </bpmn:process>
</bpmn:definitions>
"""

# A service task in the first step that reads its own instance row, for some requests only.
LOOKING_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Defs_look"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="bulk_look" name="bulk look" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="Ask" default="F3"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:outgoing>F3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:serviceTask id="Look" name="look">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="own_row" resultVariable="seen"/>
      </bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:exclusiveGateway id="Merge"><bpmn:incoming>F3</bpmn:incoming><bpmn:incoming>F4</bpmn:incoming>
      <bpmn:outgoing>F5</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="Task_after" name="after"><bpmn:incoming>F5</bpmn:incoming><bpmn:outgoing>F6</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Ask"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Ask" targetRef="Look"><bpmn:conditionExpression>look == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F3" sourceRef="Ask" targetRef="Merge"/>
    <bpmn:sequenceFlow id="F4" sourceRef="Look" targetRef="Merge"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Merge" targetRef="Task_after"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Task_after" targetRef="End_1"/>
  </bpmn:process>
</bpmn:definitions>
"""

league = workflow_fixtures.league  # the league of tests/league.py and an engine with its rules
league_engine = workflow_fixtures.league_engine

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# ------------------------------------------------------------------------------------ helpers

def deploy(sessions, engine, process: str) -> int:
    with sessions() as session:
        if process == "bulk_mix":
            definition = engine.deploy(session, MIXED_BPMN, "bulk_mix.bpmn").definition
        else:
            definition = engine.deploy_file(session, BPMN_DIR / f"{process}.bpmn").definition
        session.commit()
        return definition.id


def requests_for(process: str, rounds: int = 1) -> list[StartRequest]:
    """Three cadres in different organisations (one county without an organiser), ``rounds`` times."""
    return [StartRequest(dict(CONGRESS, cadre_assignee=cadre), organisation_id=org,
                         business_key=f"{process}-{cadre}-{n}")
            for n in range(rounds) for cadre, org in [("zhang", "qd-sn"), ("li", "qd-sn-gw"), ("wang", "jn-lx")]]


def start_one_by_one(sessions, engine, process: str, requests: list[StartRequest]) -> list[int]:
    with sessions() as session:
        ids = [engine.start(session, process, request.data, organisation_id=request.organisation_id,
                            business_key=request.business_key, actor="P_org").id for request in requests]
        session.commit()
        return ids


def start_in_bulk(sessions, engine, definition_id: int, requests: list[StartRequest]) -> list[int]:
    with sessions() as session:
        ids = engine.start_many(session, definition_id, requests, actor="P_org")
        session.commit()
        return ids


def normal_state(state: bytes) -> str:
    """A stored state with task ids replaced by their order of appearance and state-change times dropped."""
    text = (state if state[:1] == b"{" else zlib.decompress(state)).decode()
    text = re.sub(r'"last_state_change":[0-9.eE+-]+', '"last_state_change":0', text)
    names: dict[str, str] = {}
    return UUID_TEXT.sub(lambda m: names.setdefault(m.group(0), f"task-{len(names)}"), text)


def snapshot(session, instance_id: int) -> dict:
    """Everything stored about an instance, with its task ids replaced by their order of appearance."""
    instance = session.get(ProcessInstance, instance_id)
    session.refresh(instance)
    names: dict[str, str] = {}

    def name(task_id):
        return names.setdefault(task_id, f"task-{len(names)}") if task_id else None
    tasks = [(name(t.task_id), t.bpmn_id, t.name, t.lane, t.candidate_role, t.organisation_id, t.assignee, t.form_key,
              t.instructions, t.due_at, t.remind_at, t.state, t.created_at, t.completed_by, t.completed_at)
             for t in session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id)
                                      .order_by(HumanTask.id))]
    audit = [(e.kind, e.actor, name(e.task_id), e.element_id, e.before, e.after, e.detail, e.at)
             for e in session.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                                      .order_by(AuditEvent.id))]
    return {"row": (instance.definition_id, instance.process_id, instance.business_key, instance.organisation_id,
                    instance.status, instance.version, instance.next_timer_at, instance.data, instance.error,
                    instance.started_by, instance.started_at, instance.ended_at),
            "tasks": tasks, "audit": audit, "state": normal_state(instance.state)}


def notifications_between(session, after_id: int, up_to_id: int | None = None) -> list[tuple]:
    query = select(Notification).where(Notification.id > after_id).order_by(Notification.id)
    if up_to_id is not None:
        query = query.where(Notification.id <= up_to_id)
    return [(n.recipient, n.subject, n.body, n.created_at) for n in session.scalars(query)]


def last_notification(session) -> int:
    return session.scalar(select(func.max(Notification.id))) or 0


def counts(session) -> tuple[int, int, int, int]:
    return tuple(session.scalar(select(func.count()).select_from(model))
                 for model in (ProcessInstance, HumanTask, AuditEvent, Notification))


# ---------------------------------------------------------------------------- start_many itself

@pytest.mark.parametrize("process", ["congress_study", "service_month", "bulk_mix"])
def test_a_bulk_start_leaves_what_one_by_one_starts_leave(sessions, league, league_engine, process):
    definition_id = deploy(sessions, league_engine, process)
    requests = requests_for(process, rounds=3)  # enough rows for PostgreSQL's unnest statements
    with sessions() as session:
        before = last_notification(session)
    single = start_one_by_one(sessions, league_engine, process, requests)
    with sessions() as session:
        between = last_notification(session)
    bulk = start_in_bulk(sessions, league_engine, definition_id, requests)
    with sessions() as session:
        for one, many in zip(single, bulk):
            assert snapshot(session, many) == snapshot(session, one)
        by_one, in_bulk = notifications_between(session, before, between), notifications_between(session, between)
        assert in_bulk == by_one and len(in_bulk) >= len(requests)
        [cadre_task] = [t for t in snapshot(session, bulk[0])["tasks"] if t[1] in ("Task_report", "Task_serve",
                                                                                  "Task_cadre")]
        assert cadre_task[6] == "zhang" and cadre_task[9] is not None  # assignee, due date


def test_the_ids_come_back_in_request_order(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "congress_study")
    requests = [StartRequest(dict(CONGRESS, cadre_assignee=f"cadre{n}"), "qd-sn", f"key-{n}") for n in range(25)]
    ids = start_in_bulk(sessions, league_engine, definition_id, requests)
    with sessions() as session:
        assert [session.get(ProcessInstance, i).business_key for i in ids] == [r.business_key for r in requests]
        assert [t.assignee for t in session.scalars(select(HumanTask).order_by(HumanTask.id))] == \
            [f"cadre{n}" for n in range(25)]
    assert len(set(ids)) == 25


def test_an_empty_list_starts_nothing(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "congress_study")
    with sessions() as session:
        before = counts(session)
        assert league_engine.start_many(session, definition_id, []) == []
        assert counts(session) == before


def test_an_unknown_definition_is_not_found(sessions, league, league_engine):
    with sessions() as session, pytest.raises(NotFound):
        league_engine.start_many(session, 424242, [StartRequest(dict(CONGRESS, cadre_assignee="li"))])


def test_a_failing_request_is_named_and_nothing_is_left_after_rollback(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "congress_study")
    requests = requests_for("congress_study")
    broken = StartRequest({"cadre_assignee": "li", "remind_at": CONGRESS["remind_at"]}, "qd-sn-gw", "cs-broken")
    with sessions() as session:
        before = counts(session)
        with pytest.raises(WorkflowFailed) as failure:
            league_engine.start_many(session, definition_id, [requests[0], broken, requests[2]])
        session.rollback()
        assert counts(session) == before
    assert failure.value.request_index == 1 and failure.value.business_key == "cs-broken"
    assert "2/3" in failure.value.message and "start request 2 of 3 (business key cs-broken)" in failure.value.message
    assert "due_at" in failure.value.message


def test_nothing_is_committed_by_start_many(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "congress_study")
    with sessions() as session:
        before = counts(session)
        league_engine.start_many(session, definition_id, requests_for("congress_study"))
        session.rollback()
        assert counts(session) == before


def test_bulk_started_instances_go_on_like_the_others(sessions, clock, league, league_engine):
    definition_id = deploy(sessions, league_engine, "congress_study")
    requests = requests_for("congress_study")
    single = start_one_by_one(sessions, league_engine, "congress_study", requests)
    bulk = start_in_bulk(sessions, league_engine, definition_id, requests)
    pairs = list(zip(single, bulk))

    def open_task(session, instance_id):
        return session.scalar(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                      HumanTask.state.in_(HumanTask.OPEN_STATES)))

    def same(session):  # the one difference: each instance's report is its own activity row
        def masked(snap):
            return re.sub(r"""(['"]activity_id['"]: ?)\d+""", r"\1N", repr(snap))
        for one, many in pairs:
            assert masked(snapshot(session, many)) == masked(snapshot(session, one))

    with sessions() as session:  # zhang reports on time; wang's instance is cancelled
        for instance_id in pairs[0]:
            league_engine.complete_task(session, open_task(session, instance_id).id, REPORT, "zhang")
        for instance_id in pairs[2]:
            league_engine.cancel(session, instance_id, "P_org", "组织调整")
        session.commit()
        same(session)
        assert sorted(a.instance_id for a in session.scalars(select(Activity))) == sorted(pairs[0])
    for moment in (CONGRESS["remind_at"], CONGRESS["due_at"]):  # li is reminded, then escalated
        clock.set(datetime.fromisoformat(moment) + timedelta(minutes=1))
        with sessions() as session:
            assert league_engine.run_due_timers(session) == 2
            same(session)
    with sessions() as session:
        supervise = [open_task(session, instance_id) for instance_id in pairs[1]]
        assert [(t.bpmn_id, t.organisation_id) for t in supervise] == [("Task_supervise", "qd-sn")] * 2
        for task in supervise:
            league_engine.complete_task(session, task.id, {"decision": "close_missed", "supervision_note": "病假"},
                                        "S_org")
        session.commit()
        same(session)
        assert [session.get(ProcessInstance, i).status for i in bulk] == ["completed", "completed", "cancelled"]


def test_a_service_in_the_first_step_finds_its_instance_row(sessions, clock):
    services = ServiceRegistry()

    @services.register("own_row")
    def own_row(call: ServiceCall):
        row = call.session.get(ProcessInstance, call.instance_id)
        return {"business_key": row.business_key, "status": row.status}

    engine = Engine(services=services, clock=clock)
    with sessions() as session:
        definition_id = engine.deploy(session, LOOKING_BPMN, "bulk_look.bpmn").definition.id
        session.commit()
    requests = [StartRequest({"look": n % 2 == 0}, business_key=f"look-{n}") for n in range(5)]
    single = start_one_by_one(sessions, engine, "bulk_look", requests)
    bulk = start_in_bulk(sessions, engine, definition_id, requests)
    with sessions() as session:
        for n, (one, many) in enumerate(zip(single, bulk)):
            assert snapshot(session, many) == snapshot(session, one)
            seen = session.get(ProcessInstance, many).state
            assert (b'"seen":{"business_key":"look-%d"' % n in normal_state(seen).encode()) == (n % 2 == 0)


# ------------------------------------------------------------------ the SpiffWorkflow shortcuts

def _processes():
    """Every deployable process we have: bpmn/, tests/engine/bpmn/ and the mixed one above."""
    for path in sorted(BPMN_DIR.glob("*.bpmn")) + sorted(ENGINE_BPMN.glob("*.bpmn")) + [None]:
        content = MIXED_BPMN if path is None else path.read_bytes()
        name = "bulk_mix.bpmn" if path is None else path.name
        forms = {} if path is None else forms_beside(path, content)
        parsed = parse_definition(content, name, forms, known_services=set(registry.functions))
        yield name, parsed.spec, parsed.subprocess_specs


PROCESSES = list(_processes())
START_DATA = dict(CONGRESS, cadre_assignee="li", deadline=CONGRESS["due_at"], count=1, organisation="qd-sn")


def _stages(spec, subprocess_specs, clock):
    """A workflow fresh, after its first step, and after each of up to three completed manual tasks."""
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.script_engine = RestrictedScriptEngine(RestrictedEnvironment(call_service=lambda *a: {"code": "qd"}))
    workflow.task_tree.data.update(START_DATA)
    yield workflow
    with clock_in_effect(clock):
        try:
            workflow.do_engine_steps()
            yield workflow
            for _ in range(3):
                ready = workflow.get_tasks(state=TaskState.READY, manual=True)
                if not ready:
                    return
                ready[0].run()
                workflow.do_engine_steps()
                yield workflow
        except Exception:  # noqa: BLE001 - a process that needs other data stops here; what ran is compared
            return


@pytest.mark.parametrize("name,spec,subprocess_specs", PROCESSES, ids=[p[0] for p in PROCESSES])
def test_a_copied_new_workflow_runs_like_a_constructed_one(name, spec, subprocess_specs, clock):
    constructed = BpmnWorkflow(spec, subprocess_specs)
    new_workflow(spec, subprocess_specs)  # the first call keeps the template
    copied = new_workflow(spec, subprocess_specs)
    assert normal_state(_state_bytes_by_registry(copied)) == normal_state(_state_bytes_by_registry(constructed))
    assert not set(copied.tasks) & set(constructed.tasks)
    for workflow in (constructed, copied):
        workflow.script_engine = RestrictedScriptEngine(RestrictedEnvironment(call_service=lambda *a: {"code": "qd"}))
        workflow.task_tree.data.update(START_DATA)
        with clock_in_effect(clock):
            try:
                workflow.do_engine_steps()
            except Exception as exc:  # noqa: BLE001 - both must fail alike
                workflow.failure = type(exc).__name__
    assert getattr(copied, "failure", None) == getattr(constructed, "failure", None)
    assert normal_state(_state_bytes_by_registry(copied)) == normal_state(_state_bytes_by_registry(constructed))


@pytest.mark.parametrize("name,spec,subprocess_specs", PROCESSES, ids=[p[0] for p in PROCESSES])
def test_the_direct_state_dict_gives_the_registry_bytes(name, spec, subprocess_specs, clock):
    for workflow in _stages(spec, subprocess_specs, clock):
        assert state_to_bytes(workflow) == _state_bytes_by_registry(workflow)


def test_the_direct_state_dict_gives_the_registry_bytes_for_any_task_data():
    spec, subprocess_specs = PROCESSES[0][1], PROCESSES[0][2]
    workflow = BpmnWorkflow(spec, subprocess_specs)
    tasks = list(workflow.tasks.values())
    nan = float("nan")
    shapes = [({}, {}), ({}, {"a": 1}), ({"a": 1, "b": [2]}, {}), ({"a": 1}, {"a": 1}), ({"a": 1}, {"a": 2, "c": 3}),
              ({"n": nan}, {"n": nan}), ({"a": {"x": 1}}, {"b": None})]
    for parent_data, child_data in shapes:
        parent = tasks[0]
        child = next(t for t in tasks if t._parent == parent.id)
        parent.data, child.data = dict(parent_data), dict(child_data)
        assert state_to_bytes(workflow) == _state_bytes_by_registry(workflow), (parent_data, child_data)
