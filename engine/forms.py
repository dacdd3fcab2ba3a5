"""Server-side validation of task data against the task's JSON Schema."""
from __future__ import annotations

from functools import lru_cache
import json
import math
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from .errors import FieldError, FormInvalid

MAX_FORM_DATA_BYTES = 1024 * 1024


@lru_cache(maxsize=512)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text), format_checker=FormatChecker())


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
    for error in _validator(json.dumps(schema, sort_keys=True)).iter_errors(data):
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
