"""The sewage sector twin: a combined sewer and lift station on real SWMM hydraulics (pyswmm).

Start with :class:`SewageTwin` (one per process: SWMM's engine is global); the network it runs is
``network.inp`` in this package, described in :mod:`sectors.sewage.network`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

if TYPE_CHECKING:
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

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "INP_FILE": "sectors.sewage.network",
    "AssetKind": "sectors.sewage.network",
    "asset_id": "sectors.sewage.network",
    "parse_asset_id": "sectors.sewage.network",
    "SensorSpec": "sectors.sewage.sensors",
    "full_flow_m3s": "sectors.sewage.sensors",
    "PLC_PERIOD_S": "sectors.sewage.station",
    "PumpStation": "sectors.sewage.station",
    "DEFAULT_START": "sectors.sewage.twin",
    "ROUTING_STEP_S": "sectors.sewage.twin",
    "SewageEngineBusy": "sectors.sewage.twin",
    "SewageTwin": "sectors.sewage.twin",
    "SewerService": "sectors.sewage.twin",
})
