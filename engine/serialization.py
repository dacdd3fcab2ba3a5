"""SpiffWorkflow state in and out of the database, with the spec stored once per version.

SpiffWorkflow's serializer writes the whole process spec into every workflow (about half of the
JSON).  We register a workflow converter that leaves the spec out of an instance's state; the
spec is serialized once into ``process_definition.spec_json`` and restored once per process
(cached by definition id), then handed back when an instance is rebuilt.

Two shortcuts keep a bulk start fast, both checked against SpiffWorkflow's own results in
``tests/engine/test_start_many.py``: a new workflow is copied from a template of its spec's fresh
task tree instead of predicting the tree again (:func:`new_workflow`), and a plain workflow's
task dicts are built directly instead of through the serializer's converter registry
(:func:`state_to_bytes`); both give exactly what SpiffWorkflow itself gives.
"""
from __future__ import annotations

import json
import os
import threading
import time
from copy import deepcopy
from types import ModuleType
from typing import Any
from uuid import UUID, SafeUUID

import orjson
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.spiff.serializer import DEFAULT_CONFIG as SPIFF_CONFIG
from SpiffWorkflow.task import Task

try:  # ISA-L writes the same zlib format as the zlib module (either reads the other's), about twice as fast
    from isal import isal_zlib as _zlib
except ImportError:  # no wheel for this platform: the standard library, same format
    import zlib as _zlib


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


# States larger than a database page are stored zlib-compressed (about 5x smaller); smaller ones
# fit a page anyway and are stored as plain JSON, which measured ~9% faster end to end.
COMPRESS_ABOVE_BYTES = 4096


def _compressed(data: bytes) -> bytes:
    """``data`` as a zlib stream when it is larger than a page (level 1: ISA-L's fast level, or zlib's)."""
    return _zlib.compress(data, 1) if len(data) > COMPRESS_ABOVE_BYTES else data


def state_to_bytes(workflow: BpmnWorkflow) -> bytes:
    """Serialize a workflow's running state, without its specs: JSON bytes, zlib'd when large.

    orjson writes the same JSON as SpiffWorkflow's encoder, several times faster.
    """
    dct = _plain_state_dict(workflow)
    if dct is None:
        return _state_bytes_by_registry(workflow)
    return _compressed(orjson.dumps(dct, default=_encode_default, option=orjson.OPT_NON_STR_KEYS))


def _state_bytes_by_registry(workflow: BpmnWorkflow) -> bytes:
    """:func:`state_to_bytes` through SpiffWorkflow's converter registry (any workflow)."""
    registry = _SERIALIZER.registry
    registry._encoder_mode = True
    try:
        dct = registry.convert(workflow)
        dct[_SERIALIZER.VERSION_KEY] = _SERIALIZER.VERSION
        data = orjson.dumps(dct, default=_encode_default, option=orjson.OPT_NON_STR_KEYS)
    finally:
        registry._encoder_mode = False
    return _compressed(data)


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """What the registry's encoder mode does to a dict: drop callables and modules (no copy when none)."""
    if not data:
        return data
    for value in data.values():
        if callable(value) or isinstance(value, ModuleType):
            return {k: v for k, v in data.items() if not callable(v) and not isinstance(v, ModuleType)}
    return data


def _plain_state_dict(workflow: BpmnWorkflow) -> dict[str, Any] | None:
    """The dict the registry makes of a workflow without subprocesses or pending events, built directly.

    Same keys, values and order as :class:`_StateOnlyWorkflowConverter` with SpiffWorkflow's
    :class:`TaskConverter`; UUIDs are left to orjson, which writes them as ``str(uuid)`` does.
    ``None`` when the workflow is not that simple (the registry then does it).
    """
    if type(workflow) is not BpmnWorkflow or workflow.subprocesses or workflow.bpmn_events:
        return None
    tasks = workflow.tasks
    converted = {}
    for task_id, task in tasks.items():
        if type(task) is not Task:
            return None
        parent = tasks.get(task._parent) if task._parent is not None else None
        data = task.data
        if parent is None:
            delta = {}
        else:
            before = parent.data
            if not data:  # most of a new tree: what the general case below gives, without its loops
                delta = {"updates": {}, "deletions": list(before)}
            elif not before:
                delta = {"updates": dict(data), "deletions": []}
            else:
                delta = {"updates": {k: v for k, v in data.items() if k not in before or v != before[k]},
                         "deletions": [k for k in before if k not in data]}
            data = {}
        internal_data = task.internal_data
        converted[task_id] = {
            "id": task_id, "parent": task._parent if parent is not None else None, "children": task._children,
            "last_state_change": task.last_state_change, "state": task._state, "task_spec": task.task_spec.name,
            "triggered": task.triggered, "internal_data": _clean(internal_data) if internal_data else internal_data,
            "data": data, "delta": delta, "typename": _TASK_TYPENAME}
    last_task = workflow.last_task
    return {"data": _clean(workflow.data), "correlations": workflow.correlations,
            "last_task": last_task.id if last_task is not None else None, "success": workflow.success,
            "completed": workflow.completed, "tasks": converted, "root": workflow.task_tree.id,
            "subprocesses": {}, "bpmn_events": [], "typename": _WORKFLOW_TYPENAME,
            _SERIALIZER.VERSION_KEY: _SERIALIZER.VERSION}


