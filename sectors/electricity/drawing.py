"""The electricity sector's drawing: the IEEE 33-bus feeder at pandapower's bus coordinates.

pandapower's ``case33bw`` carries a computed layout of the feeder (the ``geo`` of each bus, no
real map); buses are drawn there and its 37 branches (the five normally open ties included, kind
``tie``) between them. ``feeder-1`` is that feeder (every bus and line anchors to it). The city's
feeders 2-4 are registered on-chain but not modelled: each is drawn as a marker fed from the
substation bus (``bus-1``), placed in a corner of the feeder's box of its own, so they fall in three
different districts (`sectors.drawing.district_of`).
"""

from __future__ import annotations

import functools
import json

from sectors.drawing import NetworkDrawing, RawEdge, RawNode, draw

__all__ = ["network"]

_UNMODELLED = {"feeder-2": (-3.3, 5.0), "feeder-3": (3.8, 5.0), "feeder-4": (-3.3, -3.1)}
"""Model coordinates of the feeders the twin does not hold (corners of the 33-bus layout's box)."""


@functools.cache
def network() -> NetworkDrawing:
    import pandapower.networks as pn

    from sectors.anchors import anchor_node
    from sectors.electricity._network import TIE_BRANCHES, bus_id, line_id
    from sectors.plugin import plugin_of

    net = pn.case33bw()
    nodes = []
    for index, geo in zip(net.bus.index, net.bus.geo, strict=True):
        x, y = json.loads(geo)["coordinates"]
        nodes.append(RawNode(bus_id(int(index)), "substation" if index == 0 else "bus", float(x), float(y)))
    edges = [RawEdge(line_id(int(i)), "tie" if int(i) + 1 in TIE_BRANCHES else "line",
                     bus_id(int(f)), bus_id(int(t)))
             for i, f, t in zip(net.line.index, net.line.from_bus, net.line.to_bus, strict=True)]
    heads = [RawEdge(f"{feeder}:head", "feeder-head", bus_id(0), feeder) for feeder in _UNMODELLED]
    return draw("electricity", plugin_of("electricity").nodes, nodes, edges, place=_UNMODELLED, marker_edges=heads,
                anchor_node=anchor_node)
