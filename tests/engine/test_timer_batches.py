"""Batched timer firing (``Engine.run_due_timers``): a batch leaves exactly what firing one by one leaves.

Two databases of the same kind get the same league, processes, activities and instances.  The
clock then walks day by day through reminders, deadline escalations (with their services),
intermediate timers, completions and a failing step; at each step one database is swept one
instance per transaction, the other in batches, and everything stored is compared: instance rows
and workflow states, human tasks, the audit trail and notifications (row ids, and SpiffWorkflow's
random task ids, replaced by their order of appearance; SpiffWorkflow's wall-clock
``last_state_change`` dropped).  Rows of different instances are compared as sets: the sweep
promises no order among instances due at the same moment (PostgreSQL gives them in index order),
one by one or not.  A service in a batched step sees what the instances before it in the batch
did, as it would had they been committed one by one.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
import zlib
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from engine import Engine, ServiceCall, ServiceRegistry
from engine.database import make_session_factory, make_sql_engine
from engine.models import AuditEvent, HumanTask, ProcessInstance
from engine.schema import upgrade_database
from tests.league import build_league
from workflows.league_engine import build_league_engine
from workflows.models import CADRE_ACTIVITY_KINDS, Notification
from workflows.organisations import by_code
from workflows.people import new_user
from workflows.roles import grant_role
from workflows.services import registry as league_services

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CONGRESS = {"remind_at": "2026-05-20T00:00:00+08:00", "due_at": "2026-05-30T00:00:00+08:00"}
CADRES = [("zhang", "qd-sn"), ("li", "qd-sn-gw"), ("wang", "jn-lx")]
FIVE_ONES_CHECK = "2026-05-10T09:00:00+08:00"

# A deadline timer, then a service that counts the probes already escalated (so it reads what the
# instances fired before it wrote), a division (a divisor 0 fails the step) and a task whose
# assignee is an expression (missing from the data: the assignment fails after the step).
PROBE_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Defs_probe"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="timer_probe" name="timer probe" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_cadre" name="cadre">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_wait</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Timer_due</bpmn:flowNodeRef><bpmn:flowNodeRef>End_done</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Count</bpmn:flowNodeRef><bpmn:flowNodeRef>Divide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_after</bpmn:flowNodeRef><bpmn:flowNodeRef>End_after</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_wait" name="wait"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="Timer_due" attachedToRef="Task_wait"><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TD_due"><bpmn:timeDate>due_at</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="End_done"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:serviceTask id="Count" name="count">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="count_probes" resultVariable="probes_before"/>
      </bpmn:extensionElements>
      <bpmn:incoming>F3</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:scriptTask id="Divide" name="divide"><bpmn:incoming>F4</bpmn:incoming><bpmn:outgoing>F5</bpmn:outgoing>
      <bpmn:script>ratio = 10 / divisor</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="Task_after" name="after">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="assignee" value="after_assignee"/>
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>F5</bpmn:incoming><bpmn:outgoing>F6</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="End_after"><bpmn:incoming>F6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_wait"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Task_wait" targetRef="End_done"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Timer_due" targetRef="Count"/>
    <bpmn:sequenceFlow id="F4" sourceRef="Count" targetRef="Divide"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Divide" targetRef="Task_after"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Task_after" targetRef="End_after"/>
  </bpmn:process>
</bpmn:definitions>
"""

# An intermediate timer, then a script and the end: the instance completes (its data is written) with no service.
CLOSING_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="Defs_closing"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="timer_closing" name="timer closing" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="Timer_close"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TD_close"><bpmn:timeDate>close_at</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="Close" name="close"><bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing>
      <bpmn:script>closed = {"by": "timer", "n": n}</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="End_closed"><bpmn:incoming>F3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Timer_close"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Timer_close" targetRef="Close"/>
    <bpmn:sequenceFlow id="F3" sourceRef="Close" targetRef="End_closed"/>
  </bpmn:process>
