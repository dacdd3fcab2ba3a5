"""Reading, checking and parsing BPMN files before they are deployed.

Everything here is pure: bytes in, a :class:`ParsedDefinition` or an :class:`InvalidBpmn` out.
The XML is parsed once with a hardened parser (no DTD, no entities, no network, size and depth
limits) and that tree is what SpiffWorkflow's parser reads.  Every expression the file carries
is checked against the restricted evaluator's rules at deploy time, so nothing unsafe or broken
waits in a file until a user reaches it.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition,
                                                              DurationTimerEventDefinition,
                                                              TimeDateEventDefinition,
                                                              TimerEventDefinition)
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask, StandardLoopTask
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptEngineTask
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from .errors import BpmnProblem, InvalidBpmn, UnsafeExpression
from .expressions import parse_expression, parse_script
from .forms import pattern_problems
from .multi_instance import DEFAULT_MAX_MULTI_INSTANCE, literal_cardinality

MAX_BPMN_BYTES = 2 * 1024 * 1024
MAX_FORM_BYTES = 256 * 1024
FORM_PROPERTY = "formJsonSchemaFilename"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
# SpiffWorkflow names its own internal task specs so; a BPMN element with one of these ids is
# silently merged with them and the process never runs.
RESERVED_IDS = {"Start", "End", "Root"}
_ISO_LOOKING = re.compile(r"^(R\d*/)?P|^\d{4}-\d{2}")
# Widths of the columns a deployed file's ids and names are stored in (engine/models.py): a longer
# value would deploy on SQLite and fail later on PostgreSQL, half-way through a start.
MAX_ID_CHARS, MAX_NAME_CHARS, MAX_LANE_CHARS = 255, 255, 64
_FORM_URI = "urn:lianqing:form"


@dataclass
class ParsedDefinition:
    """A checked BPMN file: its process spec and everything needed to store it."""

    process_id: str
    name: str
    filename: str
    bpmn_xml: str
    content_hash: str
    forms: dict[str, Any]
    spec: Any
    subprocess_specs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False)


def read_xml(content: bytes, filename: str) -> etree._ElementTree:
    """Parse BPMN bytes with the hardened parser; refuse DTDs, entities and oversize files."""
    if len(content) > MAX_BPMN_BYTES:
        raise InvalidBpmn(BpmnProblem(f"file is {len(content):,} bytes; the limit is {MAX_BPMN_BYTES:,}",
                                      file=filename))
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidBpmn(BpmnProblem(f"the file is not UTF-8 (undecodable byte at offset {exc.start:,}); "
                                      "save it as UTF-8", file=filename,
                                      line=content[: exc.start].count(b"\n") + 1)) from None
    if re.search(rb"<!DOCTYPE|<!ENTITY", content[:65536], re.IGNORECASE):
        line = content[: re.search(rb"<!(DOCTYPE|ENTITY)", content, re.IGNORECASE).start()].count(b"\n") + 1
        raise InvalidBpmn(BpmnProblem("DOCTYPE and entity declarations are not allowed in BPMN files",
                                      file=filename, line=line))
    try:
        tree = etree.ElementTree(etree.fromstring(content, parser=_hardened_parser()))
    except etree.XMLSyntaxError as exc:
        raise InvalidBpmn(BpmnProblem(f"not well-formed XML: {exc.msg}", file=filename,
                                      line=exc.lineno)) from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise InvalidBpmn(BpmnProblem("DOCTYPE declarations are not allowed in BPMN files", file=filename, line=1))
    root = tree.getroot()
    if etree.QName(root).namespace != BPMN_NS or etree.QName(root).localname != "definitions":
        raise InvalidBpmn(BpmnProblem(f"root element is <{root.tag}>, not a BPMN 2.0 <definitions>",
                                      file=filename, line=root.sourceline))
    return tree


def _line_of(tree: etree._ElementTree, element_id: str | None) -> int | None:
    if not element_id:
        return None
    found = tree.getroot().xpath("//*[@id=$id]", id=element_id)
    return found[0].sourceline if found else None


def _executable_process(tree: etree._ElementTree, filename: str) -> etree._Element:
    processes = tree.getroot().findall(f"{{{BPMN_NS}}}process")
    if not processes:
        raise InvalidBpmn(BpmnProblem("the file defines no <process>", file=filename))
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    if not executable:
        first = processes[0]
        raise InvalidBpmn(BpmnProblem('no process is marked executable; set isExecutable="true" on the process '
                                      "that the engine should run", file=filename, line=first.sourceline,
                                      element_id=first.get("id")))
    if len(executable) > 1:
        ids = ", ".join(p.get("id", "?") for p in executable)
        raise InvalidBpmn(BpmnProblem(f"one executable process per file, found {len(executable)}: {ids}",
                                      file=filename, line=executable[1].sourceline,
                                      element_id=executable[1].get("id")))
    return executable[0]


def _structure_problems(tree: etree._ElementTree, filename: str) -> list[BpmnProblem]:
    """Problems SpiffWorkflow reports without naming the element, or not at all, or only at run time.

    Ids (present, unique, short enough to store), names and lanes that fit their columns, references
    (sequence flows, called processes) that exist, no recursive call activities, no data stores.
    """
    problems: list[BpmnProblem] = []

    def problem(node: etree._Element, message: str) -> None:
        problems.append(BpmnProblem(message, file=filename, line=node.sourceline, element_id=node.get("id")))

    root = tree.getroot()
    seen: dict[str, etree._Element] = {}
    for node in root.iter(f"{{{BPMN_NS}}}*"):
        node_id, name, tag = node.get("id"), node.get("name") or "", etree.QName(node).localname
        if tag == "process" and not node_id:
            problem(node, "the process has no id; give it one (the engine starts processes by id)")
        if node_id is None:
            continue
        if len(node_id) > MAX_ID_CHARS:
            problem(node, f"the id is {len(node_id):,} characters long; the limit is {MAX_ID_CHARS}")
        elif node_id in seen:
            problem(node, f"the id '{node_id}' is already used on line {seen[node_id].sourceline}; ids must be unique")
        else:
            seen[node_id] = node
        limit = MAX_LANE_CHARS if tag == "lane" else MAX_NAME_CHARS
        if tag in ("process", "userTask", "manualTask", "lane") and len(name) > limit:
            problem(node, f"the name is {len(name):,} characters long; the limit is {limit}")
        if tag == "dataStore" and name not in SpiffBpmnParser.DATA_STORE_CLASSES:
            problem(node, f"data store '{name}' has no implementation in this engine; remove it (and its "
                          "references), or keep the data in the process data")
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        for end in ("sourceRef", "targetRef"):
            if flow.get(end) not in seen:
                problem(flow, f"{end} '{flow.get(end)}' is not an element of this file")
    problems += _call_problems(root, filename)
    return problems


def _call_problems(root: etree._Element, filename: str) -> list[BpmnProblem]:
    """Call activities must call a process of the same file, and never (through other calls) their own."""
    processes = {p.get("id"): p for p in root.findall(f"{{{BPMN_NS}}}process") if p.get("id")}
    problems: list[BpmnProblem] = []
    for call in root.iter(f"{{{BPMN_NS}}}callActivity"):
        if call.get("calledElement") not in processes:
            problems.append(BpmnProblem(f"calls process '{call.get('calledElement')}', which is not in this file; "
                                        "a called process must be deployed in the same file", file=filename,
                                        line=call.sourceline, element_id=call.get("id")))
    if problems:
        return problems

    calls = {process_id: list(process.iter(f"{{{BPMN_NS}}}callActivity")) for process_id, process in processes.items()}
    state: dict[str, str] = {}  # "open" while on the current call path, then "done"
    for first in processes:  # depth-first, without recursion: a chain of thousands of calls is fine
        if first in state:
            continue
        state[first], stack = "open", [(first, iter(calls[first]))]
        while stack:
            call = next(stack[-1][1], None)
            if call is None:
                state[stack.pop()[0]] = "done"
                continue
            called = call.get("calledElement")
            if state.get(called) == "open":
                return [BpmnProblem(f"calls process '{called}', which calls back into itself; a recursive call "
                                    "activity never ends", file=filename, line=call.sourceline,
                                    element_id=call.get("id"))]
            if called not in state:
                state[called] = "open"
                stack.append((called, iter(calls[called])))
    return []


def _reference_problem(schema: Any) -> str | None:
    """Why a form's ``$ref`` would fail when a person submits it: each must point inside the form, and resolve."""
    refs: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("$ref", "$dynamicRef") and isinstance(inner, str):
                    refs.append(inner)
                walk(inner)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(schema)
    if not refs or not isinstance(schema, dict):
        return None
    resolver = Registry().with_resource(_FORM_URI, DRAFT202012.create_resource(schema)).resolver(_FORM_URI)
    for ref in refs:
        if not ref.startswith("#"):
            return f"reference {ref!r} points outside the form; only references inside it (\"#/...\") are allowed"
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"reference {ref!r} does not resolve inside the form"
    return None


