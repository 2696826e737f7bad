"""The city's cross-sector dependencies as one networkx DiGraph, and how a failure cascades along it.

Edges point from supplier to dependant (``feeder-1 → pump-1``), so a failure spreads along
out-edges. Nodes are the on-chain ids of ``chain.consortium.NODES`` (``anchor=True``) plus the
finer assets the twins model (``anchor=False``); node attributes: ``sector``, ``kind``,
``criticality`` (1–5), ``anchor``. Edge attributes: ``dep`` (a :class:`Dependency`: kind, buffer,
effect, response, mitigation) — see :mod:`sectors._graph_data` for every assumed figure.

Two questions, two tools:

- :func:`at_risk` — *what else will this failure reach, and when?* Earliest time to impact per
  asset (sum of buffers along the quickest failing path), ranked by criticality then time. This is
  what the controller's cascade analysis (issue 4) calls on each isolation.
- :class:`Cascade` — *what state is everything in at time t?* Plays failures and restorations
  over simulated time: feeder down → pump stops now → hospital on backup for its hours → degraded.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import networkx as nx

from chain.consortium import DevNode
from chain.consortium import nodes as dev_nodes
from sectors._graph_data import EXTRA_EDGES, EXTRA_NODES, Dependency, chain_dependency
from sectors._twin import TwinError, UnknownAsset

__all__ = ["AtRisk", "Cascade", "CascadeEvent", "Dependency", "NodeState", "at_risk", "build_graph", "dependency"]


def build_graph(nodes: Iterable[DevNode] | None = None, *, extras: bool = True) -> nx.DiGraph:
    """The dependency graph of ``nodes`` (default: the dev consortium) plus, with ``extras``, the
    finer assets and unregistered dependencies of :mod:`sectors._graph_data`."""
    graph = nx.DiGraph()
    listed = list(dev_nodes() if nodes is None else nodes)
    for n in listed:
        graph.add_node(n.node, sector=n.sector, kind=n.kind, criticality=n.criticality, anchor=True)
    if extras:
        for node, sector, kind, criticality in EXTRA_NODES:
            graph.add_node(node, sector=sector, kind=kind, criticality=criticality, anchor=False)
    for n in listed:
        for supplier in n.depends_on:
            if supplier not in graph:
                raise TwinError(f"{n.node} depends on {supplier!r}, which is not a node")
            dep = chain_dependency(graph.nodes[supplier]["sector"], n.node, n.kind)
            graph.add_edge(supplier, n.node, dep=dep)
    if extras:
        for supplier, dependant, dep in EXTRA_EDGES:
            if supplier in graph and dependant in graph:
                graph.add_edge(supplier, dependant, dep=dep)
    return graph


_DEFAULT: tuple[tuple[DevNode, ...], nx.DiGraph] | None = None


def _default_graph() -> nx.DiGraph:
    """The registered sectors' graph, rebuilt only when a sector was registered since."""
    global _DEFAULT
    current = dev_nodes()
    if _DEFAULT is None or _DEFAULT[0] != current:
        _DEFAULT = (current, build_graph(current))
    return _DEFAULT[1]


def dependency(graph: nx.DiGraph, supplier: str, dependant: str) -> Dependency:
    """The :class:`Dependency` on edge ``supplier → dependant``."""
    if not graph.has_edge(supplier, dependant):
        raise UnknownAsset(f"{dependant!r} does not depend on {supplier!r}")
    dep: Dependency = graph.edges[supplier, dependant]["dep"]
    return dep


class AtRisk(NamedTuple):
    """One asset a failure will reach: ``path`` runs from the failed node to ``node``."""

    node: str
    sector: str
    criticality: int
    time_to_impact_s: float
    path: tuple[str, ...]


def at_risk(failed_node: str, graph: nx.DiGraph | None = None) -> list[AtRisk]:
    """Every asset ``failed_node``'s failure reaches, most critical first, then soonest.

    Time to impact is the quickest path's sum of buffers (Dijkstra). A *degraded* asset is listed
    but passes nothing on; a *failed* one passes its failure to its own dependants.
    """
    g = _default_graph() if graph is None else graph
    if failed_node not in g:
        raise UnknownAsset(f"no node {failed_node!r} in the dependency graph")
    heap: list[tuple[float, str, tuple[str, ...], bool]] = [(0.0, failed_node, (failed_node,), True)]
    reached: dict[str, tuple[float, tuple[str, ...]]] = {}
    expanded: set[str] = set()
    while heap:
        t, node, path, fails = heapq.heappop(heap)
        if node != failed_node and node not in reached:
            reached[node] = (t, path)
        if not fails or node in expanded:
            continue
        expanded.add(node)
        for _, nxt, data in g.out_edges(node, data=True):
            dep: Dependency = data["dep"]
            if nxt != failed_node and nxt not in expanded:
                heapq.heappush(heap, (t + dep.buffer_s, nxt, (*path, nxt), dep.effect == "fails"))
    out = [
        AtRisk(n, g.nodes[n]["sector"], g.nodes[n]["criticality"], t, path) for n, (t, path) in reached.items()
    ]
    return sorted(out, key=lambda r: (-r.criticality, r.time_to_impact_s, r.node))