</bpmn:definitions>
"""

probe_services = ServiceRegistry(functions=dict(league_services.functions))


@probe_services.register("count_probes")
def count_probes(call: ServiceCall) -> int:
    """How many probes have reached their follow-up task so far (committed or written earlier in this batch)."""
    return call.session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.bpmn_id == "Task_after"))


# ------------------------------------------------------------------------------------ databases

@contextmanager
def another_database(database_url: str, tmp_path: Path, sqlite_template: Path):
    """A second fresh, migrated database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "batched.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    base = os.environ["TEST_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_sql_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        upgrade_database(url)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def batched_sessions(database_url, tmp_path, sqlite_template):
    """Sessions on a second database beside the test's, of the same kind: the one swept in batches."""
    with another_database(database_url, tmp_path, sqlite_template) as url:
        sql_engine = make_sql_engine(url)
        yield make_session_factory(sql_engine)
        sql_engine.dispose()


def league_engine_for(clock, cache_size: int = 0):
    """The league's engine (services, resolver, notification, points and evidence listeners) plus the probe service."""
    engine = build_league_engine(clock=clock, cache_size=cache_size)
    engine.services = probe_services
    return engine


# ---------------------------------------------------------------------------------- the scenario

def populate(sessions, engine, clock) -> None:
    """The league with coordinators up to the province, six processes, activities and 49 instances."""
    with sessions() as session:
        build_league(session, clock.now())
        for username, name, code in [("Q_coord", "青岛协调员", "qd"), ("P_coord", "省协调员", "prov")]:
            org = by_code(session, code)
            user = new_user(username, name, clock.now(), organisation=org)
            session.add(user)
            session.flush()
            grant_role(session, user, "coordinator", org)
        for process in ("congress_study", "micro_wish", "five_ones_period", "activity_record"):
            engine.deploy_file(session, BPMN_DIR / f"{process}.bpmn")
        engine.deploy(session, PROBE_BPMN, "timer_probe.bpmn")
        engine.deploy(session, CLOSING_BPMN, "timer_closing.bpmn")
        call = ServiceCall(session=session, instance_id=None, organisation_id="qd-sn", now=clock.now(), task_data={})
        for kind in CADRE_ACTIVITY_KINDS:
            league_services.call("record_activity", call, {
                "kind": kind, "date": "2026-04-20", "place": "市南区青年之家", "youth_count": 15,
                "description": "直接联系青年的活动", "cadre": "zhang", "organisation": "qd-sn", "evidence": ["照片.jpg"]})
        session.commit()
    start = clock.now()
    with sessions() as session:
        for n in range(3):
            for cadre, org in CADRES:
                engine.start(session, "congress_study", dict(CONGRESS, cadre_assignee=cadre), organisation_id=org,
                             business_key=f"congress-{cadre}-{n}", actor="P_org")
                engine.start(session, "micro_wish", {"youth_assignee": f"youth-{n}", "cadre_assignee": cadre,
                                                     "wish_title": f"心愿 {n}", "wish_description": "想要一套复习资料"},
                             organisation_id=org, business_key=f"wish-{cadre}-{n}", actor=f"youth-{n}")
        for n in range(9):  # zhang met the quota: nine completions at once
            engine.start(session, "five_ones_period", {"cadre_assignee": "zhang", "organisation": "qd-sn",
                                                       "period_start": "2026-04-01", "period_end": "2026-04-30",
                                                       "check_at": FIVE_ONES_CHECK},
                         organisation_id="qd-sn", business_key=f"five-ones-zhang-{n}")
        engine.start(session, "five_ones_period", {"cadre_assignee": "li", "organisation": "qd-sn-gw",
                                                   "period_start": "2026-04-01", "period_end": "2026-04-30",
                                                   "check_at": FIVE_ONES_CHECK},
                     organisation_id="qd-sn-gw", business_key="five-ones-li")
        for cadre, org in CADRES:
            engine.start(session, "activity_record", {"cadre_assignee": cadre,
                                                      "deadline": (start + timedelta(days=6)).isoformat()},
                         organisation_id=org, actor="S_org")
        for n in range(6):  # due with the wishes' deadlines (one batch mixes them), in order; probe 4 fails its step
            engine.start(session, "timer_probe", {"due_at": (start + timedelta(days=3, minutes=n)).isoformat(),
                                                  "divisor": 0 if n == 4 else 2, "after_assignee": "zhang"},
                         organisation_id="qd-sn", business_key=f"probe-{n}")
        for n in range(9):
            engine.start(session, "timer_closing", {"close_at": (start + timedelta(days=5)).isoformat(), "n": n})
        session.commit()


