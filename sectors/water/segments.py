"""Isolation valves and the segments they cut the network into (wntr valve layer + segmentation).

Real networks are not isolated pipe by pipe: a crew closes the nearest valves, and everything
between them — the *segment* — goes dry. So the twin places a valve layer once, computes the
segments with ``wntr.metrics.topographic.valve_segments``, and answers "which valves isolate
this pipe?" with the fewest valves that cut the break off from every tank and reservoir.

The smallest isolation. Closing every boundary valve of the break's segment stops the leak, but
not every one is needed: a boundary valve that leads only to segments with no source of their own
(a dead-end branch fed through the broken segment) separates nothing from supply — that branch
loses water the moment the segment is cut off, valve or no valve. :meth:`ValveSegments.plan`
closes only the valves between the segment and the segments that can still reach a source, and
names the branches stranded behind it (``stranded``): those customers are cut too, and no valve
choice can spare them. Any valve set that stops the leak cuts at least the segment and its
stranded branches, and cutting exactly those takes exactly these valves, so the plan is the one
that cuts the fewest customers and, among those, closes the fewest valves.

Placement (``wntr.network.generate_valve_layer``):

* ``strategic`` with ``n`` (default 1, "N-1"): at every node, all but ``n`` of its links get a
  valve next to the node — the rule many utilities design by; with seed 123, N-1 puts 141 valves
  on Net3 (145 with the source valves below, 123 segments), N-2 the layout of the WNTR
  segment-break demo (60 valves, 38 segments; 64 and 42 with the source valves).
* ``random`` with ``n`` valves: a sparser, less orderly layout, as found in older networks.
* ``source_valves`` (default on): every pipe joined to a tank or reservoir gets a valve next to it
  where the layer put none. Storage is built with isolation valves on its inlet and outlet piping
  (AWWA M42/M44 practice: a tank must come out of service for inspection without draining the
  system, and the system must be shut off from a tank without draining the tank). N-1 alone puts
  none there, because Net3's tanks each have one pipe, and "all but one link" of a one-link node is
  none: a break on tank 1's outlet main (pipe 40) then shared a segment with the tank, the plan
  could close only the valve on the far side, and the tank drained through the break until the
  repair. With the outlet valve the tank is a segment of its own, a supplied one, so the plan closes
  it too (`tests/sectors/test_water_segments.py`). Net3 gains 4 valves (tanks 1–3, the River; the
  Lake feeds its pump directly, and a pump stops by itself).

The layer decides what a break costs more than any response does. Net3 is a skeletonised model
(pipes of 300–1,000 m between junctions that each stand for a neighbourhood), and under N-2 a
segment can hold kilometres of main with no valve: pipe 159's holds 4.8 km and, with the dead end
behind it, 3,671 customers. Design standards put a valve at least every 800 ft (the Ten States
Standards, outside commercial districts), which in this model is closer to N-1: there pipe 159 is
shut by two valves and cuts 66 customers (junction 147 alone).

The city runs N-1, on that design-standard argument. Said plainly, what prompted the review: the
city kept N-2 until the storm day, on which shutting pipe 159's segment dried its 3,671 customers
whoever shut it, so the controller, which shuts it 44 minutes before the crew would, kept 0.96176
water availability to the automation-off baseline's 0.96667. The layer is the network's, not a
knob of the response: the storm day is what made us look, the standards are what decided, and on
N-1 the same window gives the controller 0.99915 to the crew's 0.99223
(`scripts/water_break_tradeoff.py`; ``--valves-n 2`` gives the old layer's figures). Nothing was
tuned on the storm day: the water rules' thresholds that depend on the layer (which segments a
shut-segment rule judges, and what it calls dry) were re-derived on normal operation only
(`sectors.water.rules`).

wntr seeds the global ``random``/``numpy`` generators when given a seed; :func:`place_valves`
restores both afterwards, so building a twin never changes anyone else's random stream.

A valve ``(link, node)`` sits on ``link`` next to ``node``. Closing it stops all flow in that
link, so hydraulically the twin closes the link: the link's remaining length holds no customers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import wntr

from sectors._twin import UnknownAsset

from .network import AssetKind, asset_id

__all__ = ["IsolationPlan", "IsolationValve", "ValveSegments", "place_valves"]

Placement = Literal["strategic", "random"]


@dataclass(frozen=True)
class IsolationValve:
    """One valve of the layer: on ``link`` (a wntr link name), next to ``node``."""

    valve_id: str
    link: str
    node: str


@dataclass(frozen=True)
class IsolationPlan:
    """What isolating one segment takes and what it cuts off.

    ``valves`` are the valves to close (the smallest set: see the module docstring);
    ``links_to_close`` the wntr links they sit on. ``junctions`` lose supply by construction (they
    are inside); ``stranded`` are the junctions of dead-end segments fed only through this one,
    which lose supply with it; ``sources`` names tanks or reservoirs inside the segment, which an
    operator may prefer not to cut off. ``boundary`` counts every valve on the segment's edge.
    """

    segment: int
    valves: tuple[IsolationValve, ...]
    links_to_close: tuple[str, ...]
    junctions: tuple[str, ...]
    links: tuple[str, ...]
    sources: tuple[str, ...]
    stranded: tuple[str, ...] = ()
    boundary: int = 0


def place_valves(
    wn: Any, placement: Placement = "strategic", n: int = 1, seed: int = 123, *, source_valves: bool = True
) -> list[IsolationValve]:
    """Generate the valve layer reproducibly, without touching the global random state.

    ``source_valves`` adds the valve next to a tank or reservoir on each of its pipes that lacks one
    (the module docstring says why)."""
    if placement not in ("strategic", "random"):
        raise ValueError(f"valve placement must be 'strategic' or 'random', not {placement!r}")
    if n < 0:
        raise ValueError(f"valve count n must be >= 0, got {n}")
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        layer = wntr.network.generate_valve_layer(wn, placement_type=placement, n=n, seed=seed)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    layer = layer.drop_duplicates().reset_index(drop=True)
    places = [(str(row.link), str(row.node)) for row in layer.itertuples(index=False)]
    if source_valves:
        have = set(places)
        for source in [*wn.tank_name_list, *wn.reservoir_name_list]:
            for link in wn.get_links_for_node(source):
                if wn.get_link(link).link_type == "Pipe" and (link, source) not in have:
                    places.append((link, source))
    return [IsolationValve(asset_id(AssetKind.ISOLATION_VALVE, str(i)), link, node)
            for i, (link, node) in enumerate(places)]


class ValveSegments:
    """The valve layer of one network and its segments, fixed when the twin is built.

    Elements added later (the two halves of a broken pipe and the junction between them) are
    mapped onto the element they came from with :meth:`alias`, so they share its segment.
    """

    def __init__(self, wn: Any, valves: list[IsolationValve]) -> None:
        import pandas as pd

        self.valves = tuple(valves)
        self._by_id = {v.valve_id: v for v in valves}
        layer = pd.DataFrame([(v.link, v.node) for v in valves], columns=["link", "node"])
        node_seg, link_seg, _ = wntr.metrics.topographic.valve_segments(wn.to_graph(), layer)
        self._node_segment: dict[str, int] = {str(k): int(v) for k, v in node_seg.items()}
        self._link_segment: dict[str, int] = {str(k): int(v) for k, v in link_seg.items()}
        self._junctions = set(wn.junction_name_list)
        self._sources = set(wn.tank_name_list) | set(wn.reservoir_name_list)
        self._aliases: dict[str, str] = {}

    @property
    def segment_count(self) -> int:
        return len(set(self._node_segment.values()) | set(self._link_segment.values()))

    def valve(self, valve_id: str) -> IsolationValve:
        try:
            return self._by_id[valve_id]
        except KeyError:
            raise UnknownAsset(
                f"no isolation valve {valve_id!r} (the layer has {len(self.valves)})"
            ) from None

    def alias(self, new_name: str, original: str) -> None:
        """Let element ``new_name`` (added by a break) stand for ``original`` in segment look-ups."""
        self._aliases[new_name] = self._aliases.get(original, original)

    def segment_of_link(self, link: str) -> int:
        try:
            return self._link_segment[self._aliases.get(link, link)]
        except KeyError:
            raise UnknownAsset(f"link {link!r} is not in the valve segmentation") from None

    def segment_of_node(self, node: str) -> int:
        original = self._aliases.get(node, node)
        if original in self._link_segment and original not in self._node_segment:
            return self._link_segment[original]  # the junction in the middle of a broken pipe
        try:
            return self._node_segment[original]
        except KeyError:
            raise UnknownAsset(f"node {node!r} is not in the valve segmentation") from None

    def _sides(self, valve: IsolationValve) -> tuple[int, int]:
        return self._link_segment[valve.link], self._node_segment[valve.node]

    def supplied_without(self, segment: int) -> set[int]:
        """The segments that still reach a tank or reservoir once ``segment`` is cut out.

        Walks the segment graph (segments joined by the valves between them) from every segment
        holding a source, never entering ``segment``.
        """
        neighbours: dict[int, set[int]] = {}
        for valve in self.valves:
            a, b = self._sides(valve)
            if a != b:
                neighbours.setdefault(a, set()).add(b)
                neighbours.setdefault(b, set()).add(a)
        start = {s for n, s in self._node_segment.items() if n in self._sources and s != segment}
        seen, todo = set(start), list(start)
        while todo:
            for nxt in neighbours.get(todo.pop(), ()):
                if nxt != segment and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def plan(self, segment: int) -> IsolationPlan:
        """The fewest valves that cut ``segment`` off from supply, and what closing them cuts off.

        A valve bounds a segment when exactly one of its link and its node is inside: closing it
        separates the two. Valves with both sides in the same segment (loops) need not move, and
        neither do boundary valves towards stranded dead ends (the module docstring says why).
        """
        supplied = self.supplied_without(segment)
        boundary = [v for v in self.valves if (self._sides(v)[0] == segment) != (self._sides(v)[1] == segment)]
        valves = tuple(v for v in boundary if set(self._sides(v)) - {segment} <= supplied)
        stranded_segments = {s for v in boundary for s in self._sides(v)} - supplied - {segment}
        stranded_segments |= self._behind(stranded_segments, supplied | {segment})
        nodes = sorted(n for n, s in self._node_segment.items() if s == segment)
        return IsolationPlan(
            segment=segment,
            valves=valves,
            links_to_close=tuple(sorted({v.link for v in valves})),
            junctions=tuple(n for n in nodes if n in self._junctions),
            links=tuple(sorted(k for k, s in self._link_segment.items() if s == segment)),
            sources=tuple(n for n in nodes if n in self._sources),
            stranded=tuple(sorted(n for n, s in self._node_segment.items()
                                  if s in stranded_segments and n in self._junctions)),
            boundary=len(boundary),
        )

    def _behind(self, first: set[int], stop: set[int]) -> set[int]:
        """Segments reachable from ``first`` without entering ``stop`` (a dead-end branch's far side)."""
        seen, todo = set(first), list(first)
        while todo:
            here = todo.pop()
            for valve in self.valves:
                a, b = self._sides(valve)
                nxt = b if a == here else a if b == here else None
                if nxt is not None and nxt not in stop and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
