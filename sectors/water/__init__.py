"""The water sector twin: Net3 hydraulics on wntr (PDD), faults, attacks, actuators, valve isolation.

Start with :class:`WaterTwin`; asset ids are ``<type>:<wntr name>`` (:mod:`sectors.water.network`).
"""

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