def state_text(state: bytes) -> str:
    """A stored state as text, without SpiffWorkflow's wall-clock times."""
    raw = (state if state[:1] == b"{" else zlib.decompress(state)).decode()
    return re.sub(r'"last_state_change":[0-9.eE+-]+', '"last_state_change":0', raw)


def dump(session) -> dict:
    """Everything stored about each instance, without row ids (task ids named by order of appearance); notifications."""
    connection = session.connection()
    instances = connection.execute(select(ProcessInstance.__table__).order_by(ProcessInstance.id)).mappings().all()
    tasks = connection.execute(select(HumanTask.__table__).order_by(HumanTask.id)).mappings().all()
    events = connection.execute(select(AuditEvent.__table__).order_by(AuditEvent.id)).mappings().all()

    def without_ids(row) -> dict:
        return {key: value for key, value in row.items() if key not in ("id", "instance_id", "state")}

    described = []
    for row in instances:
        own = (state_text(row["state"]), without_ids(row),
               [without_ids(t) for t in tasks if t["instance_id"] == row["id"]],
               [without_ids(e) for e in events if e["instance_id"] == row["id"]])
        names: dict[str, str] = {}
        described.append(UUID_TEXT.sub(lambda m: names.setdefault(m.group(0), f"task-{len(names)}"), repr(own)))
    notifications = session.execute(select(Notification.recipient, Notification.channel, Notification.subject,
                                           Notification.body, Notification.created_at)
                                    .order_by(Notification.id)).all()
    return {"instances": described, "notifications": sorted(tuple(n) for n in notifications)}


# ---------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("batch_size", [3, 40])
def test_batches_leave_what_one_by_one_firing_leaves(sessions, batched_sessions, clock, batch_size):
    one_by_one, batched = league_engine_for(clock), league_engine_for(clock, cache_size=2000)
    populate(sessions, one_by_one, clock)
    populate(batched_sessions, batched, clock)
    with sessions() as a, batched_sessions() as b:
        assert dump(b) == dump(a)
    fired_in_all = 0
    start = clock.now()
    for day in range(1, 43):
        clock.set(start + timedelta(days=day, hours=1))
        with sessions() as a, batched_sessions() as b:
            fired = one_by_one.run_due_timers(a, one_by_one=True)
            assert batched.run_due_timers(b, batch_size=batch_size) == fired, f"day {day}"
            fired_in_all += fired
            if fired:
                expected, got = dump(a), dump(b)
                for key in expected:
                    assert got[key] == expected[key], f"day {day}: {key}"
    assert fired_in_all >= 60
    with batched_sessions() as session:  # what the walk went through
        kinds = set(session.scalars(select(AuditEvent.kind)))
        assert {"timer_fired", "reminded", "escalated", "task_created", "completed", "error"} <= kinds
        statuses = dict(session.execute(select(ProcessInstance.business_key, ProcessInstance.status)
                                        .where(ProcessInstance.business_key.is_not(None))).all())
        assert statuses["probe-4"] == "error" and statuses["five-ones-zhang-0"] == "completed"
        assert session.scalar(select(func.count()).select_from(ProcessInstance).where(
            ProcessInstance.process_id == "timer_closing", ProcessInstance.status == "completed")) == 9
        probe_rows = session.execute(select(ProcessInstance.business_key, ProcessInstance.state)
                                     .where(ProcessInstance.process_id == "timer_probe")
                                     .order_by(ProcessInstance.id)).all()
        seen_before = [int(re.search(r'"probes_before":(\d+)', state_text(state)).group(1))
                       for key, state in probe_rows if key != "probe-4"]
        assert seen_before == [0, 1, 2, 3, 4]  # each saw the probes escalated before it in the same sweep


def probes(sessions, engine, clock, changes: list[dict]) -> list[int]:
    """Start one probe per dict of changes to its start data (a value ``...`` leaves the key out); jump past their timers."""
    with sessions() as session:
        engine.deploy(session, PROBE_BPMN, "timer_probe.bpmn")
        ids = []
        for n, change in enumerate(changes):
            data = {"due_at": (clock.now() + timedelta(days=1)).isoformat(), "divisor": 2, "after_assignee": "zhang"}
            data = {key: value for key, value in dict(data, **change).items() if value is not ...}
            ids.append(engine.start(session, "timer_probe", data, business_key=f"probe-{n}").id)
        session.commit()
    clock.advance(timedelta(days=1, minutes=1))
    return ids


