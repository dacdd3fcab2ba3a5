"""HTML form fields from a task's JSON Schema, and form posts back into typed data.

The schema is the single source: the same one validates the data on the server (engine.forms).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One input of a task form."""

    name: str
    label: str
    widget: str  # text, textarea, number, date, checkbox, select, lines
    required: bool
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""


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
        choices = tuple((str(value), labels.get(str(value), str(value))) for value in prop.get("enum", []))
        fields.append(Field(name, prop.get("title", name), widget, name in required, choices,
                            prop.get("description", "")))
    return fields


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
