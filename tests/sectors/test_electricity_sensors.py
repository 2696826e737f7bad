"""Sensors, actuators and cyber attacks: attacks change what is reported, never what happens."""

from __future__ import annotations

import importlib
import inspect
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

import sectors.electricity
from core.messages import ActuatorCommand, AttackKind, Reading, Sector
from sectors.electricity import (
    ElectricityTwin,
    InvalidAttack,
    InvalidCommand,
    TwinError,
    UnknownAsset,
)

PEAK = datetime(2026, 1, 5, 19, 0, tzinfo=UTC)


@pytest.fixture
def twin() -> ElectricityTwin:
    return ElectricityTwin(start=PEAK, noise=0.0)


def _by_id(readings: list[Reading]) -> dict[str, Reading]:
    return {r.sensor_id: r for r in readings}


def _command(asset: str, action: str, value: float | None = None) -> ActuatorCommand:
    return ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=asset, actuator_id=asset, action=action, value=value)


def test_readings_cover_the_feeder_with_units_and_ids(twin: ElectricityTwin) -> None:
    readings = _by_id(twin.readings())
    assert len(readings) == 33 * 2 + 37 * 3 + 37 + 32 + 6 + 3
    assert all(r.sector is Sector.ELECTRICITY and r.timestamp == PEAK and len(r.asset_id) <= 32 for r in readings.values())
    expected = {
        "bus-18/voltage_pu": ("pu", 0.9131),
        "bus-18/energised": ("bool", 1.0),
        "line-1/current_a": ("A", 210.4),
        "line-1/loading_percent": ("%", 77.9),
        "line-1/p_kw": ("kW", 3917.7),
        "sw-33/closed": ("bool", 0.0),
        "load-18/p_kw": ("kW", 90.0),
        "feeder-1/losses_kw": ("kW", 202.7),
        "feeder-1/served_kw": ("kW", 3715.0),
        "feeder-1/customers_served": ("count", 1857.0),
        "sub-1/p_kw": ("kW", 3917.7),
    }
    for sensor, (unit, value) in expected.items():
        assert readings[sensor].unit == unit
        assert readings[sensor].value == pytest.approx(value, rel=1e-3, abs=1e-3), sensor
    assert readings["bus-18/voltage_pu"].asset_id == "bus-18"
    assert readings["bus-18/voltage_pu"].quantity == "voltage_pu"
    assert twin.readings() == twin.true_readings()  # no attack: reported = true
    assert set(twin.sensor_ids()) == set(readings)


def test_opening_a_switch_changes_the_topology(twin: ElectricityTwin) -> None:
    events = twin.apply(_command("sw-18", "open"))  # branch 18 feeds the lateral bus-19..bus-22
    assert [(e.kind, e.asset_id) for e in events] == [("switched", "sw-18")]
    assert twin.power_flow_check().deenergised_buses == ("bus-19", "bus-20", "bus-21", "bus-22")
    assert twin.apply(_command("sw-18", "open")) == ()  # no change, no event
    twin.apply(_command("sw-33", "close"))  # tie 8–21 picks the lateral up from the other side
    assert twin.power_flow_check().deenergised_buses == ()
    assert _by_id(twin.readings())["sw-33/closed"].value == 1.0


def test_shedding_and_restoring_load(twin: ElectricityTwin) -> None:
    twin.apply(_command("load-30", "shed", 0.5))
    readings = _by_id(twin.readings())
    assert readings["load-30/p_kw"].value == pytest.approx(100.0)
    assert readings["feeder-1/unserved_kw"].value == pytest.approx(100.0)
    assert twin.power_flow_check().customers_unserved == 100
    twin.apply(_command("load-30", "restore"))
    assert _by_id(twin.readings())["feeder-1/unserved_kw"].value == pytest.approx(0.0, abs=1e-9)
    preview = twin.power_flow_check(shed={"load-30": 1.0})
    assert preview.unserved_kw == pytest.approx(200.0) and twin.power_flow_check().unserved_kw < 1e-9


@pytest.mark.parametrize(
    ("command", "error", "message"),
    [
        (ActuatorCommand(sector=Sector.WATER, asset_id="sw-7", actuator_id="sw-7", action="open"),
         InvalidCommand, "water command"),
        (_command("sw-38", "open"), UnknownAsset, "sw-1..sw-37"),
        (_command("bus-7", "open"), InvalidCommand, "has no actuator"),
        (_command("sw-7", "toggle"), InvalidCommand, "open or close"),
        (_command("sw-7", "open", 1.0), InvalidCommand, "without a value"),
        (_command("load-30", "shed", 1.5), InvalidCommand, r"\(0, 1\]"),
        (_command("load-1", "shed"), UnknownAsset, "load-2..load-33"),
        (_command("load-30", "dim"), InvalidCommand, "shed"),
        (ActuatorCommand(sector=Sector.ELECTRICITY, asset_id="sw-7", actuator_id="sw-8", action="open"),
         InvalidCommand, "does not belong"),
    ],
)
def test_bad_commands_are_refused_clearly(
    twin: ElectricityTwin, command: ActuatorCommand, error: type[TwinError], message: str
) -> None:
    with pytest.raises(error, match=message):
        twin.apply(command)
    assert twin.power_flow_check().deenergised_buses == ()  # nothing moved


def test_bad_asset_ids_never_reach_the_twin() -> None:
    with pytest.raises(ValidationError):  # the shared message model bounds ids to 32 characters
        _command("sw-" + "7" * 40, "open")


