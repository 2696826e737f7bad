"""Cyber attacks falsify what the water sensors report, never the hydraulics; bad input fails clearly."""

from __future__ import annotations

import copy

import pytest

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import InvalidAttack, InvalidCommand, InvalidFault, UnknownAsset
from sectors.water import WaterTwin

GAUGE = "junction:147/pressure_m"
LEVEL = "tank:1/level_m"


@pytest.fixture(scope="module")
def warm() -> WaterTwin:
    twin = WaterTwin()
    twin.step()
    twin.step()
    return twin


@pytest.fixture
def twin(warm: WaterTwin) -> WaterTwin:
    return copy.deepcopy(warm)


def value(readings: list[Reading], sensor_id: str) -> float:
    return next(r.value for r in readings if r.sensor_id == sensor_id)


def test_measurement_attacks_change_reports_not_physics(twin: WaterTwin) -> None:
    clean = copy.deepcopy(twin)
    frozen_at = value(twin.readings(), LEVEL)
    twin.inject_attack(AttackKind.BIAS, GAUGE, magnitude=-12.5)
    twin.inject_attack(AttackKind.FROZEN, LEVEL)
    twin.inject_attack(AttackKind.DRIFT, "pipe:329/flow_m3s", rate_per_hour=0.05)
    twin.inject_attack(AttackKind.REPLAY, "pump:335/flow_m3s", window=2)
    for hour in (1, 2):
        reported, truth = twin.step(), twin.true_readings()
        baseline = clean.step()  # the physics is the unattacked twin's, to round-off
        assert [r.sensor_id for r in truth] == [r.sensor_id for r in baseline]
        assert [r.value for r in truth] == pytest.approx([r.value for r in baseline], abs=1e-9)
        assert value(reported, GAUGE) == pytest.approx(value(truth, GAUGE) - 12.5)
        assert value(reported, LEVEL) == frozen_at != value(truth, LEVEL)
        assert value(reported, "pipe:329/flow_m3s") == pytest.approx(
            value(truth, "pipe:329/flow_m3s") + 0.05 * hour
        )
    untouched = [r for r in reported if r.sensor_id not in twin.attacks.active]
    assert untouched == [r for r in truth if r.sensor_id not in twin.attacks.active]
    twin.clear_attack(GAUGE)
    assert value(twin.readings(), GAUGE) == value(twin.true_readings(), GAUGE)
    assert [e.kind for e in twin.events][:4] == [
        "attack:bias",
        "attack:frozen",
        "attack:drift",
        "attack:replay",
    ]


def test_spoofed_command_moves_the_pump_and_hides_it(twin: WaterTwin) -> None:
    clean = copy.deepcopy(twin)
    forged = twin.command("pump:335", "stop")
    twin.inject_attack(AttackKind.SPOOFED_COMMAND, "pump:335/status", command=forged)
    for _ in range(2):  # a tank level integrates the previous period's flows: look one step later
        reported, truth = twin.step(), twin.true_readings()
        clean.step()
    assert value(truth, "pump:335/status") == 0.0  # really stopped
    assert value(reported, "pump:335/status") == 1.0  # but the status contact still says running
    assert value(truth, LEVEL) < value(clean.true_readings(), LEVEL) - 0.1
    with pytest.raises(InvalidAttack, match="needs command"):
        twin.inject_attack(AttackKind.SPOOFED_COMMAND, "pump:10/status")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"sector": Sector.ELECTRICITY}, InvalidCommand, "water commands"),
        ({"asset_id": "pipe:nope", "actuator_id": "pipe:nope/valve"}, UnknownAsset, "no pipe 'nope'"),
        ({"asset_id": "hydrant:1", "actuator_id": "hydrant:1/valve"}, UnknownAsset, "not a water asset id"),
        ({"asset_id": "tank:1", "actuator_id": "tank:1/valve"}, UnknownAsset, "has no actuator"),
        ({"actuator_id": "pump:335/valve"}, InvalidCommand, "use 'pump:335/drive'"),
        ({"action": "open"}, InvalidCommand, "valid: start, stop, auto, speed"),
        ({"action": "speed"}, InvalidCommand, "needs a value"),
        ({"action": "speed", "value": 3.0}, InvalidCommand, r"within 0.5..1.2"),
    ],
)
def test_bad_commands_fail_with_a_clear_error(
    twin: WaterTwin, change: dict[str, object], error: type[Exception], match: str
) -> None:
    good = ActuatorCommand(
        sector=Sector.WATER, asset_id="pump:335", actuator_id="pump:335/drive", action="stop"
    )
    with pytest.raises(error, match=match):
        twin.apply(good.model_copy(update=change))
    assert not twin.events  # nothing was carried out


def test_bad_faults_and_attacks_fail_with_a_clear_error(twin: WaterTwin) -> None:
    with pytest.raises(InvalidFault, match="not a water fault"):
        twin.inject_fault(FaultKind.LINE_FAULT, "pipe:159")
    with pytest.raises(InvalidFault, match="needs a pump"):
        twin.inject_fault(FaultKind.PUMP_FAILURE, "pipe:159")
    with pytest.raises(InvalidFault, match="needs a pipe:NAME or junction:NAME"):
        twin.inject_fault(FaultKind.LEAK, "tank:1")
    with pytest.raises(InvalidFault, match=r"in \(0, 1\]"):
        twin.inject_fault(FaultKind.PIPE_BREAK, "pipe:159", severity=2.0)
    with pytest.raises(InvalidFault, match="no active fault"):
        twin.clear_fault("pipe:159")
    twin.inject_fault(FaultKind.LEAK, "pipe:159")
    with pytest.raises(InvalidFault, match="already has a leak"):
        twin.inject_fault(FaultKind.PIPE_BREAK, "pipe:159")
    with pytest.raises(UnknownAsset, match="no water sensor"):
        twin.inject_attack(AttackKind.BIAS, "junction:nope/pressure_m", magnitude=1.0)
    with pytest.raises(InvalidAttack, match="needs magnitude"):
        twin.inject_attack(AttackKind.BIAS, GAUGE)
    with pytest.raises(InvalidAttack, match="not under attack"):
        twin.clear_attack(GAUGE)
    with pytest.raises(InvalidCommand, match="pipes and junctions"):
        twin.isolation_plan("pump:335")