def _pattern_problem(form: str, pointer: str, reason: str) -> BpmnProblem:
    """A form's pattern RE2 cannot run, named by its field (``/properties/a/items/properties/b/pattern``: ``a/b``)."""
    parts = pointer.split("/")
    field = "/".join(parts[i + 1] for i in range(len(parts) - 1) if parts[i] == "properties")
    where = (f"表单字段「{field}」", f"form field '{field}'") if field else ("表单", "the form")
    return BpmnProblem(f"{where[0]}的正则表达式无法使用 / {where[1]} ({pointer}): {reason}", file=form)


def _load_forms(forms: dict[str, bytes | str | dict]) -> tuple[dict[str, Any], list[BpmnProblem]]:
    loaded, problems = {}, []
    for name, content in forms.items():
        try:
            if isinstance(content, dict):
                schema = content
            else:
                if len(content) > MAX_FORM_BYTES:
                    raise ValueError(f"form file is larger than {MAX_FORM_BYTES:,} bytes")
                schema = json.loads(content)
            Draft202012Validator.check_schema(schema)
            reference_problem = _reference_problem(schema)
            if reference_problem:
                raise ValueError(reference_problem)
            regex_problems = pattern_problems(schema)
            if regex_problems:
                problems += [_pattern_problem(name, pointer, reason) for pointer, reason in regex_problems]
                continue
            loaded[name] = schema
        except (ValueError, SchemaError) as exc:
            message = exc.message if isinstance(exc, SchemaError) else str(exc)
            problems.append(BpmnProblem(f"form is not a valid JSON Schema: {message}", file=name))
        except RecursionError:
            problems.append(BpmnProblem("form is nested too deeply to be checked", file=name))
    return loaded, problems


