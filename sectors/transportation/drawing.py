"""The transportation sector's drawing: the twin's 4×4 road grid, 500 m blocks, north at row 0.

Intersections ``node:nXY`` and directed links ``link:nAB-nCD`` (both directions of a street), all
anchored to ``signals-centre`` as the plug-in's rules say. The other nodes are not in the grid
model: ``signals-east`` is drawn east of it, ``metro-line-1`` along its south edge and ``bridge-1``
west of it, each joined to the grid where it meets it. The central signal group's marker sits at the
centroid of the grid (the elements anchored to it); the markers drawn outside the grid widen the box,
so the quadrant rule (`sectors.drawing.district_of`) puts it in the North-East.
"""

from __future__ import annotations

import functools

from sectors.drawing import NetworkDrawing, RawEdge, RawNode, draw

__all__ = ["network"]


@functools.cache
def network() -> NetworkDrawing:
    from sectors.anchors import anchor_node
    from sectors.plugin import plugin_of
    from sectors.transportation.network import BLOCK_M, GRID, SIGNALS, links, node_name

    nodes = [RawNode(f"node:{node_name(r, c)}", "signal" if node_name(r, c) in SIGNALS else "intersection",
                     c * BLOCK_M, -r * BLOCK_M) for r in range(GRID) for c in range(GRID)]
    edges = [RawEdge(f"link:{a}-{b}", "road", f"node:{a}", f"node:{b}") for a, b, _ew in links()]
    far = (GRID - 1) * BLOCK_M
    place = {"signals-east": (far + 400.0, -far / 2 + 250.0), "metro-line-1": (far / 2 + 250.0, -far - 400.0),
             "bridge-1": (-400.0, -far / 2 - 250.0)}
    joins = [RawEdge("signals-east:feed", "connection", f"node:{node_name(1, GRID - 1)}", "signals-east"),
             RawEdge("metro-line-1:station", "connection", f"node:{node_name(GRID - 1, 2)}", "metro-line-1"),
             RawEdge("bridge-1:span", "road", f"node:{node_name(2, 0)}", "bridge-1")]
    return draw("transportation", plugin_of("transportation").nodes, nodes, edges, place=place, marker_edges=joins,
                anchor_node=anchor_node)
