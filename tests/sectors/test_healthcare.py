"""Healthcare twin: surges fill beds then divert, power loss runs the generator dry, attacks touch
only the sensors, and every bad request fails with a clear error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import InvalidAttack, InvalidCommand, InvalidFault, TwinError, UnknownAsset
from sectors.healthcare import DEV_HOSPITALS, HealthcareTwin, HospitalSpec, PowerSource

SMALL = (
    HospitalSpec("hospital-a", 20, 4, 0.15, 0.05, 96.0, 72.0, 100.0, 2.0, 10.0, 4.0),
    HospitalSpec("hospital-b", 60, 6, 0.4, 0.06, 96.0, 72.0, 150.0, 3.0, 10.0, 4.0),
)


def value(readings: list[Reading], sensor_id: str) -> float:
    return next(r.value for r in readings if r.sensor_id == sensor_id)


def test_surge_fills_the_emergency_department_then_diversion_sends_ambulances_elsewhere() -> None:
    """At a small hospital the ED is the bottleneck: an eightfold surge queues patients to be seen
    long before a bed runs out, and diverting its ambulances to b shortens that queue."""
    twin, unmanaged = HealthcareTwin(SMALL, seed=3), HealthcareTwin(SMALL, seed=3)
    for t in (twin, unmanaged):
        t.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-a", severity=8.0)
        readings = t.advance(2 * 3600)
    assert value(readings, "hospital-a/ed_waiting") > 0
    assert value(readings, "hospital-a/ed_longest_wait_min") > 0
    assert "hospital-a" not in twin.service().full  # beds are not what runs out first
    assert twin.service().diverted == 0

    twin.apply(twin.command("hospital-a/admissions", "divert"))
    readings = twin.advance(4 * 3600)
    unmanaged.advance(4 * 3600)
    report = twin.service()
    assert report.diverted > 0
    assert twin.hospitals["hospital-b"].diverted_in == report.diverted
    assert value(readings, "hospital-a/diverting") == 1.0
    a, a_unmanaged = twin.hospitals["hospital-a"], unmanaged.hospitals["hospital-a"]
    assert len(a.ed_queue) < len(a_unmanaged.ed_queue)
    assert a.late(twin.now_s)[0] < a_unmanaged.late(unmanaged.now_s)[0]
    # only ambulances are diverted: walk-ins still come to a (see `sectors.healthcare._ed`)
    assert twin.hospitals["hospital-a"].diverted_out < twin.hospitals["hospital-a"].admitted + report.ed_waiting


def test_power_loss_runs_on_backup_for_its_hours_then_degrades() -> None:
    twin = HealthcareTwin(seed=1)
    hours = DEV_HOSPITALS[0].backup_hours
    onset = twin.now
    twin.inject_fault(FaultKind.POWER_LOSS, "hospital-1")
    readings = twin.advance(3600)
    assert value(readings, "hospital-1/power_source") == PowerSource.BACKUP
    assert value(readings, "hospital-1/grid_available") == 0.0
    assert value(readings, "hospital-1/backup_fuel_h") == pytest.approx(hours - 1)
    assert twin.service().critical_at_risk == 0

    readings = twin.step(onset + timedelta(hours=hours - 0.01))
    assert value(readings, "hospital-1/power_source") == PowerSource.BACKUP
    readings = twin.step(onset + timedelta(hours=hours + 0.01))
    assert value(readings, "hospital-1/power_source") == PowerSource.NONE
    assert value(readings, "hospital-1/icu_usable_beds") == 0
    exhausted = [e for e in twin.events if e.kind == "backup-exhausted"]
    assert [(e.asset_id, e.at) for e in exhausted] == [("hospital-1", onset + timedelta(hours=hours))]
    report = twin.service()
    assert report.without_power == ("hospital-1",)
    assert report.critical_at_risk == twin.hospitals["hospital-1"].icu_occupied > 0

    with pytest.raises(InvalidCommand, match="out of fuel"):
        twin.apply(twin.command("hospital-1/power", "backup"))
    twin.apply(twin.command("hospital-1/power", "refuel", 6.0))
    twin.apply(twin.command("hospital-1/power", "backup"))
    assert twin.service().critical_at_risk == 0
    twin.clear_fault("hospital-1")
    assert value(twin.advance(60), "hospital-1/power_source") == PowerSource.GRID


def test_failed_transfer_switch_leaves_the_hospital_dark_until_commanded() -> None:
    twin = HealthcareTwin(seed=2)
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-2:ats")
    twin.inject_fault(FaultKind.POWER_LOSS, "hospital-2")
    assert value(twin.advance(60), "hospital-2/power_source") == PowerSource.NONE
    assert twin.service().critical_at_risk > 0
    twin.apply(twin.command("hospital-2/power", "backup", decision_ref="0xabc"))
    assert value(twin.advance(60), "hospital-2/power_source") == PowerSource.BACKUP


def test_equipment_failures_shrink_icu_and_drain_oxygen() -> None:
    twin = HealthcareTwin(seed=4)
    o2 = value(twin.readings(), "hospital-1/oxygen_m3")
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:o2-plant")
    twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:ventilators", severity=0.5)
    readings = twin.advance(6 * 3600)
    assert value(readings, "hospital-1/icu_usable_beds") == 15
    use = value(readings, "hospital-1/oxygen_use_m3h")
    assert value(readings, "hospital-1/oxygen_m3") < o2 - 5 * use
    twin.clear_fault("hospital-1:ventilators")
    assert value(twin.advance(60), "hospital-1/icu_usable_beds") == 30


def test_same_seed_same_patients_whatever_the_step_size() -> None:
    a, b, c = HealthcareTwin(seed=7), HealthcareTwin(seed=7), HealthcareTwin(seed=8)
    for twin in (a, b, c):
        twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2")
    a.advance(24 * 3600)
    for _ in range(24):
        b.advance(3600)
    c.advance(24 * 3600)
    assert [r.value for r in a.true_readings()] == [r.value for r in b.true_readings()]
    assert a.service().admitted == b.service().admitted != c.service().admitted


def test_attacks_change_readings_not_the_model() -> None:
    twin, clean = HealthcareTwin(seed=5), HealthcareTwin(seed=5)
    twin.advance(3600)
    clean.advance(3600)
    twin.inject_attack(AttackKind.BIAS, "hospital-1/bed_occupancy", magnitude=-30.0)
    twin.inject_attack(AttackKind.FROZEN, "hospital-1/oxygen_m3")
    twin.inject_attack(AttackKind.REPLAY, "hospital-2/queue_length", window=2)
    for t in (twin, clean):
        t.advance(3600)
    assert [r.value for r in twin.true_readings()] == [r.value for r in clean.true_readings()]
    shown, truth = twin.readings(), twin.true_readings()
    assert value(shown, "hospital-1/bed_occupancy") == pytest.approx(value(truth, "hospital-1/bed_occupancy") - 30)
    twin.clear_attack("hospital-1/bed_occupancy")
    assert value(twin.readings(), "hospital-1/bed_occupancy") == value(truth, "hospital-1/bed_occupancy")

    spoof = twin.command("hospital-1/admissions", "divert")
    twin.inject_attack(AttackKind.SPOOFED_COMMAND, "hospital-1/diverting", command=spoof)
    twin.advance(60)
    assert twin.hospitals["hospital-1"].diverting
    assert value(twin.readings(), "hospital-1/diverting") == 0.0


def test_bad_input_raises_clear_errors() -> None:
    twin = HealthcareTwin(seed=0)
    with pytest.raises(UnknownAsset, match="no hospital 'hospital-9'"):
        twin.inject_fault(FaultKind.POWER_LOSS, "hospital-9")
    with pytest.raises(UnknownAsset, match="no equipment 'mri'"):
        twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:mri")
    with pytest.raises(InvalidFault, match="pipe-break"):
        twin.inject_fault(FaultKind.PIPE_BREAK, "hospital-1")
    with pytest.raises(InvalidFault, match="surge factor"):
        twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-1", severity=0.5)
    with pytest.raises(InvalidFault, match="no active fault"):
        twin.clear_fault("hospital-1")
    with pytest.raises(InvalidCommand, match="accepts divert, restore"):
        twin.apply(twin.command("hospital-1/admissions", "open"))
    with pytest.raises(UnknownAsset, match="no healthcare actuator"):
        twin.apply(twin.command("hospital-1/valve", "open"))
    with pytest.raises(InvalidCommand, match="water command"):
        twin.apply(ActuatorCommand(sector=Sector.WATER, asset_id="hospital-1", actuator_id="hospital-1/power",
                                   action="backup"))
    twin.inject_fault(FaultKind.POWER_LOSS, "hospital-1")
    with pytest.raises(InvalidCommand, match="grid feed is still lost"):
        twin.apply(twin.command("hospital-1/power", "restore"))
    with pytest.raises(InvalidAttack, match="no sensor"):
        twin.inject_attack(AttackKind.BIAS, "hospital-1/nothing", magnitude=1.0)
    with pytest.raises(InvalidAttack, match="needs magnitude"):
        twin.inject_attack(AttackKind.BIAS, "hospital-1/bed_occupancy")
    twin.advance(60)
    with pytest.raises(TwinError, match="cannot step back"):
        twin.step(twin.now - timedelta(seconds=1))
    with pytest.raises(TwinError, match="beds >= 1"):
        HospitalSpec("h", 0, 0, 1.0, 0.0, 10.0, 10.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(TwinError, match="unique"):
        HealthcareTwin((SMALL[0], SMALL[0]))
