"""engine.spiff_speedups: the replaced SpiffWorkflow functions give what the library's own give.

Every process we deploy is run twice, with the replacements and with SpiffWorkflow's own code
(:func:`engine.spiff_speedups.unpatched`), through its first step, up to four completed tasks and
its timers, and the stored states are compared.  The tree walks are compared walk by walk; the guard
refuses a library the replacements were not written for and leaves it unpatched.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskIterator, TaskState
from SpiffWorkflow.workflow import Workflow

from engine import spiff_speedups
from engine.clock import clock_in_effect
from engine.expressions import RestrictedEnvironment, RestrictedScriptEngine
from engine.serialization import _state_bytes_by_registry
from tests.engine.test_start_many import PROCESSES, START_DATA, _stages, normal_state

IDS = [p[0] for p in PROCESSES]


# Enough start data, task answers and service results to take every process in bpmn/ through
# several tasks and its timers (each process reads a few of these names).
RUN_DATA = dict(START_DATA, choose_remind="2026-05-05T00:00:00+08:00", choose_due="2026-05-08T00:00:00+08:00",
                close_at="2026-06-30T00:00:00+08:00", check_at="2026-06-02T09:00:00+08:00",
                period_start="2026-05-01", period_end="2026-06-01", quarter_end="2026-06-30T00:00:00+08:00",
                report_due="2026-06-10T00:00:00+08:00", session_due="2026-06-20T00:00:00+08:00",
                county_due="2026-05-20", city_due="2026-05-25", province_due="2026-05-30", youth_assignee="y_zhao",
                activity_id=7, name="青年故事", question="如何参与志愿服务？", wish_title="一套课外书",
                wish_detail="希望有一套课外书", committee="qd-sn", branch="qd-sn-gw")
ANSWERS = {"verified": True, "approved": True, "reply_decision": "will_fulfil", "fulfil_outcome": "fulfilled",
           "decision": "allow_late", "late_due": "2026-06-20", "date": "2026-05-10", "service_from": "2026-05-11",
           "service_to": "2026-05-12", "allow_late": True, "has_recommendation": False, "review_decision": "accept",
           "verdict": "true", "answer": "欢迎加入", "verification_note": "已核实", "place": "青年之家", "topic": "学习",
           "format": "sharing_session", "youth_count": 30, "description": "交流", "evidence": ["a.pdf"],
           "held_on": "2026-05-10", "method": "phone", "note": "好", "supervision_note": "无", "reply_note": "可以",
           "committee": "qd-sn", "branch": "qd-sn-gw", "participants": 20, "attendance": 40, "youth_helped": 5,
           "nominations": [], "county_selected": [], "city_selected": [], "province_selected": [], "rating": 5,
           "comment": "好", "material": "心得", "session_date": "2026-05-10", "session_place": "团委",
           "session_youth_count": 30, "session_description": "交流", "session_topic": "学习",
           "session_format": "meeting", "session_evidence": ["b.pdf"]}
SERVICE_RESULT = {"code": "qd", "id": 7, "met": True, "kind": "county", "name": "市南区", "activity_id": 7,
                  "kinds_missing": [], "count": 1, "answered_by": "li", "answered_in": 1, "fulfilled_by": "li",
                  "fulfilled_in": 3, "rating": 5, "comment": "好", "entries": []}


def _run(spec, subprocess_specs, clock) -> list[str]:
    """What a workflow stores after its first step, after each of up to four tasks, and after its timers fire."""
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.script_engine = RestrictedScriptEngine(RestrictedEnvironment(call_service=lambda *a: dict(SERVICE_RESULT)))
    workflow.task_tree.data.update(RUN_DATA)
    stored = [normal_state(_state_bytes_by_registry(workflow))]
    with clock_in_effect(clock):
        try:
            workflow.do_engine_steps()
            stored.append(normal_state(_state_bytes_by_registry(workflow)))
            for _ in range(4):
                ready = workflow.get_tasks(state=TaskState.READY, manual=True)
                if not ready:
                    break
                ready[0].set_data(**ANSWERS)
                ready[0].run()
                workflow.do_engine_steps()
                stored.append(normal_state(_state_bytes_by_registry(workflow)))
            for _ in range(2):  # past every deadline above: reminders, escalations, closings
                clock.advance(timedelta(days=40))
                workflow.refresh_timers()
                workflow.do_engine_steps()
                stored.append(normal_state(_state_bytes_by_registry(workflow)))
        except Exception as exc:  # noqa: BLE001 - both must stop alike
            stored.append(f"failed: {type(exc).__name__}: {exc}")
    return stored


@pytest.mark.parametrize("name,spec,subprocess_specs", PROCESSES, ids=IDS)
def test_every_process_runs_alike_with_and_without_the_speedups(name, spec, subprocess_specs, clock):
    assert spiff_speedups.installed()
    start = clock.now()
    patched = _run(spec, subprocess_specs, clock)
    clock.set(start)
    with spiff_speedups.unpatched():
        assert Workflow.get_tasks is spiff_speedups._ORIGINAL_GET_TASKS
        plain = _run(spec, subprocess_specs, clock)
    assert patched == plain
    assert len(patched) >= 3  # the first step and at least one task


def _original_walk(iterator) -> list:
    walked, plain_next = [], spiff_speedups.original_next(type(iterator))
    while True:
        try:
            walked.append(plain_next(iterator))
        except StopIteration:
            return walked


FILTERS = [{}, {"state": TaskState.READY}, {"state": TaskState.WAITING}, {"state": TaskState.NOT_FINISHED_MASK},
           {"state": TaskState.READY, "manual": True}, {"state": TaskState.PREDICTED_MASK},
           {"state": TaskState.FINISHED_MASK}, {"spec_name": "End"}, {"max_depth": 2}, {"end_at_spec": "End"},
           {"depth_first": False}, {"manual": False}, {"state": TaskState.FINISHED_MASK, "spec_name": "End"},
           {"spec_class": UserTask}, {"state": TaskState.READY, "max_depth": 2}, {"updated_ts": 1e12},
           {"state": TaskState.NOT_FINISHED_MASK, "end_at_spec": "End", "manual": True}]


@pytest.mark.parametrize("name,spec,subprocess_specs", PROCESSES, ids=IDS)
def test_the_faster_tree_walk_visits_what_spiffworkflow_visits(name, spec, subprocess_specs, clock):
    for workflow in _stages(spec, subprocess_specs, clock):
        starts = [workflow.task_tree, *list(workflow.tasks.values())[:6]]
        for sub in workflow.subprocesses.values():
            starts.append(sub.task_tree)
        for first in starts:
            for kind in (TaskIterator, BpmnTaskIterator):
                for options in FILTERS + ([{"lane": "cadre"}] if kind is BpmnTaskIterator else []):
                    walked = list(kind(first, **options))
                    assert walked == _original_walk(kind(first, **options)), (name, kind.__name__, options)
            for options in FILTERS + [{"lane": "cadre"}]:
                collected = first.workflow.get_tasks(first, **options)
                assert collected == _original_walk(first.workflow.get_tasks_iterator(first, **options)), \
                    (name, "get_tasks", options)


def test_state_changes_are_still_logged_when_someone_listens(caplog):
    spec, subprocess_specs = PROCESSES[0][1], PROCESSES[0][2]
    with caplog.at_level(logging.INFO, logger="spiff.task"):
        BpmnWorkflow(spec, subprocess_specs).task_tree._set_state(TaskState.WAITING)
    assert any("State changed to WAITING" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("text", ["2099-11-27T00:00:00+08:00", "2026-05-20T00:00:00.250000+00:00",
                                  "2026-05-20T09:30:00", "2026-05-20"])
def test_a_parsed_timer_moment_is_the_one_spiffworkflow_parses(text):
    original = spiff_speedups._ORIGINAL_GET_DATETIME
    assert TimerEventDefinition.get_datetime(text) == original(text)
    assert TimerEventDefinition.get_datetime(text).utcoffset() == original(text).utcoffset()
    assert TimerEventDefinition.get_datetime(text) is TimerEventDefinition.get_datetime(text)  # parsed once


@pytest.mark.parametrize("bad", ["not a moment", None, 20260520])
def test_a_bad_timer_moment_fails_as_in_spiffworkflow(bad):
    with pytest.raises(Exception) as ours:
        TimerEventDefinition.get_datetime(bad)
    with pytest.raises(Exception) as theirs:
        spiff_speedups._ORIGINAL_GET_DATETIME(bad)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_unpatched_puts_the_library_back_for_the_block_only():
    replaced = {(p.owner, p.name): getattr(p.owner, p.name) for p in spiff_speedups.PATCHES}
    with spiff_speedups.unpatched():
        assert Workflow.get_tasks is spiff_speedups._ORIGINAL_GET_TASKS
        assert Task._set_state is spiff_speedups._ORIGINAL_SET_STATE
        assert "__next__" not in BpmnTaskIterator.__dict__  # inherited from TaskIterator again, as in the library
        assert spiff_speedups.unexpected_library() == []
    assert {(p.owner, p.name): getattr(p.owner, p.name) for p in spiff_speedups.PATCHES} == replaced


def test_another_spiffworkflow_version_is_left_unpatched_with_a_warning(monkeypatch, caplog):
    assert "3.3.0 is not 3.2.x" in " ".join(spiff_speedups.unexpected_library("3.3.0"))
    with spiff_speedups.unpatched():
        monkeypatch.setattr(spiff_speedups, "_installed", False)
        monkeypatch.setattr(spiff_speedups, "SPIFFWORKFLOW_VERSION", "4.0.1")
        with caplog.at_level(logging.WARNING, logger="engine.spiff_speedups"):
            assert spiff_speedups.install() is False
        assert Workflow.get_tasks is spiff_speedups._ORIGINAL_GET_TASKS  # the library as it is
        assert "SpiffWorkflow 4.0.1 is not 3.2.x" in caplog.text and "unpatched" in caplog.text
        monkeypatch.undo()
    assert spiff_speedups.installed() and Workflow.get_tasks is not spiff_speedups._ORIGINAL_GET_TASKS


def test_a_changed_signature_is_refused(monkeypatch):
    with spiff_speedups.unpatched():
        monkeypatch.setattr(Task, "_set_state", lambda self, value, reason=None: None)
        problems = spiff_speedups.unexpected_library()
        monkeypatch.undo()
    assert problems == ["Task._set_state takes (self, value, reason), not (self, value)"]
