"""A sector's network as a drawing: where its elements sit, how they connect, which on-chain node each is.

The dashboard draws each sector from its own model (`SectorPlugin.network`): the feeder's bus
coordinates, the water network's node coordinates, the sewer's ``[COORDINATES]``, the road grid; the
hospitals and the bank's sites as small stars. Each drawn element names the on-chain node it anchors
to (`sectors.anchors.anchor_node`, the same rules the quorum votes by) or none; each on-chain node of
the sector is drawn too, as a marker whose id is the node's name, so a node's status can be shown
where its assets are.

Coordinates. ``x``, ``y`` are in a box of `SIZE` × `SIZE` units, the model's aspect kept, with ``y``
growing downward (screen order: north at the top), so a page can lay them out as given.

Districts (`district_of`, the one rule): each sector's map is cut into four quadrants at the middle
of its drawing's bounding box; an element is in the north if its ``y`` is at or above the middle
(``y <= mid``, screen order), in the east if its ``x`` is at or right of it (``x >= mid``). The names
are `core.sectors.DISTRICTS`. A sector's districts are its own map's quadrants: the feeder's
"North-West" and the water network's are not claimed to be the same streets (the models do not share
a map). `DevNode.district` in each plug-in is written out by hand and the tests check it against
this rule, so reading a plug-in never loads a model.

Drawing never runs a simulation: it reads the model's geometry, and each sector caches its drawing
for the process (``functools.cache`` on its ``drawing.network``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.messages import Sector
from core.sectors import DISTRICTS, DevNode

__all__ = ["SIZE", "DrawnEdge", "DrawnNode", "NetworkDrawing", "RawEdge", "RawNode", "district_of", "draw"]

SIZE = 1000.0


@dataclass(frozen=True)
class DrawnNode:
    """One drawn element: a model element (``bus-12``, ``junction:147``) or an on-chain node's marker
    (``kind`` the node's kind, ``anchor`` its own name)."""

    id: str
    kind: str
    x: float
    y: float
    anchor: str | None  # the on-chain node this element belongs to (None: not isolable)
    district: str
    marker: bool = False  # True for an on-chain node's own marker


@dataclass(frozen=True)
class DrawnEdge:
    """A connection between two drawn nodes (a line, a pipe, a road link, a dependency of a star)."""

    id: str
    kind: str
    source: str
    target: str
    anchor: str | None


@dataclass(frozen=True)
class NetworkDrawing:
    sector: str
    nodes: tuple[DrawnNode, ...]
    edges: tuple[DrawnEdge, ...]

    def marker(self, node: str) -> DrawnNode:
        """The marker of on-chain node `node` (KeyError if the drawing has none)."""
        for drawn in self.nodes:
            if drawn.marker and drawn.id == node:
                return drawn
        raise KeyError(node)

    @property
    def districts(self) -> tuple[str, ...]:
        """The districts this sector's drawing has elements in, in `DISTRICTS` order."""
        present = {n.district for n in self.nodes}
        return tuple(d for d in DISTRICTS if d in present)


@dataclass(frozen=True)
class RawNode:
    """A model element in the model's own coordinates (``y`` growing north, as the models keep it)."""

    id: str
    kind: str
    x: float
    y: float


@dataclass(frozen=True)
class RawEdge:
    id: str
    kind: str
    source: str
    target: str


def district_of(x: float, y: float, mid_x: float, mid_y: float) -> str:
    """The quadrant rule (module docstring), in screen coordinates: ties go north and east."""
    north = y <= mid_y
    east = x >= mid_x
    return DISTRICTS[(0 if north else 2) + (1 if east else 0)]


def _centroid(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def draw(sector: str, nodes: Iterable[DevNode], raw_nodes: Sequence[RawNode], raw_edges: Sequence[RawEdge], *,
         anchor_node: Callable[[Sector, str], str | None],
         place: Mapping[str, tuple[float, float]] | None = None,
         marker_edges: Sequence[RawEdge] = ()) -> NetworkDrawing:
    """The drawing of `sector` from its model's elements: anchors, markers, normalised coordinates, districts.

    An on-chain node's marker sits at `place[node]` (model coordinates) when given, else at the
    centroid of the elements anchored to it (nodes, and edges by their midpoints). A node with neither
    is a `ValueError`: a plug-in must say where a node its model does not hold is drawn.
    `marker_edges` connect markers to the model (an unmodelled feeder to the substation bus).
    `anchor_node` is `sectors.anchors.anchor_node`, passed in by the sector's drawing: this module sits
    below the plug-in registry that anchors reads (`sectors.plugin` imports `NetworkDrawing` from here).
    """

    key = Sector(sector)
    place = place or {}
    where = {n.id: (n.x, n.y) for n in raw_nodes}
    if len(where) != len(raw_nodes):
        raise ValueError(f"{sector}: two drawn elements share an id")
    anchors = {n.id: anchor_node(key, n.id) for n in raw_nodes}
    edge_anchor = {e.id: anchor_node(key, e.id) for e in raw_edges}
    members: dict[str, list[tuple[float, float]]] = {}
    for n in raw_nodes:
        if anchors[n.id] is not None:
            members.setdefault(str(anchors[n.id]), []).append((n.x, n.y))
    for e in raw_edges:
        if edge_anchor[e.id] is not None:
            (ax, ay), (bx, by) = where[e.source], where[e.target]
            members.setdefault(str(edge_anchor[e.id]), []).append(((ax + bx) / 2, (ay + by) / 2))
    markers: list[tuple[DevNode, float, float]] = []
    for dev in nodes:
        if dev.node in where:
            raise ValueError(f"{sector}: element {dev.node!r} has an on-chain node's name")
        if dev.node in place:
            mx, my = place[dev.node]
        elif dev.node in members:
            mx, my = _centroid(members[dev.node])
        else:
            raise ValueError(f"{sector}: the model holds nothing of node {dev.node!r} and no place is given")
        markers.append((dev, mx, my))
    xs = [x for x, _ in where.values()] + [m[1] for m in markers]
    ys = [y for _, y in where.values()] + [m[2] for m in markers]
    lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    span = max(hi_x - lo_x, hi_y - lo_y) or 1.0
    scale = SIZE / span

    def screen(x: float, y: float) -> tuple[float, float]:
        return (round((x - lo_x) * scale, 2), round((hi_y - y) * scale, 2))  # north at the top

    mid_x, mid_y = screen((lo_x + hi_x) / 2, (lo_y + hi_y) / 2)
    drawn: list[DrawnNode] = []
    for n in raw_nodes:
        sx, sy = screen(n.x, n.y)
        drawn.append(DrawnNode(n.id, n.kind, sx, sy, anchors[n.id], district_of(sx, sy, mid_x, mid_y)))
    for dev, mx, my in markers:
        sx, sy = screen(mx, my)
        drawn.append(DrawnNode(dev.node, dev.kind, sx, sy, dev.node, district_of(sx, sy, mid_x, mid_y), marker=True))
    if not all(math.isfinite(v) for n in drawn for v in (n.x, n.y)):
        raise ValueError(f"{sector}: the model has a coordinate that is not a number")
    edges = [DrawnEdge(e.id, e.kind, e.source, e.target, edge_anchor[e.id]) for e in raw_edges]
    edges += [DrawnEdge(e.id, e.kind, e.source, e.target, None) for e in marker_edges]
    return NetworkDrawing(sector=sector, nodes=tuple(drawn), edges=tuple(edges))
