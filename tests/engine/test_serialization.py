"""Workflow state round trips through the stored form, small (plain JSON) and large (compressed)."""
from __future__ import annotations

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.definitions import parse_definition
from engine.expressions import RestrictedScriptEngine
from engine.runtime import forms_beside
from engine.serialization import (spec_from_json, spec_to_json, state_from_bytes,
                                  state_to_bytes)
from tests.conftest import ENGINE_BPMN


def parsed_review():
    path = ENGINE_BPMN / "two_lane_review.bpmn"
    content = path.read_bytes()
    return parse_definition(content, path.name, forms_beside(path, content))


def task_data(workflow):
    return [t.data for t in workflow.get_tasks()]


def ready_names(workflow):
    return sorted(t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.READY, manual=True))


def test_small_state_is_plain_json_and_round_trips(monkeypatch):
    import engine.serialization
    monkeypatch.setattr(engine.serialization, "COMPRESS_ABOVE_BYTES", 1_000_000)
    parsed = parsed_review()
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=RestrictedScriptEngine())
    workflow.task_tree.data.update(deadline="2099-06-01T00:00:00+00:00")
    workflow.do_engine_steps()
    stored = state_to_bytes(workflow)
    assert stored[:1] == b"{"
    spec, subprocess_specs = spec_from_json(spec_to_json(parsed.spec, parsed.subprocess_specs))
    restored = state_from_bytes(stored, spec, subprocess_specs)
    assert ready_names(restored) == ready_names(workflow) == ["Task_record"]
    assert b'"spec"' not in stored  # the spec is stored once per version, not per instance


def test_large_state_is_compressed_and_round_trips():
    parsed = parsed_review()
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=RestrictedScriptEngine())
    workflow.task_tree.data.update(deadline="2099-06-01T00:00:00+00:00", notes=["说明 %d" % i for i in range(2000)])
    workflow.do_engine_steps()
    stored = state_to_bytes(workflow)
    assert stored[:1] != b"{" and len(stored) * 3 < len(str(task_data(workflow)))
    restored = state_from_bytes(stored, parsed.spec, parsed.subprocess_specs)
    [task] = restored.get_tasks(state=TaskState.READY, manual=True)
    assert task.data["notes"][1999] == "说明 1999"


def test_compressed_states_are_plain_zlib_both_ways():
    """States are written with ISA-L when it is installed; rows written by the zlib module load the same."""
    import zlib

    parsed = parsed_review()
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=RestrictedScriptEngine())
    workflow.task_tree.data.update(deadline="2099-06-01T00:00:00+00:00", notes=["说明 %d" % i for i in range(500)])
    workflow.do_engine_steps()
    stored = state_to_bytes(workflow)
    text = zlib.decompress(stored)  # what any zlib reader (a backup tool, psql with a script) sees
    assert text[:1] == b"{"
    for row in (stored, zlib.compress(text, 6)):  # this version's rows, and rows from before it
        restored = state_from_bytes(row, parsed.spec, parsed.subprocess_specs)
        assert ready_names(restored) == ["Task_record"]
        assert restored.get_tasks(state=TaskState.READY, manual=True)[0].data["notes"][499] == "说明 499"
