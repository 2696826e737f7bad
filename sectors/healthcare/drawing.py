"""The healthcare sector's drawing: small stars, the ambulance hub joining the sites, each site's plant.

The twin has no map (hospitals are boards and wards, not places), so the sites are drawn on a fixed
star: hospital-1 to the north-west, hospital-2 to the north-east, clinic-1 to the south-east, the
ambulance hub that dispatches to all three south-west of the middle; the spokes are the dispatch
routes. Around each site, a smaller star of the equipment the twin can fail there (`twin.EQUIPMENT`:
``<site>:generator``, ``<site>:ats``, ``<site>:o2-plant``, and ``<site>:ventilators`` where the site has
an ICU, `_hospital.DEV_HOSPITALS`), anchored to the site as the plug-in's rules say.
"""

from __future__ import annotations

import functools
import math

from sectors.drawing import NetworkDrawing, RawEdge, RawNode, draw

__all__ = ["network"]

_PLACE = {"hospital-1": (200.0, 800.0), "hospital-2": (800.0, 800.0), "clinic-1": (800.0, 200.0),
          "ambulance-hub": (400.0, 400.0)}
_PLANT_RADIUS = 90.0


@functools.cache
def network() -> NetworkDrawing:
    from sectors.anchors import anchor_node
    from sectors.healthcare._hospital import DEV_HOSPITALS
    from sectors.healthcare.twin import EQUIPMENT
    from sectors.plugin import plugin_of

    plant: list[RawNode] = []
    spokes = [RawEdge(f"ambulance-hub:{site}", "dispatch", "ambulance-hub", site)
              for site in ("hospital-1", "hospital-2", "clinic-1")]
    for spec in DEV_HOSPITALS:
        cx, cy = _PLACE[spec.hospital_id]
        parts = [e for e in EQUIPMENT if e != "ventilators" or spec.icu_beds]
        for i, part in enumerate(parts):
            angle = math.pi / 2 + 2 * math.pi * i / len(parts)
            element = f"{spec.hospital_id}:{part}"
            plant.append(RawNode(element, part, cx + _PLANT_RADIUS * math.cos(angle),
                                 cy + _PLANT_RADIUS * math.sin(angle)))
            spokes.append(RawEdge(f"{element}:supply", "plant", spec.hospital_id, element))
    return draw("healthcare", plugin_of("healthcare").nodes, plant, [], place=_PLACE, marker_edges=spokes,
                anchor_node=anchor_node)
