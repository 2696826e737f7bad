"""The water sector twin: Net3 hydraulics on wntr (PDD), faults, attacks, actuators, valve isolation.

Start with :class:`WaterTwin`; asset ids are ``<type>:<wntr name>`` (:mod:`sectors.water.network`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

if TYPE_CHECKING:
    from .network import (
        MINIMUM_PRESSURE_M,
        REQUIRED_PRESSURE_M,
        AssetKind,
        asset_id,
        load_network,
        parse_asset_id,
    )
    from .segments import IsolationPlan, IsolationValve, ValveSegments, place_valves
    from .sensors import SensorSpec, ServiceReport
    from .twin import BREAK_AREA_FRACTION, LEAK_AREA_FRACTION, HydraulicsFailed, WaterTwin

__all__ = [
    "BREAK_AREA_FRACTION",
    "LEAK_AREA_FRACTION",
    "MINIMUM_PRESSURE_M",
    "REQUIRED_PRESSURE_M",
    "AssetKind",
    "HydraulicsFailed",
    "IsolationPlan",
    "IsolationValve",
    "SensorSpec",
    "ServiceReport",
    "ValveSegments",
    "WaterTwin",
    "asset_id",
    "load_network",
    "parse_asset_id",
    "place_valves",
]

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "MINIMUM_PRESSURE_M": "sectors.water.network",
    "REQUIRED_PRESSURE_M": "sectors.water.network",
    "AssetKind": "sectors.water.network",
    "asset_id": "sectors.water.network",
    "load_network": "sectors.water.network",
    "parse_asset_id": "sectors.water.network",
    "IsolationPlan": "sectors.water.segments",
    "IsolationValve": "sectors.water.segments",
    "ValveSegments": "sectors.water.segments",
    "place_valves": "sectors.water.segments",
    "SensorSpec": "sectors.water.sensors",
    "ServiceReport": "sectors.water.sensors",
    "BREAK_AREA_FRACTION": "sectors.water.twin",
    "LEAK_AREA_FRACTION": "sectors.water.twin",
    "HydraulicsFailed": "sectors.water.twin",
    "WaterTwin": "sectors.water.twin",
})
