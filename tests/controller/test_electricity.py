"""FLISR and minimum-loss reconfiguration, each plan applied to a real twin and judged by the twin's
own pandapower flow: voltages ≥ 0.9 pu, loadings ≤ 100 %, healthy load served where possible,
the faulted section dead and isolated. All at the evening peak (profile factor 1.0, case33bw's
nominal loads), where the limits bite.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest

from controller import electricity
from controller.electricity import (
    NoElectricityPlan,
    isolate_plan,
    locate_fault,
    min_loss_configuration,
    normal_configuration,
    reintegrate_plan,
    restore_plan,
)
from controller.plans import ResponsePlan
from core.messages import FaultKind, Sector
from sectors.electricity import ElectricityTwin

PEAK = datetime(2026, 1, 5, 19, 0, tzinfo=UTC)
OPTIMAL_OPEN = {"sw-7", "sw-9", "sw-14", "sw-32", "sw-37"}  # Baran & Wu; pinned in the twin's tests too


@pytest.fixture
def twin() -> ElectricityTwin:
    return ElectricityTwin(start=PEAK, noise=0.0)


def _faulted(branch: int) -> ElectricityTwin:
    twin = ElectricityTwin(start=PEAK, noise=0.0)
    twin.inject_fault(FaultKind.LINE_FAULT, f"line-{branch}")
    return twin


def _apply(twin: ElectricityTwin, plan: ResponsePlan) -> list[str]:
    """Send the plan's commands; returns the kinds of the twin events they caused."""
    assert plan.sector is Sector.ELECTRICITY
    kinds: list[str] = []
    for command in plan.commands:
        kinds += [e.kind for e in twin.apply(command)]
    return kinds


def _value(twin: ElectricityTwin, sensor: str) -> float:
    return next(r.value for r in twin.true_readings() if r.sensor_id == sensor)


def _demand(twin: ElectricityTwin, bus: str) -> float:
    return float(twin.switch_graph().nodes[bus]["demand_kw"])


# --- locate -------------------------------------------------------------------------------------


@pytest.mark.parametrize("branch", [2, 3, 7, 18, 22, 26, 28, 32])
def test_locate_fault_uses_only_what_the_sensors_report(branch: int) -> None:
    twin = _faulted(branch)
    topology = ElectricityTwin(start=PEAK, noise=0.0).switch_graph()  # a healthy twin's: no fault flag in it
    assert locate_fault(twin.readings(), topology) == f"line-{branch}"


def test_locate_fault_follows_the_configuration_the_controller_set(twin: ElectricityTwin) -> None:
    plan = min_loss_configuration(twin)
    _apply(twin, plan)
    expected = twin.switch_states()  # sw-7, sw-9, sw-14, sw-32 open on purpose now
    twin.inject_fault(FaultKind.LINE_FAULT, "line-26")
    assert locate_fault(twin.readings(), twin.switch_graph(), expected=expected) == "line-26"


def test_locate_fault_refuses_a_healthy_or_ambiguous_feeder(twin: ElectricityTwin) -> None:
    with pytest.raises(NoElectricityPlan, match="no tripped switch"):
        locate_fault(twin.readings(), twin.switch_graph())
    twin.inject_fault(FaultKind.LINE_FAULT, "line-12")
    twin.inject_fault(FaultKind.LINE_FAULT, "line-29")
    assert electricity.locate_faults(twin.readings(), twin.switch_graph()) == ["line-12", "line-29"]
    with pytest.raises(NoElectricityPlan, match="several faults: line-12, line-29"):
        locate_fault(twin.readings(), twin.switch_graph())


# --- isolate and restore ------------------------------------------------------------------------


def test_isolate_opens_the_switches_around_the_smallest_section() -> None:
    twin = _faulted(7)  # branch 7: bus-7 → bus-8; its switch sits at bus-7
    plan = isolate_plan(twin, "line-7")
    assert plan.purpose == "isolate" and plan.target == "line-7"
    assert [(c.actuator_id, c.action) for c in plan.commands] == [("sw-7", "open"), ("sw-8", "open")]
    assert plan.impact["boundary"] == "sw-7, sw-8, sw-33"  # tie 33 is wired to bus-8 and already open
    assert "trip" not in _apply(twin, plan)
    states = twin.switch_states()
    assert not (states["sw-7"] or states["sw-8"] or states["sw-33"])
    assert _value(twin, "line-7/current_a") == 0.0


