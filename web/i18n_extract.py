"""Babel extractors for what the BPMN files and their forms say to people, so the catalogues translate it.

Registered in ``babel.cfg`` (its ``[extractors]`` section) and run by ``make translations`` with the
rest.  Each message is the text exactly as the pages look it up with the ``term`` filter (web/i18n.py),
and carries a comment saying where it stands (the element's kind and id, or the form field):

- :func:`extract_bpmn`, a ``.bpmn`` file: the ``name`` of the process, its participants, lanes, tasks,
  events, gateways and flows (names that look like identifiers, such as the lanes' role keys, are
  left out), each ``documentation`` with its runs of white space made one space (as
  web/process_diagram.py shows it), and a task's instructions (``spiffworkflow:instructionsForEndUser``)
  as written.
- :func:`extract_form_json`, a form (JSON Schema): every ``title`` and ``description``, and the labels of
  the options: ``x-labels`` (what our forms use), ``enumNames``, and the ``title`` of ``oneOf`` / ``anyOf``
  entries (found by the same walk).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from engine.definitions import BPMN_NS, read_xml

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
INSTRUCTIONS = f"{{{SPIFF_NS}}}instructionsForEndUser"
DOCUMENTATION = f"{{{BPMN_NS}}}documentation"
# A name like "cadre" or "Task_reply": a key for the program, not words for people.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*$")
_TEXT_KEYS = ("title", "description")
_LABEL_KEYS = ("x-labels", "enumNames")

# A message as Babel's extractors yield it: (line, function name, message, comments).
Extracted = tuple[int, None, str, list[str]]


def _words(text: str | None) -> bool:
    return bool(text and text.strip() and not _IDENTIFIER.match(text.strip()))


def documentation_text(raw: str | None) -> str:
    """A ``documentation`` element's text as pages show it: runs of white space made one space."""
    return " ".join((raw or "").split())


def extract_bpmn(fileobj: BinaryIO, keywords, comment_tags, options) -> Iterator[Extracted]:
    """Babel extractor of a BPMN file: element names, documentation and instructions for the end user."""
    root = read_xml(fileobj.read(), getattr(fileobj, "name", "process.bpmn")).getroot()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # a comment or a processing instruction
        kind = element.tag.rsplit("}", 1)[-1]
        owner = element.getparent()
        if element.tag == DOCUMENTATION and owner is not None:
            text = documentation_text(element.text)
            if _words(text):
                yield element.sourceline, None, text, [f"documentation of {_describe(owner)}"]
        elif element.tag == INSTRUCTIONS and _words(element.text):
            task = owner.getparent() if owner is not None else None
            yield element.sourceline, None, element.text, [f"instructions of {_describe(task)}"]
        elif element.tag.startswith(f"{{{BPMN_NS}}}") and _words(element.get("name")):
            yield element.sourceline, None, element.get("name"), [f"name of {_describe(element, kind)}"]


def _describe(element, kind: str | None = None) -> str:
    if element is None:
        return "an element"
    kind = kind or element.tag.rsplit("}", 1)[-1]
    return f"{kind} {element.get('id')}" if element.get("id") else kind


def extract_form_json(fileobj: BinaryIO, keywords, comment_tags, options) -> Iterator[Extracted]:
    """Babel extractor of a form (a JSON Schema): titles, descriptions and option labels."""
    source = fileobj.read().decode("utf-8")
    schema = json.loads(source)
    if not isinstance(schema, dict):
        return
    lines = source.splitlines()
    for path, text in _form_texts(schema, "form"):
        yield _line_of(lines, text), None, text, [path]


def _form_texts(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(where, text) of every title, description and option label under ``node``."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _form_texts(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _TEXT_KEYS and isinstance(value, str) and _words(value):
            yield f"{path} {key}", value
        elif key in _LABEL_KEYS and isinstance(value, dict):
            for option, label in value.items():
                if isinstance(label, str) and _words(label):
                    yield f"{path} option {option}", label
        elif key in _LABEL_KEYS and isinstance(value, list):
            for index, label in enumerate(value):
                if isinstance(label, str) and _words(label):
                    yield f"{path} option {index}", label
        elif isinstance(value, (dict, list)):
            yield from _form_texts(value, f"{path}.{key}" if path != "form" or key != "properties" else "field")


def _line_of(lines: list[str], text: str) -> int:
    """The first line holding ``text`` as a JSON string (the json module keeps no positions)."""
    quoted = json.dumps(text, ensure_ascii=False)
    return next((number for number, line in enumerate(lines, 1) if quoted in line), 1)
