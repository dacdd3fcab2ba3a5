"""Give a BPMN file a drawable diagram (BPMN DI), laid out automatically.

bpmn.io / bpmn-js draws only what a file's ``bpmndi:BPMNDiagram`` places, so a BPMN file written
by hand or generated cannot be opened in the modeller.  :func:`add_diagram` lays out the file's
one executable process as a pool of horizontal lanes: columns by longest-path rank along the
sequence flows, rows inside each lane for elements of the same rank, boundary events on their
host's bottom edge, orthogonal flows routed around shapes.  Everything outside the diagram is
kept as it was; an existing diagram is replaced.  :func:`preview_svg` draws a diagram as SVG so a
layout can be looked at without a browser.

Command line: ``python -m engine.diagram_layout FILE [FILE...]`` rewrites each file in place.
"""
from __future__ import annotations

import os
import sys
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from .definitions import BPMN_NS, _executable_process, read_xml
from .errors import InvalidBpmn

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
DI_PREFIXES = {BPMNDI_NS: "bpmndi", DC_NS: "dc", DI_NS: "di"}

TASK_TAGS = {"task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
             "businessRuleTask", "callActivity"}
SUBPROCESS_TAGS = {"subProcess", "transaction", "adHocSubProcess"}
EVENT_TAGS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
GATEWAY_TAGS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
FLOW_NODE_TAGS = TASK_TAGS | SUBPROCESS_TAGS | EVENT_TAGS | GATEWAY_TAGS

ACTIVITY_SIZE = (100, 80)
EVENT_SIZE = (36, 36)
GATEWAY_SIZE = (50, 50)

COLUMN_WIDTH = 100    # the widest element
COLUMN_PITCH = 150    # one rank; the 50px between columns is where flows turn
ROW_PITCH = 150       # an activity, its boundary events, their labels and room for flows below
BAND_PADDING = 20     # above the first and below the last row of a lane
LABEL_STRIP = 30      # the name strip at the left of a pool or lane
LEFT_MARGIN = 40      # between the innermost name strip and the first column
RIGHT_MARGIN = 50
ORIGIN = (160, 80)    # where bpmn-js's own new diagrams start
EXTRA_POOL_HEIGHT = 80
EXTRA_POOL_GAP = 40
BOUNDARY_SPACING = 44
LABEL_MAX_WIDTH = 90
LABEL_BUCKET = 200         # width of the strips placed labels are filed under
BOUNDARY_LABEL_WIDTH = 40   # three characters a line: fits beside the event without reaching the next column
LABEL_LINE_HEIGHT = 14

CLEARANCE = 8               # how close a flow may pass an element it does not touch
GAP_TRACK_OFFSETS = (0, -8, 8)   # parallel vertical tracks in the gap between two columns
NEAREST_CORRIDORS = 6            # horizontal tracks tried per flow (bounds the work on big files)
SHAPE_CROSSING_COST = 100   # a flow drawn through an element
SHARED_SEGMENT_COST = 10    # two unrelated flows drawn on top of each other

Point = tuple[int, int]


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


@dataclass(frozen=True)
class _Box:
    """An axis-aligned rectangle in diagram coordinates (what ``dc:Bounds`` holds)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height

    @property
    def center_x(self) -> int:
        return self.x + self.width // 2

    @property
    def center_y(self) -> int:
        return self.y + self.height // 2

    @classmethod
    def around(cls, center_x: int, center_y: int, size: tuple[int, int]) -> _Box:
        """The box of the given size centred on the point."""
        width, height = size
        return cls(center_x - width // 2, center_y - height // 2, width, height)


@dataclass
class _FlowGraph:
    """The flow nodes and sequence flows directly inside one process or sub-process."""

    nodes: dict[str, etree._Element]
    flows: list[etree._Element]
    host_of: dict[str, str]  # boundary event id -> id of the activity it is attached to

    def ranked_id(self, node_id: str) -> str:
        """The node that stands for ``node_id`` in ranking: a boundary event ranks as its host."""
        return self.host_of.get(node_id, node_id)


@dataclass
class _Band:
    """A horizontal strip of the drawing: one leaf lane, or the elements that are in no lane."""

    lane_id: str | None
    depth: int                      # 1 for a top-level lane, 2 for its child lanes...; 0 for no lane
    ancestors: list[str] = field(default_factory=list)   # enclosing lane ids, outermost first
    rows: int = 1
    y: int = 0

    @property
    def height(self) -> int:
        return 2 * BAND_PADDING + self.rows * ROW_PITCH

    def row_top(self, row: int) -> int:
        return self.y + BAND_PADDING + row * ROW_PITCH


@dataclass
class _FlowLayout:
    """Where one process's (or sub-process's) nodes and flows are drawn."""

    boxes: dict[str, _Box]
    waypoints: dict[str, list[Point]]
    bands: list[_Band]
    right: int       # right edge of the last column plus margin
    bottom: int
    labels: dict[str, _Box] = field(default_factory=dict)   # external labels of events, gateways, flows


# ----------------------------------------------------------------------------------- reading

def _read_graph(container: etree._Element) -> _FlowGraph:
    nodes = {child.get("id"): child for child in container
             if _local(child) in FLOW_NODE_TAGS and child.tag.startswith(f"{{{BPMN_NS}}}") and child.get("id")}
    host_of = {}
    for node_id, node in nodes.items():
        host = node.get("attachedToRef")
        if _local(node) == "boundaryEvent" and host in nodes and _local(nodes[host]) != "boundaryEvent":
            host_of[node_id] = host
    flows = [flow for flow in container.iterchildren(_bpmn("sequenceFlow"))
             if flow.get("id") and flow.get("sourceRef") in nodes and flow.get("targetRef") in nodes]
    return _FlowGraph(nodes, flows, host_of)


def _size_of(node: etree._Element) -> tuple[int, int]:
    tag = _local(node)
    if tag in EVENT_TAGS:
        return EVENT_SIZE
    if tag in GATEWAY_TAGS:
        return GATEWAY_SIZE
    return ACTIVITY_SIZE


def _lane_bands(process: etree._Element, graph: _FlowGraph) -> tuple[list[_Band], dict[str, _Band]]:
    """Leaf lanes in laneSet order (plus a band for unlaned elements), and each node's band."""
    bands: list[_Band] = []
    refs_of: list[tuple[etree._Element, list[_Band]]] = []   # every lane with the leaf bands under it

    def visit(lane: etree._Element, depth: int, ancestors: list[str]) -> list[_Band]:
        children = lane.findall(f"{_bpmn('childLaneSet')}/{_bpmn('lane')}")
        if children:
            leaves = [leaf for child in children
                      for leaf in visit(child, depth + 1, ancestors + [lane.get("id")])]
        else:
            band = _Band(lane.get("id"), depth, ancestors)
            bands.append(band)
            leaves = [band]
        refs_of.append((lane, leaves))
        return leaves

    for lane in process.findall(f"{_bpmn('laneSet')}/{_bpmn('lane')}"):
        visit(lane, 1, [])
    band_of: dict[str, _Band] = {}
    # Leaf lanes were appended before their parents, so a node named by both lands in the leaf.
    for lane, leaves in refs_of:
        for ref in lane.iterchildren(_bpmn("flowNodeRef")):
            node_id = (ref.text or "").strip()
            if node_id in graph.nodes and node_id not in band_of:
                band_of[node_id] = leaves[0]
    unlaned = [node_id for node_id in graph.nodes if node_id not in band_of and node_id not in graph.host_of]
    if unlaned or not bands:
        rest = _Band(None, 0)
        bands.append(rest)
        for node_id in unlaned:
            band_of[node_id] = rest
    for boundary, host in graph.host_of.items():
        band_of[boundary] = band_of[host]
    return bands, band_of


