"""The sewage sector twin: a combined sewer and lift station on real SWMM hydraulics (pyswmm).

Start with :class:`SewageTwin` (one per process: SWMM's engine is global); the network it runs is
``network.inp`` in this package, described in :mod:`sectors.sewage.network`.
"""

from .network import INP_FILE, AssetKind, asset_id, parse_asset_id
from .sensors import SensorSpec, full_flow_m3s
from .station import PLC_PERIOD_S, PumpStation
from .twin import DEFAULT_START, ROUTING_STEP_S, SewageEngineBusy, SewageTwin, SewerService

__all__ = [
    "DEFAULT_START",
    "INP_FILE",
    "PLC_PERIOD_S",
    "ROUTING_STEP_S",
    "AssetKind",
    "PumpStation",
    "SensorSpec",
    "SewageEngineBusy",
    "SewageTwin",
    "SewerService",
    "asset_id",
    "full_flow_m3s",
    "parse_asset_id",
]
