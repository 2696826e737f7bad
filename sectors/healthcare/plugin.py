"""The healthcare sector as a plug-in (`sectors.plugin.SectorPlugin`): hospitals as capacity and queue models (simpy).

Declared in ``pyproject.toml`` under the ``qeaims.sectors`` entry points. The twin and its field
library are imported only when a twin is opened.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.messages import AttackKind, FaultKind
from sectors.drawing import NetworkDrawing
from sectors.plugin import DevNode, FaultCase, ScenarioFault, SectorPlugin, TrainingPlan
from sectors.service import ServiceLevel, share

__all__ = ["PLUGIN"]

F = FaultKind

def _open(seed: int, start: datetime | None) -> Any:
    from sectors.healthcare.twin import HealthcareTwin

    return HealthcareTwin(seed=seed) if start is None else HealthcareTwin(seed=seed, start=start)


def _invariants(window: Any) -> Any:
    from sectors.healthcare.rules import invariants

    return invariants(window)


def _field_fault(readings: Any, asset: str) -> Any:
    from sectors.healthcare.rules import field_fault

    return field_fault(readings, asset)


def _windowed(sensor: str) -> bool:
    """The ED board's counts over `RATE_WINDOW_S` (`SectorPlugin.windowed`)."""
    return sensor.partition("/")[2] in ("arrivals_per_h", "admissions_per_h")


def _commanded_effect(sensor: str, commanded: Any) -> Any:
    from sectors.healthcare.rules import diverted_to

    return diverted_to(sensor, commanded)


def _service(twin: Any) -> ServiceLevel:
    """Patients getting care on time now over patients needing care now, ICU patients at risk lost.

    Needing care = patients in a bed (ward and ICU, every hospital) + patients in an emergency
    department (waiting to be seen, in treatment, or admitted and waiting for a bed). Not getting
    it on time: a patient waiting to be seen past their triage category's time-to-treatment target
    (Australasian Triage Scale: 2, 10, 30, 60, 120 min), an admitted patient waiting in the ED for a
    bed past the 4-hour standard, and an ICU patient without assured life support (no power, no
    oxygen, no working ventilator: ``critical_at_risk``). Why these standards and where the ED's
    numbers come from: `sectors.healthcare._ed`. A patient waiting within their target is being
    served as the standard intends (triage is care; the target is the clinical limit of the wait);
    a diverted patient seen in time elsewhere is served. The same definition scores the baseline
    and the controller: only the twin's physical state is read, never a sensor.

    customers_affected = late + at risk; critical_affected = ICU patients at risk + ICU patients
    waiting for a bed.
    """
    report = twin.service()
    hospitals = list(twin.hospitals.values())
    in_bed = sum(h.ward_occupied + h.icu_occupied for h in hospitals)
    icu_waiting = sum(1 for h in hospitals for p in h.queue if p.icu)
    needing = in_bed + report.in_ed
    late = report.late_unseen + report.late_for_bed
    served = needing - late - report.critical_at_risk
    return ServiceLevel(
        availability=share(served, needing),
        customers_affected=late + report.critical_at_risk,
        critical_affected=report.critical_at_risk + icu_waiting,
        detail={
            "in_bed": float(in_bed),
            "in_ed": float(report.in_ed),
            "ed_waiting": float(report.ed_waiting),
            "late_unseen": float(report.late_unseen),
            "late_for_bed": float(report.late_for_bed),
            "waiting": float(report.waiting),
            "critical_at_risk": float(report.critical_at_risk),
            "longest_wait_min": float(report.longest_wait_min),
            "ed_longest_wait_min": float(report.ed_longest_wait_min),
            "without_power": float(len(report.without_power)),
            "on_backup": float(len(report.on_backup)),
        },
    )


def _network() -> NetworkDrawing:
    from sectors.healthcare.drawing import network

    return network()


PLUGIN = SectorPlugin(
    name="healthcare",
    title="Healthcare",
    operator="health-network",
    network=_network,
    nodes=(
        DevNode("hospital-1", "healthcare", "hospital", 5, ("feeder-2", "pump-1"), district="North-West"),
        DevNode("hospital-2", "healthcare", "hospital", 5, ("feeder-3", "pump-2"), district="North-East"),
        DevNode("clinic-1", "healthcare", "clinic", 3, ("feeder-4",), district="South-East"),
        DevNode("ambulance-hub", "healthcare", "dispatch", 5, ("feeder-1",), district="South-West"),
    ),
    report_period_s=30,  # hospital systems every 30 s (issue 16: ≤ 60 s): an MCI declared is on both boards within it
    open_twin=_open,
    training=TrainingPlan(20160, 1, "7 days of 30-second rows (~1 ms each): arrivals are a Poisson count of a "
                          "few an hour, and a shorter run both sets their limits by a few lucky "
                          "hours and lets the detector learn chance correlations between "
                          "hospitals that have nothing to do with each other"),
    responses="controller._responses_health",
    twin_type="sectors.healthcare.twin:HealthcareTwin",
    service_level=_service,
    # a hospital's equipment is part of the hospital's node (a ventilator failure isolates the hospital)
    anchor_rules=tuple((rf"{h}:.+", h) for h in ("hospital-1", "hospital-2", "clinic-1")),
    fault_patterns=((r"(hospital|clinic)-\d+", F.POWER_LOSS), (r"(hospital|clinic)-\d+:.+", F.EQUIPMENT_FAILURE)),
    crew_travel_s=900, crew_repair_s=3600,
    fault_cases=(
        FaultCase(F.POWER_LOSS, "hospital-1"),
        FaultCase(F.POWER_LOSS, "hospital-2"),
        FaultCase(F.POWER_LOSS, "clinic-1"),
        # a declared mass-casualty incident: the dispatch centre's CAD and the hospital's board show
        # it in the first row (`sectors.healthcare.rules`), whatever its size
        FaultCase(F.ADMISSION_SURGE, "hospital-1", 8.0, max_rows=10),
        FaultCase(F.ADMISSION_SURGE, "hospital-2", 3.0, max_rows=10),  # a small MCI: ~5.5 ED attendances an hour tripled
        FaultCase(F.EQUIPMENT_FAILURE, "hospital-2:ventilators", 0.8, asset="hospital-2"),
        FaultCase(F.EQUIPMENT_FAILURE, "hospital-1:o2-plant", asset="hospital-1"),
        FaultCase(None, max_rows=240),  # four ordinary hours: demand varies by chance, nothing is voted
        # the oxygen reserve falsified 40 % low (a shortage that would call for a transfer)
        FaultCase(AttackKind.BIAS, "hospital-1/oxygen_m3", -800.0),
        # an MCI "declared" by one system alone: seven casualties that would divert a healthy hospital
        FaultCase(AttackKind.BIAS, "ambulance-hub/mci_hospital-2", 7.0),
        # the oxygen plant reported stopped (a failure that would divert a healthy hospital), and the
        # ventilator fleet reported short
        FaultCase(AttackKind.BIAS, "hospital-1/o2_plant_running", -1.0),
        FaultCase(AttackKind.BIAS, "hospital-2/ventilators_in_service", -8.0),
    ),
    invariants=_invariants,
    field_fault=_field_fault,
    commanded_effect=_commanded_effect,
    windowed=_windowed,
    command_aftermath_s=7200.0,  # the arrival counts' window, `_hospital.RATE_WINDOW_S` (a test holds them equal)
    scenario=(ScenarioFault(300, F.POWER_LOSS, "hospital-1"),),
    scenario_settle_s=3600,
)
