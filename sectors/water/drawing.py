"""The water sector's drawing: EPANET Net3 at its own node coordinates (wntr).

Junctions, tanks and reservoirs are drawn where Net3's ``[COORDINATES]`` put them; pipes, pumps and
valves between their end nodes. Anchors follow the plug-in's rules: pump 10 is ``pump-1``, pump 335
``pump-2``, every pipe, junction, tank and valve the trunk main ``main-1``; the reservoirs anchor to
no node. ``treatment-1`` has no element in Net3: it is drawn beside the river intake (reservoir
``River``, the source it treats) and joined to it.
"""

from __future__ import annotations

import functools

from sectors.drawing import NetworkDrawing, RawEdge, RawNode, draw

__all__ = ["network"]


@functools.cache
def network() -> NetworkDrawing:
    import wntr

    from sectors.anchors import anchor_node
    from sectors.plugin import plugin_of
    from sectors.water.network import AssetKind, asset_id, net3_path

    wn = wntr.network.WaterNetworkModel(str(net3_path()))  # the file only: no hydraulics are set up or run
    kinds = {AssetKind.JUNCTION: wn.junction_name_list, AssetKind.TANK: wn.tank_name_list,
             AssetKind.RESERVOIR: wn.reservoir_name_list}
    ids: dict[str, str] = {}
    nodes = []
    for kind, names in kinds.items():
        for name in names:
            x, y = wn.get_node(name).coordinates
            ids[name] = asset_id(kind, name)
            nodes.append(RawNode(ids[name], kind.value, float(x), float(y)))
    edges = []
    for kind, names in ((AssetKind.PIPE, wn.pipe_name_list), (AssetKind.PUMP, wn.pump_name_list),
                        (AssetKind.VALVE, wn.valve_name_list)):
        for name in names:
            link = wn.get_link(name)
            edges.append(RawEdge(asset_id(kind, name), kind.value, ids[link.start_node_name], ids[link.end_node_name]))
    river = wn.get_node("River").coordinates
    place = {"treatment-1": (float(river[0]) + 2.0, float(river[1]) - 2.0)}
    intake = [RawEdge("treatment-1:intake", "intake", ids["River"], "treatment-1")]
    return draw("water", plugin_of("water").nodes, nodes, edges, place=place, marker_edges=intake,
                anchor_node=anchor_node)
