"""Physical faults: protection de-energises exactly what it should, repairs restore, plans are judged.

The expected dead area is computed here from the network's own branch list (the radial tree with
the ties left out), independently of the twin's protection code.
"""

from __future__ import annotations

from datetime import UTC, datetime

import networkx as nx
import pytest

from core.messages import ActuatorCommand, FaultKind, Sector
from sectors.electricity import ElectricityTwin, InvalidFault, UnknownAsset

PEAK = datetime(2026, 1, 5, 19, 0, tzinfo=UTC)


@pytest.fixture
def twin() -> ElectricityTwin:
    return ElectricityTwin(start=PEAK, noise=0.0)


def _below(twin: ElectricityTwin, branch: int) -> set[str]:
    """Buses downstream of literature branch ``branch`` in the normal radial feeder."""
    tree = nx.DiGraph()
    for k in range(32):  # branches 1–32; ties 33–37 are normally open
        tree.add_edge(int(twin.net.line.from_bus.at[k]), int(twin.net.line.to_bus.at[k]))
    head = int(twin.net.line.to_bus.at[branch - 1])
    return {f"bus-{b + 1}" for b in nx.descendants(tree, head) | {head}}


def _value(twin: ElectricityTwin, sensor: str) -> float:
    return next(r.value for r in twin.true_readings() if r.sensor_id == sensor)


def _command(asset: str, action: str, value: float | None = None) -> ActuatorCommand:
    return ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=asset, actuator_id=asset, action=action, value=value)


@pytest.mark.parametrize("branch", [3, 7, 18, 26])
def test_line_fault_deenergises_exactly_the_downstream_buses(twin: ElectricityTwin, branch: int) -> None:
    expected = _below(twin, branch)
    demand = {f"bus-{int(b) + 1}": p * 1000.0 for b, p in zip(twin.net.load.bus, twin.net.load.p_mw, strict=True)}
    event = twin.inject_fault(FaultKind.LINE_FAULT, f"line-{branch}")
    assert event.kind == "fault" and event.at == PEAK
    assert twin.events[-1].kind == "trip" and twin.events[-1].asset_id == f"sw-{branch}"
    check = twin.power_flow_check()
    assert set(check.deenergised_buses) == expected
    assert twin.energised_buses().isdisjoint(expected)
    assert check.unserved_kw == pytest.approx(sum(demand[b] for b in expected))
    assert _value(twin, "feeder-1/unserved_kw") == pytest.approx(check.unserved_kw)
    assert _value(twin, "feeder-1/customers_unserved") > 0
    for bus in expected:
        assert _value(twin, f"{bus}/energised") == 0.0 and _value(twin, f"{bus}/voltage_pu") == 0.0
    assert _value(twin, f"sw-{branch}/closed") == 0.0
    assert twin.faults == {f"line-{branch}": FaultKind.LINE_FAULT}


def test_repair_restores_service_and_losses(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.LINE_FAULT, "line-7")
    assert twin.total_losses_kw() < 150.0
    events = twin.clear_fault("line-7")
    assert [e.kind for e in events] == ["repaired", "switched"]
    check = twin.power_flow_check()
    assert check.deenergised_buses == () and check.unserved_kw == pytest.approx(0.0, abs=1e-9)
    assert check.losses_kw == pytest.approx(202.7, abs=0.5)
    assert twin.faults == {}


def test_repair_without_reclose_leaves_reintegration_to_the_controller(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.LINE_FAULT, "line-7")
    twin.clear_fault("line-7", reclose=False)
    assert "bus-8" not in twin.energised_buses()
    twin.apply(_command("sw-7", "close"))
    assert twin.power_flow_check().deenergised_buses == ()


def test_closing_a_tie_onto_the_faulted_section_trips_it_again(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.LINE_FAULT, "line-7")  # bus-8 is the faulted branch's hard-wired end
    events = twin.apply(_command("sw-33", "close"))  # tie 33 back-feeds bus-8, i.e. the fault
    assert [(e.kind, e.asset_id) for e in events] == [("switched", "sw-33"), ("trip", "sw-33")]
    assert twin.switch_states()["sw-33"] is False


