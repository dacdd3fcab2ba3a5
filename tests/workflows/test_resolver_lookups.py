"""The league resolver's lookups (TaskContext.lookups): asked once per operation, never kept beyond it.

A staff task goes to the nearest organisation at or above the instance's where someone holds the
role.  A bulk start asks that once per role and organisation for all its instances; a grant made
before the next call, in the same transaction or by a service task in the middle of a call, is
seen by every task assigned after it.
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from engine import Engine, HumanTask, ServiceCall, StartRequest
from tests.engine.test_start_many import CONGRESS, deploy
from workflows.models import Organisation, User
from workflows.roles import LeagueAssignmentResolver, LeagueTaskPolicy, grant_role
from workflows.services import registry

# A service task that grants the organiser role where the instance lives (for some requests),
# then an organiser task.
GRANTING_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Defs_grant"
                  targetNamespace="http://lianqing.example/test">
  <bpmn:process id="bulk_grant" name="bulk grant" isExecutable="true">
    <bpmn:laneSet id="LaneSet_1">
      <bpmn:lane id="Lane_organiser" name="organiser">
        <bpmn:flowNodeRef>StartEvent_1</bpmn:flowNodeRef><bpmn:flowNodeRef>Ask</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Grant</bpmn:flowNodeRef><bpmn:flowNodeRef>Merge</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>Task_org</bpmn:flowNodeRef><bpmn:flowNodeRef>End_1</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="Ask" default="F3"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
      <bpmn:outgoing>F3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:serviceTask id="Grant" name="grant">
      <bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="grant_organiser_here" resultVariable="granted"/>
      </bpmn:extensionElements>
      <bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F4</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:exclusiveGateway id="Merge"><bpmn:incoming>F3</bpmn:incoming><bpmn:incoming>F4</bpmn:incoming>
      <bpmn:outgoing>F5</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="Task_org" name="organiser task"><bpmn:incoming>F5</bpmn:incoming><bpmn:outgoing>F6</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Ask"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Ask" targetRef="Grant"><bpmn:conditionExpression>grant == True</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F3" sourceRef="Ask" targetRef="Merge"/>
    <bpmn:sequenceFlow id="F4" sourceRef="Grant" targetRef="Merge"/>
    <bpmn:sequenceFlow id="F5" sourceRef="Merge" targetRef="Task_org"/>
    <bpmn:sequenceFlow id="F6" sourceRef="Task_org" targetRef="End_1"/>
  </bpmn:process>
</bpmn:definitions>
"""


def mixed_requests(orgs: list[str]) -> list[StartRequest]:
    return [StartRequest(dict(CONGRESS, cadre_assignee="wang"), organisation_id=org, business_key=f"k-{n}")
            for n, org in enumerate(orgs)]


def organiser_task_orgs(session, ids: list[int], bpmn_id: str = "Task_org") -> list[str]:
    by_instance = dict(session.execute(select(HumanTask.instance_id, HumanTask.organisation_id)
                                       .where(HumanTask.instance_id.in_(ids), HumanTask.bpmn_id == bpmn_id)).all())
    return [by_instance[i] for i in ids]


def grant_organiser(session, username: str, org_code: str) -> None:
    user = session.scalar(select(User).where(User.username == username))
    grant_role(session, user, "organiser", session.scalar(select(Organisation).where(Organisation.code == org_code)))


@contextmanager
def holder_queries(sessions):
    """Count the resolver's nearest-holder statements run through ``sessions``' engine."""
    seen = []

    def count(_conn, _cursor, statement, _params, _context, _many):
        if "role_grant" in statement and "LIKE" in statement:
            seen.append(statement)
    bind = sessions.kw["bind"]
    event.listen(bind, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(bind, "before_cursor_execute", count)


def test_a_bulk_start_asks_once_per_organisation(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "bulk_mix")
    orgs = ["qd-sn", "qd-sn-gw", "jn-lx"] * 4
    with holder_queries(sessions) as seen, sessions() as session:
        ids = league_engine.start_many(session, definition_id, mixed_requests(orgs))
        session.commit()
        assert organiser_task_orgs(session, ids) == ["qd-sn", "qd-sn", "jn"] * 4
    assert len(seen) == 3  # not one per instance


def test_a_role_granted_between_two_chunks_is_seen_by_the_next(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "bulk_mix")
    with sessions() as session:
        first = league_engine.start_many(session, definition_id, mixed_requests(["jn-lx"] * 9))
        session.commit()
        grant_organiser(session, "J_org", "jn-lx")
        session.commit()
        second = league_engine.start_many(session, definition_id, mixed_requests(["jn-lx"] * 9))
        session.commit()
        assert organiser_task_orgs(session, first) == ["jn"] * 9
        assert organiser_task_orgs(session, second) == ["jn-lx"] * 9


def test_nothing_is_kept_from_one_call_to_the_next_in_one_transaction(sessions, league, league_engine):
    definition_id = deploy(sessions, league_engine, "bulk_mix")
    with sessions() as session:
        first = league_engine.start_many(session, definition_id, mixed_requests(["jn-lx"] * 9))
        grant_organiser(session, "J_org", "jn-lx")  # not committed: the same transaction goes on
        second = league_engine.start_many(session, definition_id, mixed_requests(["jn-lx"] * 9))
        single = league_engine.start(session, "bulk_mix", mixed_requests(["jn-lx"])[0].data, organisation_id="jn-lx")
        assert organiser_task_orgs(session, first) == ["jn"] * 9
        assert organiser_task_orgs(session, [*second, single.id]) == ["jn-lx"] * 10
        session.rollback()


def test_a_grant_made_by_a_service_in_the_middle_of_a_bulk_start_is_seen_after_it(sessions, league, clock):
    services = registry.__class__(functions=dict(registry.functions))

    @services.register("grant_organiser_here")
    def grant_organiser_here(call: ServiceCall) -> bool:
        grant_organiser(call.session, "J_org", call.organisation_id)
        return True

    engine = Engine(services=services, resolver=LeagueAssignmentResolver(), policy=LeagueTaskPolicy(), clock=clock,
                    cache_size=0)
    with sessions() as session:
        definition_id = engine.deploy(session, GRANTING_BPMN, "bulk_grant.bpmn").definition.id
        session.commit()
    requests = [StartRequest({"grant": n == 2}, organisation_id="jn-lx", business_key=f"g-{n}") for n in range(9)]
    with sessions() as session:
        ids = engine.start_many(session, definition_id, requests)
        session.commit()
        assert organiser_task_orgs(session, ids) == ["jn", "jn"] + ["jn-lx"] * 7
