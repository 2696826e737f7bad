"""The feeder as a graph of switchable sections: what FLISR and reconfiguration search over.

:func:`switch_graph` exposes the *whole* feeder, open switches included, so a planner can reason
about which tie could pick up which dead section; each branch edge says whether it is closed,
whether it is a normally-open tie, whether it is faulted, and its rating and impedance.
:func:`downstream_of` answers "which buses hang below this one" in the normal configuration,
which is how a feeder area is named for a load surge.
"""

from __future__ import annotations

import functools
from collections.abc import Set as AbstractSet

import networkx as nx
import numpy as np
import pandapower as pp
from numpy.typing import NDArray

from sectors.electricity._flow import Snapshot
from sectors.electricity._network import TIE_BRANCHES, build_network, bus_id, customers, line_id, switch_id

__all__ = ["downstream_of", "switch_graph"]


def switch_graph(
    net: pp.pandapowerNet, snap: Snapshot, demand_kw: NDArray[np.float64], faulted: AbstractSet[int]
) -> nx.MultiGraph:
    """Nodes: bus ids with ``energised``, ``source``, ``demand_kw``, ``customers``, ``voltage_pu``.
    Edges (u, v, key=line id): ``switch``, ``closed``, ``normally_open``, ``faulted``,
    ``switch_bus`` (the end the switch sits at), ``rating_a``, ``r_ohm``, ``x_ohm``,
    ``current_a``, ``loading_percent``."""
    graph = nx.MultiGraph()
    sources = {int(b) for b in net.ext_grid.bus}
    for b in range(len(net.bus)):
        graph.add_node(
            bus_id(b), energised=bool(snap.energised[b]), source=b in sources, demand_kw=0.0, customers=0,
            voltage_pu=float(snap.vm_pu[b]),
        )
    for row, (bus, count) in enumerate(zip(net.load.bus.to_numpy(), customers(net), strict=True)):
        node = graph.nodes[bus_id(int(bus))]
        node["demand_kw"] += float(demand_kw[row])
        node["customers"] += int(count)
    closed = net.switch.closed.to_numpy()
    line = net.line
    for k in range(len(line)):
        length = float(line.length_km.at[k])
        graph.add_edge(
            bus_id(int(line.from_bus.at[k])), bus_id(int(line.to_bus.at[k])), key=line_id(k),
            switch=switch_id(k), closed=bool(closed[k]), normally_open=k + 1 in TIE_BRANCHES,
            faulted=k in faulted, switch_bus=bus_id(int(net.switch.bus.at[k])),
            rating_a=float(line.max_i_ka.at[k]) * 1000.0,
            r_ohm=float(line.r_ohm_per_km.at[k]) * length, x_ohm=float(line.x_ohm_per_km.at[k]) * length,
            current_a=float(snap.i_ka[k]) * 1000.0, loading_percent=float(snap.loading_percent[k]),
        )
    return graph


@functools.cache
def _normal_tree() -> nx.Graph:
    net = build_network()
    tree = nx.Graph()
    for k in range(len(net.line)):
        if k + 1 not in TIE_BRANCHES:
            tree.add_edge(int(net.line.from_bus.at[k]), int(net.line.to_bus.at[k]))
    return tree


def downstream_of(bus: int) -> set[int]:
    """pandapower bus ``bus`` and every bus fed through it in the normal (ties open) configuration."""
    tree = _normal_tree()
    if bus == 0:
        return set(tree.nodes)
    cut = tree.copy()
    cut.remove_node(bus)
    upstream = nx.node_connected_component(cut, 0)
    return {int(b) for b in tree.nodes if b not in upstream}