def test_isolate_refuses_an_unknown_branch(twin: ElectricityTwin) -> None:
    with pytest.raises(NoElectricityPlan, match="line-1..line-37"):
        isolate_plan(twin, "line-99")


# faulted branch → the loads its restoration sheds (none: every healthy load is served)
CASES = [(3, ()), (6, ()), (7, ()), (9, ()), (18, ()), (26, ()), (22, ("load-24",)), (28, ("load-30", "load-31"))]


@pytest.mark.parametrize(("branch", "shed"), CASES)
def test_flisr_restores_every_healthy_section_within_limits(branch: int, shed: tuple[str, ...]) -> None:
    twin = _faulted(branch)
    line = locate_fault(twin.readings(), twin.switch_graph())
    isolation = isolate_plan(twin, line)
    section_bus = str(isolation.impact["section"]).split(", ")[1]
    before = twin.switch_states()
    plan = restore_plan(twin, line)
    assert twin.switch_states() == before  # planning leaves the twin alone
    assert plan.purpose == "restore"
    kinds = _apply(twin, isolation) + _apply(twin, plan)
    assert "trip" not in kinds  # nothing closed onto the fault
    check = twin.power_flow_check()  # the twin's own pandapower flow
    assert check.ok and check.radial and check.converged
    assert check.min_voltage_pu >= 0.9 and check.max_loading_percent <= 100.0
    assert check.deenergised_buses == (section_bus,)  # every healthy bus is live again
    assert all(not twin.switch_states()[s] for s in str(isolation.impact["boundary"]).split(", "))
    assert _value(twin, f"{line}/current_a") == 0.0
    assert tuple(c.asset_id for c in plan.commands if c.action == "shed") == shed
    expected_unserved = _demand(twin, section_bus) + sum(_demand(twin, s.replace("load", "bus")) for s in shed)
    assert check.unserved_kw == pytest.approx(expected_unserved)
    assert plan.impact["unserved_kw"] == pytest.approx(check.unserved_kw, abs=1e-3)
    assert plan.impact["min_voltage_pu"] == pytest.approx(check.min_voltage_pu, abs=1e-4)
    assert plan.impact["losses_kw"] == pytest.approx(check.losses_kw, abs=1e-2)


def test_restore_plan_alone_isolates_first() -> None:
    twin = _faulted(9)  # protection opened sw-9; nothing else done yet
    plan = restore_plan(twin, "line-9")
    actions = [(c.actuator_id, c.action) for c in plan.commands]
    assert actions.index(("sw-10", "open")) < actions.index(("sw-35", "close"))
    assert "trip" not in _apply(twin, plan)
    assert twin.power_flow_check().ok and twin.power_flow_check().deenergised_buses == ("bus-10",)


def test_connectivity_alone_picks_a_plan_that_breaks_the_limits() -> None:
    """Trunk fault on branch 3: each of three ties alone reconnects every healthy bus (the plans a
    connectivity-only search picks, one switching operation each) and each leaves buses below
    0.9 pu; the power-flow-checked plan does not."""
    twin = _faulted(3)
    isolation = {"sw-3": False, "sw-4": False}
    graph = twin.switch_graph()
    connectivity_only = []
    for u, v, data in graph.edges(data=True):
        if data["closed"] or data["switch"] in isolation:
            continue
        trial = isolation | {data["switch"]: True}
        preview = twin.power_flow_check(switches=trial)
        if preview.deenergised_buses == ("bus-4",) and preview.radial:
            connectivity_only.append((data["switch"], preview))
    assert sorted(s for s, _ in connectivity_only) == ["sw-33", "sw-35", "sw-37"]
    assert all(not p.ok and any("pu outside" in v for v in p.violations) for _, p in connectivity_only)
    plan = restore_plan(twin, "line-3")
    _apply(twin, plan)
    check = twin.power_flow_check()
    assert check.ok and check.deenergised_buses == ("bus-4",) and check.unserved_kw == pytest.approx(120.0)
    assert plan.impact["shed_loads"] == ""


