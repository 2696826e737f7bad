"""The electricity sector as a plug-in (`sectors.plugin.SectorPlugin`): the IEEE 33-bus feeder (pandapower).

Declared in ``pyproject.toml`` under the ``qeaims.sectors`` entry points. The twin and its field
library are imported only when a twin is opened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.messages import AttackKind, FaultKind
from sectors.drawing import NetworkDrawing
from sectors.plugin import DevNode, FaultCase, FieldFault, ScenarioFault, SectorPlugin, TrainingPlan
from sectors.service import ServiceLevel, share

__all__ = ["PLUGIN"]

F = FaultKind
_AFTERNOON = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # the twin's default Monday (`twin.DEFAULT_START`), 14:00

def _open(seed: int, start: datetime | None) -> Any:
    from sectors.electricity.twin import ElectricityTwin

    return ElectricityTwin(seed=seed) if start is None else ElectricityTwin(seed=seed, start=start)


def _invariants(window: Any) -> Any:
    from sectors.electricity.rules import invariants

    return invariants(window)


def _field_fault(readings: Any, asset: str) -> Any:
    """What the field shows on the feeder as a whole, where a verdict's asset (the feeder, or the line
    whose readings moved most) cannot tell: the substation's transformer out (its own availability
    and every bus dark agree), or an overload (the rule's two systems agree); else None, and the
    tripped switch or the asset's name decides."""
    from sectors.electricity.rules import overloaded

    values = {r.sensor_id: r.value for r in readings}
    buses = [v for k, v in values.items() if k.startswith("bus-") and k.endswith("/energised")]
    if values.get("sub-1/available", 1.0) < 0.5 and buses and max(buses) < 0.5:
        return FieldFault(F.TRANSFORMER_TRIP, "sub-1")
    return FieldFault(F.FEEDER_OVERLOAD, "feeder-1") if overloaded(values) is not None else None


def _service(twin: Any) -> ServiceLevel:
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
        availability=share(served, served + unserved),
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


def _network() -> NetworkDrawing:
    from sectors.electricity.drawing import network

    return network()


PLUGIN = SectorPlugin(
    name="electricity",
    title="Electricity",
    operator="city-power",
    network=_network,
    nodes=(
        DevNode("feeder-1", "electricity", "feeder", 4, district="North-East"),
        DevNode("feeder-2", "electricity", "feeder", 5, district="North-West"),
        DevNode("feeder-3", "electricity", "feeder", 4, district="North-East"),
        DevNode("feeder-4", "electricity", "feeder", 3, district="South-West"),
    ),
    report_period_s=5,  # feeder RTUs report every few seconds (issue 16: ≤ 5 s); one power flow a period
    open_twin=_open,
    training=TrainingPlan(640, 36, "32 h of 3-minute snapshots (~0.035 s each): the load profile's day "
                          "in the training part, a night and morning held back"),
    responses="controller.electricity",
    twin_type="sectors.electricity.twin:ElectricityTwin",
    service_level=_service,
    # the IEEE 33-bus twin is one radial feeder: every bus, line, switch and load is part of feeder-1
    anchor_rules=((r"(bus|line|sw|load)-\d+|feeder-1|sub-1", "feeder-1"),),
    # a verdict on the feeder itself that no tripped switch located to a line is the feeder's as a
    # whole: planned as an overload (its reintegration gives back what was shed)
    fault_patterns=((r"line-\d+", F.LINE_FAULT), (r"feeder-1", F.FEEDER_OVERLOAD), (r"sub-1", F.TRANSFORMER_TRIP)),
    crew_travel_s=1800, crew_repair_s=7200,
    fault_cases=(
        FaultCase(F.LINE_FAULT, "line-3"),
        FaultCase(F.LINE_FAULT, "line-7"),
        FaultCase(F.LINE_FAULT, "line-15"),
        FaultCase(F.LINE_FAULT, "line-25"),
        FaultCase(F.LINE_FAULT, "line-30"),
        FaultCase(F.TRANSFORMER_TRIP, "sub-1"),
        # a heat wave's afternoon: every load 1.6x, buses below 0.9 pu (at night the same surge stays
        # within the limits, and is no overload); then everything past bus 6 at 1.8x its load
        FaultCase(F.FEEDER_OVERLOAD, "feeder-1", 1.6, start=_AFTERNOON),
        FaultCase(F.FEEDER_OVERLOAD, "bus-6", 1.8, start=_AFTERNOON),
        FaultCase(None, max_rows=720),  # an hour of 5-s rows: the load follows its profile, nothing is voted
        # a feeder RTU's voltage falsified 0.06 pu low (an undervoltage that would call for action)
        FaultCase(AttackKind.BIAS, "bus-12/voltage_pu", -0.06),
    ),
    invariants=_invariants,
    field_fault=_field_fault,
    scenario=(ScenarioFault(300, F.LINE_FAULT, "line-7"),),
    scenario_settle_s=3600,
)
