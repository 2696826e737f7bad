"""The controller's cascade step for each fault of the year: what it would protect in other sectors.

Why here: on every isolation the live controller runs the dependency graph's cascade analysis
(`sectors.graph.at_risk`, the ten most critical assets reached) and sends `controller.protect`'s
protective commands (an ATM cluster drained before its UPS runs out, the sewage storage gate
opened). The year runs the same two calls, so its report counts the protective commands (and the
advice) the year's faults call for. Their effect on the other sectors' service is not measured:
each sector is measured alone (docs/year.md, "left out").
"""

from __future__ import annotations

import functools
from typing import Any

from controller.protect import protections
from core.errors import QeaimsError
from core.messages import Sector
from sectors.anchors import anchor_node
from sectors.graph import at_risk

__all__ = ["protective_commands"]


@functools.cache
def protective_commands(sector: Sector, asset: str) -> tuple[dict[str, Any], ...]:
    """The protective commands an isolation of ``asset``'s on-chain node sends (none if it has no node)."""
    node = anchor_node(sector, asset)
    if node is None:
        return ()
    try:
        risks = at_risk(node)[:10]
    except QeaimsError:
        return ()
    return tuple(p.command for p in protections(risks) if p.command is not None)
