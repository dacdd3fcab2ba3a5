"""The automatic diagram layout gives DI-less BPMN files a complete, readable, deployable diagram.

The fixtures in ``bpmn/`` carry no diagram; :func:`engine.diagram_layout.add_diagram` must give
every element a shape and every flow an edge, keep lanes, ranks and boundary events where a
reader expects them, and change nothing the engine reads.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest
from lxml import etree

from engine import InvalidBpmn
from engine.definitions import parse_definition
from engine.diagram_layout import add_diagram, preview_svg
from engine.runtime import forms_beside

BPMN_DIR = Path(__file__).parent / "bpmn"
REPO = Path(__file__).resolve().parents[2]
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}
FLOW_NODES = ("startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
              "userTask", "serviceTask", "scriptTask", "manualTask", "task", "exclusiveGateway",
              "parallelGateway", "inclusiveGateway", "eventBasedGateway", "subProcess", "callActivity")
# Flows that close a loop; every other flow must run left to right.
BACK_EDGES = {"two_lane_review.bpmn": {"Flow_redo"}, "wish_confirm.bpmn": set()}


@dataclass(frozen=True)
class Bounds:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def contains(self, other: Bounds) -> bool:
        return (self.x <= other.x and other.right <= self.right
                and self.y <= other.y and other.bottom <= self.bottom)

    def overlaps(self, other: Bounds) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom

    def on_border(self, point: tuple[float, float]) -> bool:
        x, y = point
        inside_x, inside_y = self.x <= x <= self.right, self.y <= y <= self.bottom
        return (inside_y and x in (self.x, self.right)) or (inside_x and y in (self.y, self.bottom))


def _tree(content: bytes) -> etree._Element:
    return etree.fromstring(content)


def _main_plane(root: etree._Element) -> etree._Element:
    return root.find("bpmndi:BPMNDiagram/bpmndi:BPMNPlane", NS)


def _shapes(root: etree._Element) -> dict[str, list[Bounds]]:
    shapes: dict[str, list[Bounds]] = {}
    for shape in _main_plane(root).findall("bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        shapes.setdefault(shape.get("bpmnElement"), []).append(
            Bounds(*(float(bounds.get(a)) for a in ("x", "y", "width", "height"))))
    return shapes


def _edges(root: etree._Element) -> dict[str, list[list[tuple[float, float]]]]:
    edges: dict[str, list[list[tuple[float, float]]]] = {}
    for edge in _main_plane(root).findall("bpmndi:BPMNEdge", NS):
        points = [(float(p.get("x")), float(p.get("y"))) for p in edge.findall("di:waypoint", NS)]
        edges.setdefault(edge.get("bpmnElement"), []).append(points)
    return edges


def _process(root: etree._Element) -> etree._Element:
    return root.find("bpmn:process[@isExecutable='true']", NS)


def _flow_nodes(process: etree._Element) -> list[etree._Element]:
    return [child for child in process if etree.QName(child).localname in FLOW_NODES]


def _segment_crosses(start: tuple[float, float], end: tuple[float, float], box: Bounds) -> bool:
    (x1, y1), (x2, y2) = start, end
    if y1 == y2:
        return box.y < y1 < box.bottom and max(min(x1, x2), box.x) < min(max(x1, x2), box.right)
    return box.x < x1 < box.right and max(min(y1, y2), box.y) < min(max(y1, y2), box.bottom)


def _spec_summary(parsed) -> dict[str, tuple[str, list[str]]]:
    specs = {}
    for process in [parsed.spec, *parsed.subprocess_specs.values()]:
        for name, task_spec in process.task_specs.items():
            specs[f"{process.name}/{name}"] = (type(task_spec).__name__, sorted(o.name for o in task_spec.outputs))
    return specs


@pytest.fixture(params=sorted(BACK_EDGES))
def laid_out(request) -> tuple[Path, bytes, bytes]:
    """(path, original content, content with the generated diagram) for each DI-less fixture."""
    path = BPMN_DIR / request.param
    content = path.read_bytes()
    return path, content, add_diagram(content, path.name)


# ----------------------------------------------------------------------------------- completeness

def test_the_fixtures_have_no_diagram_to_begin_with(laid_out):
    _path, content, _out = laid_out
    assert _main_plane(_tree(content)) is None


def test_every_flow_node_lane_and_the_pool_has_exactly_one_shape(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    process = _process(root)
    shapes = _shapes(root)
    participant = root.find(f"bpmn:collaboration/bpmn:participant[@processRef='{process.get('id')}']", NS)
    expected = ([node.get("id") for node in _flow_nodes(process)]
                + [lane.get("id") for lane in process.iter(f"{{{NS['bpmn']}}}lane")] + [participant.get("id")])
    assert len(expected) > 10
    for element_id in expected:
        assert len(shapes.get(element_id, [])) == 1, element_id
        (bounds,) = shapes[element_id]
        assert bounds.width > 0 and bounds.height > 0, element_id
    assert set(shapes) == set(expected)


def test_every_sequence_flow_has_one_orthogonal_edge_between_its_ends(laid_out):
    path, _content, out = laid_out
    root = _tree(out)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    edges = _edges(root)
    flows = _process(root).findall("bpmn:sequenceFlow", NS)
    assert flows and set(edges) == {flow.get("id") for flow in flows}
    for flow in flows:
        (points,) = edges[flow.get("id")]
        assert len(points) >= 2
        for (x1, y1), (x2, y2) in pairwise(points):
            assert x1 == x2 or y1 == y2, f"{flow.get('id')} has a diagonal segment"
        source, target = shapes[flow.get("sourceRef")], shapes[flow.get("targetRef")]
        assert source.on_border(points[0]), flow.get("id")
        assert target.on_border(points[-1]), flow.get("id")
        if flow.get("id") not in BACK_EDGES[path.name]:
            assert points[-1][0] == target.x, f"{flow.get('id')} should enter its target from the left"


# ----------------------------------------------------------------------------------- readability

def test_flow_nodes_sit_inside_their_lane_and_lanes_inside_the_pool(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    process = _process(root)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    participant = root.find("bpmn:collaboration/bpmn:participant", NS).get("id")
    lanes = list(process.iter(f"{{{NS['bpmn']}}}lane"))
    for lane in lanes:
        assert shapes[participant].contains(shapes[lane.get("id")])
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            assert shapes[lane.get("id")].contains(shapes[ref.text]), f"{ref.text} outside {lane.get('id')}"
    bands = sorted((shapes[lane.get("id")] for lane in lanes), key=lambda b: b.y)
    for upper, lower in pairwise(bands):
        assert upper.bottom == lower.y, "lanes are stacked without gaps or overlaps"


def test_no_two_shapes_in_a_lane_overlap_except_boundary_events_on_their_host(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    process = _process(root)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    host_of = {node.get("id"): node.get("attachedToRef") for node in process.findall("bpmn:boundaryEvent", NS)}
    for lane in process.iter(f"{{{NS['bpmn']}}}lane"):
        members = [ref.text for ref in lane.findall("bpmn:flowNodeRef", NS)]
        for index, first in enumerate(members):
            for second in members[index + 1:]:
                if host_of.get(first) == second or host_of.get(second) == first:
                    continue
                assert not shapes[first].overlaps(shapes[second]), f"{first} overlaps {second}"


def test_flows_run_left_to_right_except_loops(laid_out):
    path, _content, out = laid_out
    root = _tree(out)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    for flow in _process(root).findall("bpmn:sequenceFlow", NS):
        source, target = shapes[flow.get("sourceRef")], shapes[flow.get("targetRef")]
        if flow.get("id") in BACK_EDGES[path.name]:
            assert target.x < source.x
        else:
            assert target.x > source.x, f"{flow.get('id')} runs backwards"


def test_no_flow_runs_through_an_element_it_does_not_connect(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    process = _process(root)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    node_ids = {node.get("id") for node in _flow_nodes(process)}
    edges = _edges(root)
    for flow in process.findall("bpmn:sequenceFlow", NS):
        (points,) = edges[flow.get("id")]
        for element in node_ids - {flow.get("sourceRef"), flow.get("targetRef")}:
            for start, end in pairwise(points):
                assert not _segment_crosses(start, end, shapes[element]), f"{flow.get('id')} crosses {element}"


def test_boundary_events_sit_on_their_hosts_bottom_edge(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    boundaries = _process(root).findall("bpmn:boundaryEvent", NS)
    assert len(boundaries) == 2
    for boundary in boundaries:
        event, host = shapes[boundary.get("id")], shapes[boundary.get("attachedToRef")]
        assert event.y + event.height / 2 == host.bottom
        assert host.x <= event.x + event.width / 2 <= host.right
    first, second = (shapes[b.get("id")] for b in boundaries)
    assert not first.overlaps(second), "boundary events on one host are spread out"


def test_standard_sizes_and_markers(laid_out):
    _path, _content, out = laid_out
    root = _tree(out)
    process = _process(root)
    shapes = {element: bounds[0] for element, bounds in _shapes(root).items()}
    sizes = {"userTask": (100, 80), "startEvent": (36, 36), "endEvent": (36, 36), "boundaryEvent": (36, 36),
             "intermediateCatchEvent": (36, 36), "exclusiveGateway": (50, 50), "eventBasedGateway": (50, 50)}
    for node in _flow_nodes(process):
        bounds = shapes[node.get("id")]
        assert (bounds.width, bounds.height) == sizes[etree.QName(node).localname]
    for gateway in process.findall("bpmn:exclusiveGateway", NS):
        shape = _main_plane(root).find(f"bpmndi:BPMNShape[@bpmnElement='{gateway.get('id')}']", NS)
        assert shape.get("isMarkerVisible") == "true"
    for element in _main_plane(root).findall("bpmndi:BPMNShape", NS):
        assert element.get("id") == f"{element.get('bpmnElement')}_di"


# ----------------------------------------------------------------------------------- nothing else changes

def test_the_output_still_deploys_to_the_same_spec(laid_out):
    path, content, out = laid_out
    before = parse_definition(content, path.name, forms_beside(path, content), known_services=None)
    after = parse_definition(out, path.name, forms_beside(path, out), known_services=None)
    assert _spec_summary(after) == _spec_summary(before)
    assert after.process_id == before.process_id and after.name == before.name


def test_everything_but_the_diagram_is_kept(laid_out):
    _path, content, out = laid_out
    before, after = _tree(content), _tree(out)
    c14n = {"method": "c14n", "exclusive": True}
    assert etree.tostring(_process(after), **c14n) == etree.tostring(_process(before), **c14n)
    kept = [etree.tostring(child, **c14n) for child in before]
    added = {"collaboration", "BPMNDiagram"}
    assert [etree.tostring(child, **c14n) for child in after
            if etree.QName(child).localname not in added or child.get("id") in {c.get("id") for c in before}] == kept


def test_the_output_is_utf8_with_a_declaration_and_namespaces_on_the_root(laid_out):
    _path, _content, out = laid_out
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    out.decode("utf-8")
    root = _tree(out)
    for prefix in ("bpmndi", "dc", "di"):
        assert root.nsmap[prefix] == NS[prefix]
    assert b"\n      <bpmndi:BPMNShape" in out, "the diagram is pretty-printed"


def test_a_pool_is_created_when_the_file_has_no_collaboration():
    path = BPMN_DIR / "wish_confirm.bpmn"
    root = _tree(add_diagram(path.read_bytes(), path.name))
    collaboration = root[0]
    assert etree.QName(collaboration).localname == "collaboration"
    (participant,) = collaboration.findall("bpmn:participant", NS)
    assert participant.get("processRef") == "wish_confirm" and participant.get("name") == "心愿确认"
    assert _main_plane(root).get("bpmnElement") == collaboration.get("id")
    shape = _main_plane(root).find(f"bpmndi:BPMNShape[@bpmnElement='{participant.get('id')}']", NS)
    assert shape.get("isHorizontal") == "true"


def test_add_diagram_is_idempotent(laid_out):
    path, _content, out = laid_out
    assert add_diagram(out, path.name) == out


def test_a_file_with_a_diagram_is_relaid_and_still_deploys():
    path = REPO / "bpmn" / "activity_record.bpmn"
    content = path.read_bytes()
    out = add_diagram(content, path.name)
    root = _tree(out)
    assert len(root.findall("bpmndi:BPMNDiagram", NS)) == 1
    shapes = _shapes(root)
    assert all(len(bounds) == 1 for bounds in shapes.values())
    assert shapes["Task_record"][0].width == 100, "the old layout (120 wide) was replaced"
    parse_definition(out, path.name, forms_beside(path, out), known_services=None)
    assert add_diagram(out, path.name) == out


def test_hostile_files_are_refused_by_the_hardened_parser():
    with pytest.raises(InvalidBpmn):
        add_diagram((BPMN_DIR / "hostile" / "billion_laughs.bpmn").read_bytes(), "billion_laughs.bpmn")


UNFORMATTED = (
    b'<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    b'id="D" targetNamespace="x"><process id="p" name="P" isExecutable="true"><startEvent id="S"/>'
    b'<subProcess id="Sub" name="sub"><startEvent id="SS"/><endEvent id="SE"/>'
    b'<sequenceFlow id="sf" sourceRef="SS" targetRef="SE"/></subProcess><task id="T" name="again"/>'
    b'<endEvent id="E"/><sequenceFlow id="f1" sourceRef="S" targetRef="Sub"/>'
    b'<sequenceFlow id="f2" sourceRef="Sub" targetRef="T"/><sequenceFlow id="f3" sourceRef="T" targetRef="T"/>'
    b'<sequenceFlow id="f4" sourceRef="T" targetRef="E"/></process></definitions>')


def test_sub_processes_are_collapsed_with_their_own_plane_and_bare_files_get_indented():
    out = add_diagram(UNFORMATTED)
    root = _tree(out)
    diagrams = root.findall("bpmndi:BPMNDiagram", NS)
    assert [d.find("bpmndi:BPMNPlane", NS).get("bpmnElement") for d in diagrams] == [root[0].get("id"), "Sub"]
    sub_shape = _main_plane(root).find("bpmndi:BPMNShape[@bpmnElement='Sub']", NS)
    assert sub_shape.get("isExpanded") == "false"
    inner = diagrams[1].find("bpmndi:BPMNPlane", NS)
    assert {s.get("bpmnElement") for s in inner.findall("bpmndi:BPMNShape", NS)} == {"SS", "SE"}
    assert [e.get("bpmnElement") for e in inner.findall("bpmndi:BPMNEdge", NS)] == ["sf"]
    assert len(_edges(root)["f3"][0]) >= 3, "a self-loop goes round its task"
    assert b"\n  <process" in out
    assert add_diagram(out) == out


# ----------------------------------------------------------------------------------- preview and CLI

def test_preview_svg_draws_one_figure_per_shape():
    path = BPMN_DIR / "two_lane_review.bpmn"
    out = add_diagram(path.read_bytes(), path.name)
    svg = etree.fromstring(preview_svg(out).encode("utf-8"))
    assert etree.QName(svg).localname == "svg"
    figures = svg.findall(".//{http://www.w3.org/2000/svg}g[@class='shape']")
    assert len(figures) == len(_main_plane(_tree(out)).findall("bpmndi:BPMNShape", NS))
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}polyline")) == len(_edges(_tree(out)))
    assert "记录活动" in preview_svg(out)


def test_the_command_line_rewrites_files_in_place(tmp_path):
    target = tmp_path / "two_lane_review.bpmn"
    target.write_bytes((BPMN_DIR / "two_lane_review.bpmn").read_bytes())
    command = [sys.executable, "-m", "engine.diagram_layout", str(target)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    assert "added a diagram" in first.stdout
    assert target.read_bytes() == add_diagram((BPMN_DIR / "two_lane_review.bpmn").read_bytes())
    second = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    assert "already up to date" in second.stdout
    broken = tmp_path / "broken.bpmn"
    broken.write_bytes(b"<not-bpmn/>")
    failed = subprocess.run([*command[:-1], str(broken)], capture_output=True, text=True, cwd=REPO, check=False)
    assert failed.returncode == 1 and "left unchanged" in failed.stderr
    assert broken.read_bytes() == b"<not-bpmn/>"
