"""Which on-chain node a twin's asset belongs to: the unit the isolation quorum votes on.

The Registry holds the city's nodes at the grain a governor registers and an operator isolates
(``feeder-1``, ``pump-2``, ``hospital-1``: each plug-in's ``nodes``); the twins measure much finer
assets (``line-12``, ``junction:247``, ``link:n01-n02``). An oracle that finds a fault on a fine
asset proposes isolating the node that asset is part of; the controller then works inside that
node (FLISR opens the switches around the faulted section, the water segment valves close).

The rules are per sector (``SectorPlugin.anchor_rules``) and explicit, so an auditor can read why a verdict about ``pipe:20``
became a vote about ``main-1``. An asset with no rule (a rain gauge, an OD travel-time probe) is
not something one isolates: `anchor_node` returns None and the verdict stays an event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.messages import Sector
from sectors.plugin import by_sector, plugin_of

__all__ = ["ANCHOR_RULES", "anchor_node"]

ANCHOR_RULES: Mapping[Sector, tuple[tuple[str, str], ...]] = by_sector(lambda p: p.anchor_rules)
"""Each sector's ``(asset pattern, node)`` rules, from its plug-in (``SectorPlugin.anchor_rules``)."""


def anchor_node(sector: Sector, asset_id: str) -> str | None:
    """The registered node of `sector` that `asset_id` is part of, or None if it is not isolable."""
    if any(n.node == asset_id for n in plugin_of(sector).nodes):
        return asset_id
    for pattern, node in ANCHOR_RULES[sector]:
        if re.fullmatch(pattern, asset_id):
            return node
    return None
