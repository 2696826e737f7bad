"""The sewage twin on real SWMM hydraulics: normal service, pump failure under rain, blockage,
actuators, attacks and bad input.

SWMM's engine is global, so each test opens one twin and closes it before the next (the fixture);
comparisons against a healthy run are done by running the healthy case first and closing it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import InvalidAttack, InvalidCommand, InvalidFault, UnknownAsset
from sectors.sewage import SewageEngineBusy, SewageTwin, SewerService

STORM_MM_H = 10.0
LEVEL = "storage:WW/level_m"


def by_sensor(readings: list[Reading]) -> dict[str, float]:
    return {r.sensor_id: r.value for r in readings}


@pytest.fixture
def twin() -> Iterator[SewageTwin]:
    with SewageTwin() as t:
        t.advance(3600)
        yield t


def storm(
    fault: str | None = None, blockage: str | None = None, divert: bool = False
) -> tuple[dict[str, float], SewerService, float]:
    """One hour dry, two hours of rain; returns the last readings, the service and the peak level."""
    with SewageTwin() as t:
        t.advance(3600)
        if fault:
            t.inject_fault(FaultKind.PUMP_FAILURE, fault)
        if blockage:
            t.inject_fault(FaultKind.BLOCKAGE, blockage)
        if divert:
            t.apply(t.command("orifice:OR1", "open"))
        t.set_rain(STORM_MM_H)
        peak = 0.0
        for _ in range(24):
            values = by_sensor(t.advance(300))
            peak = max(peak, values[LEVEL])
        return values, t.service(), peak


def test_readings_are_stamped_sewage_readings(twin: SewageTwin) -> None:
    readings = twin.advance(300)
    assert len(readings) == len(twin.sensors) and twin.now_s == 3900
    assert all(r.sector is Sector.SEWAGE and r.timestamp == twin.now for r in readings)
    assert 0.0 < by_sensor(readings)[LEVEL] < 3.5


def test_normal_operation_pumps_keep_up_without_spilling() -> None:
    values, service, peak = storm()
    assert 0.5 < peak < 3.5  # the trunk enters 3.5 m up: no backing up
    assert values["raingage:RG1/intensity_mm_h"] == pytest.approx(STORM_MM_H)
    assert service.overflow_m3 == 0.0 and service.flooding_m3 == 0.0 and not service.spilling
    assert service.treated_m3 > 1000.0 and "P1" in service.pumps_running
    assert values["conduit:C3/flow_m3s"] > 0.3  # storm runoff reaches the trunk


def test_station_failure_with_rain_fills_the_wet_well_and_overflows() -> None:
    _, healthy, healthy_peak = storm()
    values, failed, peak = storm(fault="station:PS1")
    assert peak > 3.5 > healthy_peak  # the wet well rose into the incoming sewer
    assert values["pump:P1/flow_m3s"] == 0.0 and values["pump:P1/status"] == 0.0
    assert failed.overflow_m3 > 500.0 and failed.overflow_m3s > 0.1 and healthy.overflow_m3 == 0.0
    assert values["outfall:CSO/volume_m3"] == pytest.approx(failed.overflow_m3)
    assert failed.treated_m3 < 1.0


def test_duty_pump_failure_brings_in_the_standby() -> None:
    values, service, _ = storm(fault="pump:P1")
    assert values["pump:P1/flow_m3s"] == 0.0 and service.pumps_running == ("P2",)
    assert service.overflow_m3 == 0.0


def test_blockage_backs_up_and_floods_upstream() -> None:
    values, service, _ = storm(blockage="conduit:C3")
    assert values["conduit:C3/flow_m3s"] < 0.2 * 1.48 and "J3" in service.flooded_nodes
    assert service.flooding_m3 > 100.0


def test_diversion_to_the_storm_tank_relieves_a_failed_station() -> None:
    _, spilled, _ = storm(fault="station:PS1")
    values, diverted, _ = storm(fault="station:PS1", divert=True)
    assert values["storage:ST1/level_m"] > 0.2 and values["orifice:OR1/opening"] == 1.0
    assert diverted.overflow_m3 < spilled.overflow_m3


def test_operator_commands_and_repair(twin: SewageTwin) -> None:
    twin.apply(twin.command("pump:P2", "start"))
    assert by_sensor(twin.advance(120))["pump:P2/status"] == 1.0
    twin.apply(twin.command("pump:P2", "stop"))
    twin.inject_fault(FaultKind.PUMP_FAILURE, "pump:P1")
    twin.apply(twin.command("pump:P1", "start"))  # accepted, but a failed pump cannot run
    values = by_sensor(twin.advance(120))
    assert values["pump:P1/status"] == 0.0 and values["pump:P2/status"] == 0.0
    twin.clear_fault("pump:P1")
    assert by_sensor(twin.advance(120))["pump:P1/status"] == 1.0
    assert [e.kind for e in twin.events][-1] == "repaired:pump-failure"


def test_attacks_change_readings_not_physics(twin: SewageTwin) -> None:
    twin.advance(300)
    twin.inject_attack(AttackKind.BIAS, LEVEL, magnitude=-1.0)
    twin.inject_attack(AttackKind.FROZEN, "conduit:C3/flow_m3s")
    reported, true = by_sensor(twin.advance(300)), by_sensor(twin.true_readings())
    assert reported[LEVEL] == pytest.approx(true[LEVEL] - 1.0)
    twin.inject_attack(AttackKind.SPOOFED_COMMAND, "pump:P2/status", command=twin.command("pump:P2", "start"))
    reported, true = by_sensor(twin.advance(120)), by_sensor(twin.true_readings())
    assert true["pump:P2/status"] == 1.0 and reported["pump:P2/status"] == 0.0
    twin.clear_attack(LEVEL)
    assert by_sensor(twin.readings())[LEVEL] == by_sensor(twin.true_readings())[LEVEL]


def test_bad_input_raises_clear_errors(twin: SewageTwin) -> None:
    with pytest.raises(SewageEngineBusy, match="one"):
        SewageTwin()
    with pytest.raises(UnknownAsset, match="valid: P1, P2"):
        twin.inject_fault(FaultKind.PUMP_FAILURE, "pump:P9")
    with pytest.raises(InvalidFault, match="not injected"):
        twin.inject_fault(FaultKind.OVERFLOW, "conduit:C1")  # above the weir: no dry-weather overflow
    with pytest.raises(InvalidFault, match="severity"):
        twin.inject_fault(FaultKind.BLOCKAGE, "conduit:C1", severity=1.5)
    with pytest.raises(InvalidFault, match="no active fault"):
        twin.clear_fault("pump:P1")
    with pytest.raises(InvalidCommand, match="valid: start, stop, auto"):
        twin.apply(twin.command("pump:P1", "open"))
    with pytest.raises(InvalidCommand, match=r"\[0, 1\]"):
        twin.apply(twin.command("orifice:OR1", "set", 2.0))
    with pytest.raises(InvalidCommand, match="sewage commands"):
        twin.apply(
            ActuatorCommand(
                sector=Sector.WATER, asset_id="pump:P1", actuator_id="pump:P1/drive", action="start"
            )
        )
    with pytest.raises(UnknownAsset):
        twin.inject_attack(AttackKind.BIAS, "storage:XX/level_m", magnitude=1.0)
    with pytest.raises(InvalidAttack, match="magnitude"):
        twin.inject_attack(AttackKind.BIAS, LEVEL)
    with pytest.raises(ValueError, match="multiple of 5"):
        twin.advance(7)
    twin.close()
    with pytest.raises(Exception, match="closed"):
        twin.advance(300)