def _expressions_of(task_spec) -> Iterable[tuple[str, str]]:
    """Yield (what, expression) for every expression a task spec will evaluate."""
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        if condition is not None:
            yield "condition", condition.args[0] if hasattr(condition, "args") else condition
    for attribute in ("condition", "cardinality"):
        value = getattr(task_spec, attribute, None)
        if isinstance(value, str):
            yield attribute, value
    for name, param in (getattr(task_spec, "operation_params", None) or {}).items():
        yield f"service parameter '{name}'", param["value"]
    event_definition = getattr(task_spec, "event_definition", None)
    definitions = getattr(event_definition, "event_definitions", None) or [event_definition]
    for definition in definitions:
        expression = getattr(definition, "expression", None)
        if isinstance(expression, str) and not isinstance(definition, TimerEventDefinition):
            yield "event payload", expression
        for prop in getattr(definition, "correlation_properties", None) or []:
            if getattr(prop, "retrieval_expression", None):
                yield "correlation", prop.retrieval_expression


def _timer_problem(definition: TimerEventDefinition) -> str | None:
    expression = definition.expression or ""
    try:
        tree = parse_expression(expression)
    except UnsafeExpression as exc:
        return f"timer expression: {exc}"
    body = tree.body
    if isinstance(body, ast.Name) and _ISO_LOOKING.match(body.id) or \
            isinstance(body, ast.BinOp) and _ISO_LOOKING.match(expression.strip()):
        return (f"timer {expression!r} looks like a literal but is not quoted; timer texts are expressions, "
                f"write \"{expression.strip()}\" (with quotes)")
    if isinstance(body, ast.Constant):
        if not isinstance(body.value, str):
            return f"timer {expression!r} must be an ISO 8601 text in quotes"
        try:
            if isinstance(definition, DurationTimerEventDefinition):
                TimerEventDefinition.parse_iso_duration(body.value)
            elif isinstance(definition, CycleTimerEventDefinition):
                TimerEventDefinition.parse_iso_recurring_interval(body.value)
            elif isinstance(definition, TimeDateEventDefinition):
                TimerEventDefinition.parse_time_or_duration(body.value)
        except Exception:  # SpiffWorkflow raises bare Exception / ValueError here
            return f"timer {body.value!r} is not a valid ISO 8601 date, duration or cycle"
    return None


def _fan_out_problem(task_spec, limit: int) -> str | None:
    """Why a multi-instance cardinality or a loop maximum written as a number is refused, or ``None``."""
    if isinstance(task_spec, MultiInstanceTask) and isinstance(task_spec.cardinality, str):
        count = literal_cardinality(task_spec.cardinality)
        if count is not None and count < 0:
            return (f"多实例数量 {count} 不能为负 / the multi-instance cardinality {count} is negative; "
                    "it must be a whole number of at least 0")
        if count is not None and count > limit:
            return (f"多实例数量 {count:,} 超过上限 {limit:,} / the multi-instance cardinality {count:,} is above "
                    f"the limit of {limit:,} instances (engine setting max_multi_instance, "
                    "LIANQING_MAX_MULTI_INSTANCE); split the work or raise the limit")
    if isinstance(task_spec, StandardLoopTask) and task_spec.maximum is not None and task_spec.maximum > limit:
        return (f"循环上限 {task_spec.maximum:,} 超过 {limit:,} / loopMaximum {task_spec.maximum:,} is above the "
                f"limit of {limit:,} iterations (engine setting max_multi_instance, LIANQING_MAX_MULTI_INSTANCE)")
    return None


