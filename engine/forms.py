"""Server-side validation of task data against the task's JSON Schema.

A form's ``pattern`` and ``patternProperties`` run on RE2 (``google-re2``), a regular-expression
engine whose time is linear in the input, not on Python's backtracking ``re``: with Python's,
``"pattern": "^(a+)+$"`` and a 50-character value of ``a``'s ending in ``!`` keeps a worker busy for
longer than the age of the universe.  RE2 has no backreferences or lookaround; a form whose pattern
RE2 cannot compile is refused at deploy (:func:`pattern_problems`, called by ``definitions.py``).
"""
from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
import json
import math
import re
import threading
from typing import Any, Iterator

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

from .errors import FieldError, FormInvalid

MAX_FORM_DATA_BYTES = 1024 * 1024
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the deployer, not logged to stderr by RE2
# JSON Schema patterns are ECMA-262 regular expressions, which write a code point as \uXXXX; RE2 as \x{XXXX}.
_ECMA_ESCAPE = re.compile(r"\\(\\|u([0-9A-Fa-f]{4}))")


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re2._Regexp:
    """``pattern`` (a JSON Schema regular expression) compiled by RE2; ``re2.error`` if RE2 cannot run it."""
    translated = _ECMA_ESCAPE.sub(lambda m: f"\\x{{{m.group(2)}}}" if m.group(2) else m.group(0), pattern)
    return re2.compile(translated, options=_RE2_OPTIONS)


def _unrunnable(pattern: str) -> ValidationError | None:
    """An error for a pattern RE2 cannot compile (a form deployed before patterns ran on RE2), else ``None``."""
    try:
        compile_pattern(pattern)
    except re2.error:
        return ValidationError(f"格式规则 {pattern!r} 无法执行，请重新部署表单 / the pattern {pattern!r} cannot be "
                               "checked (no backreferences or lookaround); the form must be redeployed")
    return None


