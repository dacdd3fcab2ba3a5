"""Hostile form data: whatever JSON a client sends, a task completes or refuses it with ``FormInvalid``.

Hypothesis throws JSON-ish data at every form of ``bpmn/``: values the form's schema allows (so
completions really happen), the same with one field replaced by something hostile, and arbitrary
JSON (NUL characters, lone surrogates, bidi controls, integers beyond 64 bits, NaN and infinities,
nesting, keys starting with ``_``).  ``validate_form`` may only pass or raise ``FormInvalid``;
``Engine.complete_task`` may only complete or raise ``FormInvalid``, and a refused task stays open
with nothing written.  Bounded and derandomized, so every run tries the same examples.
"""
from __future__ import annotations

import json
from datetime import timedelta, timezone
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine import AuditEvent, FormInvalid, HumanTask, ProcessInstance
from engine.forms import validate_form

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
FORMS = sorted(BPMN_DIR.glob("*.json"))
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"

PURE = settings(max_examples=10, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ON_DATABASE = settings(max_examples=2, derandomize=True, database=None, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                              HealthCheck.function_scoped_fixture])

# ----------------------------------------------------------------------------------- strategies

HOSTILE_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=()), max_size=40),  # includes lone surrogates
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "\u202e\u2066evil", "\u200b", "'; DROP TABLE human_task; --",
                     "{{7*7}}", "<script>alert(1)</script>", "../../etc/passwd", "%s%s%n", "x" * 5000]),
)
HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.sampled_from([2 ** 63, -(2 ** 63) - 1, 10 ** 30, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True), HOSTILE_TEXT,
)
HOSTILE_KEYS = st.one_of(st.text(max_size=10), st.sampled_from(["_private", "__class__", "", "\x00", "\u202e"]))


def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_KEYS, inner, max_size=4)


# Named functions, not lambdas, in strategies: describing a lambda makes Hypothesis compile source (slow).
HOSTILE_JSON = st.recursive(HOSTILE_SCALARS, _containers, max_leaves=10)


def _iso(moment) -> str:
    return moment.isoformat()


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _length_between(low: int, high: int, text: str) -> bool:
    return low <= len(text) <= high


def _deep(depth: int):
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def from_schema(schema: dict):
    """Values that the subset of JSON Schema the forms use mostly accepts (``if``/``then`` aside)."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        return st.one_of([from_schema({**rest, **choice}) for choice in schema["anyOf"]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": one}) for one in kind])
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = [name for name in schema.get("required", []) if name in properties]
        optional = [name for name in properties if name not in required]
        return st.fixed_dictionaries({name: from_schema(properties[name]) for name in required},
                                     optional={name: from_schema(properties[name]) for name in optional})
    if kind == "array":
        items = from_schema(schema.get("items", {}))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 5), 5),
                        unique_by=_canonical if schema.get("uniqueItems") else None)
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2 ** 31) - 1) + 1
                         if "exclusiveMinimum" in schema else None)
        return st.integers(min_value=low, max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(_iso)
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(timezone.utc)).map(_iso)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                partial(_length_between, schema.get("minLength", 0), schema.get("maxLength", 10 ** 6)))
        low = schema.get("minLength", 0)
        return st.text(st.characters(blacklist_categories=()), min_size=low,
                       max_size=min(schema.get("maxLength", low + 30), low + 30))
    return HOSTILE_JSON


@st.composite
def hostile_form_data(draw, schema: dict):
    """A valid-looking submission, the same with one field made hostile, or any JSON at all."""
    way = draw(st.sampled_from(["valid", "one_field", "anything", "deep"]))
    if way == "anything":
        return draw(st.one_of(HOSTILE_JSON, st.dictionaries(HOSTILE_KEYS, HOSTILE_JSON, max_size=6)))
    data = draw(from_schema(schema))
    if way == "valid" or not isinstance(data, dict):
        return data
    field = draw(st.sampled_from(sorted(schema.get("properties", {})) + ["_sneaky", "unknown"]))
    data = dict(data)
    data[field] = _deep(draw(st.sampled_from([50, 400, 900]))) if way == "deep" else draw(HOSTILE_JSON)
    return data


def _schema(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# Values JSON parsers accept (Python's reads NaN and Infinity, and "\ud800" escapes) that no database
# stores alike: each once crashed a completion, or would have on PostgreSQL.
NASTY = {"lone surrogate": "x\ud800y", "NUL": "a\x00b", "NaN": float("nan"), "infinity": float("inf"),
         "2**64": 2 ** 64, "deep": _deep(900)}


def with_nasty(schema: dict, value) -> dict:
    """A submission of the form with ``value`` in the first text field (or an extra field)."""
    data = {name: "x" for name in schema.get("required", [])}
    texts = [name for name, field in schema.get("properties", {}).items() if field.get("type") == "string"]
    data[texts[0] if texts else "extra"] = value
    return data


# -------------------------------------------------------------------------------- validate_form

@pytest.mark.parametrize("form", FORMS, ids=lambda p: p.name)
@PURE
@given(data=st.data())
def test_validate_form_passes_or_raises_form_invalid(form, data):
    schema = _schema(form)
    submitted = data.draw(hostile_form_data(schema), label="submitted")
    try:
        validate_form(schema, submitted)
    except FormInvalid as refusal:
        assert refusal.errors and all(isinstance(e.field, str) and e.message for e in refusal.errors)


@pytest.mark.parametrize("nasty", NASTY, ids=list(NASTY))
def test_values_no_database_stores_alike_are_refused_on_every_form(nasty):
    for form in FORMS:
        with pytest.raises(FormInvalid) as refusal:
            validate_form(_schema(form), with_nasty(_schema(form), NASTY[nasty]))
        assert refusal.value.errors[0].message, form.name


# ------------------------------------------------------------------------------- complete_task

def probe_bpmn(index: int, form_name: str) -> bytes:
    """One user task showing ``form_name``, between a start and an end."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Defs_probe_{index}" targetNamespace="http://lianqing.example/probe">
  <bpmn:process id="probe_{index}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>Flow_1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Task_form" name="{form_name}">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="{form_name}" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>Flow_2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Task_form" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Task_form" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