def test_bias_changes_the_report_not_the_physics(twin: ElectricityTwin) -> None:
    truth = twin.power_flow_check()
    twin.inject_attack(AttackKind.BIAS, "bus-18/voltage_pu", magnitude=0.05)
    reported = _by_id(twin.readings())["bus-18/voltage_pu"].value
    true = _by_id(twin.true_readings())["bus-18/voltage_pu"].value
    assert reported == pytest.approx(true + 0.05)
    assert twin.power_flow_check() == truth
    assert _by_id(twin.readings())["bus-17/voltage_pu"].value == _by_id(twin.true_readings())["bus-17/voltage_pu"].value
    twin.clear_attack("bus-18/voltage_pu")
    assert twin.readings() == twin.true_readings()


def test_drift_grows_with_time(twin: ElectricityTwin) -> None:
    twin.inject_attack(AttackKind.DRIFT, "line-1/current_a", rate_per_hour=12.0)
    for minutes, offset in ((0, 0.0), (30, 6.0), (60, 12.0)):
        twin.step(PEAK + timedelta(minutes=minutes))
        gap = _by_id(twin.readings())["line-1/current_a"].value - _by_id(twin.true_readings())["line-1/current_a"].value
        assert gap == pytest.approx(offset)


def test_frozen_value_hides_a_change(twin: ElectricityTwin) -> None:
    before = _by_id(twin.readings())["line-1/current_a"].value
    twin.inject_attack(AttackKind.FROZEN, "line-1/current_a")
    twin.step(PEAK.replace(hour=23))
    assert _by_id(twin.readings())["line-1/current_a"].value == before
    assert _by_id(twin.true_readings())["line-1/current_a"].value < 0.8 * before


def test_replay_loops_a_recorded_window() -> None:
    twin = ElectricityTwin(start=PEAK.replace(hour=6), noise=0.0)
    recorded = []
    for _ in range(3):
        twin.advance(600)
        recorded.append(_by_id(twin.true_readings())["feeder-1/losses_kw"].value)
    twin.inject_attack(AttackKind.REPLAY, "feeder-1/losses_kw", window=3)
    reported = [_by_id(twin.readings())["feeder-1/losses_kw"].value]
    for _ in range(4):
        twin.advance(600)
        reported.append(_by_id(twin.readings())["feeder-1/losses_kw"].value)
    assert reported == recorded + recorded[:2]
    assert _by_id(twin.true_readings())["feeder-1/losses_kw"].value > max(recorded)  # morning ramp continues


def test_spoofed_command_acts_and_hides(twin: ElectricityTwin) -> None:
    twin.inject_attack(AttackKind.SPOOFED_COMMAND, "sw-7/closed", action="open")
    assert "bus-8" not in twin.energised_buses()  # the physics obeyed the forged command
    assert _by_id(twin.readings())["sw-7/closed"].value == 1.0  # the operator still sees it closed
    assert _by_id(twin.true_readings())["sw-7/closed"].value == 0.0
    switched, attack = twin.events[-2:]
    assert (switched.kind, switched.asset_id, switched.detail) == ("switched", "sw-7", "open (spoofed)")
    assert (attack.kind, attack.detail) == ("attack", "spoofed-command")
    twin.clear_attack("sw-7/closed")
    assert _by_id(twin.readings())["sw-7/closed"].value == 0.0  # the effect stays until undone


def test_bad_attacks_are_refused_clearly(twin: ElectricityTwin) -> None:
    with pytest.raises(InvalidAttack, match="no sensor"):
        twin.inject_attack(AttackKind.BIAS, "bus-99/voltage_pu", magnitude=0.1)
    with pytest.raises(InvalidAttack, match="needs magnitude"):
        twin.inject_attack(AttackKind.BIAS, "bus-18/voltage_pu")
    with pytest.raises(InvalidAttack, match="window must be"):
        twin.inject_attack(AttackKind.REPLAY, "bus-18/voltage_pu", window=5)
    with pytest.raises(InvalidAttack, match="needs action"):
        twin.inject_attack(AttackKind.SPOOFED_COMMAND, "sw-7/closed")
    with pytest.raises(InvalidCommand, match="open or close"):
        twin.inject_attack(AttackKind.SPOOFED_COMMAND, "sw-7/closed", action="explode")
    assert twin.attacks == {}  # a refused attack leaves nothing behind
    with pytest.raises(InvalidAttack, match="not under attack"):
        twin.clear_attack("bus-18/voltage_pu")


@pytest.mark.parametrize(
    "name",
    ["sectors._twin", "sectors.electricity.twin", "sectors.electricity._flow", "sectors.electricity._graph",
     "sectors.electricity._network", "sectors.electricity._profile", "sectors.electricity._sensors"],
)
def test_module_all_lists_its_public_definitions(name: str) -> None:
    module = importlib.import_module(name)
    assert all(hasattr(module, item) for item in module.__all__)
    defined = {
        item for item, value in vars(module).items()
        if not item.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    }
    assert defined <= set(module.__all__), f"{name} defines but does not export {sorted(defined - set(module.__all__))}"


def test_package_exports_resolve_and_errors_share_one_tree() -> None:
    package = sectors.electricity
    assert len(package.__all__) == len(set(package.__all__))
    assert all(hasattr(package, item) for item in package.__all__)
    for error in (InvalidAttack, InvalidCommand, UnknownAsset):
        assert issubclass(error, TwinError)