def check_spec(spec, subprocess_specs: dict[str, Any], forms: dict[str, Any],
               known_services: set[str] | None,
               max_multi_instance: int = DEFAULT_MAX_MULTI_INSTANCE) -> list[tuple[str | None, str]]:
    """Return (element id, message) for every problem in a parsed spec and its subprocesses."""
    problems: list[tuple[str | None, str]] = []
    for process in [spec, *subprocess_specs.values()]:
        for task_spec in process.task_specs.values():
            element_id = getattr(task_spec, "bpmn_id", None)
            if element_id is None:
                continue
            try:
                for what, expression in _expressions_of(task_spec):
                    try:
                        parse_expression(expression)
                    except UnsafeExpression as exc:
                        problems.append((element_id, f"{what}: {exc}"))
                if isinstance(task_spec, ScriptEngineTask) and getattr(task_spec, "script", None) is not None:
                    parse_script(task_spec.script)
                for hook in ("prescript", "postscript"):
                    if getattr(task_spec, hook, None):
                        parse_script(getattr(task_spec, hook))
            except UnsafeExpression as exc:
                problems.append((element_id, f"script: {exc}"))
            definition = getattr(task_spec, "event_definition", None)
            if isinstance(definition, TimerEventDefinition):
                message = _timer_problem(definition)
                if message:
                    problems.append((element_id, message))
            fan_out = _fan_out_problem(task_spec, max_multi_instance)
            if fan_out:
                problems.append((element_id, fan_out))
            operation = getattr(task_spec, "operation_name", None)
            if operation is not None and known_services is not None and operation not in known_services:
                problems.append((element_id, f"service task calls '{operation}', which is not a registered "
                                             f"operator; known: {', '.join(sorted(known_services)) or 'none'}"))
            form = (getattr(task_spec, "extensions", None) or {}).get("properties", {}).get(FORM_PROPERTY)
            if form is not None and form not in forms:
                problems.append((element_id, f"form '{form}' is missing; deploy it together with the BPMN file"))
    return problems


def parse_definition(content: bytes, filename: str, forms: dict[str, bytes | str | dict] | None = None,
                     known_services: set[str] | None = None,
                     max_multi_instance: int = DEFAULT_MAX_MULTI_INSTANCE) -> ParsedDefinition:
    """Check and parse one BPMN file (with its form files); raise :class:`InvalidBpmn` on any problem.

    ``max_multi_instance`` caps a multi-instance cardinality or loop maximum written as a number.
    """
    if len(filename) > MAX_NAME_CHARS:
        raise InvalidBpmn(BpmnProblem(f"the file name is {len(filename):,} characters long; the limit is "
                                      f"{MAX_NAME_CHARS}", file=filename[:80] + "…"))
    tree = read_xml(content, filename)
    process_node = _executable_process(tree, filename)
    structure_problems = _structure_problems(tree, filename)
    if structure_problems:
        raise InvalidBpmn(structure_problems)
    process_id = process_node.get("id")
    reserved = [node for node in process_node.iter() if node.get("id") in RESERVED_IDS]
    if reserved:
        raise InvalidBpmn([BpmnProblem(f"the id '{node.get('id')}' is reserved by the engine; rename the element "
                                       "(for example 'StartEvent_1')", file=filename, line=node.sourceline,
                                       element_id=node.get("id")) for node in reserved])
    loaded_forms, form_problems = _load_forms(forms or {})
    if form_problems:
        raise InvalidBpmn(form_problems)
    parser = SpiffBpmnParser()
    try:
        parser.add_bpmn_xml(tree, filename)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        element = getattr(exc, "id", None) or None
        raise InvalidBpmn(BpmnProblem(str(getattr(exc, "args", [exc])[0]), file=filename,
                                      line=_line_of(tree, element), element_id=element)) from None
    except (SpiffWorkflowException, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        # SpiffWorkflow's parser reports several structural errors as plain exceptions.
        raise InvalidBpmn(BpmnProblem(f"cannot be parsed as an executable process: {exc!r}",
                                      file=filename)) from None
    problems = check_spec(spec, subprocess_specs, loaded_forms, known_services, max_multi_instance)
    if problems:
        raise InvalidBpmn([BpmnProblem(message, file=filename, line=_line_of(tree, element), element_id=element)
                           for element, message in problems])
    text = content.decode("utf-8")
    digest = hashlib.sha256(content)
    for name in sorted(loaded_forms):
        digest.update(name.encode() + json.dumps(loaded_forms[name], sort_keys=True).encode())
    return ParsedDefinition(process_id=process_id, name=process_node.get("name") or process_id,
                            filename=filename, bpmn_xml=text, content_hash=digest.hexdigest(),
                            forms=loaded_forms, spec=spec, subprocess_specs=subprocess_specs)
