"""One service figure per sector: the share of the sector's service the city gets right now.

The twins each report service in their own terms (kW served, customers without water, m³ spilled,
travel-time ratios, patients waiting, transactions served). A scenario's KPI "availability per
sector" needs one number in [0, 1] with the same meaning everywhere: *the share of the service
this sector owes the city that it is delivering at this instant*. `service_level` computes it
from the twin's physical truth (its ``service()`` report and true readings, never the possibly
falsified sensors), with the definition of each sector written on its function below.

``customers_affected`` counts the people (or, where the twin has no people, the units the
definition is built on) who are not getting the service now; ``critical_affected`` counts those
whose loss is life-critical. Only healthcare models life-critical loads (ICU patients); the other
twins mark none, so they report 0 rather than guess, and the cross-sector effect of their faults
shows up in the dependants' own levels (a hospital losing power is healthcare's critical loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.messages import Sector
from sectors.plugin import plugin_of

__all__ = ["ServiceLevel", "service_level", "service_message"]


@dataclass(frozen=True)
class ServiceLevel:
    """How much of a sector's service is delivered now; ``detail`` holds the figures behind it."""

    availability: float
    customers_affected: int
    critical_affected: int
    detail: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.availability <= 1.0:
            raise ValueError(f"availability must be in [0, 1], got {self.availability}")


def _share(part: float, whole: float) -> float:
    """``part / whole`` clamped to [0, 1]; a sector owed nothing is fully available."""
    if whole <= 0.0:
        return 1.0
    return min(1.0, max(0.0, part / whole))


def electricity_level(twin: Any) -> ServiceLevel:
    """Served load over demanded load, from the feeder's DMS summary (``feeder-1`` true readings).

    availability = served_kw / (served_kw + unserved_kw), where unserved counts de-energised and
    shed demand (so shedding load to save voltage counts as lost service, as it should).
    customers_affected = customers not fully served (``customers_unserved``: 2 kW of peak demand
    per customer, `sectors.electricity._network`). critical_affected = 0: the IEEE 33-bus case
    marks no critical loads; a hospital or pump on the feeder shows up in its own sector.
    """
    feeder = {r.quantity: r.value for r in twin.true_readings() if r.asset_id == "feeder-1"}
    served, unserved = feeder["served_kw"], feeder["unserved_kw"]
    return ServiceLevel(
        availability=_share(served, served + unserved),
        customers_affected=round(feeder["customers_unserved"]),
        critical_affected=0,
        detail={
            "served_kw": served,
            "unserved_kw": unserved,
            "customers_served": feeder["customers_served"],
            "customers_unserved": feeder["customers_unserved"],
            "min_voltage_pu": feeder["min_voltage_pu"],
        },
    )


def water_level(twin: Any) -> ServiceLevel:
    """Customers served at adequate pressure over all customers (wntr population per junction).

    A customer junction counts as served only at or above the network's *required* pressure (full
    demand under pressure-dependent demand); customers cut off, below the minimum pressure
    (nothing delivered) or in between (partly served, ``low_pressure``) are all affected. The
    delivered share of requested demand is in ``detail`` for comparison. critical_affected = 0:
    Net3 marks no critical consumers (hospitals keep hours of on-site storage, see the graph).
    """
    report = twin.service()
    customers: dict[str, int] = twin.customers
    low = sum(customers.get(j, 0) for j in report.low_pressure)
    affected = report.customers_without_water + low
    return ServiceLevel(
        availability=_share(report.customers - affected, report.customers),
        customers_affected=affected,
        critical_affected=0,
        detail={
            "customers": float(report.customers),
            "customers_without_water": float(report.customers_without_water),
            "customers_low_pressure": float(low),
            "delivered_fraction": float(report.delivered_fraction),
            "leak_m3s": float(report.leak_m3s),
        },
    )


def sewage_level(twin: Any) -> ServiceLevel:
    """1 minus the share of the sewage arriving now that is spilled (CSO overflow or flooding).

    The sewer's service is taking the city's sewage away without spilling it. Sewage arriving now
    = what reaches the wet well (C4) + what is diverted to the storm tank (OR1) + what spills at
    the CSO weir + what floods out of the upstream manholes; spilled = CSO overflow + flooding
    at every node (manholes, wet well, storm tank). availability = 1 − spilled / arriving, so it is
    1 with no spill and 0 when everything arriving goes to the river or the street. A wet well
    that is still filling behind failed pumps is not (yet) a loss: its buffer is real service.
    customers_affected / critical_affected = 0: the SWMM model has no customer counts; the
    flooded nodes and rates are in ``detail``.
    """
    from sectors.sewage.network import CONDUITS, DIVERSION, JUNCTIONS, STORM_TANK, WET_WELL

    report = twin.service()
    nodes, links = twin._nodes, twin._links  # the live SWMM engine the twin owns; read only
    manholes = sum(max(0.0, float(nodes[n].flooding)) for n in JUNCTIONS)
    storage = sum(max(0.0, float(nodes[n].flooding)) for n in (WET_WELL, STORM_TANK))
    into_well = max(0.0, float(links[CONDUITS[3]].flow))  # C4, the trunk into the wet well
    diverted = max(0.0, float(links[DIVERSION].flow))
    spilled = report.overflow_m3s + manholes + storage
    arriving = into_well + diverted + report.overflow_m3s + manholes
    availability = 1.0 - (min(1.0, spilled / max(arriving, spilled)) if spilled > 0.0 else 0.0)
    return ServiceLevel(
        availability=availability,
        customers_affected=0,
        critical_affected=0,
        detail={
            "overflow_m3s": float(report.overflow_m3s),
            "flooding_m3s": manholes + storage,
            "arriving_m3s": arriving,
            "flooded_nodes": float(len(report.flooded_nodes)),
            "overflow_m3": float(report.overflow_m3),
            "flooding_m3": float(report.flooding_m3),
            "wet_well_level_m": float(report.wet_well_level_m),
        },
    )


