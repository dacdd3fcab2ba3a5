"""What a page needs to draw a process: drawable BPMN XML, element names and documentation, markers.

The browser draws the diagram with the locally served bpmn-js viewer (``static/diagram.js``); the
server only says which elements to mark.  A file without diagram interchange (BPMN DI) is laid out
by :func:`engine.diagram_layout.add_diagram` so it can still be drawn.  In English the labels the
catalogue translates (step, event, gateway and flow names: ``web/i18n_extract.py``) are replaced in the XML
handed to the viewer, once per version and language.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask_babel import gettext
from lxml import etree

from engine.definitions import BPMN_NS, read_xml
from engine.diagram_layout import BPMNDI_NS, add_diagram
from engine.errors import InvalidBpmn
from engine.runtime import ProcessView

from .i18n import DEFAULT_LOCALE, current_locale
from .i18n_extract import documentation_text

# What each marker means, for the legend and for screen readers (CSS classes in static/app.css).
MARKERS = {"completed": "已完成 / done", "current": "当前步骤 / current", "ready": "进行中 / in progress",
           "waiting": "等待中 / waiting", "cancelled": "已取消 / cancelled"}


@dataclass(frozen=True)
class ElementText:
    """The words a BPMN element carries for people."""

    name: str
    documentation: str


@lru_cache(maxsize=32)
def element_texts(bpmn_xml: str) -> dict[str, ElementText]:
    """Name and documentation of every element with an id (parsed once per version's XML)."""
    try:
        root = read_xml(bpmn_xml.encode("utf-8"), "process.bpmn").getroot()
    except InvalidBpmn:
        return {}
    texts = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.get("id") or not element.tag.startswith(f"{{{BPMN_NS}}}"):
            continue
        docs = [documentation_text(doc.text) for doc in element.findall(f"{{{BPMN_NS}}}documentation")]
        texts[element.get("id")] = ElementText(element.get("name") or "", "\n".join(d for d in docs if d))
    return texts


@lru_cache(maxsize=32)
def drawable_xml(bpmn_xml: str) -> str:
    """The XML itself when it has a diagram; else the same process with a laid-out one."""
    content = bpmn_xml.encode("utf-8")
    try:
        if read_xml(content, "process.bpmn").getroot().find(f"{{{BPMNDI_NS}}}BPMNDiagram") is not None:
            return bpmn_xml
        return add_diagram(content).decode("utf-8")
    except InvalidBpmn:
        return bpmn_xml  # the viewer says it cannot draw it; the page still works


@lru_cache(maxsize=64)
def _labels_translated(xml: str, locale: str) -> str:
    """``xml`` with each BPMN element's name as the catalogue of ``locale`` (the request's) translates it."""
    try:
        root = read_xml(xml.encode("utf-8"), "process.bpmn").getroot()
    except InvalidBpmn:
        return xml
    changed = False
    for element in root.iter(f"{{{BPMN_NS}}}*"):
        name = element.get("name")
        if name and (translated := gettext(name)) != name:
            element.set("name", translated)
            changed = True
    return etree.tostring(root, encoding="unicode") if changed else xml


def _viewer_xml(bpmn_xml: str) -> str:
    """What the viewer draws: the drawable XML, its labels in the request's language."""
    xml = drawable_xml(bpmn_xml)
    locale = current_locale()
    return xml if locale == DEFAULT_LOCALE else _labels_translated(xml, locale)


def name_of(texts: dict[str, ElementText], element_id: str | None) -> str:
    """An element's name, or its id when it has none."""
    if element_id is None:
        return ""
    text = texts.get(element_id)
    return text.name if text is not None and text.name else element_id


def instance_diagram(view: ProcessView, current: str | None = None) -> dict:
    """The JSON a diagram box reads: XML and markers; ``current`` stands out from the other ready elements."""
    ready = [element for element in view.ready if element != current]
    markers = {"completed": view.completed, "ready": ready, "waiting": view.waiting, "cancelled": view.cancelled}
    if current is not None:
        markers["current"] = [current]
    return {"xml": _viewer_xml(view.bpmn_xml), "markers": markers}


def plain_diagram(bpmn_xml: str) -> dict:
    """The JSON of a diagram with nothing marked (a deployed version, or an upload being previewed)."""
    return {"xml": _viewer_xml(bpmn_xml), "markers": {}}