def _pattern(validator, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    if (error := _unrunnable(pattern)) is not None:
        yield error
    elif compile_pattern(pattern).search(instance) is None:
        shown = instance if len(instance) <= 60 else instance[:60] + "…"
        yield ValidationError(f"{shown!r} does not match {pattern!r}")


def _pattern_properties(validator, patterns: dict, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        if (error := _unrunnable(pattern)) is not None:
            yield error
            continue
        for key, value in instance.items():
            if compile_pattern(pattern).search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_additional_properties = Draft202012Validator.VALIDATORS["additionalProperties"]


def _additional_properties_re2(validator, allowed: Any, instance: Any, schema: dict) -> Iterator[ValidationError]:
    """jsonschema's own, except that keys are matched against ``patternProperties`` with RE2."""
    patterns = schema.get("patternProperties")
    if not patterns or not validator.is_type(instance, "object"):
        yield from _additional_properties(validator, allowed, instance, schema)
        return
    known = schema.get("properties", {})
    runnable = [compile_pattern(pattern) for pattern in patterns if _unrunnable(pattern) is None]
    extras = [key for key in instance if key not in known and not any(p.search(key) is not None for p in runnable)]
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        joined = ", ".join(repr(each) for each in sorted(extras))
        yield ValidationError(f"{joined} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: "
                              + ", ".join(repr(each) for each in sorted(patterns)))


FormValidator = validators.extend(Draft202012Validator, {
    "pattern": _pattern, "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties_re2})


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator:
    return FormValidator(json.loads(schema_text), format_checker=FormatChecker())


_VALIDATORS_BY_FORM: OrderedDict[int, tuple[dict[str, Any], Draft202012Validator]] = OrderedDict()
_VALIDATORS_LOCK = threading.Lock()


def form_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The compiled validator of a form, built once per form.

    Forms are immutable per deployed version and the engine hands out the same dict for a version's
    form (its spec cache), so the validator is found by that dict's identity without serializing it
    again; the dict is kept with it, so its id cannot be reused by another.  A form that comes as a
    new dict each time is found by its text.  A form must not be changed once validated against.
    """
    entry = _VALIDATORS_BY_FORM.get(id(schema))
    if entry is not None and entry[0] is schema:
        return entry[1]
    validator = _validator(json.dumps(schema, sort_keys=True))
    with _VALIDATORS_LOCK:
        _VALIDATORS_BY_FORM[id(schema)] = (schema, validator)
        while len(_VALIDATORS_BY_FORM) > 512:
            _VALIDATORS_BY_FORM.popitem(last=False)
    return validator


# Keywords whose value is a schema, a list of schemas, or a mapping of names to schemas (draft 2020-12).
_ONE_SCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
               "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def pattern_problems(schema: Any) -> list[tuple[str, str]]:
    """(field, reason) for each ``pattern`` or ``patternProperties`` key of a form that RE2 cannot run.

    The field is the JSON pointer of the keyword inside the form (``/properties/phone/pattern``).
    ``unevaluatedProperties`` beside ``patternProperties`` is refused too: jsonschema would match
    those keys with Python's backtracking engine.
    """
    problems: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        found = [(f"{path}/pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            found += [(f"{path}/patternProperties/{key}", key) for key in node["patternProperties"]]
            if "unevaluatedProperties" in node:
                problems.append((f"{path}/unevaluatedProperties", "unevaluatedProperties cannot be combined with "
                                 "patternProperties (its keys would be matched by a backtracking engine); "
                                 "use additionalProperties"))
        for where, pattern in found:
            try:
                compile_pattern(pattern)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else exc
                reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
                problems.append((where, f"pattern {pattern!r} cannot run on RE2, the linear-time engine forms use: "
                                        f"{reason} (no backreferences, lookahead or lookbehind)"))
        for keyword in _ONE_SCHEMA:
            stack.append((node.get(keyword), f"{path}/{keyword}"))
        for keyword in _SCHEMA_LISTS:
            if isinstance(node.get(keyword), list):
                stack += [(item, f"{path}/{keyword}/{i}") for i, item in enumerate(node[keyword])]
        for keyword in _SCHEMA_MAPS:
            if isinstance(node.get(keyword), dict):
                stack += [(item, f"{path}/{keyword}/{name}") for name, item in node[keyword].items()]
    return sorted(problems)


MAX_FORM_DATA_DEPTH = 32
_INT64 = range(-(2 ** 63), 2 ** 63)


def _unstorable(data: Any) -> str | None:
    """Why ``data`` cannot be stored as JSON alike on every database, or ``None`` (iterative: any depth is safe)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_FORM_DATA_DEPTH:
            return f"表单数据嵌套过深 / form data nested deeper than {MAX_FORM_DATA_DEPTH} levels"
        if isinstance(value, str):
            if "\x00" in value:
                return "表单数据含有 NUL 字符 / form data contains a NUL character"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "表单数据含有无效的 Unicode 字符 / form data contains an unpaired surrogate (invalid Unicode)"
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int) and value not in _INT64:
            return "表单数据中的整数过大 / form data holds an integer beyond 64 bits"
        elif isinstance(value, float) and not math.isfinite(value):
            return "表单数据中的数字无效（NaN 或无穷大）/ form data holds NaN or an infinite number"
        elif isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)
    return None


def validate_form(schema: dict[str, Any] | None, data: Any) -> None:
    """Raise :class:`FormInvalid` listing each bad field; a task without a form takes any JSON object."""
    if not isinstance(data, dict):
        raise FormInvalid([FieldError("", "表单数据必须是对象 / form data must be a JSON object")])
    unstorable = _unstorable(data)
    if unstorable:
        raise FormInvalid([FieldError("", unstorable)])
    try:
        size = len(json.dumps(data, default=str))
    except (TypeError, ValueError):
        raise FormInvalid([FieldError("", "表单数据无法编码 / form data is not JSON")]) from None
    if size > MAX_FORM_DATA_BYTES:
        raise FormInvalid([FieldError("", f"表单数据过大 / form data larger than {MAX_FORM_DATA_BYTES:,} bytes")])
    bad_keys = [key for key in data if not isinstance(key, str) or key.startswith("_")]
    if bad_keys:
        raise FormInvalid([FieldError(str(key), "字段名不能以下划线开头 / field names may not start with '_'")
                           for key in bad_keys])
    if schema is None:
        return
    errors, seen = [], set()
    for error in form_validator(schema).iter_errors(data):
        path = "/".join(str(p) for p in error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                field = "/".join(filter(None, [path, name]))
                if name not in error.instance and field not in seen:
                    seen.add(field)
                    errors.append(FieldError(field, "必填 / this field is required"))
        else:
            errors.append(FieldError(path, error.message))
    if errors:
        raise FormInvalid(sorted(errors, key=lambda e: e.field))
