"""Which on-chain node a twin's asset belongs to: the unit the isolation quorum votes on.

The Registry holds the city's nodes at the grain a governor registers and an operator isolates
(``feeder-1``, ``pump-2``, ``hospital-1``: `chain.consortium.NODES`); the twins measure much finer
assets (``line-12``, ``junction:247``, ``link:n01-n02``). An oracle that finds a fault on a fine
asset proposes isolating the node that asset is part of; the controller then works inside that
node (FLISR opens the switches around the faulted section, the water segment valves close).

The rules are per sector and explicit, so an auditor can read why a verdict about ``pipe:20``
became a vote about ``main-1``. An asset with no rule (a rain gauge, an OD travel-time probe) is
not something one isolates: `anchor_node` returns None and the verdict stays an event.
"""

from __future__ import annotations

import re

from chain.consortium import NODES
from core.messages import Sector

__all__ = ["ANCHOR_RULES", "anchor_node"]

_REGISTERED = {n.node: n.sector for n in NODES}

ANCHOR_RULES: dict[Sector, tuple[tuple[str, str], ...]] = {
    # the IEEE 33-bus twin is one radial feeder: every bus, line, switch and load is part of feeder-1
    Sector.ELECTRICITY: ((r"(bus|line|sw|load)-\d+|feeder-1|sub-1", "feeder-1"),),
    # Net3's two pump stations; its tanks, pipes and junctions form the trunk distribution main
    Sector.WATER: (
        (r"pump:10", "pump-1"),
        (r"pump:335", "pump-2"),
        (r"(pipe|junction|tank|valve):.+", "main-1"),
    ),
    # the combined sewer drains through lift station PS1 (wet well WW, pumps P1/P2); the storm tank
    # and its orifice sit at the treatment works; the CSO weir discharges at the outfall
    Sector.SEWAGE: (
        (r"(pump:P[12]|storage:WW|station:PS1|conduit:.+|junction:.+)", "lift-1"),
        (r"(storage:ST1|orifice:OR1)", "wwtp-1"),
        (r"outfall:CSO", "outfall-1"),
    ),
    # every signalised link of the 4x4 grid is run by the central signal group
    Sector.TRANSPORTATION: ((r"link:n\d\d-n\d\d", "signals-centre"),),
    Sector.HEALTHCARE: (),
    Sector.BANKING: (),
}


def anchor_node(sector: Sector, asset_id: str) -> str | None:
    """The registered node of `sector` that `asset_id` is part of, or None if it is not isolable."""
    if _REGISTERED.get(asset_id) == sector.value:
        return asset_id
    for pattern, node in ANCHOR_RULES[sector]:
        if re.fullmatch(pattern, asset_id):
            return node
    return None