class NodeState(StrEnum):
    OK = "ok"
    ON_BACKUP = "on-backup"
    DEGRADED = "degraded"
    FAILED = "failed"


@dataclass(frozen=True)
class CascadeEvent:
    at: datetime
    node: str
    state: NodeState
    cause: str


class Cascade:
    """Failures played over simulated time along ``graph`` (default: the dev city).

    A supply edge is *lost* while its supplier is failed; the dependant then runs on its buffer
    (``on-backup``) and, once the buffer is spent, fails or degrades. When the supplier returns, the
    dependant returns to ``ok`` — buffers are assumed recharged (a simplification: a generator's
    fuel is not refilled by the grid returning; the healthcare twin models that properly).
    """

    def __init__(self, graph: nx.DiGraph | None = None, *, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        if start.tzinfo is None:
            raise TwinError("start must be timezone-aware (UTC)")
        self.graph = _default_graph() if graph is None else graph
        self.start = start
        self._now_s = 0.0
        self._failed: set[str] = set()
        self._lost: dict[tuple[str, str], float] = {}
        self._state: dict[str, NodeState] = dict.fromkeys(self.graph.nodes, NodeState.OK)
        self.events: list[CascadeEvent] = []

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self._now_s)

    def state(self, node: str) -> NodeState:
        self._known(node)
        return self._state[node]

    def states(self) -> dict[str, NodeState]:
        return dict(self._state)

    def fail(self, node: str) -> list[CascadeEvent]:
        """``node`` fails now (a fault, an isolation); returns the state changes that follow at once."""
        self._known(node)
        if node in self._failed:
            raise TwinError(f"{node} is already failed")
        self._failed.add(node)
        return self._settle(f"{node} failed")

    def restore(self, node: str) -> list[CascadeEvent]:
        """``node`` is repaired now; its dependants recover as far as their other supplies allow."""
        self._known(node)
        if node not in self._failed:
            raise TwinError(f"{node} was not failed directly; restore the failure it depends on")
        self._failed.discard(node)
        return self._settle(f"{node} restored")

    def advance(self, seconds: float) -> list[CascadeEvent]:
        if not seconds >= 0:
            raise TwinError(f"advance needs a non-negative number of seconds, not {seconds}")
        return self.step(self.now + timedelta(seconds=seconds))

    def step(self, t: datetime) -> list[CascadeEvent]:
        """Play the cascade up to ``t``, stopping at every buffer that runs out on the way."""
        until = (t - self.start).total_seconds()
        if until < self._now_s:
            raise TwinError(f"the cascade is at {self.now.isoformat()}; it cannot step back to {t.isoformat()}")
        out: list[CascadeEvent] = []
        while True:
            pending = [since + self._dep(e).buffer_s for e, since in self._lost.items()]
            due = min((d for d in pending if d > self._now_s), default=None)
            if due is None or due > until:
                break
            self._now_s = due
            out += self._settle("buffer exhausted")
        self._now_s = until
        return out

    # --- internals ---------------------------------------------------------------------------
    def _known(self, node: str) -> None:
        if node not in self.graph:
            raise UnknownAsset(f"no node {node!r} in the dependency graph")

    def _dep(self, edge: tuple[str, str]) -> Dependency:
        dep: Dependency = self.graph.edges[edge]["dep"]
        return dep

    def _settle(self, cause: str) -> list[CascadeEvent]:
        """Bring supply losses and states to a fixed point at the current instant."""
        out: list[CascadeEvent] = []
        for _ in range(len(self.graph) + 1):
            for edge in self.graph.edges:
                down = self._state[edge[0]] is NodeState.FAILED
                if down and edge not in self._lost:
                    self._lost[edge] = self._now_s
                elif not down:
                    self._lost.pop(edge, None)
            changed = False
            for node in self.graph.nodes:
                new, why = self._judge(node, cause)
                if new is not self._state[node]:
                    self._state[node] = new
                    out.append(CascadeEvent(self.now, node, new, why))
                    changed = True
            if not changed:
                break
        self.events += out
        return out

    def _judge(self, node: str, cause: str) -> tuple[NodeState, str]:
        if node in self._failed:
            return NodeState.FAILED, cause
        state, why = NodeState.OK, cause
        for supplier in self.graph.predecessors(node):
            since = self._lost.get((supplier, node))
            if since is None:
                continue
            dep = self._dep((supplier, node))
            if self._now_s >= since + dep.buffer_s:
                hit = NodeState.FAILED if dep.effect == "fails" else NodeState.DEGRADED
            else:
                hit = NodeState.ON_BACKUP
            if _RANK[hit] > _RANK[state]:
                state, why = hit, f"{dep.kind} from {supplier} lost: {dep.response}"
        return state, why


_RANK = {NodeState.OK: 0, NodeState.ON_BACKUP: 1, NodeState.DEGRADED: 2, NodeState.FAILED: 3}