# ----------------------------------------------------------------------------------- ranking

def _ranks(graph: _FlowGraph) -> tuple[dict[str, int], set[str]]:
    """Longest-path rank of every non-boundary node, and the ids of the flows that close cycles."""
    ranked = [node_id for node_id in graph.nodes if node_id not in graph.host_of]
    outgoing: dict[str, list[tuple[str, str]]] = {node_id: [] for node_id in ranked}
    has_incoming = set()
    for flow in graph.flows:
        source, target = graph.ranked_id(flow.get("sourceRef")), graph.ranked_id(flow.get("targetRef"))
        outgoing[source].append((flow.get("id"), target))
        if source != target:
            has_incoming.add(target)
    starts = ([n for n in ranked if _local(graph.nodes[n]) == "startEvent" and n not in has_incoming]
              + [n for n in ranked if n not in has_incoming] + ranked)
    on_stack, done, back_edges = set(), set(), set()
    for start in starts:
        if start in done:
            continue
        # Iterative DFS: a large file would overflow Python's recursion limit.
        on_stack.add(start)
        stack = [(start, iter(outgoing[start]))]
        while stack:
            node, edges = stack[-1]
            for flow_id, target in edges:
                if target in on_stack:
                    back_edges.add(flow_id)
                elif target not in done:
                    on_stack.add(target)
                    stack.append((target, iter(outgoing[target])))
                    break
            else:
                stack.pop()
                on_stack.discard(node)
                done.add(node)
    indegree = {node_id: 0 for node_id in ranked}
    for edges in outgoing.values():
        for flow_id, target in edges:
            if flow_id not in back_edges:
                indegree[target] += 1
    rank = {node_id: 0 for node_id in ranked}
    ready = [node_id for node_id in ranked if indegree[node_id] == 0]
    while ready:
        node = ready.pop()
        for flow_id, target in outgoing[node]:
            if flow_id in back_edges:
                continue
            rank[target] = max(rank[target], rank[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return rank, back_edges


# ----------------------------------------------------------------------------------- placing

def _rows(graph: _FlowGraph, rank: dict[str, int], band_of: dict[str, _Band],
          back_edges: set[str]) -> dict[str, int]:
    """A row inside its band for every ranked node: keep a node on its predecessor's row if free."""
    order = {node_id: index for index, node_id in enumerate(graph.nodes)}
    incoming: dict[str, list[str]] = {node_id: [] for node_id in rank}
    for flow in graph.flows:
        if flow.get("id") not in back_edges:
            incoming[graph.ranked_id(flow.get("targetRef"))].append(flow.get("sourceRef"))
    row: dict[str, int] = {}
    taken: set[tuple[int, int, int]] = set()    # (band, rank, row)

    def only_from_boundary(node_id: str) -> bool:
        return bool(incoming[node_id]) and all(s in graph.host_of for s in incoming[node_id])

    def preferred(node_id: str) -> int:
        band = band_of[node_id]
        plain = [s for s in incoming[node_id] if s not in graph.host_of and band_of[s] is band and s in row]
        if plain:
            return row[plain[0]]
        # A boundary event's flow leaves downwards, so its target goes a row below the host.
        attached = [graph.host_of[s] for s in incoming[node_id]
                    if s in graph.host_of and band_of[s] is band and graph.host_of[s] in row]
        return row[attached[0]] + 1 if attached else 0

    by_rank: dict[int, list[str]] = {}
    for node_id, node_rank in rank.items():
        by_rank.setdefault(node_rank, []).append(node_id)
    for current in sorted(by_rank):
        wishes = {node_id: preferred(node_id) for node_id in by_rank[current]}
        for node_id in sorted(by_rank[current], key=lambda n: (wishes[n], only_from_boundary(n), order[n])):
            band_key = id(band_of[node_id])
            wish = wishes[node_id]
            for candidate in _nearest_rows(wish):
                if (band_key, current, candidate) not in taken:
                    taken.add((band_key, current, candidate))
                    row[node_id] = candidate
                    break
    return row


def _nearest_rows(wish: int):
    yield wish
    step = 1
    while True:
        yield wish + step
        if wish - step >= 0:
            yield wish - step
        step += 1


def _column_left(content_x: int, rank: int) -> int:
    return content_x + rank * COLUMN_PITCH


def _place(graph: _FlowGraph, bands: list[_Band], band_of: dict[str, _Band], content_x: int,
           top_y: int) -> tuple[dict[str, _Box], dict[str, int], set[str]]:
    rank, back_edges = _ranks(graph)
    row = _rows(graph, rank, band_of, back_edges)
    for band in bands:
        band.rows = 1 + max((row[n] for n in row if band_of[n] is band), default=0)
    y = top_y
    for band in bands:
        band.y = y
        y += band.height
    boxes: dict[str, _Box] = {}
    for node_id in rank:
        band = band_of[node_id]
        center_x = _column_left(content_x, rank[node_id]) + COLUMN_WIDTH // 2
        center_y = band.row_top(row[node_id]) + ROW_PITCH // 2
        boxes[node_id] = _Box.around(center_x, center_y, _size_of(graph.nodes[node_id]))
    _place_boundary_events(graph, boxes)
    return boxes, rank, back_edges


def _place_boundary_events(graph: _FlowGraph, boxes: dict[str, _Box]) -> None:
    by_host: dict[str, list[str]] = {}
    for boundary, host in graph.host_of.items():
        by_host.setdefault(host, []).append(boundary)
    target_y: dict[str, int] = {}
    for flow in graph.flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        if source in graph.host_of and target in boxes:
            target_y[source] = max(target_y.get(source, -10**9), boxes[target].center_y)
    for host, boundaries in by_host.items():
        # The event whose flow goes lowest sits leftmost, so the flows leaving them do not cross.
        order = {b: i for i, b in enumerate(boundaries)}
        boundaries.sort(key=lambda b: (-target_y[b] if b in target_y else float("inf"), order[b]))
        host_box = boxes[host]
        count = len(boundaries)
        # Centres stay on the host's edge; the events may overlap only when there are many.
        spacing = min(BOUNDARY_SPACING, (host_box.width - 8) / max(count - 1, 1))
        for index, boundary in enumerate(boundaries):
            center_x = round(host_box.center_x + (index - (count - 1) / 2) * spacing)
            boxes[boundary] = _Box.around(center_x, host_box.bottom, EVENT_SIZE)


# ----------------------------------------------------------------------------------- routing

def _simplify(points: list[Point]) -> list[Point]:
    unique = [points[0]]
    for point in points[1:]:
        if point != unique[-1]:
            unique.append(point)
    simple = [unique[0]]
    for index in range(1, len(unique) - 1):
        (ax, ay), (bx, by), (cx, cy) = simple[-1], unique[index], unique[index + 1]
        if (ax == bx == cx) or (ay == by == cy):
            continue
        simple.append(unique[index])
    if len(unique) > 1:
        simple.append(unique[-1])
    return simple if len(simple) >= 2 else [unique[0], unique[-1]]


def _segments(points: list[Point]) -> Iterable[tuple[Point, Point]]:
    return pairwise(points)


def _crosses(segment: tuple[Point, Point], box: _Box) -> bool:
    """Whether the segment runs through the box or hugs it closer than CLEARANCE."""
    (x1, y1), (x2, y2) = segment
    left, right = box.x - CLEARANCE, box.right + CLEARANCE
    top, bottom = box.y - CLEARANCE, box.bottom + CLEARANCE
    if y1 == y2:
        return top < y1 < bottom and max(min(x1, x2), left) < min(max(x1, x2), right)
    return left < x1 < right and max(min(y1, y2), top) < min(max(y1, y2), bottom)


class _SpatialIndex:
    """Boxes and routed flow segments, looked up by position so that big diagrams stay fast."""

    def __init__(self, boxes: dict[str, _Box]):
        ordered = sorted(boxes.items(), key=lambda item: (item[1].x, item[0]))
        self._boxes = ordered
        self._box_xs = [box.x for _, box in ordered]
        self._widest = max((box.width for box in boxes.values()), default=0)
        self._horizontal: dict[int, list[tuple[int, int, tuple]]] = {}   # y -> (low x, high x, owner)
        self._vertical: dict[int, list[tuple[int, int, tuple]]] = {}     # x -> (low y, high y, owner)
        self._horizontal_ys: list[int] = []
        self._vertical_xs: list[int] = []

    def boxes_near(self, low_x: int, high_x: int) -> list[tuple[str, _Box]]:
        """Boxes that may come within CLEARANCE of the x range."""
        start = bisect_left(self._box_xs, low_x - self._widest - CLEARANCE)
        end = bisect_right(self._box_xs, high_x + CLEARANCE)
        return self._boxes[start:end]

    def add(self, points: list[Point], owner: tuple) -> None:
        for (x1, y1), (x2, y2) in _segments(points):
            if y1 == y2:
                if y1 not in self._horizontal:
                    insort(self._horizontal_ys, y1)
                self._horizontal.setdefault(y1, []).append((min(x1, x2), max(x1, x2), owner))
            elif x1 == x2:
                if x1 not in self._vertical:
                    insort(self._vertical_xs, x1)
                self._vertical.setdefault(x1, []).append((min(y1, y2), max(y1, y2), owner))

    def collinear(self, segment: tuple[Point, Point]):
        """(shared length, owner) of every indexed segment lying on the same line as ``segment``."""
        (x1, y1), (x2, y2) = segment
        if y1 == y2:
            low, high, lines = min(x1, x2), max(x1, x2), self._horizontal.get(y1, ())
        else:
            low, high, lines = min(y1, y2), max(y1, y2), self._vertical.get(x1, ())
        for a, b, owner in lines:
            yield min(high, b) - max(low, a), owner

    def segments_through(self, box: _Box) -> int:
        """How many indexed segments run through ``box``."""
        count = 0
        for y in self._horizontal_ys[bisect_right(self._horizontal_ys, box.y):bisect_left(self._horizontal_ys,
                                                                                           box.bottom)]:
            count += sum(1 for a, b, _ in self._horizontal[y] if a < box.right and box.x < b)
        for x in self._vertical_xs[bisect_right(self._vertical_xs, box.x):bisect_left(self._vertical_xs, box.right)]:
            count += sum(1 for a, b, _ in self._vertical[x] if a < box.bottom and box.y < b)
        return count


class _Router:
    """Chooses, for each flow, the cheapest of a few orthogonal routes, most natural first."""

    def __init__(self, boxes: dict[str, _Box], corridors: list[int], existing: Iterable[list[Point]] = ()):
        self.corridors = corridors        # y values between rows where flows can run
        self.index = _SpatialIndex(boxes)
        for points in existing:
            self.index.add(points, ("", ""))

    def cost(self, points: list[Point], source: str, target: str, preference: int, limit: float) -> float:
        cost = preference
        for segment in _segments(points):
            (x1, _), (x2, _) = segment
            for node_id, box in self.index.boxes_near(min(x1, x2), max(x1, x2)):
                if node_id != source and node_id != target and _crosses(segment, box):
                    cost += SHAPE_CROSSING_COST
            for shared, (other_source, other_target) in self.index.collinear(segment):
                # Flows fanning out of or into one element may share a stretch.
                if shared > 10 and other_source != source and other_target != target:
                    cost += SHARED_SEGMENT_COST
            if cost >= limit:
                break
        return cost

    def route(self, source: str, target: str, candidates: list[list[Point]]) -> list[Point]:
        best, best_cost = None, float("inf")
        for preference, points in enumerate(candidates):
            if preference >= best_cost:
                break   # a candidate costs at least its preference rank: none later can win
            route = _simplify(points)
            cost = self.cost(route, source, target, preference, best_cost)
            if cost < best_cost:
                best, best_cost = route, cost
        self.index.add(best, (source, target))
        return best


def _forward_candidates(s: _Box, t: _Box, source_kind: str, after_source: list[int], before_target: list[int],
                        corridors: list[int]) -> list[list[Point]]:
    """Routes to a later column, most natural first; x tracks run in the gaps between columns."""
    enter = (t.x, t.center_y)
    exit_right = (s.right, s.center_y)
    vertical_exit = (s.center_x, s.bottom if t.center_y > s.center_y else s.y)
    down_then_right = [vertical_exit, (s.center_x, t.center_y), enter]
    via_target_gap = [[exit_right, (x, s.center_y), (x, t.center_y), enter] for x in before_target]
    via_source_gap = [[exit_right, (x, s.center_y), (x, t.center_y), enter] for x in after_source]
    middle = (s.center_y + t.center_y) / 2
    nearest = sorted(corridors, key=lambda y: abs(y - middle))[:NEAREST_CORRIDORS]
    by_corridor = [[exit_right, (x_out, s.center_y), (x_out, y), (x_in, y), (x_in, t.center_y), enter]
                   for y in nearest for x_out, x_in in zip(after_source, before_target)]
    if source_kind == "boundary":
        below = sorted(y for y in corridors if y > s.bottom)[:NEAREST_CORRIDORS]
        out_and_over = [[(s.center_x, s.bottom), (s.center_x, y), (x, y), (x, t.center_y), enter]
                        for y in below for x in before_target]
        first = [down_then_right] if t.center_y > s.bottom else []
        return first + out_and_over + via_target_gap + by_corridor
    straight = [[exit_right, enter]] if s.center_y == t.center_y else []
    if source_kind == "gateway":
        return straight + [down_then_right] + via_target_gap + via_source_gap + by_corridor
    return straight + via_target_gap + via_source_gap + [down_then_right] + by_corridor


def _backward_candidates(s: _Box, t: _Box, source_kind: str, after_source: list[int], before_target: list[int],
                         corridors: list[int]) -> list[list[Point]]:
    """Routes back to an earlier (or the same) column: over or under everything in between."""
    top, bottom = min(s.y, t.y), max(s.bottom, t.bottom)
    above = sorted({y for y in corridors if y < top} | {top - 15}, reverse=True)[:NEAREST_CORRIDORS]
    below = sorted({y for y in corridors if y > bottom} | {bottom + 15})[:NEAREST_CORRIDORS]
    over = [[(s.center_x, s.y), (s.center_x, y), (t.center_x, y), (t.center_x, t.y)] for y in above]
    under = [[(s.center_x, s.bottom), (s.center_x, y), (t.center_x, y), (t.center_x, t.bottom)] for y in below]
    around = [[(s.right, s.center_y), (x_out, s.center_y), (x_out, y), (x_in, y), (x_in, t.center_y),
               (t.x, t.center_y)]
              for y in above[:3] + below[:3] for x_out, x_in in zip(after_source, before_target)]
    if source_kind == "boundary":
        return under + over + around
    return over + under + around


def _self_loop(box: _Box) -> list[Point]:
    # Out of the top right and back into the right side: the top centre is where back edges leave
    # and the middle of the right side is where forward flows leave.
    top_x, side_y = box.center_x + box.width // 4, box.y + box.height // 4
    return [(top_x, box.y), (top_x, box.y - 20), (box.right + 20, box.y - 20), (box.right + 20, side_y),
            (box.right, side_y)]


def _corridors(bands: list[_Band]) -> list[int]:
    ys = []
    for band in bands:
        # Between the boundary events of one row and the activities of the next there is room
        # for three flows side by side.
        ys.extend(band.row_top(row) + offset for row in range(band.rows) for offset in (10, 4, 16))
        ys.append(band.y + band.height - 12)
    return ys


def _tracks(middle: int) -> list[int]:
    return [middle + offset for offset in GAP_TRACK_OFFSETS]


def _route(graph: _FlowGraph, boxes: dict[str, _Box], rank: dict[str, int], back_edges: set[str],
           bands: list[_Band], content_x: int) -> dict[str, list[Point]]:
    router = _Router(boxes, _corridors(bands))
    waypoints = {}
    for flow in graph.flows:
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        s, t = boxes[source], boxes[target]
        if source == target:
            waypoints[flow.get("id")] = _self_loop(s)
            continue
        tag = _local(graph.nodes[source])
        kind = "boundary" if source in graph.host_of else "gateway" if tag in GATEWAY_TAGS else "other"
        gap = COLUMN_PITCH - COLUMN_WIDTH
        after_source = _column_left(content_x, rank[graph.ranked_id(source)]) + COLUMN_WIDTH + gap // 2
        before_target = _column_left(content_x, rank[graph.ranked_id(target)]) - gap // 2
        make = _backward_candidates if flow.get("id") in back_edges else _forward_candidates
        waypoints[flow.get("id")] = router.route(source, target,
                                                 make(s, t, kind, _tracks(after_source), _tracks(before_target),
                                                      router.corridors))
    return waypoints


def _layout_flow(graph: _FlowGraph, bands: list[_Band], band_of: dict[str, _Band], content_x: int,
                 top_y: int) -> _FlowLayout:
    boxes, rank, back_edges = _place(graph, bands, band_of, content_x, top_y)
    waypoints = _route(graph, boxes, rank, back_edges, bands, content_x)
    columns = 1 + max(rank.values(), default=0)
    right = _column_left(content_x, columns - 1) + COLUMN_WIDTH + RIGHT_MARGIN
    labels = _place_labels(graph, boxes, waypoints)
    return _FlowLayout(boxes, waypoints, bands, right, bands[-1].y + bands[-1].height, labels)


# ----------------------------------------------------------------------------------- labels

def _char_width(char: str) -> int:
    return 12 if ord(char) > 0x2E7F else 7   # CJK and full-width forms vs. Latin, at 12px


def _label_size(text: str, max_width: int = LABEL_MAX_WIDTH) -> tuple[int, int]:
    lines = _text_lines(text, max_width)
    return max(sum(_char_width(c) for c in line) for line in lines), LABEL_LINE_HEIGHT * len(lines)


def _overlaps(first: _Box, second: _Box) -> bool:
    return first.x < second.right and second.x < first.right and first.y < second.bottom and second.y < first.bottom


def _boundary_label_candidates(box: _Box, text: str, host: _Box) -> list[_Box]:
    """Beside the event just below the host's edge, or below it beside its outgoing flow; outer side first."""
    outer_left = box.center_x < host.center_x
    candidates = []
    for max_width in (BOUNDARY_LABEL_WIDTH, LABEL_MAX_WIDTH):
        width, height = _label_size(text, max_width)
        beside_left = _Box(box.x - 3 - width, host.bottom + 3, width, height)
        beside_right = _Box(box.right + 3, host.bottom + 3, width, height)
        below_left = _Box(box.center_x - 5 - width, box.bottom + 3, width, height)
        below_right = _Box(box.center_x + 5, box.bottom + 3, width, height)
        candidates += ([beside_left, below_left, beside_right, below_right] if outer_left
                       else [beside_right, below_right, beside_left, below_left])
    return candidates


def _label_candidates(box: _Box, text: str) -> list[_Box]:
    candidates = []
    for max_width in (LABEL_MAX_WIDTH, LABEL_MAX_WIDTH // 2):
        width, height = _label_size(text, max_width)
        candidates += [_Box(box.center_x - width // 2, box.bottom + 5, width, height),
                       _Box(box.center_x - width // 2, box.y - 5 - height, width, height),
                       _Box(box.right + 3, box.bottom, width, height),
                       _Box(box.x - 3 - width, box.bottom, width, height),
                       # Either side of a flow that leaves the element downwards.
                       _Box(box.center_x + 5, box.bottom + 3, width, height),
                       _Box(box.center_x - 5 - width, box.bottom + 3, width, height)]
    return candidates


def _flow_label_candidates(points: list[Point], text: str,
                           shared: Callable[[tuple[Point, Point]], bool]) -> list[tuple[_Box, int]]:
    """Label places along the flow from its source, each with a penalty if the stretch is shared."""
    width, height = _label_size(text)
    candidates = []
    for segment in _segments(points):
        (x1, y1), (x2, y2) = segment
        # Beside a stretch other flows also use, the label would seem to name them too.
        penalty = 5 if shared(segment) else 0
        if y1 == y2 and abs(x2 - x1) > 20:
            for x in (x1 + 8 if x2 > x1 else x1 - 8 - width, (x1 + x2) // 2 - width // 2):
                candidates += [(_Box(x, y1 - 4 - height, width, height), penalty),
                               (_Box(x, y1 + 4, width, height), penalty)]
        elif x1 == x2 and abs(y2 - y1) > 20:
            for y in (y1 + 6 if y2 > y1 else y1 - 6 - height, (y1 + y2) // 2 - height // 2):
                candidates += [(_Box(x1 + 5, y, width, height), penalty),
                               (_Box(x1 - 5 - width, y, width, height), penalty)]
    return candidates


def _place_labels(graph: _FlowGraph, boxes: dict[str, _Box], waypoints: dict[str, list[Point]]) -> dict[str, _Box]:
    """Put each name beside its element or flow where it covers no element, flow or other name."""
    placed: dict[str, _Box] = {}
    elements = _SpatialIndex(boxes)
    for flow_id, points in waypoints.items():
        elements.add(points, (flow_id,))
    labels_by_bucket: dict[int, list[_Box]] = {}

    def buckets(box: _Box) -> range:
        return range(box.x // LABEL_BUCKET, box.right // LABEL_BUCKET + 1)

    def conflicts(candidate: _Box, own: str) -> int:
        near_labels = {label for bucket in buckets(candidate) for label in labels_by_bucket.get(bucket, ())}
        # A label may come within 2px of a flow.
        margin = _Box(candidate.x - 2, candidate.y - 2, candidate.width + 4, candidate.height + 4)
        return (100 * sum(node_id != own and _overlaps(candidate, box)
                          for node_id, box in elements.boxes_near(candidate.x, candidate.right))
                + 50 * sum(_overlaps(candidate, label) for label in near_labels)
                + 10 * elements.segments_through(margin))

    def place(owner: str, candidates: list[_Box], penalties: list[int]) -> None:
        best = min(range(len(candidates)), key=lambda i: (conflicts(candidates[i], owner) + penalties[i], i))
        placed[owner] = candidates[best]
        for bucket in buckets(candidates[best]):
            labels_by_bucket.setdefault(bucket, []).append(candidates[best])

    for node_id, node in graph.nodes.items():
        name = (node.get("name") or "").strip()
        if not name or _local(node) not in EVENT_TAGS | GATEWAY_TAGS:
            continue
        candidates = _label_candidates(boxes[node_id], name)
        if node_id in graph.host_of:
            candidates = _boundary_label_candidates(boxes[node_id], name, boxes[graph.host_of[node_id]]) + candidates
        place(node_id, candidates, [0] * len(candidates))
    for flow in graph.flows:
        flow_id, name = flow.get("id"), (flow.get("name") or "").strip()
        if not name:
            continue

        def shared(segment: tuple[Point, Point], flow_id: str = flow_id) -> bool:
            return any(length > 10 and owner != (flow_id,) for length, owner in elements.collinear(segment))

        candidates = _flow_label_candidates(waypoints[flow_id], name, shared)
        if candidates:
            place(flow_id, [box for box, _ in candidates], [penalty for _, penalty in candidates])
    return placed


# ----------------------------------------------------------------------------------- the DI

def _ensure_participant(root: etree._Element, process: etree._Element) -> tuple[etree._Element, etree._Element]:
    """The collaboration and participant that show ``process`` as a pool, created if missing."""
    process_id = process.get("id")
    for collaboration in root.iterchildren(_bpmn("collaboration")):
        for participant in collaboration.iterchildren(_bpmn("participant")):
            if participant.get("processRef") == process_id:
                return collaboration, participant
    taken = {element.get("id") for element in root.iter() if isinstance(element.tag, str)}
    collaboration = next(root.iterchildren(_bpmn("collaboration")), None)
    if collaboration is None:
        collaboration = etree.SubElement(root, _bpmn("collaboration"), id=_unique(f"Collaboration_{process_id}", taken))
        # XSD order: documentation, extensionElements, import, extension, then the root elements.
        leading = [child for child in root if _local(child) in {"documentation", "extensionElements", "import",
                                                                "extension"} and child.tag.startswith(f"{{{BPMN_NS}}}")]
        _insert_after(root, collaboration, leading[-1] if leading else None)
    participant = etree.SubElement(collaboration, _bpmn("participant"),
                                   id=_unique(f"Participant_{process_id}", taken))
    if process.get("name"):
        participant.set("name", process.get("name"))
    participant.set("processRef", process_id)
    collaboration.remove(participant)
    existing = list(collaboration.iterchildren(_bpmn("participant")))
    _insert_after(collaboration, participant, existing[-1] if existing else None)
    return collaboration, participant


def _unique(wanted: str, taken: set[str]) -> str:
    candidate, number = wanted, 2
    while candidate in taken:
        candidate, number = f"{wanted}_{number}", number + 1
    taken.add(candidate)
    return candidate


def _indent_unit(root: etree._Element) -> str:
    text = root.text or ""
    return text.rsplit("\n", 1)[1] if "\n" in text and text.rsplit("\n", 1)[1] else "  "


def _insert_after(parent: etree._Element, element: etree._Element, previous: etree._Element | None) -> None:
    """Insert ``element`` after ``previous`` (or first), indented like its new siblings."""
    depth = sum(1 for _ in parent.iterancestors()) + 1
    unit = _indent_unit(parent.getroottree().getroot())
    if element.getparent() is not None:
        element.getparent().remove(element)
    etree.indent(element, space=unit, level=depth)
    if previous is None:
        if len(parent):
            element.tail = parent.text if parent.text and not parent.text.strip() else "\n" + unit * depth
        else:
            element.tail = "\n" + unit * (depth - 1)
        parent.insert(0, element)
        parent.text = "\n" + unit * depth
    else:
        element.tail = previous.tail if previous.tail and not previous.tail.strip() else "\n" + unit * (depth - 1)
        previous.tail = "\n" + unit * depth
        previous.addnext(element)


def _remove(element: etree._Element) -> None:
    """Remove ``element`` with the whitespace before it, keeping the whitespace after it."""
    parent, previous = element.getparent(), element.getprevious()
    if previous is not None:
        previous.tail = element.tail
    else:
        parent.text = element.tail
    parent.remove(element)


def _declare_di_namespaces(tree: etree._ElementTree) -> None:
    """Declare the DI namespaces on the root (reusing prefixes the file already has)."""
    root = tree.getroot()
    declared = {uri: prefix for prefix, uri in root.nsmap.items()}
    used_prefixes = {prefix for element in root.iter() if isinstance(element.tag, str)
                     for prefix in element.nsmap if prefix}
    wanted = {}
    for uri, prefix in DI_PREFIXES.items():
        if declared.get(uri):
            continue
        candidate, number = prefix, 2
        while candidate in used_prefixes or candidate in root.nsmap:
            candidate, number = f"{prefix}{number}", number + 1
        wanted[candidate] = uri
    etree.cleanup_namespaces(tree, top_nsmap=wanted, keep_ns_prefixes=sorted(used_prefixes | set(wanted)))


def _bounds(parent: etree._Element, box: _Box) -> None:
    etree.SubElement(parent, f"{{{DC_NS}}}Bounds", x=str(box.x), y=str(box.y), width=str(box.width),
                     height=str(box.height))


def _label(parent: etree._Element, box: _Box | None) -> None:
    if box is not None:
        _bounds(etree.SubElement(parent, f"{{{BPMNDI_NS}}}BPMNLabel"), box)


def _shape(plane: etree._Element, element_id: str, box: _Box, taken: set[str], label: _Box | None = None,
           **attributes: str) -> None:
    shape = etree.SubElement(plane, f"{{{BPMNDI_NS}}}BPMNShape", id=_unique(f"{element_id}_di", taken),
                             bpmnElement=element_id)
    for name, value in attributes.items():
        shape.set(name, value)
    _bounds(shape, box)
    _label(shape, label)


def _edge(plane: etree._Element, element_id: str, points: list[Point], taken: set[str],
          label: _Box | None = None) -> None:
    edge = etree.SubElement(plane, f"{{{BPMNDI_NS}}}BPMNEdge", id=_unique(f"{element_id}_di", taken),
                            bpmnElement=element_id)
    for x, y in points:
        etree.SubElement(edge, f"{{{DI_NS}}}waypoint", x=str(int(x)), y=str(int(y)))
    _label(edge, label)


def _node_shapes(plane: etree._Element, graph: _FlowGraph, layout: _FlowLayout, taken: set[str]) -> None:
    ordered = [n for n in graph.nodes if n not in graph.host_of] + list(graph.host_of)
    for node_id in ordered:
        node = graph.nodes[node_id]
        tag = _local(node)
        extra = {}
        if tag == "exclusiveGateway":
            extra["isMarkerVisible"] = "true"
        elif tag in SUBPROCESS_TAGS:
            extra["isExpanded"] = "false"
        _shape(plane, node_id, layout.boxes[node_id], taken, layout.labels.get(node_id), **extra)
    for flow in graph.flows:
        _edge(plane, flow.get("id"), layout.waypoints[flow.get("id")], taken, layout.labels.get(flow.get("id")))


def _new_diagram(root: etree._Element, owner_id: str, plane_element: str, taken: set[str]) -> etree._Element:
    diagram = etree.SubElement(root, f"{{{BPMNDI_NS}}}BPMNDiagram", id=_unique(f"BPMNDiagram_{owner_id}", taken))
    return etree.SubElement(diagram, f"{{{BPMNDI_NS}}}BPMNPlane", id=_unique(f"BPMNPlane_{owner_id}", taken),
                            bpmnElement=plane_element)


def _main_diagram(root: etree._Element, process: etree._Element, collaboration: etree._Element,
                  participant: etree._Element, taken: set[str]) -> etree._Element:
    graph = _read_graph(process)
    bands, band_of = _lane_bands(process, graph)
    pool_x, pool_y = ORIGIN
    depth = max(band.depth for band in bands)
    content_x = pool_x + LABEL_STRIP * (depth + 1) + LEFT_MARGIN
    layout = _layout_flow(graph, bands, band_of, content_x, pool_y)
    pool = _Box(pool_x, pool_y, layout.right - pool_x, layout.bottom - pool_y)
    plane = _new_diagram(root, process.get("id"), collaboration.get("id"), taken)
    _shape(plane, participant.get("id"), pool, taken, isHorizontal="true")
    lane_boxes: dict[str, _Box] = {}
    for band in bands:
        if band.lane_id is None:
            continue
        for level, lane_id in enumerate(band.ancestors + [band.lane_id], start=1):
            x = pool_x + LABEL_STRIP * level
            known = lane_boxes.get(lane_id)
            top = band.y if known is None else known.y
            lane_boxes[lane_id] = _Box(x, top, pool.right - x, band.y + band.height - top)
    for lane in process.iter(_bpmn("lane")):
        if lane.get("id") in lane_boxes:
            _shape(plane, lane.get("id"), lane_boxes[lane.get("id")], taken, isHorizontal="true")
    _node_shapes(plane, graph, layout, taken)
    _other_pools(plane, collaboration, participant, pool, layout, content_x, taken)
    return plane


def _other_pools(plane: etree._Element, collaboration: etree._Element, main: etree._Element, pool: _Box,
                 layout: _FlowLayout, content_x: int, taken: set[str]) -> None:
    """Draw the collaboration's other participants as empty pools below, with their message flows."""
    shapes = dict(layout.boxes)
    shapes[main.get("id")] = pool
    pools = set()
    y = pool.bottom + EXTRA_POOL_GAP
    for participant in collaboration.iterchildren(_bpmn("participant")):
        if participant is main or not participant.get("id"):
            continue
        box = _Box(pool.x, y, pool.width, EXTRA_POOL_HEIGHT)
        _shape(plane, participant.get("id"), box, taken, isHorizontal="true")
        shapes[participant.get("id")] = box
        pools.add(participant.get("id"))
        y += EXTRA_POOL_HEIGHT + EXTRA_POOL_GAP
    router = _Router(layout.boxes, _corridors(layout.bands), layout.waypoints.values())
    for message_flow in collaboration.iterchildren(_bpmn("messageFlow")):
        source_id, target_id = message_flow.get("sourceRef"), message_flow.get("targetRef")
        if source_id not in shapes or target_id not in shapes or not message_flow.get("id"):
            continue
        source, target = shapes[source_id], shapes[target_id]
        if source_id in layout.boxes and target_id in pools:
            points = router.route(source_id, target_id, _message_flow_candidates(source, target, content_x,
                                                                                  router.corridors))
        elif target_id in layout.boxes and source_id in pools:
            reversed_candidates = [list(reversed(c)) for c in _message_flow_candidates(target, source, content_x,
                                                                                        router.corridors)]
            points = router.route(source_id, target_id, reversed_candidates)
        else:   # pool to pool: straight down the middle of the narrower end
            x = (target if target.width <= source.width else source).center_x
            downwards = target.center_y > source.center_y
            points = [(x, source.bottom if downwards else source.y), (x, target.y if downwards else target.bottom)]
        _edge(plane, message_flow.get("id"), points, taken)


def _message_flow_candidates(node: _Box, pool: _Box, content_x: int, corridors: list[int]) -> list[list[Point]]:
    """From an element down to a pool below: straight, or along a corridor to a gap between columns first."""
    column = max(0, round((node.center_x - content_x - COLUMN_WIDTH / 2) / COLUMN_PITCH))
    column_center = _column_left(content_x, column) + COLUMN_WIDTH // 2
    gaps = [column_center + side * COLUMN_PITCH // 2 + offset for side in (1, -1) for offset in GAP_TRACK_OFFSETS]
    below = sorted(y for y in corridors if y > node.bottom)[:NEAREST_CORRIDORS]
    start = (node.center_x, node.bottom)
    return ([[start, (node.center_x, pool.y)]]
            + [[start, (node.center_x, y), (x, y), (x, pool.y)] for y in below for x in gaps])


def _subprocess_diagrams(root: etree._Element, process: etree._Element, taken: set[str]) -> None:
    """One extra diagram per collapsed sub-process with content, as bpmn-js draws drill-downs."""
    for subprocess in process.iter(*[_bpmn(tag) for tag in SUBPROCESS_TAGS]):
        graph = _read_graph(subprocess)
        if not graph.nodes or not subprocess.get("id"):
            continue
        band = _Band(None, 0)
        band_of = {node_id: band for node_id in graph.nodes}
        layout = _layout_flow(graph, [band], band_of, ORIGIN[0] + LEFT_MARGIN, ORIGIN[1])
        plane = _new_diagram(root, subprocess.get("id"), subprocess.get("id"), taken)
        _node_shapes(plane, graph, layout, taken)


def add_diagram(xml_bytes: bytes, filename: str = "process.bpmn") -> bytes:
    """Return the BPMN file with a freshly laid-out ``bpmndi:BPMNDiagram`` replacing any existing one."""
    tree = read_xml(xml_bytes, filename)
    root = tree.getroot()
    process = _executable_process(tree, filename)
    for old in list(root.iterchildren(f"{{{BPMNDI_NS}}}BPMNDiagram")):
        _remove(old)
    formatted = bool(root.text) and "\n" in root.text
    collaboration, participant = _ensure_participant(root, process)
    _declare_di_namespaces(tree)
    taken = {element.get("id") for element in root.iter() if isinstance(element.tag, str) and element.get("id")}
    _main_diagram(root, process, collaboration, participant, taken)
    _subprocess_diagrams(root, process, taken)
    # The diagrams were appended; move them to their place in the XSD order: before any relationship.
    diagrams = list(root.iterchildren(f"{{{BPMNDI_NS}}}BPMNDiagram"))
    for diagram in diagrams:
        root.remove(diagram)
    relationship = root.find(_bpmn("relationship"))
    previous = relationship.getprevious() if relationship is not None else (root[-1] if len(root) else None)
    for diagram in diagrams:
        _insert_after(root, diagram, previous)
        previous = diagram
    if not formatted:
        etree.indent(tree, space="  ")
    return _serialize(root)


def _serialize(root: etree._Element) -> bytes:
    # Serialising the tree would run comments before the root into the root's start tag.
    before = list(root.itersiblings(preceding=True))[::-1]
    after = list(root.itersiblings())
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>']
    parts += [etree.tostring(node, encoding="UTF-8", with_tail=False) for node in before]
    parts.append(etree.tostring(root, encoding="UTF-8", with_tail=False))
    parts += [etree.tostring(node, encoding="UTF-8", with_tail=False) for node in after]
    return b"\n".join(parts) + b"\n"


# ----------------------------------------------------------------------------------- preview

def _text_lines(text: str, max_width: int) -> list[str]:
    lines, current, width = [], "", 0
    for char in text:
        char_width = _char_width(char)
        if current and width + char_width > max_width:
            lines.append(current)
            current, width = "", 0
        current += char
        width += char_width
    return lines + [current] if current else lines


def _svg_text(text: str, x: int, y: int, max_width: int = LABEL_MAX_WIDTH) -> str:
    lines = _text_lines(text, max_width)
    first = y - (len(lines) - 1) * LABEL_LINE_HEIGHT // 2
    return "".join(f'<text x="{x}" y="{first + i * LABEL_LINE_HEIGHT}" text-anchor="middle" dominant-baseline="middle" '
                   f'font-size="12">{escape(line)}</text>' for i, line in enumerate(lines))


def _svg_external_label(di_element: etree._Element, name: str, default_x: int, default_y: int) -> str:
    """A name where the DI's BPMNLabel puts it, else where bpmn-js would (below / beside)."""
    bounds = di_element.find(f"{{{BPMNDI_NS}}}BPMNLabel/{{{DC_NS}}}Bounds")
    if bounds is None:
        return _svg_text(name, default_x, default_y)
    box = _svg_box(bounds)
    return _svg_text(name, box.center_x, box.center_y, box.width + 2)


def _svg_box(bounds: etree._Element) -> _Box:
    return _Box(*(round(float(bounds.get(a, "0"))) for a in ("x", "y", "width", "height")))


def preview_svg(xml_bytes: bytes) -> str:
    """Draw the file's first diagram as SVG: pools, lanes, elements with names, flows with arrows."""
    tree = read_xml(xml_bytes, "preview")
    root = tree.getroot()
    semantic = {element.get("id"): element for element in root.iter()
                if isinstance(element.tag, str) and element.get("id")
                and etree.QName(element).namespace not in (BPMNDI_NS, DC_NS, DI_NS)}
    diagram = root.find(f"{{{BPMNDI_NS}}}BPMNDiagram")
    plane = diagram.find(f"{{{BPMNDI_NS}}}BPMNPlane") if diagram is not None else None
    if plane is None:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"></svg>'
    containers, figures, lines = [], [], []
    xs, ys = [], []
    for shape in plane.iterchildren(f"{{{BPMNDI_NS}}}BPMNShape"):
        element = semantic.get(shape.get("bpmnElement"))
        bounds = shape.find(f"{{{DC_NS}}}Bounds")
        if bounds is None:
            continue
        box = _svg_box(bounds)
        xs += [box.x, box.right]
        ys += [box.y, box.bottom]
        tag = _local(element) if element is not None else ""
        name = (element.get("name") or "") if element is not None else ""
        attribute = f'class="shape" data-element={quoteattr(shape.get("bpmnElement") or "")}'
        if tag in ("participant", "lane"):
            fill = "#f4f7fb" if tag == "lane" else "none"
            label_x, label_y = box.x + LABEL_STRIP // 2, box.center_y
            containers.append(
                f'<g {attribute}><rect x="{box.x}" y="{box.y}" width="{box.width}" height="{box.height}" '
                f'fill="{fill}" stroke="#333"/><line x1="{box.x + LABEL_STRIP}" y1="{box.y}" '
                f'x2="{box.x + LABEL_STRIP}" y2="{box.bottom}" stroke="#333"/>'
                f'<g transform="rotate(-90 {label_x} {label_y})">{_svg_text(name, label_x, label_y, box.height)}'
                f'</g></g>')
        elif tag in EVENT_TAGS:
            radius = box.width // 2
            stroke = 3 if tag == "endEvent" else 1.5
            dash = ' stroke-dasharray="4 3"' if element.get("cancelActivity") == "false" else ""
            inner = (f'<circle cx="{box.center_x}" cy="{box.center_y}" r="{radius - 3}" fill="none" '
                     f'stroke="#333"{dash}/>' if tag in ("intermediateCatchEvent", "intermediateThrowEvent",
                                                          "boundaryEvent") else "")
            figures.append(f'<g {attribute}><circle cx="{box.center_x}" cy="{box.center_y}" r="{radius}" '
                           f'fill="white" stroke="#333" stroke-width="{stroke}"{dash}/>{inner}'
                           f'{_svg_external_label(shape, name, box.center_x, box.bottom + 12)}</g>')
        elif tag in GATEWAY_TAGS:
            marker = {"exclusiveGateway": "×", "parallelGateway": "+", "inclusiveGateway": "○",
                      "eventBasedGateway": "◇", "complexGateway": "*"}[tag]
            points = (f"{box.center_x},{box.y} {box.right},{box.center_y} {box.center_x},{box.bottom} "
                      f"{box.x},{box.center_y}")
            figures.append(f'<g {attribute}><polygon points="{points}" fill="white" stroke="#333"/>'
                           f'<text x="{box.center_x}" y="{box.center_y}" text-anchor="middle" '
                           f'dominant-baseline="central" font-size="22">{marker}</text>'
                           f'{_svg_external_label(shape, name, box.center_x, box.bottom + 12)}</g>')
        else:
            fill = "#fff8e6" if tag in SUBPROCESS_TAGS or tag == "callActivity" else "white"
            figures.append(f'<g {attribute}><rect x="{box.x}" y="{box.y}" width="{box.width}" '
                           f'height="{box.height}" rx="10" fill="{fill}" stroke="#333" stroke-width="1.5"/>'
                           f'{_svg_text(name, box.center_x, box.center_y, box.width - 10)}'
                           f'<text x="{box.x + 6}" y="{box.y + 14}" font-size="9" fill="#888">{escape(tag)}</text>'
                           f'</g>')
    for edge in plane.iterchildren(f"{{{BPMNDI_NS}}}BPMNEdge"):
        points = [(round(float(p.get("x"))), round(float(p.get("y"))))
                  for p in edge.iterchildren(f"{{{DI_NS}}}waypoint")]
        if len(points) < 2:
            continue
        xs += [x for x, _ in points]
        ys += [y for _, y in points]
        element = semantic.get(edge.get("bpmnElement"))
        dash = ' stroke-dasharray="6 4"' if element is not None and _local(element) == "messageFlow" else ""
        path = " ".join(f"{x},{y}" for x, y in points)
        name = element.get("name") if element is not None else None
        label = ""
        if name:
            (x1, y1), (x2, y2) = points[len(points) // 2 - 1], points[len(points) // 2]
            label = _svg_external_label(edge, name, (x1 + x2) // 2, (y1 + y2) // 2 - 10)
        lines.append(f'<g class="edge" data-element={quoteattr(edge.get("bpmnElement") or "")}>'
                     f'<polyline points="{path}" fill="none" stroke="#1f5fa8" stroke-width="1.5"{dash} '
                     f'marker-end="url(#arrow)"/>{label}</g>')
    left, top = min(xs, default=0) - 20, min(ys, default=0) - 20
    width, height = max(xs, default=0) - left + 20, max(ys, default=0) - top + 40
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{left} {top} {width} {height}" '
            f'width="{width}" height="{height}" font-family="sans-serif">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1f5fa8"/></marker></defs>'
            f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="white"/>'
            + "".join(containers) + "".join(figures) + "".join(lines) + "</svg>\n")


# ----------------------------------------------------------------------------------- command line

def _write_previews(directory: Path, names: list[str]) -> int:
    """Write ``DIR/<name>.svg`` for each BPMN file, drawn from the diagram it carries."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = Path(name)
        target = directory / f"{path.stem}.svg"
        target.write_text(preview_svg(path.read_bytes()), encoding="utf-8")
        print(f"{name}: preview written to {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Rewrite each BPMN file named on the command line with a freshly laid-out diagram."""
    names = sys.argv[1:] if argv is None else argv
    if names[:1] == ["--svg"] and len(names) >= 3:
        return _write_previews(Path(names[1]), names[2:])
    if not names:
        print("usage: python -m engine.diagram_layout FILE [FILE...]\n"
              "       python -m engine.diagram_layout --svg DIR FILE [FILE...]   (write SVG previews)",
              file=sys.stderr)
        return 2
    status = 0
    for name in names:
        path = Path(name)
        try:
            before = path.read_bytes()
            after = add_diagram(before, path.name)
        except (OSError, InvalidBpmn) as exc:
            print(f"{name}: left unchanged: {exc}", file=sys.stderr)
            status = 1
            continue
        if after == before:
            print(f"{name}: diagram already up to date")
            continue
        had_diagram = b"BPMNDiagram" in before
        temporary = path.with_name(f".{path.name}.layout-tmp")
        temporary.write_bytes(after)
        os.replace(temporary, path)
        shapes, edges = after.count(b"BPMNShape id="), after.count(b"BPMNEdge id=")
        print(f"{name}: {'replaced the' if had_diagram else 'added a'} diagram ({shapes} shapes, {edges} flows)")
    return status


if __name__ == "__main__":
    sys.exit(main())
