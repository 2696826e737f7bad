"""The banking sector's drawing: a small star, the payment switch at its centre, one spoke per site.

The twin has no map: the primary data centre is drawn to the north-west, the standby to the
north-east, the ATM cluster to the south-west, the switch that joins them just south-east of the
middle. Every element is an on-chain node's marker; the spokes are the switch's links.
"""

from __future__ import annotations

import functools

from sectors.drawing import NetworkDrawing, RawEdge, draw

__all__ = ["network"]

_PLACE = {"dc-primary": (200.0, 800.0), "dc-standby": (800.0, 800.0), "atm-cluster-1": (200.0, 200.0),
          "switch-1": (600.0, 400.0)}


@functools.cache
def network() -> NetworkDrawing:
    from sectors.anchors import anchor_node
    from sectors.plugin import plugin_of

    spokes = [RawEdge(f"switch-1:{site}", "link", "switch-1", site)
              for site in ("dc-primary", "dc-standby", "atm-cluster-1")]
    return draw("banking", plugin_of("banking").nodes, [], [], place=_PLACE, marker_edges=spokes,
                anchor_node=anchor_node)
