"""The transportation sector twin: a signalised road grid on uxsim traffic simulation.

Start with :class:`TransportTwin`; the grid and its demand are in :mod:`sectors.transportation.network`.
"""

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