""".encode()


def attempt(engine, session, task_id: int, submitted) -> bool:
    """Complete the task with ``submitted``: True if it completed; on FormInvalid check nothing moved."""
    row = session.get(HumanTask, task_id)
    instance = session.get(ProcessInstance, row.instance_id)
    version = instance.version
    events = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.instance_id == instance.id))
    try:
        engine.complete_task(session, task_id, submitted, None)
    except FormInvalid as refusal:
        assert refusal.errors
        session.rollback()
        session.expire_all()
        assert session.get(HumanTask, task_id).state in HumanTask.OPEN_STATES
        assert session.get(ProcessInstance, row.instance_id).version == version
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.instance_id == instance.id)) == events
        return False
    session.commit()
    session.expire_all()
    assert session.get(HumanTask, task_id).state == "completed"
    return True


def test_complete_task_completes_or_refuses_every_form(engine, sessions):
    """On SQLite and PostgreSQL: each form of bpmn/ on a task of its own, hammered with hostile data."""
    with sessions() as session:
        for index, form in enumerate(FORMS):
            engine.deploy(session, probe_bpmn(index, form.name), f"probe_{index}.bpmn",
                          forms={form.name: form.read_bytes()})
        session.commit()
        outcomes = []

        def hammer(process_id: str, schema: dict):
            @ON_DATABASE
            @given(submitted=hostile_form_data(schema))
            def run(submitted):
                instance = engine.start(session, process_id, {})
                session.commit()
                [task_id] = instance.new_task_ids
                outcomes.append(attempt(engine, session, task_id, submitted))
            run()

        for index, form in enumerate(FORMS):
            hammer(f"probe_{index}", _schema(form))
            for value in NASTY.values():  # the known offenders, on every form, whatever Hypothesis drew
                instance = engine.start(session, f"probe_{index}", {})
                session.commit()
                assert not attempt(engine, session, instance.new_task_ids[0], with_nasty(_schema(form), value))
    assert True in outcomes and False in outcomes  # both paths were really exercised


def test_the_real_activity_record_process_completes_or_refuses(sessions, clock):
    """The demo process itself: record, then verify, each hammered; the process goes on only with valid data."""
    from tests.league import build_league
    from workflows.league_engine import build_league_engine

    engine = build_league_engine(clock=clock, cache_size=0)
    record, verify = _schema(BPMN_DIR / "activity_record.json"), _schema(BPMN_DIR / "activity_verify.json")
    good_record = {"kind": "league_lecture", "date": "2026-05-02", "place": "市南区团委", "youth_count": 12,
                   "description": "讲了一次团课，青年们积极参与讨论并提出问题。"}
    with sessions() as session:
        build_league(session, clock.now())
        engine.deploy_file(session, BPMN_DIR / "activity_record.bpmn")
        session.commit()

        def start() -> int:
            instance = engine.start(session, "activity_record",
                                    {"deadline": (clock.now() + timedelta(days=5)).isoformat(),
                                     "cadre_assignee": "zhang"}, organisation_id="qd-sn", actor="test")
            session.commit()
            return instance.new_task_ids[0]

        @ON_DATABASE
        @given(submitted=hostile_form_data(record))
        def hammer_record(submitted):
            attempt(engine, session, start(), submitted)

        @ON_DATABASE
        @given(submitted=hostile_form_data(verify))
        def hammer_verify(submitted):
            first = start()
            assert attempt(engine, session, first, good_record)
            [verify_task] = engine.ready_tasks(session, instance_id=session.get(HumanTask, first).instance_id)
            attempt(engine, session, verify_task.id, submitted)

        hammer_record()
        hammer_verify()
