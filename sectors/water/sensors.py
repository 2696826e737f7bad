"""What the water twin's instruments measure, and how well the network is serving its customers.

Sensors are fixed when the twin is built: a pressure gauge at every junction, a level sensor at
every tank, a flow meter and a run-status contact at every pump, a flow meter on every pipe. A
junction added later by a pipe break has no instrument — breaks happen where nobody measures.

Values are read from the solved wntr model (SI units: m, m³/s), never computed here, so a reading
is always what the hydraulics say. Sensor ids are ``<asset id>/<quantity>``.

The service report counts *customers* with ``wntr.metrics.population`` (average expected demand
divided by 200 US gallons per person per day, the wntr default), so "customers without water" is
a head count an operator can read, not a junction count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import wntr
from wntr.network import LinkStatus

from core.messages import Reading, Sector

from .network import AssetKind, asset_id

__all__ = ["SensorSpec", "ServiceReport", "build_sensors", "service_report", "true_readings"]


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


def build_sensors(wn: Any) -> tuple[SensorSpec, ...]:
    """The instrument list of the network as built (see the module docstring)."""
    specs = [_spec(AssetKind.JUNCTION, j, "pressure_m", "m") for j in wn.junction_name_list]
    specs += [_spec(AssetKind.TANK, t, "level_m", "m") for t in wn.tank_name_list]
    for p in wn.pump_name_list:
        specs += [_spec(AssetKind.PUMP, p, "flow_m3s", "m3/s"), _spec(AssetKind.PUMP, p, "status", "on/off")]
    specs += [_spec(AssetKind.PIPE, p, "flow_m3s", "m3/s") for p in wn.pipe_name_list]
    return tuple(specs)


def _value(wn: Any, spec: SensorSpec) -> float:
    if spec.kind is AssetKind.JUNCTION:
        return float(wn.get_node(spec.element).pressure)
    if spec.kind is AssetKind.TANK:
        return float(wn.get_node(spec.element).level)
    link = wn.get_link(spec.element)
    if spec.quantity == "status":
        return 1.0 if link.status == LinkStatus.Open else 0.0
    return float(link.flow)


def true_readings(wn: Any, sensors: tuple[SensorSpec, ...], at: datetime) -> list[Reading]:
    """Every sensor's true value at ``at`` (the state of the last solve)."""
    return [
        Reading(
            sector=Sector.WATER,
            asset_id=s.asset_id,
            sensor_id=s.sensor_id,
            quantity=s.quantity,
            unit=s.unit,
            value=_value(wn, s),
            timestamp=at,
        )
        for s in sensors
    ]


@dataclass(frozen=True)
class ServiceReport:
    """Service at one instant. Flows in m³/s; junction tuples hold wntr junction names.

    ``without_water``: customer junctions cut off (isolated) or below the PDD minimum pressure,
    so they receive nothing. ``low_pressure``: between minimum and required pressure, partly served.
    """

    at: datetime
    requested_m3s: float
    delivered_m3s: float
    leak_m3s: float
    without_water: tuple[str, ...]
    low_pressure: tuple[str, ...]
    customers: int
    customers_without_water: int

    @property
    def delivered_fraction(self) -> float:
        return self.delivered_m3s / self.requested_m3s if self.requested_m3s > 0 else 1.0

    @property
    def shortfall_m3s(self) -> float:
        return max(0.0, self.requested_m3s - self.delivered_m3s)


def customers_per_junction(wn: Any) -> dict[str, int]:
    """Estimated people served at each junction (``wntr.metrics.population``), zero-demand ones left out."""
    population = wntr.metrics.population(wn)
    return {str(j): int(population[j]) for j in wn.junction_name_list if population[j] > 0}


def service_report(wn: Any, customers: dict[str, int], t_s: int, at: datetime) -> ServiceReport:
    """Requested vs delivered demand over every junction, and who is without water, at ``at``
    (``t_s`` simulated seconds: the time of the last solve, which sets the requested demand)."""
    options = wn.options.hydraulic
    requested = delivered = leak = 0.0
    without: list[str] = []
    low: list[str] = []
    for name, junction in wn.junctions():
        requested += float(junction.demand_timeseries_list.at(t_s, multiplier=options.demand_multiplier))
        delivered += float(junction.demand or 0.0)  # a leak node a break added and no solve has set yet: none
        leak += float(junction.leak_demand or 0.0) if junction.leak_status else 0.0
        if name not in customers:
            continue
        pressure = float(junction.pressure)
        if junction._is_isolated or pressure < options.minimum_pressure:
            without.append(name)
        elif pressure < options.required_pressure:
            low.append(name)
    return ServiceReport(
        at=at,
        requested_m3s=requested,
        delivered_m3s=delivered,
        leak_m3s=leak,
        without_water=tuple(without),
        low_pressure=tuple(low),
        customers=sum(customers.values()),
        customers_without_water=sum(customers[j] for j in without),
    )
