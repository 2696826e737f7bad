"""The sewage sector's drawing: the sewer model's ``[COORDINATES]`` in ``network.inp`` (SWMM).

Nodes (junctions, the wet well and storm tank, the two outfalls) where the input file puts them;
conduits, the two lift pumps (both wet well → force main), the storm-tank orifice and the CSO weir
between their ends. Read from the file's text: SWMM is never started. Anchors follow the plug-in's
rules (the lift station and its sewers ``lift-1``, the storm tank and its orifice ``wwtp-1``, the CSO
``outfall-1``); ``wwtp-1``'s marker is drawn at the plant's outfall (``WWTP``), where the plant is,
and ``lift-2``, a lift station the model does not hold, south of the catchment's lower branch.
"""

from __future__ import annotations

import functools

from sectors.drawing import NetworkDrawing, RawEdge, RawNode, draw

__all__ = ["network"]

_NODE_KINDS = {"JUNCTIONS": "junction", "STORAGE": "storage", "OUTFALLS": "outfall"}
_LINK_KINDS = {"CONDUITS": "conduit", "PUMPS": "pump", "ORIFICES": "orifice", "WEIRS": "weir"}


def _sections(text: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    current = ""
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].upper()
            out.setdefault(current, [])
        elif current:
            out[current].append(line.split())
    return out


@functools.cache
def network() -> NetworkDrawing:
    from sectors.anchors import anchor_node
    from sectors.plugin import plugin_of
    from sectors.sewage.network import INP_FILE

    sections = _sections(INP_FILE.read_text())
    kind_of = {row[0]: kind for section, kind in _NODE_KINDS.items() for row in sections.get(section, [])}
    coords = {row[0]: (float(row[1]), float(row[2])) for row in sections["COORDINATES"]}
    nodes = [RawNode(f"{kind_of[name]}:{name}", kind_of[name], x, y) for name, (x, y) in coords.items()]
    edges = [RawEdge(f"{kind}:{row[0]}", kind, f"{kind_of[row[1]]}:{row[1]}", f"{kind_of[row[2]]}:{row[2]}")
             for section, kind in _LINK_KINDS.items() for row in sections.get(section, [])]
    wwtp = coords["WWTP"]
    place = {"wwtp-1": (wwtp[0], wwtp[1] - 60.0), "lift-2": (150.0, -100.0)}
    return draw("sewage", plugin_of("sewage").nodes, nodes, edges, place=place, anchor_node=anchor_node)
