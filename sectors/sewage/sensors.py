"""What the sewage twin's instruments measure, read straight from the running SWMM engine.

Instruments are the ones a utility fits at a lift-station catchment: a rain gauge, level
transducers in the wet well and storm tank and in the CSO chamber, a flow meter and a run contact
on each pump, flow meters on the trunk sewers and the diversion, and at the CSO outfall a spill
flow meter plus the totalised spill volume (what a regulator asks for), and the station's power
meter (`station:PS1/power_kw`, the motor control centre's: a device apart from the pumps' run
contacts and flow meters, which the pump rules weigh them against). Sensor ids are
``<asset id>/<quantity>``; values are SI (m, m³/s, m³) except rain in mm/h, the unit gauges report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.messages import Reading, Sector

from .network import (
    CONDUITS,
    CSO_OUTFALL,
    DIVERSION,
    DUTY_PUMP,
    RAIN_GAUGE,
    STANDBY_PUMP,
    STATION,
    STORM_TANK,
    WET_WELL,
    AssetKind,
    asset_id,
)

__all__ = ["AUX_KW", "KW_PER_M3S", "RUNNING_KW", "SensorSpec", "build_sensors", "full_flow_m3s", "sample"]

AUX_KW = 3.0
"""The station's own load (controls, ventilation, lighting) while it has power."""
RUNNING_KW = 12.0
"""What a running pump's motor draws whatever it pumps (magnetising and mechanical losses)."""
KW_PER_M3S = 9.81 * 6.0 / 0.65
"""And per m³/s it lifts: ρ·g·H/η at the lift's ~6 m design head and 65 % wire-to-water efficiency
(≈ 40 kW for a pump at 0.45 m³/s)."""

MANNING_N = 0.013
# name -> (diameter m, slope m/m), as in network.inp ([XSECTIONS], inverts and offsets over length)
_GEOMETRY = {
    "C1": (0.6, 2.0 / 400),
    "C2": (0.6, 1.5 / 350),
    "C3": (0.9, 2.0 / 300),
    "C4": (0.9, 0.5 / 100),
    "FM": (0.6, 2.0 / 300),
}


def full_flow_m3s(conduit: str) -> float:
    """Manning full-bore capacity of a circular conduit: Q = A·R^(2/3)·S^(1/2)/n."""
    diameter, slope = _GEOMETRY[conduit]
    area = math.pi * diameter**2 / 4.0
    return float(area * (diameter / 4.0) ** (2.0 / 3.0) * math.sqrt(slope) / MANNING_N)


@dataclass(frozen=True)
class SensorSpec:
    """One instrument: which element, what quantity, in which unit."""

    sensor_id: str
    asset_id: str
    kind: AssetKind
    element: str
    quantity: str
    unit: str


def _spec(kind: AssetKind, element: str, quantity: str, unit: str) -> SensorSpec:
    aid = asset_id(kind, element)
    return SensorSpec(f"{aid}/{quantity}", aid, kind, element, quantity, unit)


def build_sensors() -> tuple[SensorSpec, ...]:
    """The instrument list (see the module docstring)."""
    specs = [
        _spec(AssetKind.RAINGAGE, RAIN_GAUGE, "intensity_mm_h", "mm/h"),
        _spec(AssetKind.STORAGE, WET_WELL, "level_m", "m"),
        _spec(AssetKind.STORAGE, STORM_TANK, "level_m", "m"),
        _spec(AssetKind.JUNCTION, "J4", "level_m", "m"),
    ]
    for pump in (DUTY_PUMP, STANDBY_PUMP):
        specs += [
            _spec(AssetKind.PUMP, pump, "flow_m3s", "m3/s"),
            _spec(AssetKind.PUMP, pump, "status", "on/off"),
        ]
    specs += [_spec(AssetKind.CONDUIT, c, "flow_m3s", "m3/s") for c in CONDUITS]
    specs += [
        _spec(AssetKind.ORIFICE, DIVERSION, "flow_m3s", "m3/s"),
        _spec(AssetKind.ORIFICE, DIVERSION, "opening", "fraction"),
        _spec(AssetKind.OUTFALL, CSO_OUTFALL, "flow_m3s", "m3/s"),
        _spec(AssetKind.OUTFALL, CSO_OUTFALL, "volume_m3", "m3"),
        _spec(AssetKind.STATION, STATION, "power_kw", "kW"),
    ]
    return tuple(specs)


def _station_power(links: Any, powered: bool) -> float:
    """The station's power meter: its own load, plus each pump whose motor turns."""
    if not powered:
        return 0.0
    total = AUX_KW
    for pump in (DUTY_PUMP, STANDBY_PUMP):
        link = links[pump]
        if float(link.current_setting) > 0.0 and float(link.flow) > 1e-6:
            total += RUNNING_KW + KW_PER_M3S * float(link.flow)
    return total


def _value(spec: SensorSpec, nodes: Any, links: Any, gauge: Any, powered: bool) -> float:
    if spec.kind is AssetKind.STATION:
        return _station_power(links, powered)
    if spec.kind is AssetKind.RAINGAGE:
        return float(gauge.rainfall)
    if spec.kind in (AssetKind.STORAGE, AssetKind.JUNCTION):
        return float(nodes[spec.element].depth)
    if spec.kind is AssetKind.OUTFALL:
        node = nodes[spec.element]
        return float(node.cumulative_inflow if spec.quantity == "volume_m3" else max(0.0, node.total_inflow))
    link = links[spec.element]
    if spec.quantity == "status":
        return 1.0 if float(link.current_setting) > 0.0 and float(link.flow) > 1e-6 else 0.0
    if spec.quantity == "opening":
        return float(link.current_setting)
    return float(link.flow)


def sample(spec: SensorSpec, nodes: Any, links: Any, gauge: Any, at: datetime, *, powered: bool = True) -> Reading:
    """The true value of ``spec`` in the engine's current state, as a Reading stamped ``at``
    (``powered``: whether the station has its power supply)."""
    return Reading(
        sector=Sector.SEWAGE,
        asset_id=spec.asset_id,
        sensor_id=spec.sensor_id,
        quantity=spec.quantity,
        unit=spec.unit,
        value=_value(spec, nodes, links, gauge, powered),
        timestamp=at,
    )
