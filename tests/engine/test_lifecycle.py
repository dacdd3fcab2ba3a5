"""A two-lane process from start to end through claims and completions, saved and restored each step."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import Engine, FormInvalid, NotAllowed, TaskAlreadyCompleted
from engine.audit import trail
from engine.models import HumanTask, ProcessInstance
from tests.conftest import ENGINE_BPMN

GOOD_RECORD = {"date": "2026-05-02", "place": "市南区团委", "participants": 12}


@pytest.fixture
def review_process(engine, sessions):
    with sessions() as session:
        engine.deploy_file(session, ENGINE_BPMN / "two_lane_review.bpmn", actor="admin")
        session.commit()


def start_review(engine, session, clock, org="qd-shinan"):
    instance = engine.start(session, "two_lane_review",
                            {"deadline": (clock.now() + timedelta(days=5)).isoformat()},
                            organisation_id=org, business_key="rec-1", actor="organiser-1")
    session.commit()
    return instance


def open_tasks(session, instance_id):
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                   HumanTask.state.in_(HumanTask.OPEN_STATES))).all()


def test_two_lanes_run_start_to_end_through_claims_and_completions(engine, sessions, clock, review_process):
    with sessions() as session:
        started = start_review(engine, session, clock)
        instance_id = started.id
        [record] = open_tasks(session, instance_id)
        assert started.new_task_ids == (record.id,)
        assert (record.bpmn_id, record.lane, record.candidate_role) == ("Task_record", "cadre", "cadre")
        assert record.organisation_id == "qd-shinan" and record.assignee is None and record.state == "ready"
        assert record.form_key == "record.json" and "活动" in record.instructions

        engine.claim(session, record.id, "cadre-zhang")
        session.commit()
        with pytest.raises(NotAllowed):
            engine.complete_task(session, record.id, GOOD_RECORD, "cadre-li")
        session.rollback()
        done = engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        session.commit()
        assert (done.id, done.completed_by, done.instance_id) == (record.id, "cadre-zhang", instance_id)

    # A second engine has no memory of the first: the state comes back from the database.
    fresh = Engine(services=engine.services, clock=clock, cache_size=0)
    with sessions() as session:
        [review] = open_tasks(session, instance_id)
        assert (review.bpmn_id, review.lane) == ("Task_review", "organiser")
        assert done.next_task_ids == (review.id,)
        fresh.claim(session, review.id, "organiser-wang")
        fresh.complete_task(session, review.id, {"approved": True, "comment": "好"}, "organiser-wang")
        session.commit()
        done = session.get(ProcessInstance, instance_id)
        assert done.status == "completed" and done.ended_at is not None and done.next_timer_at is None
        assert done.data["approved"] is True and done.data["place"] == "市南区团委"
        assert open_tasks(session, instance_id) == []
        kinds = [event.kind for event in trail(session, instance_id)]
        assert kinds == ["started", "task_created", "claimed", "task_completed", "task_created", "claimed",
                         "task_completed", "completed"]
        completed = session.get(HumanTask, record.id)
        assert completed.state == "completed" and completed.completed_by == "cadre-zhang"


def test_returned_review_loops_back_to_the_cadre(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = start_review(engine, session, clock)
        [record] = open_tasks(session, instance.id)
        engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        [review] = open_tasks(session, instance.id)
        engine.complete_task(session, review.id, {"approved": False, "comment": "请补充照片"}, "organiser-wang")
        session.commit()
        [again] = open_tasks(session, instance.id)
        assert again.bpmn_id == "Task_record" and again.id != record.id
        assert session.get(ProcessInstance, instance.id).status == "running"


def test_form_rejects_bad_data_with_field_messages_and_writes_nothing(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = start_review(engine, session, clock)
        [record] = open_tasks(session, instance.id)
        version = session.get(ProcessInstance, instance.id).version
        with pytest.raises(FormInvalid) as caught:
            engine.complete_task(session, record.id, {"date": "not-a-date", "participants": 0}, "cadre-zhang")
        session.rollback()
        fields = {e.field: e.message for e in caught.value.errors}
        assert set(fields) == {"date", "participants", "place"}
        assert "required" in fields["place"] and "date" in fields["date"]
        assert session.get(HumanTask, record.id).state == "ready"
        assert session.get(ProcessInstance, instance.id).version == version
        with pytest.raises(FormInvalid):
            engine.complete_task(session, record.id, ["not", "an", "object"], "cadre-zhang")


def test_completing_twice_says_already_completed(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = start_review(engine, session, clock)
        [record] = open_tasks(session, instance.id)
        engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        session.commit()
        with pytest.raises(TaskAlreadyCompleted) as caught:
            engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        assert "cadre-zhang" in str(caught.value)


def test_unclaim_and_reassign_are_audited(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = start_review(engine, session, clock)
        [record] = open_tasks(session, instance.id)
        engine.claim(session, record.id, "cadre-zhang")
        engine.unclaim(session, record.id, "cadre-zhang")
        engine.claim(session, record.id, "cadre-li")
        engine.reassign(session, record.id, "cadre-zhao", "cadre-li")
        session.commit()
        row = session.get(HumanTask, record.id)
        assert (row.assignee, row.state) == ("cadre-zhao", "claimed")
        events = [(e.kind, e.actor, (e.before or {}).get("assignee"), (e.after or {}).get("assignee"))
                  for e in trail(session, instance.id) if e.kind in {"claimed", "unclaimed", "reassigned"}]
        assert events == [("claimed", "cadre-zhang", None, "cadre-zhang"),
                          ("unclaimed", "cadre-zhang", "cadre-zhang", None),
                          ("claimed", "cadre-li", None, "cadre-li"),
                          ("reassigned", "cadre-li", "cadre-li", "cadre-zhao")]


def test_data_can_name_the_assignee(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = engine.start(session, "two_lane_review", {
            "deadline": (clock.now() + timedelta(days=5)).isoformat(), "cadre_assignee": "cadre-zhang"})
        session.commit()
        [record] = open_tasks(session, instance.id)
        assert (record.assignee, record.state) == ("cadre-zhang", "claimed")


def test_process_view_marks_done_ready_and_waiting_elements(engine, sessions, clock, review_process):
    with sessions() as session:
        instance = start_review(engine, session, clock)
        view = engine.process_view(session, instance.id)
        assert "Task_record" in view.ready and "StartEvent_1" in view.completed
        assert {"Timer_remind", "Timer_deadline"} <= set(view.waiting)
        assert 'id="Task_record"' in view.bpmn_xml
        [record] = open_tasks(session, instance.id)
        engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        session.commit()
        view = engine.process_view(session, instance.id)
        assert "Task_record" in view.completed and view.ready == ["Task_review"]
        assert "Timer_deadline" in view.cancelled


def test_running_instances_stay_on_their_version(engine, sessions, clock, review_process):
    original = (ENGINE_BPMN / "two_lane_review.bpmn").read_bytes()
    forms = {name: (ENGINE_BPMN / name).read_bytes() for name in ("record.json", "review.json")}
    with sessions() as session:
        old = start_review(engine, session, clock)
        again = engine.deploy(session, original, "two_lane_review.bpmn", forms)
        assert again.created is False and again.definition.version == 1
        changed = original.replace("审核记录".encode(), "审核记录（新版）".encode())
        v2 = engine.deploy(session, changed, "two_lane_review.bpmn", forms)
        session.commit()
        assert v2.created and v2.definition.version == 2
        new = start_review(engine, session, clock)
        for instance in (old, new):
            [record] = open_tasks(session, instance.id)
            engine.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        session.commit()
        names = {session.get(ProcessInstance, i.id).definition.version: open_tasks(session, i.id)[0].name
                 for i in (old, new)}
        assert names == {1: "审核记录", 2: "审核记录（新版）"}


def test_workflow_cache_gives_the_same_results_as_the_database(sessions, clock, review_process):
    import workflows.services
    cached = Engine(services=workflows.services.registry, clock=clock, cache_size=100)
    with sessions() as session:
        instance = start_review(cached, session, clock)
        [record] = open_tasks(session, instance.id)
        cached.complete_task(session, record.id, GOOD_RECORD, "cadre-zhang")
        session.commit()
        [review] = open_tasks(session, instance.id)
        # A failed completion must not leave a half-run workflow in the cache.
        with pytest.raises(FormInvalid):
            cached.complete_task(session, review.id, {"approved": "yes"}, "organiser-wang")
        session.rollback()
        cached.complete_task(session, review.id, {"approved": True}, "organiser-wang")
        session.commit()
        assert session.get(ProcessInstance, instance.id).status == "completed"