def test_a_failing_step_is_recorded_and_the_rest_of_its_batch_is_written(sessions, clock):
    engine = league_engine_for(clock)
    ids = probes(sessions, engine, clock, [{}, {}, {"divisor": 0}, {}, {}])
    with sessions() as session:
        assert engine.run_due_timers(session, batch_size=10) == 5
        rows = {i: session.get(ProcessInstance, i) for i in ids}
        assert [rows[i].status for i in ids] == ["running", "running", "error", "running", "running"]
        assert "division by zero" in rows[ids[2]].error and rows[ids[2]].next_timer_at is None
        assert [e.kind for e in session.scalars(select(AuditEvent).where(AuditEvent.instance_id == ids[2])
                                                .order_by(AuditEvent.id))][-1] == "error"
        after = session.scalars(select(HumanTask.instance_id).where(HumanTask.bpmn_id == "Task_after")).all()
        assert sorted(after) == [i for n, i in enumerate(ids) if n != 2]
        engine.retry(session, ids[2], "P_admin")  # the failed step kept nothing: its timer is due again
        session.commit()
        assert engine.run_due_timers(session, batch_size=10) == 1
        session.refresh(rows[ids[2]])
        assert rows[ids[2]].status == "error"


def test_an_instance_refused_after_its_step_is_left_due_and_the_others_fire(sessions, clock):
    engine = league_engine_for(clock)
    # The follow-up task's assignee expression names a variable probe 2 does not have: assigning it fails.
    ids = probes(sessions, engine, clock, [{}, {}, {"after_assignee": ...}, {}])
    with sessions() as session:
        assert engine.run_due_timers(session, batch_size=10) == 3
        refused = session.get(ProcessInstance, ids[2])
        assert refused.status == "running" and refused.version == 2 and refused.next_timer_at < clock.now()  # still due
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.instance_id == ids[2], AuditEvent.kind.in_(("timer_fired", "error")))) == 0
        after = session.scalars(select(HumanTask.instance_id).where(HumanTask.bpmn_id == "Task_after")).all()
        assert sorted(after) == [ids[0], ids[1], ids[3]]
        assert engine.run_due_timers(session, batch_size=10) == 0  # refused again, and still nothing half-written
        assert session.scalar(select(func.count()).select_from(HumanTask).where(HumanTask.instance_id == ids[2])) == 1


def test_asynchronous_commit_is_asked_for_on_postgresql_and_keeps_no_workflow_cached(sessions, sql_engine, clock):
    engine = Engine(services=probe_services, clock=clock, cache_size=100)
    statements: list[str] = []
    event.listen(sql_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def sweep(asynchronous: bool) -> dict[int, int]:
        """Fire two new probes; their ids and versions after the sweep."""
        ids = probes(sessions, engine, clock, [{}, {}])
        statements.clear()
        with sessions() as session:
            assert engine.run_due_timers(session, batch_size=10, asynchronous_commit=asynchronous) == 2
            return {i: session.get(ProcessInstance, i).version for i in ids}

    durable = sweep(asynchronous=False)
    assert not [s for s in statements if "synchronous_commit" in s]
    assert all(engine._cache.take(i, version) is not None for i, version in durable.items())
    asynchronous = sweep(asynchronous=True)
    asked = [s for s in statements if "synchronous_commit" in s]
    assert asked == (["SET LOCAL synchronous_commit TO off"] if sql_engine.dialect.name == "postgresql" else [])
    assert all(engine._cache.take(i, version) is None for i, version in asynchronous.items())
    with sessions() as session:  # the next step of those instances reads them from the database
        instance_id = next(iter(asynchronous))
        [task] = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                         HumanTask.bpmn_id == "Task_after")).all()
        engine.complete_task(session, task.id, {}, "zhang")
        session.commit()
        assert session.get(ProcessInstance, instance_id).status == "completed"