def test_critical_load_is_restored_first() -> None:
    """Only tie 36 reaches buses 30–33 and it cannot carry all their load. By default the most kW
    is served (loads 32 and 33; load 30 draws 600 kvar and fits through the tie in no plan); when
    bus-31 is critical, it is served even though less load is served in all."""
    twin = _faulted(28)
    default = restore_plan(twin, "line-28")
    assert default.impact["shed_loads"] == "load-30, load-31"
    plan = restore_plan(twin, "line-28", priority={"bus-31": 2})
    assert plan.impact["shed_loads"] == "load-30, load-32"
    assert float(plan.impact["unserved_kw"]) > float(default.impact["unserved_kw"])
    _apply(twin, plan)
    check = twin.power_flow_check()
    assert check.ok and _value(twin, "load-31/p_kw") == pytest.approx(150.0)
    assert _value(twin, "load-32/p_kw") == 0.0 and _value(twin, "bus-32/energised") == 1.0  # shed, not dark
    assert plan.impact["customers_without_power"] == check.customers_unserved


def test_a_fault_at_the_feeder_head_leaves_nothing_to_restore_from() -> None:
    twin = _faulted(1)  # the substation's only branch: the ties are all inside this feeder
    plan = restore_plan(twin, "line-1")
    assert plan.impact["restored_buses"] == 0 and plan.impact["unserved_kw"] == pytest.approx(3715.0)
    assert all(c.action == "open" for c in plan.commands)


# --- reintegrate --------------------------------------------------------------------------------


def test_reintegration_after_repair_returns_to_normal_without_a_second_interruption() -> None:
    twin = _faulted(7)
    _apply(twin, isolate_plan(twin, "line-7"))
    _apply(twin, restore_plan(twin, "line-7"))  # bus-9.. fed through tie 35
    with pytest.raises(NoElectricityPlan, match="energises faulted line-7"):
        reintegrate_plan(twin, "line-7")
    twin.clear_fault("line-7", reclose=False)
    plan = reintegrate_plan(twin, "line-7")
    assert plan.purpose == "reintegrate" and "make-before-break" in plan.reason
    assert [(c.actuator_id, c.action) for c in plan.commands][:3] == [("sw-7", "close"), ("sw-8", "close"),
                                                                      ("sw-35", "open")]
    live = set(twin.energised_buses())
    for command in plan.commands:
        assert "trip" not in [e.kind for e in twin.apply(command)]
        assert live <= twin.energised_buses()  # nobody restored loses power again
        live = set(twin.energised_buses())
    assert twin.switch_states() == normal_configuration(twin.switch_graph())
    check = twin.power_flow_check()
    assert check.ok and check.unserved_kw == pytest.approx(0.0, abs=1e-9)
    assert check.losses_kw == pytest.approx(202.7, abs=0.5)


def test_reintegration_breaks_before_making_when_the_loop_breaks_a_limit() -> None:
    """After branch 28, buses 30–33 hang at 0.9004 pu off tie 36; re-energising bus-29 first would
    pull them below 0.9 pu, so the tie opens first (a brief second interruption, said in the reason)
    and the shed loads come back last."""
    twin = _faulted(28)
    _apply(twin, restore_plan(twin, "line-28"))
    twin.clear_fault("line-28", reclose=False)
    plan = reintegrate_plan(twin, "line-28")
    assert "break-before-make" in plan.reason
    assert plan.commands[0].actuator_id == "sw-36" and plan.commands[0].action == "open"
    assert {c.asset_id for c in plan.commands if c.action == "restore"} >= {"load-30", "load-31"}
    assert "trip" not in _apply(twin, plan)
    assert twin.switch_states() == normal_configuration(twin.switch_graph())
    check = twin.power_flow_check()
    assert check.ok and check.unserved_kw == pytest.approx(0.0, abs=1e-9)


def test_reintegration_into_the_min_loss_configuration() -> None:
    twin = _faulted(7)
    target = {**normal_configuration(twin.switch_graph()), **{f"sw-{k}": True for k in range(33, 37)},
              **{s: False for s in OPTIMAL_OPEN}}
    _apply(twin, restore_plan(twin, "line-7"))
    twin.clear_fault("line-7", reclose=False)
    _apply(twin, reintegrate_plan(twin, "line-7", configuration=target))
    assert twin.total_losses_kw() == pytest.approx(139.55, abs=0.1) and twin.power_flow_check().ok


# --- minimum-loss reconfiguration -----------------------------------------------------------------


