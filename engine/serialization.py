"""SpiffWorkflow state in and out of the database, with the spec stored once per version.

SpiffWorkflow's serializer writes the whole process spec into every workflow (about half of the
JSON).  We register a workflow converter that leaves the spec out of an instance's state; the
spec is serialized once into ``process_definition.spec_json`` and restored once per process
(cached by definition id), then handed back when an instance is rebuilt.
"""
from __future__ import annotations

import json
import zlib
from types import ModuleType
from typing import Any
from uuid import UUID

import orjson

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG as SPIFF_CONFIG


class _StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Converts a workflow without its specs; restores it around specs handed in as objects."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        workflow = self.target_class(dct.pop("spec"), dct.pop("subprocess_specs"), deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _StateOnlyWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))


_SERIALIZER = _make_serializer()
_ENCODER = _SERIALIZER._encoder_cls


def spec_to_json(spec, subprocess_specs: dict[str, Any]) -> str:
    """Serialize a process spec and its subprocess specs (once per deployed version)."""
    registry = _SERIALIZER.registry
    return json.dumps({
        "spec": registry.convert(spec),
        "subprocess_specs": {name: registry.convert(s) for name, s in subprocess_specs.items()},
        _SERIALIZER.VERSION_KEY: _SERIALIZER.VERSION,
    }, cls=_ENCODER)


def spec_from_json(text: str) -> tuple[Any, dict[str, Any]]:
    """Restore (spec, subprocess_specs) from :func:`spec_to_json` output."""
    dct = json.loads(text)
    registry = _SERIALIZER.registry
    spec = registry.restore(dct["spec"])
    subprocess_specs = {name: registry.restore(s) for name, s in dct["subprocess_specs"].items()}
    return spec, subprocess_specs


def _encode_default(obj: Any) -> Any:
    """What SpiffWorkflow's JSON encoder does with objects JSON does not know (for orjson)."""
    registry = _SERIALIZER.registry
    typename = registry.typenames.get(type(obj))
    if typename is not None:
        return registry.convert_to_dict[typename](obj)
    if callable(obj) or isinstance(obj, ModuleType):
        return None
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot store a {type(obj).__name__} in process data")


# States larger than a database page are stored zlib-compressed (about 4x smaller); smaller ones
# fit a page anyway and are stored as plain JSON, which measured ~9% faster end to end.
COMPRESS_ABOVE_BYTES = 4096


def state_to_bytes(workflow: BpmnWorkflow) -> bytes:
    """Serialize a workflow's running state, without its specs: JSON bytes, zlib'd when large.

    orjson writes the same JSON as SpiffWorkflow's encoder, several times faster.
    """
    registry = _SERIALIZER.registry
    registry._encoder_mode = True
    try:
        dct = registry.convert(workflow)
        dct[_SERIALIZER.VERSION_KEY] = _SERIALIZER.VERSION
        data = orjson.dumps(dct, default=_encode_default, option=orjson.OPT_NON_STR_KEYS)
    finally:
        registry._encoder_mode = False
    return zlib.compress(data, 1) if len(data) > COMPRESS_ABOVE_BYTES else data


def state_from_bytes(state: bytes, spec, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    """Rebuild a workflow from its stored state and its (shared, cached) specs."""
    dct = orjson.loads(state if state[:1] == b"{" else zlib.decompress(state))
    _SERIALIZER.migrate(dct)
    dct["spec"] = spec
    dct["subprocess_specs"] = subprocess_specs
    return _SERIALIZER.from_dict(dct)
