"""The transportation sector twin: a signalised road grid on uxsim traffic simulation.

Start with :class:`TransportTwin`; the grid and its demand are in :mod:`sectors.transportation.network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

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

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "MONITORED_OD": "sectors.transportation.network",
    "SIGNALS": "sectors.transportation.network",
    "parse_asset_id": "sectors.transportation.network",
    "SensorSpec": "sectors.transportation.sensors",
    "ALL_WAY_STOP_VEH_S": "sectors.transportation.twin",
    "DEFAULT_START": "sectors.transportation.twin",
    "STEP_S": "sectors.transportation.twin",
    "TransportService": "sectors.transportation.twin",
    "TransportTwin": "sectors.transportation.twin",
})