def test_isolate_and_restore_through_a_tie(twin: ElectricityTwin) -> None:
    """The FLISR moves by hand: open the switch below the faulted section, close a tie beyond it."""
    twin.inject_fault(FaultKind.LINE_FAULT, "line-7")
    plan = {"sw-8": False, "sw-35": True}
    preview = twin.power_flow_check(switches=plan)
    assert preview.deenergised_buses == ("bus-8",)
    twin.apply(_command("sw-8", "open"))
    twin.apply(_command("sw-35", "close"))
    check = twin.power_flow_check()
    assert check.deenergised_buses == ("bus-8",)
    assert check.losses_kw == pytest.approx(preview.losses_kw)
    assert check.radial


def test_a_plan_energising_the_fault_is_flagged(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.LINE_FAULT, "line-7")
    check = twin.power_flow_check(switches={"sw-33": True})
    assert not check.ok
    assert any("energises faulted line-7" in v for v in check.violations)
    assert twin.switch_states()["sw-33"] is False  # the live twin did not move


def test_connectivity_alone_picks_wrong_plans(twin: ElectricityTwin) -> None:
    """After a trunk fault, closing the far tie reconnects everything — and breaks the limits."""
    twin.inject_fault(FaultKind.LINE_FAULT, "line-3")
    plan = {"sw-4": False, "sw-37": True}  # isolate bus-4, pick up the rest through tie 25–29
    check = twin.power_flow_check(switches=plan)
    assert check.deenergised_buses == ("bus-4",) and check.radial  # connected: looks perfect
    assert not check.ok and any("pu outside" in v for v in check.violations)  # physics: it is not


def test_transformer_trip_blacks_out_the_feeder(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.TRANSFORMER_TRIP, "sub-1")
    check = twin.power_flow_check()
    assert len(check.deenergised_buses) == 33 and check.served_kw == 0.0
    assert check.unserved_kw == pytest.approx(3715.0)
    assert _value(twin, "sub-1/available") == 0.0 and _value(twin, "feeder-1/losses_kw") == 0.0
    twin.advance(60)  # the clock still runs on a dead feeder
    twin.clear_fault("sub-1")
    assert twin.power_flow_check().deenergised_buses == ()


def test_feeder_overload_surges_the_area_and_breaks_limits(twin: ElectricityTwin) -> None:
    base = twin.power_flow_check()
    twin.inject_fault(FaultKind.FEEDER_OVERLOAD, "bus-26", factor=2.0)
    local = twin.power_flow_check()
    assert local.losses_kw > base.losses_kw
    assert _value(twin, "load-30/p_kw") == pytest.approx(400.0, rel=1e-6)  # 200 kW nominal, doubled
    assert _value(twin, "load-18/p_kw") == pytest.approx(90.0, rel=1e-6)  # outside the area
    twin.clear_fault("bus-26")
    twin.inject_fault(FaultKind.FEEDER_OVERLOAD, "feeder-1", factor=1.4)
    check = twin.power_flow_check()
    assert any(v.startswith("line-1 at") for v in check.violations)  # trunk head above 270 A
    twin.clear_fault("feeder-1")
    assert twin.total_losses_kw() == pytest.approx(base.losses_kw)


def test_voltage_collapse_trips_the_feeder_head(twin: ElectricityTwin) -> None:
    twin.inject_fault(FaultKind.FEEDER_OVERLOAD, "feeder-1", factor=4.0)  # no power-flow solution exists
    assert (twin.events[-1].kind, twin.events[-1].asset_id) == ("trip", "sw-1")
    assert len(twin.power_flow_check().deenergised_buses) == 32  # only the substation bus stays live
    twin.clear_fault("feeder-1")
    assert twin.power_flow_check().deenergised_buses == ()


def test_bad_faults_are_refused_clearly(twin: ElectricityTwin) -> None:
    with pytest.raises(UnknownAsset, match="line-1..line-37"):
        twin.inject_fault(FaultKind.LINE_FAULT, "line-38")
    with pytest.raises(InvalidFault, match="targets sub-1"):
        twin.inject_fault(FaultKind.TRANSFORMER_TRIP, "bus-1")
    with pytest.raises(InvalidFault, match="not an electricity fault"):
        twin.inject_fault(FaultKind.PIPE_BREAK, "line-3")
    with pytest.raises(InvalidFault, match=r"\(1, 5\]"):
        twin.inject_fault(FaultKind.FEEDER_OVERLOAD, "feeder-1", factor=0.5)
    twin.inject_fault(FaultKind.LINE_FAULT, "line-3")
    with pytest.raises(InvalidFault, match="already has"):
        twin.inject_fault(FaultKind.LINE_FAULT, "line-3")
    with pytest.raises(InvalidFault, match="no active fault"):
        twin.clear_fault("line-4")
