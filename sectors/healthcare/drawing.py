"""The healthcare sector's drawing: a small star, the ambulance hub at its centre, one spoke per site.

The twin has no map (hospitals are boards and wards, not places), so the sites are drawn on a fixed
star: hospital-1 to the north-west, hospital-2 to the north-east, clinic-1 to the south-east, the
ambulance hub that dispatches to all three just south-west of the middle. Every element is an
on-chain node's marker; the spokes are the dispatch routes.
"""

from __future__ import annotations

import functools

from sectors.drawing import NetworkDrawing, RawEdge, draw

__all__ = ["network"]

_PLACE = {"hospital-1": (200.0, 800.0), "hospital-2": (800.0, 800.0), "clinic-1": (800.0, 200.0),
          "ambulance-hub": (400.0, 400.0)}


@functools.cache
def network() -> NetworkDrawing:
    from sectors.healthcare.plugin import PLUGIN

    spokes = [RawEdge(f"ambulance-hub:{site}", "dispatch", "ambulance-hub", site)
              for site in ("hospital-1", "hospital-2", "clinic-1")]
    return draw("healthcare", PLUGIN.nodes, [], [], place=_PLACE, marker_edges=spokes)
