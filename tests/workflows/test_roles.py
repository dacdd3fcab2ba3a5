"""Role resolution for every lane, the task policy, the inbox and who may see a task."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import NotAllowed
from engine.models import HumanTask
from workflows.inbox import can_view_task, inbox
from workflows.roles import holders, load_actor, nearest_holding_organisation
from workflows.organisations import by_code
from tests.workflows.conftest import WORKFLOWS_BPMN


@pytest.fixture
def every_lane(sessions, league, league_engine):
    with sessions() as session:
        league_engine.deploy_file(session, WORKFLOWS_BPMN / "every_lane.bpmn")
        session.commit()


def walk(session, engine, org, data):
    """Start every_lane at ``org`` and complete each task as the system; return each task's routing."""
    instance = engine.start(session, "every_lane", data, organisation_id=org)
    routed, open_ids = {}, instance.new_task_ids
    while open_ids:
        task = session.get(HumanTask, open_ids[0])
        routed[task.bpmn_id] = (task.candidate_role, task.organisation_id, task.assignee)
        open_ids = engine.complete_task(session, task.id, {}, None).next_task_ids
    session.commit()
    return routed


def test_each_lane_goes_where_the_roles_are(sessions, league_engine, every_lane):
    with sessions() as session:
        routed = walk(session, league_engine, "qd-sn-gw-1", {"cadre_assignee": "zhang", "youth_assignee": "youth-1",
                                                              "open_to": "qd-sn"})
    assert routed == {
        "Task_youth": ("youth", "qd-sn-gw-1", "youth-1"),
        "Task_cadre": ("cadre", "qd-sn-gw-1", "zhang"),
        "Task_open": ("cadre", "qd-sn", None),                  # 英雄帖: any cadre of the county
        "Task_coordinator": ("coordinator", "qd-sn", None),     # nearest coordinator above the branch
        "Task_inspector": ("inspector", "qd-sn", None),
        "Task_organiser": ("organiser", "qd-sn", None),
    }


def test_a_county_without_the_role_passes_the_task_up(sessions, league_engine, every_lane):
    with sessions() as session:
        routed = walk(session, league_engine, "jn-lx", {"cadre_assignee": "wang", "open_to": "jn-lx"})
    assert routed["Task_organiser"] == ("organiser", "jn", None)     # Jinan's city organiser
    assert routed["Task_coordinator"] == ("coordinator", "jn-lx", None)  # nobody above holds it: it stays


def test_holders_and_nearest(sessions, league):
    with sessions() as session:
        county = by_code(session, "qd-sn")
        assert [u.username for u in holders(session, "organiser", county)] == ["S_org"]
        assert nearest_holding_organisation(session, "organiser", by_code(session, "qd-sn-gw-1")).code == "qd-sn"
        assert nearest_holding_organisation(session, "admin", by_code(session, "jn-lx")).code == "prov"
        assert nearest_holding_organisation(session, "coordinator", by_code(session, "jn-lx")) is None


@pytest.fixture
def organiser_task(sessions, league_engine, every_lane):
    """An open organiser task at qd-sn (walked there by the system)."""
    with sessions() as session:
        instance = league_engine.start(session, "every_lane", {"cadre_assignee": "zhang", "open_to": "qd-sn"},
                                       organisation_id="qd-sn-gw-1")
        open_ids = instance.new_task_ids
        while True:
            task = session.get(HumanTask, open_ids[0])
            if task.bpmn_id == "Task_organiser":
                session.commit()
                return task.id
            open_ids = league_engine.complete_task(session, task.id, {}, None).next_task_ids


@pytest.mark.parametrize("actor,allowed", [
    ("S_org", True),      # organiser of the county
    ("Q_org", True),      # organiser of the city above
    ("P_org", True),      # organiser of the province
    ("P_admin", True),    # admin covers every role in the subtree
    ("J_org", False),     # organiser of another city
    ("S_coord", False),   # the county, but another role
    ("zhang", False),     # a cadre
    ("nobody", False),    # no such account
])
def test_who_may_claim_an_organiser_task(sessions, league_engine, organiser_task, actor, allowed):
    with sessions() as session:
        if allowed:
            league_engine.claim(session, organiser_task, actor)
            assert session.get(HumanTask, organiser_task).assignee == actor
        else:
            with pytest.raises(NotAllowed):
                league_engine.claim(session, organiser_task, actor)


def test_an_assigned_task_is_only_its_assignees(sessions, league_engine, every_lane):
    with sessions() as session:
        instance = league_engine.start(session, "every_lane", {"youth_assignee": "youth-1", "cadre_assignee": "zhang"},
                                       organisation_id="qd-sn")
        youth_task = session.get(HumanTask, instance.new_task_ids[0])
        for intruder in ("S_org", "zhang", "P_admin"):
            with pytest.raises(NotAllowed, match="youth-1"):
                league_engine.complete_task(session, youth_task.id, {}, intruder)
        league_engine.reassign(session, youth_task.id, "youth-2", "P_admin")  # an admin may reassign
        assert session.get(HumanTask, youth_task.id).assignee == "youth-2"


def test_inbox_shows_mine_and_my_roles_offers_only(sessions, league, league_engine, organiser_task):
    with sessions() as session:
        def names(username):
            return [(t.bpmn_id, t.organisation_id) for t in inbox(session, load_actor(session, username))]
        assert names("S_org") == [("Task_organiser", "qd-sn")]
        assert names("Q_org") == []          # offered at the county, not in the city's inbox
        assert names("J_org") == [] and names("zhang") == []
        league_engine.claim(session, organiser_task, "Q_org")
        session.commit()
        assert names("Q_org") == [("Task_organiser", "qd-sn")] and names("S_org") == []


def test_open_cadre_tasks_reach_every_cadre_inside(sessions, league_engine, every_lane):
    with sessions() as session:
        instance = league_engine.start(session, "every_lane", {"cadre_assignee": "zhang", "open_to": "qd-sn"},
                                       organisation_id="qd-sn")
        open_ids = instance.new_task_ids
        for _ in range(2):  # youth, then cadre
            open_ids = league_engine.complete_task(session, open_ids[0], {}, None).next_task_ids
        session.commit()
        open_task = session.get(HumanTask, open_ids[0])
        assert open_task.bpmn_id == "Task_open" and open_task.assignee is None
        li, wang = load_actor(session, "li"), load_actor(session, "wang")
        assert [t.id for t in inbox(session, li)] == [open_task.id]   # li works under qd-sn
        assert inbox(session, wang) == []                              # wang is in Jinan
        assert can_view_task(session, li, open_task) and not can_view_task(session, wang, open_task)
        with pytest.raises(NotAllowed):
            league_engine.claim(session, open_task.id, "wang")
        league_engine.claim(session, open_task.id, "li")


def test_who_may_see_a_task(sessions, league, organiser_task):
    with sessions() as session:
        task = session.get(HumanTask, organiser_task)
        visible = {name: can_view_task(session, load_actor(session, name), task)
                   for name in ("S_org", "S_coord", "S_insp", "Q_org", "P_admin", "J_org", "zhang", "wang")}
        assert visible == {"S_org": True, "S_coord": True, "S_insp": True, "Q_org": True, "P_admin": True,
                           "J_org": False, "zhang": False, "wang": False}
        assert session.scalar(select(HumanTask.state).where(HumanTask.id == organiser_task)) == "ready"
