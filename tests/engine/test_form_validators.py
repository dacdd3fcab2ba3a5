"""Compiled form validators are built once per form and never mixed up between forms."""
from __future__ import annotations

import gc

import pytest

from engine.errors import FormInvalid
from engine.forms import form_validator, validate_form


def form(minimum: int) -> dict:
    return {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": minimum}}}


def test_the_same_form_gets_the_same_validator():
    schema = form(3)
    assert form_validator(schema) is form_validator(schema)
    assert form_validator(form(3)) is form_validator(schema)  # an equal form in a new dict: found by its text
    assert form_validator(form(4)) is not form_validator(schema)


def test_each_form_is_checked_by_its_own_rules_even_as_forms_come_and_go():
    for minimum in range(600):  # more forms than the cache holds; dropped dicts may leave their ids free
        schema = form(minimum)
        validate_form(schema, {"n": minimum})
        with pytest.raises(FormInvalid) as refused:
            validate_form(schema, {"n": minimum - 1})
        assert refused.value.errors[0].field == "n"
        del schema
        if minimum % 100 == 0:
            gc.collect()
