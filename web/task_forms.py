"""HTML form fields from a task's JSON Schema, and form posts back into typed data.

The schema is the single source: the same one validates the data on the server (engine.forms).
Its words (titles, descriptions, option labels) are Chinese, shown in the request's language through the
catalogues (``web/i18n_extract.py`` extracts them from the form files).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _

from .i18n import term


@dataclass(frozen=True)
class Field:
    """One input of a task form."""

    name: str
    label: str
    widget: str  # text, textarea, number, date, checkbox, select, lines
    required: bool
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    rules: str = ""  # the schema's limits in words ("2–200 个字"), shown under the input
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


def _rules(prop: dict[str, Any], widget: str) -> str:
    """A field's JSON-Schema limits as a person reads them, in the request's language."""
    parts = []
    low, high = prop.get("minLength"), prop.get("maxLength")
    if low and high:
        parts.append(_("%(low)s–%(high)s 个字", low=low, high=high))
    elif low:
        parts.append(_("至少 %(low)s 个字", low=low))
    elif high and widget != "select":
        parts.append(_("最多 %(high)s 个字", high=high))
    low, high = prop.get("minimum"), prop.get("maximum")
    integer = prop.get("type") == "integer"
    if low is not None and high is not None:
        parts.append(_("%(low)s–%(high)s 的整数", low=low, high=high) if integer
                     else _("%(low)s–%(high)s 的数字", low=low, high=high))
    elif low is not None:
        parts.append(_("不小于 %(low)s 的整数", low=low) if integer else _("不小于 %(low)s 的数字", low=low))
    elif high is not None:
        parts.append(_("不大于 %(high)s 的整数", high=high) if integer else _("不大于 %(high)s 的数字", high=high))
    if widget == "date":
        parts.append(_("日期，格式 2026-05-01"))
    if widget == "lines":
        parts.append(_("每行一项，最多 %(n)s 项", n=prop["maxItems"]) if prop.get("maxItems") else _("每行一项"))
    return _("；").join(parts)


def fields_of(schema: dict[str, Any] | None) -> list[Field]:
    """The inputs a schema asks for, in its order."""
    if not schema:
        return []
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        labels = prop.get("x-labels", {})
        if "enum" in prop:
            widget = "select"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind == "array":
            widget = "lines"
        elif prop.get("format") == "date":
            widget = "date"
        elif prop.get("maxLength", 0) > 200:
            widget = "textarea"
        else:
            widget = "text"
        choices = tuple((str(value), term(labels.get(str(value), str(value)))) for value in prop.get("enum", []))
        fields.append(Field(name, term(prop.get("title", name)), widget, name in required, choices,
                            term(prop.get("description", "")), _rules(prop, widget), prop.get("minimum"),
                            prop.get("maximum"), prop.get("maxLength")))
    return fields


def field_errors(errors, fields: list[Field] = ()) -> dict[str, str]:
    """The first message per top-level field (``evidence/3`` belongs to ``evidence``; ``""`` to the whole form).

    The schema validator speaks English; a message without Chinese gets the field's limits in Chinese first.
    """
    rules = {field.name: field.rules for field in fields}
    by_field: dict[str, str] = {}
    for error in errors:
        name = error.field.split("/", 1)[0]
        message = error.message
        # The quoted value a person typed ("'讲了团课' is too short") does not make the message Chinese.
        if not any("\u4e00" <= char <= "\u9fff" for char in re.sub(r"'[^']*'", "", message)):
            message = f"请填写{rules[name]} / {message}" if rules.get(name) else f"填写有误 / {message}"
        by_field.setdefault(name, message)
    return by_field


def data_from_form(schema: dict[str, Any] | None, form) -> dict[str, Any]:
    """Typed task data from a posted form; values that do not convert are kept as text for the validator to name."""
    if not schema:
        return {key: value for key, value in form.items() if key != "csrf_token"}
    data: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        if kind == "boolean":
            data[name] = form.get(name) in ("on", "true", "1", "yes")
            continue
        raw = form.get(name, "")
        if kind == "array":
            items = [line.strip() for line in raw.splitlines() if line.strip()]
            if items:
                data[name] = items
            continue
        if raw == "":
            continue
        if kind == "integer":
            try:
                data[name] = int(raw)
            except ValueError:
                data[name] = raw
        elif kind == "number":
            try:
                data[name] = float(raw)
            except ValueError:
                data[name] = raw
        else:
            data[name] = raw
    return data
