"""The banking sector as a plug-in (`sectors.plugin.SectorPlugin`): the payment network: data centres, switch and ATM clusters.

Declared in ``pyproject.toml`` under the ``qeaims.sectors`` entry points. The twin and its field
library are imported only when a twin is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.messages import AttackKind, FaultKind
from sectors.drawing import NetworkDrawing
from sectors.plugin import DevNode, FaultCase, FieldFault, ScenarioFault, SectorPlugin, TrainingPlan
from sectors.service import ServiceLevel

__all__ = ["PLUGIN"]

F = FaultKind

def _open(seed: int, start: datetime | None) -> Any:
    from sectors.banking.twin import BankingTwin

    return BankingTwin(seed=seed) if start is None else BankingTwin(seed=seed, start=start)


def _invariants(window: Any) -> Any:
    from sectors.banking.rules import invariants

    return invariants(window)


def _field_fault(readings: Any, asset: str) -> Any:
    """A fraud burst on the switch when its throughput and failures show one; else the name decides.

    Only for a verdict on the switch: another asset's verdict names its own fault (the standby site's
    outage voted during a burst was planned as the burst, and its crew "repaired" the switch).
    """
    from sectors.banking._model import DEV_BANKING
    from sectors.banking.rules import burst_shown

    if asset != DEV_BANKING.switch_id:
        return None
    values = {r.sensor_id: r.value for r in readings}
    return FieldFault(F.FRAUD_BURST, DEV_BANKING.switch_id) if burst_shown(values) else None


def _service(twin: Any) -> ServiceLevel:
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


def _network() -> NetworkDrawing:
    from sectors.banking.drawing import network

    return network()


PLUGIN = SectorPlugin(
    name="banking",
    title="Banking",
    operator="payment-switch",
    network=_network,
    nodes=(
        DevNode("dc-primary", "banking", "data-centre", 5, ("feeder-2",), district="North-West"),
        DevNode("dc-standby", "banking", "data-centre", 4, ("feeder-4",), district="North-East"),
        DevNode("switch-1", "banking", "payment-switch", 5, ("dc-primary",), district="South-East"),
        DevNode("atm-cluster-1", "banking", "atm-cluster", 2, ("feeder-1",), district="South-West"),
    ),
    report_period_s=30,  # bank systems' monitoring every 30 s (issue 16: ≤ 60 s)
    open_twin=_open,
    training=TrainingPlan(5760, 1, "2 days of 30-second rows (<1 ms each): the daily transaction curve"),
    responses="controller._responses_banking",
    twin_type="sectors.banking.twin:BankingTwin",
    service_level=_service,
    fault_patterns=((r"(dc-.+|atm-cluster-\d+)", F.OUTAGE),),
    crew_travel_s=600, crew_repair_s=1800,
    fault_cases=(
        FaultCase(F.OUTAGE, "dc-primary"),
        FaultCase(F.OUTAGE, "dc-standby"),  # not serving: only its own status moves
        FaultCase(F.OUTAGE, "atm-cluster-1"),
        FaultCase(F.OUTAGE, "atm-cluster-2"),  # not a registered node: the right verdict votes nothing
        FaultCase(F.DEGRADATION, "switch-1"),
        FaultCase(F.DEGRADATION, "atm-cluster-1", 0.8),
        FaultCase(F.FRAUD_BURST, "switch-1", 300.0),  # 300 tps from five sources
        FaultCase(None, max_rows=240),  # two ordinary hours: demand and latency vary, nothing is voted
        # the switch's latency falsified 400 ms high (a degradation that would call for a failover)
        FaultCase(AttackKind.BIAS, "switch-1/latency_p95_ms", 400.0),
        # a site reported down by its facility monitoring alone (it would call for a fail-over), and
        # an ATM cluster's failures falsified (a degradation that would drain a healthy cluster)
        FaultCase(AttackKind.BIAS, "dc-standby/status", -1.0),
        FaultCase(AttackKind.BIAS, "atm-cluster-1/error_rate", 0.3),
    ),
    invariants=_invariants,
    field_fault=_field_fault,
    scenario=(ScenarioFault(600, F.OUTAGE, "dc-primary"),),
    scenario_settle_s=7200,
)