def transportation_level(twin: Any) -> ServiceLevel:
    """1 / (travel-time ratio against the same day without incidents), capped at 1.

    Why this and not the share of trips not delayed: the twin's delayed count is cumulative since
    the day started (it cannot fall when the road reopens) and is judged against free flow, so the
    ordinary morning peak would read as lost service. The ratio is the mean, over the monitored
    OD pairs, of the quickest-route time now over the untouched baseline day's time now
    (`TransportService.travel_time_ratio`): 1 means the roads serve as they would have, 2 means
    trips take twice as long, i.e. the network delivers half the mobility per unit of time.
    customers_affected = cars the baseline day had delivered by now and this day has not
    (``vehicles_unserved``). critical_affected = 0 (ambulance access counts in healthcare).
    """
    report = twin.service()
    ratio = float(report.travel_time_ratio)
    return ServiceLevel(
        availability=min(1.0, 1.0 / ratio) if ratio > 0 else 1.0,
        customers_affected=int(report.vehicles_unserved),
        critical_affected=0,
        detail={
            "travel_time_ratio": ratio,
            "trips_completed": float(report.trips_completed),
            "baseline_trips_completed": float(report.baseline_trips_completed),
            "vehicles_delayed": float(report.vehicles_delayed),
            "vehicles_waiting": float(report.vehicles_waiting),
            "closed_links": float(len(report.closed_links)),
        },
    )


def healthcare_level(twin: Any) -> ServiceLevel:
    """Patients getting care now over patients needing it now, ICU patients at risk counted as lost.

    Needing care = patients in a bed (ward and ICU, every hospital) + patients waiting for one.
    Getting care = patients in a bed − ICU patients without assured life support (no power, no
    oxygen, no working ventilator: ``critical_at_risk``). A diverted patient admitted elsewhere is
    served. customers_affected = waiting + at risk; critical_affected = ICU patients at risk + ICU
    patients waiting for a bed.
    """
    report = twin.service()
    hospitals = list(twin.hospitals.values())
    in_bed = sum(h.ward_occupied + h.icu_occupied for h in hospitals)
    icu_waiting = sum(1 for h in hospitals for p in h.queue if p.icu)
    needing = in_bed + report.waiting
    served = in_bed - report.critical_at_risk
    return ServiceLevel(
        availability=_share(served, needing),
        customers_affected=report.waiting + report.critical_at_risk,
        critical_affected=report.critical_at_risk + icu_waiting,
        detail={
            "in_bed": float(in_bed),
            "waiting": float(report.waiting),
            "critical_at_risk": float(report.critical_at_risk),
            "longest_wait_min": float(report.longest_wait_min),
            "without_power": float(len(report.without_power)),
            "on_backup": float(len(report.on_backup)),
        },
    )


def banking_level(twin: Any) -> ServiceLevel:
    """The twin's ``availability_now``: legitimate transactions served over offered, this instant.

    A fraud burst is not customer demand, so it counts neither way. customers_affected =
    legitimate transactions failing per minute at the current rate (each a customer turned away
    at a till or an ATM); about 0.1 % fail in normal operation (the switch's base error rate).
    critical_affected = 0.
    """
    report = twin.service()
    offered = float(twin._slice.legit_offered_tps)  # the twin's current flows; read only
    availability = min(1.0, max(0.0, float(report.availability_now)))
    return ServiceLevel(
        availability=availability,
        customers_affected=round((1.0 - availability) * offered * 60.0),
        critical_affected=0,
        detail={
            "offered_tps": offered,
            "served_tps": availability * offered,
            "availability_since_start": float(report.availability),
            "dcs_down": float(sum(1 for s in report.dc_status.values() if s == 0)),
            "standby_active": float(report.active_dc != twin.spec.primary.dc_id),
        },
    )


def service_level(sector: Sector, twin: Any) -> ServiceLevel:
    """The share of ``sector``'s service that ``twin`` (the sector's own twin object) delivers now."""
    level: ServiceLevel = plugin_of(sector).service_level(twin)
    return level


def service_message(sector: Sector, at: datetime, level: ServiceLevel) -> dict[str, object]:
    """The JSON object a running twin publishes on ``qeaims-svc/<sector>`` (`sectors.remote.svc_topic`);
    ``at`` is the twin's clock. A non-finite detail figure travels as null (JSON has no NaN)."""
    return {
        "sector": sector.value,
        "at": at.isoformat(),
        "availability": level.availability,
        "customers_affected": level.customers_affected,
        "critical_affected": level.critical_affected,
        "detail": {k: (v if math.isfinite(v) else None) for k, v in level.detail.items()},
    }