def test_min_loss_configuration_finds_the_literature_optimum(twin: ElectricityTwin) -> None:
    started = time.perf_counter()
    plan = min_loss_configuration(twin)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0  # about 0.4–0.7 s here (≈400 fast flows + 2 pandapower checks)
    assert plan.purpose == "reconfigure" and plan.target == "feeder-1"
    assert plan.impact["losses_kw"] == pytest.approx(139.5, abs=1.0)
    assert plan.impact["losses_before_kw"] == pytest.approx(202.7, abs=0.5)
    for command in plan.commands:  # make-before-break: every customer stays on throughout
        assert "trip" not in [e.kind for e in twin.apply(command)]
        assert len(twin.energised_buses()) == 33
    check = twin.power_flow_check()
    assert check.ok and check.radial
    assert check.losses_kw == pytest.approx(139.55, abs=0.1)
    opened = {s for s, closed in twin.switch_states().items() if not closed}
    assert opened == OPTIMAL_OPEN
    again = min_loss_configuration(twin)
    assert again.commands == () and "already" in again.reason


def test_min_loss_configuration_keeps_an_isolated_section_isolated() -> None:
    twin = _faulted(7)
    _apply(twin, isolate_plan(twin, "line-7"))
    _apply(twin, restore_plan(twin, "line-7"))
    plan = min_loss_configuration(twin)
    touched = {c.actuator_id for c in plan.commands}
    assert touched.isdisjoint({"sw-7", "sw-8", "sw-33"})
    kinds = _apply(twin, plan)
    assert "trip" not in kinds
    check = twin.power_flow_check()
    assert check.ok and check.deenergised_buses == ("bus-8",)


def test_plans_are_json_for_the_chain() -> None:
    twin = _faulted(22)
    summary = restore_plan(twin, "line-22").summary()
    assert summary["purpose"] == "restore" and summary["sector"] == "electricity"
    assert {"unserved_kw", "customers_without_power", "min_voltage_pu", "max_loading_pct", "losses_kw"} <= set(
        summary["impact"]
    )


class _Field:
    """SCADA as `controller.scada.FieldView` gives it: the live twin's newest readings."""

    def __init__(self, twin: object) -> None:
        self.twin = twin

    def readings(self, sector: object) -> list[object]:
        return list(self.twin.readings())  # type: ignore[attr-defined]


def test_an_overload_the_field_shows_is_answered_by_shedding_and_given_back_after() -> None:
    from datetime import UTC, datetime

    from controller.planning import TwinPlanner
    from core.messages import FaultKind, Sector
    from sectors.electricity import ElectricityTwin
    from sectors.electricity.rules import invariants

    live = ElectricityTwin(seed=1, start=datetime(2026, 1, 5, 14, 0, tzinfo=UTC))
    live.advance(5)
    live.inject_fault(FaultKind.FEEDER_OVERLOAD, "feeder-1", severity=1.6)
    live.advance(5)
    assert live.power_flow_check().min_voltage_pu < 0.9
    planner = TwinPlanner(_Field(live))  # type: ignore[arg-type]
    # the verdict named the line whose readings moved most; the field says the feeder is overloaded
    plan = planner(Sector.ELECTRICITY, "isolate", "line-17", ())
    assert plan is not None and plan.target == "feeder-1"
    assert plan.commands and all(c.action == "shed" for c in plan.commands), plan.reason
    assert len(plan.commands) <= 8  # the fewest loads, not the feeder
    for command in plan.commands:
        live.apply(command)
    rows = live.advance(5)
    assert live.power_flow_check().min_voltage_pu >= 0.9  # sized on the field's surge, not the model's clock
    assert invariants({r.sensor_id: np.array([r.value]) for r in rows}) == []
    sent = [{"asset": c.asset_id, "actuator": c.actuator_id, "action": c.action} for c in plan.commands]
    assert planner(Sector.ELECTRICITY, "restore", "feeder-1", sent).commands == ()  # type: ignore[union-attr]
    live.clear_fault("feeder-1")  # the heat wave is over
    back = planner(Sector.ELECTRICITY, "reintegrate", "feeder-1", sent)
    assert back is not None and sorted(c.asset_id for c in back.commands) == sorted(c.asset_id for c in plan.commands)
    assert all(c.action == "restore" for c in back.commands)


def test_a_tripped_transformer_is_planned_on_the_substation_with_nothing_to_switch() -> None:
    from controller.planning import TwinPlanner
    from core.messages import FaultKind, Sector
    from sectors.electricity import ElectricityTwin

    live = ElectricityTwin(seed=1)
    live.advance(5)
    live.inject_fault(FaultKind.TRANSFORMER_TRIP, "sub-1")
    live.advance(5)
    plan = TwinPlanner(_Field(live))(Sector.ELECTRICITY, "isolate", "feeder-1", ())  # type: ignore[arg-type]
    assert plan is not None and plan.target == "sub-1" and plan.commands == ()
    assert "no other source" in plan.reason
