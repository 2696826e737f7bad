"""The transportation sector twin: a signalised road grid on uxsim traffic simulation.

Start with :class:`TransportTwin`; the grid and its demand are in :mod:`sectors.transportation.network`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .network import MONITORED_OD, SIGNALS, parse_asset_id
    from .sensors import SensorSpec
    from .twin import ALL_WAY_STOP_VEH_S, DEFAULT_START, STEP_S, TransportService, TransportTwin

__all__ = [
    "ALL_WAY_STOP_VEH_S",
    "DEFAULT_START",
    "MONITORED_OD",
    "SIGNALS",
    "STEP_S",
    "SensorSpec",
    "TransportService",
    "TransportTwin",
    "parse_asset_id",
]

# Names load on first use: the sector's plug-in (`plugin.py`) is read by every process that lists
# the sectors, and must not pay for the field library (pandapower, wntr, SWMM, uxsim) until a twin opens.
_LAZY = {
    "MONITORED_OD": "sectors.transportation.network",
    "SIGNALS": "sectors.transportation.network",
    "parse_asset_id": "sectors.transportation.network",
    "SensorSpec": "sectors.transportation.sensors",
    "ALL_WAY_STOP_VEH_S": "sectors.transportation.twin",
    "DEFAULT_START": "sectors.transportation.twin",
    "STEP_S": "sectors.transportation.twin",
    "TransportService": "sectors.transportation.twin",
    "TransportTwin": "sectors.transportation.twin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
