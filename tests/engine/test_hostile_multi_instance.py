"""Multi-instance fan-out is capped: a huge count is refused at deploy, or fails its step at run time.

Before the cap, a parallel multi-instance activity with a cardinality of 100,000 made the start
build 100,000 task objects in one step (the request hung, then wrote a multi-megabyte state row).
Now a cardinality written as a number above the engine's ``max_multi_instance`` (default 1,000) is
refused at deploy (``tests/engine/test_hostile_corpus.py`` checks the element and line), and a count
that comes from data fails the step with a ``WorkflowFailed`` that names the activity and the limit:
nothing of the step is written, the task that led to it stays open, and a smaller count works.
On SQLite and PostgreSQL.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, table

from engine import AuditEvent, Engine, InvalidBpmn, ProcessInstance, WorkflowFailed
from engine.definitions import parse_definition
from engine.multi_instance import DEFAULT_MAX_MULTI_INSTANCE, literal_cardinality
from tests.engine.test_lifecycle import open_tasks

CORPUS = Path(__file__).parent / "hostile"


def _row_counts(session) -> dict[str, int]:
    names = inspect(session.connection()).get_table_names()
    return {name: session.scalar(select(func.count()).select_from(table(name))) for name in names}


def _deploy(engine, session, name: str) -> None:
    engine.deploy_file(session, CORPUS / f"{name}.bpmn")
    session.commit()


def _assert_limit_message(exc: WorkflowFailed, count: int, limit: int = DEFAULT_MAX_MULTI_INSTANCE) -> None:
    text = str(exc)
    assert "走访青年" in text or "计数" in text  # the activity, by its name
    assert f"{count:,}" in text and f"limit is {limit:,}" in text and f"上限 {limit:,}" in text


def test_default_limit_is_a_thousand():
    assert DEFAULT_MAX_MULTI_INSTANCE == 1000 and Engine().max_multi_instance == 1000


@pytest.mark.parametrize(("expression", "count"), [("100000", 100000), ("1000 * 100", 100000), ("-5", -5),
                                                   ("(2 + 3) * 4 // 2", 10), ("count", None), ("len(members)", None),
                                                   ("True", None), ("1 // 0", None), ("9" * 5000, None)])
def test_literal_cardinality_folds_only_integer_literals(expression, count):
    assert literal_cardinality(expression) == count


def test_a_configured_limit_applies_at_deploy():
    content = (CORPUS / "multi_instance_cardinality_huge.bpmn").read_bytes().replace(b">100000<", b">50<")
    parse_definition(content, "fifty.bpmn", {}, known_services=set())  # under the default: deploys
    with pytest.raises(InvalidBpmn) as caught:
        Engine(max_multi_instance=10).check(content, "fifty.bpmn")
    [problem] = caught.value.problems
    assert (problem.element_id, problem.line) == ("Task_visit", 8)
    assert "limit of 10 instances" in problem.message


def test_a_collection_over_the_limit_fails_the_start_and_writes_nothing(engine, sessions):
    with sessions() as session:
        _deploy(engine, session, "multi_instance_collection_from_data")
        before = _row_counts(session)
        members = [f"青年{i}" for i in range(100_000)]
        with pytest.raises(WorkflowFailed) as caught:
            engine.start(session, "multi_instance_collection_from_data", {"members": members})
        session.rollback()
        _assert_limit_message(caught.value, 100_000)
        assert _row_counts(session) == before
        instance = engine.start(session, "multi_instance_collection_from_data", {"members": members[:3]})
        session.commit()
        assert sorted(t.name for t in open_tasks(session, instance.id)) == ["走访青年"] * 3


@pytest.mark.parametrize("data", [{}, {"members": None}, {"members": 5}], ids=["missing", "null", "number"])
def test_a_missing_collection_fails_the_start_with_a_clear_error(engine, sessions, data):
    """Was: SpiffWorkflow's parallel task raised a bare TypeError (an HTTP 500)."""
    with sessions() as session:
        _deploy(engine, session, "multi_instance_collection_from_data")
        with pytest.raises(WorkflowFailed, match="input collection 'members' is missing or not a list"):
            engine.start(session, "multi_instance_collection_from_data", data)
        session.rollback()


def test_exactly_the_limit_is_allowed(sessions, clock):
    small = Engine(clock=clock, cache_size=0, max_multi_instance=5)
    with sessions() as session:
        _deploy(small, session, "multi_instance_collection_from_data")
        with pytest.raises(WorkflowFailed) as caught:
            small.start(session, "multi_instance_collection_from_data", {"members": list(range(6))})
        session.rollback()
        _assert_limit_message(caught.value, 6, limit=5)
        instance = small.start(session, "multi_instance_collection_from_data", {"members": list(range(5))})
        session.commit()
        assert len(open_tasks(session, instance.id)) == 5


def test_a_cardinality_from_a_completed_task_fails_that_step_and_the_task_stays_open(engine, sessions):
    with sessions() as session:
        _deploy(engine, session, "multi_instance_planned")
        instance = engine.start(session, "multi_instance_planned", {})
        session.commit()
        [plan] = open_tasks(session, instance.id)
        version = session.get(ProcessInstance, instance.id).version
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        for hostile in (100_000, 1001):
            with pytest.raises(WorkflowFailed) as caught:
                engine.complete_task(session, plan.id, {"count": hostile}, None)
            session.rollback()
            _assert_limit_message(caught.value, hostile)
        for bad in ("3", -1, 2.5, True):
            with pytest.raises(WorkflowFailed, match="whole number"):
                engine.complete_task(session, plan.id, {"count": bad}, None)
            session.rollback()
        session.expire_all()
        assert [t.id for t in open_tasks(session, instance.id)] == [plan.id]
        assert session.get(ProcessInstance, instance.id).version == version
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
        engine.complete_task(session, plan.id, {"count": 4}, None)  # the person tries again with less
        session.commit()
        assert [t.name for t in open_tasks(session, instance.id)] == ["走访青年"] * 4


def test_a_sequential_script_loop_over_the_limit_stops_before_its_first_instance(engine, sessions):
    with sessions() as session:
        _deploy(engine, session, "multi_instance_sequential_from_data")
        before = _row_counts(session)
        with pytest.raises(WorkflowFailed) as caught:
            engine.start(session, "multi_instance_sequential_from_data", {"count": 10 ** 9})
        session.rollback()
        _assert_limit_message(caught.value, 10 ** 9)
        assert _row_counts(session) == before
        done = engine.start(session, "multi_instance_sequential_from_data", {"count": 7})
        session.commit()
        assert session.get(ProcessInstance, done.id).status == "completed"
