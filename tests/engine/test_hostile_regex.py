"""Regular-expression denial of service through a form: patterns run on RE2, in time linear in the input.

Under Python's backtracking ``re``, ``"pattern": "^(a+)+$"`` against 50,000 ``a``'s and a ``!`` would
never return (each extra character doubles the work).  Forms match ``pattern`` and
``patternProperties`` (also where ``additionalProperties`` consults them) with RE2, so these tests
simply get their answer; a pattern RE2 cannot run (backreferences, lookaround) is refused at deploy
with the form, the field and the reason.  The assertions are on results, not on time: the point is
that the call returns.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import AuditEvent, FormInvalid, ProcessInstance
from engine.forms import compile_pattern, pattern_problems, validate_form
from tests.engine.test_lifecycle import open_tasks

CORPUS = Path(__file__).parent / "hostile"
CATASTROPHIC = json.loads((CORPUS / "regex_catastrophic.json").read_text(encoding="utf-8"))
BPMN_FORMS = sorted((Path(__file__).resolve().parents[2] / "bpmn").glob("*.json"))
HOSTILE_VALUE = "a" * 50_000 + "!"


def _fields(exc: FormInvalid) -> list[str]:
    return [error.field for error in exc.errors]


def test_a_catastrophic_pattern_judges_a_50000_character_value():
    with pytest.raises(FormInvalid) as caught:
        validate_form(CATASTROPHIC, {"name": HOSTILE_VALUE})
    assert _fields(caught.value) == ["name"]
    [error] = caught.value.errors
    assert "does not match '^(a+)+$'" in error.message and len(error.message) < 200  # the value is cut short
    validate_form(CATASTROPHIC, {"name": "a" * 50_000})  # and a value that matches passes


def test_a_catastrophic_pattern_property_judges_a_hostile_key():
    hostile_key = "x" * 5000 + "!"
    with pytest.raises(FormInvalid) as caught:  # no pattern matches it, and additionalProperties is false
        validate_form(CATASTROPHIC, {"name": "aaa", hostile_key: "v"})
    assert "do" in caught.value.errors[0].message and "^(x+x+)+y$" in caught.value.errors[0].message
    validate_form(CATASTROPHIC, {"name": "aaa", "x" * 5000 + "y": "matched, so allowed"})
    with pytest.raises(FormInvalid) as caught:  # matched: its value is checked against the property schema
        validate_form(CATASTROPHIC, {"name": "aaa", "xxy": 3})
    assert _fields(caught.value) == ["xxy"]


def test_ecma_unicode_escapes_work_in_patterns():
    validate_form(CATASTROPHIC, {"name": "a", "school": "北京大学"})
    with pytest.raises(FormInvalid) as caught:
        validate_form(CATASTROPHIC, {"name": "a", "school": "Peking University"})
    assert _fields(caught.value) == ["school"]


@pytest.mark.parametrize(("pattern", "text"), [
    (r"^[A-Za-z0-9_.-]+$", "zhang.wei_01"), (r"^[A-Za-z0-9_.-]+$", "张伟"), (r"^https?://", "https://x.cn"),
    (r"^https?://", "ftp://x"), (r"^1[3-9]\d{9}$", "13812345678"), (r"^1[3-9]\d{9}$", "12812345678"),
    (r"^\d{6}$", "266000"), (r"^\d{6}$", "26600"), (r"(?i)^abc$", "ABC"), (r"^[^<>]*$", "<script>"),
    (r"^(?P<year>\d{4})-\d{2}$", "2026-05"), (r"\bcadre\b", "a cadre here"), (r"^.{2,4}$", "联青团委"),
])
def test_ordinary_patterns_give_the_answers_python_gives(pattern, text):
    assert (compile_pattern(pattern).search(text) is None) == (re.search(pattern, text) is None)


def test_digits_are_ascii_as_in_ecma_262():
    assert compile_pattern(r"^\d+$").search("١٢٣") is None  # Arabic-Indic digits: Python's \d would accept them


@pytest.mark.parametrize("form", BPMN_FORMS, ids=lambda p: p.name)
def test_every_form_of_the_programme_runs_on_re2(form):
    assert pattern_problems(json.loads(form.read_text(encoding="utf-8"))) == []


def test_patterns_re2_cannot_run_are_found_wherever_they_sit():
    schema = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string"},  # a field called "pattern" is not a pattern
            "code": {"type": "string", "pattern": r"^(\w)\1$"},
            "list": {"type": "array", "items": {"type": "object", "properties": {
                "tag": {"type": "string", "pattern": "(?<=#)x"}}}},
            "fixed": {"const": {"pattern": r"(a)\1"}},  # data, not a schema
        },
        "allOf": [{"properties": {"code": {"pattern": "^(?!admin)"}}}],
        "$defs": {"word": {"type": "string", "pattern": "^(a+)+$"}},  # RE2 runs it: fine
    }
    found = pattern_problems(schema)
    assert [pointer for pointer, _reason in found] == [
        "/allOf/0/properties/code/pattern", "/properties/code/pattern", "/properties/list/items/properties/tag/pattern"]
    assert all("RE2" in reason for _pointer, reason in found)


def test_unevaluated_properties_beside_pattern_properties_is_refused():
    found = pattern_problems({"patternProperties": {"^x": {}}, "unevaluatedProperties": False})
    assert [pointer for pointer, _reason in found] == ["/unevaluatedProperties"]


def test_a_hostile_value_through_the_engine_is_refused_and_the_task_stays_open(engine, sessions):
    with sessions() as session:
        engine.deploy_file(session, CORPUS / "form_regex_catastrophic.bpmn")
        instance = engine.start(session, "form_regex_catastrophic", {})
        session.commit()
        [task] = open_tasks(session, instance.id)
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        with pytest.raises(FormInvalid) as caught:
            engine.complete_task(session, task.id, {"name": HOSTILE_VALUE}, None)
        session.rollback()
        assert _fields(caught.value) == ["name"]
        assert [t.id for t in open_tasks(session, instance.id)] == [task.id]
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
        engine.complete_task(session, task.id, {"name": "a" * 1000, "school": "青岛大学"}, None)
        session.commit()
        assert session.get(ProcessInstance, instance.id).status == "completed"


def test_a_form_stored_before_re2_with_a_lookahead_gives_a_form_error_not_a_crash():
    """Forms are checked at deploy; one stored earlier is still answered with FormInvalid, never a 500."""
    stored = {"type": "object", "properties": {"password": {"type": "string", "pattern": "^(?=.*\\d).{8,}$"}},
              "patternProperties": {"^(?!_)": {"type": "string"}}}
    with pytest.raises(FormInvalid) as caught:
        validate_form(stored, {"password": "abcdefgh1"})
    assert {error.field for error in caught.value.errors} == {"", "password"}
    assert all("redeployed" in error.message for error in caught.value.errors)
