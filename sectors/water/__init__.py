"""The water sector twin: Net3 hydraulics on wntr (PDD), faults, attacks, actuators, valve isolation.

Start with :class:`WaterTwin`; asset ids are ``<type>:<wntr name>`` (:mod:`sectors.water.network`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

# Names load on first use: the sector's plug-in (`plugin.py`) is read by every process that lists
# the sectors, and must not pay for the field library (pandapower, wntr, SWMM, uxsim) until a twin opens.
_LAZY = {
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
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