_TASK_TYPENAME = _SERIALIZER.registry.typenames[Task]
_WORKFLOW_TYPENAME = _SERIALIZER.registry.typenames[BpmnWorkflow]
_TASK_ATTRIBUTES = frozenset({"id", "workflow", "_parent", "_children", "_state", "triggered", "task_spec",
                              "thread_id", "data", "internal_data", "last_state_change"})


class _FreshTree:
    """The task tree SpiffWorkflow predicts for a new workflow of one spec, kept to be copied."""

    def __init__(self, spec, subprocess_specs: dict[str, Any]):
        self.spec = spec
        template = BpmnWorkflow(spec, subprocess_specs)
        # Only a tree with nothing but tasks attached can be copied task by task.
        plain = (not template.subprocesses and not template.bpmn_events and not template.correlations
                 and not template.event_manager.tasks and not template.locks and template.last_task is None
                 and template.completed_event.n_subscribers() == 0
                 and template.task_removed_event.n_subscribers() == 0
                 and all(type(t) is Task and t.__dict__.keys() == _TASK_ATTRIBUTES for t in template.tasks.values()))
        self.template = template if plain else None
        # The tree by position: parent and children as indexes, so a copy needs no id lookups.
        position = {task_id: index for index, task_id in enumerate(template.tasks)}
        self.layout = [(position.get(t._parent), [position[c] for c in t._children], t)
                       for t in template.tasks.values()]
        self.root = position[template.task_tree.id]

    def copy(self, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
        """A new workflow equal to a freshly constructed one: same tree, new task ids and times."""
        workflow = BpmnWorkflow(self.spec, subprocess_specs, deserializing=True)
        ids = _random_uuid4s(len(self.layout))
        now = time.time()
        copies = []
        for index, (parent, children, source) in enumerate(self.layout):
            # Attributes set one by one, in Task.__init__'s order, so the object is laid out like one
            # SpiffWorkflow made (a filled __dict__ makes every later attribute read slower).
            task = Task.__new__(Task)
            task.id = ids[index]
            task.workflow = workflow
            task._parent = ids[parent] if parent is not None else None
            task._children = [ids[child] for child in children]
            task._state = source._state
            task.triggered = source.triggered
            task.task_spec = source.task_spec
            task.thread_id = Task.thread_id_pool
            task.data = deepcopy(source.data) if source.data else {}
            task.internal_data = deepcopy(source.internal_data) if source.internal_data else {}
            task.last_state_change = now
            copies.append(task)
        workflow.tasks = dict(zip(ids, copies))
        workflow.task_tree = copies[self.root]
        workflow.data = deepcopy(self.template.data)
        return workflow


def _random_uuid4s(count: int) -> list[UUID]:
    """``count`` random version-4 UUIDs, as ``uuid4()`` makes them, from one read of the OS's randomness.

    Each is made as ``UUID(int=...)`` makes it (its two slots set), without the argument checks
    of ``UUID.__init__``, which cost as much as the rest of the copy's ids.
    """
    raw = os.urandom(16 * count)
    from_bytes, new, put, unknown = int.from_bytes, object.__new__, object.__setattr__, SafeUUID.unknown
    ids = []
    for offset in range(0, 16 * count, 16):
        uuid = new(UUID)
        put(uuid, "int", (from_bytes(raw[offset:offset + 16], "big") & _UUID4_KEEP) | _UUID4_SET)  # RFC 4122 v4
        put(uuid, "is_safe", unknown)
        ids.append(uuid)
    return ids


_UUID4_KEEP = ~((0xc000 << 48) | (0xf000 << 64)) & ((1 << 128) - 1)
_UUID4_SET = (0x8000 << 48) | (4 << 76)

_FRESH_TREES: dict[int, _FreshTree] = {}
_FRESH_TREES_LOCK = threading.Lock()


def new_workflow(spec, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    """A new workflow of ``spec``, as ``BpmnWorkflow(spec, subprocess_specs)`` makes it, only faster.

    The first call per spec builds the workflow the normal way and keeps its predicted task tree;
    later calls copy that tree with new task ids.  A spec whose new workflow holds more than a
    plain task tree is always built the normal way.
    """
    with _FRESH_TREES_LOCK:
        tree = _FRESH_TREES.get(id(spec))
    if tree is None or tree.spec is not spec:
        tree = _FreshTree(spec, subprocess_specs)
        with _FRESH_TREES_LOCK:
            _FRESH_TREES[id(spec)] = tree
    if tree.template is None:
        return BpmnWorkflow(spec, subprocess_specs)
    return tree.copy(subprocess_specs)




def state_from_bytes(state: bytes, spec, subprocess_specs: dict[str, Any]) -> BpmnWorkflow:
    """Rebuild a workflow from its stored state and its (shared, cached) specs."""
    dct = orjson.loads(state if state[:1] == b"{" else _zlib.decompress(state))
    _SERIALIZER.migrate(dct)
    dct["spec"] = spec
    dct["subprocess_specs"] = subprocess_specs
    return _SERIALIZER.from_dict(dct)
