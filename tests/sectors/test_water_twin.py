"""The water twin's physics: normal service, a break, its isolation and repair, pumps, the clock.

Every expectation is a comparison against the same twin without the fault (a deep copy stepped in
lockstep), so the tests check what the hydraulics did, not numbers copied from a previous run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from core.messages import FaultKind, Reading, Sector
from sectors.water import MINIMUM_PRESSURE_M, REQUIRED_PRESSURE_M, WaterTwin

BROKEN_PIPE = "159"  # 12-inch distribution main; 3 of its segment's 4 boundary valves isolate it
NEAR_JUNCTION = "147"  # one end of that pipe


@pytest.fixture(scope="module")
def warm() -> WaterTwin:
    twin = WaterTwin()
    twin.step()
    twin.step()
    return twin


@pytest.fixture
def twin(warm: WaterTwin) -> Iterator[WaterTwin]:
    yield copy.deepcopy(warm)


def by_sensor(readings: list[Reading]) -> dict[str, float]:
    return {r.sensor_id: r.value for r in readings}


def test_normal_operation_serves_everyone_at_sane_pressures(twin: WaterTwin) -> None:
    readings = twin.step()
    assert len(readings) == len(twin.sensors) and twin.now_s == 3 * 3600
    assert all(
        r.sector is Sector.WATER and r.timestamp == twin.now and len(r.asset_id) <= 32 for r in readings
    )
    pressures = {r.asset_id.split(":")[1]: r.value for r in readings if r.quantity == "pressure_m"}
    assert {r.unit for r in readings if r.quantity == "pressure_m"} == {"m"}
    assert {r.unit for r in readings if r.quantity == "flow_m3s"} == {"m3/s"}
    customer_pressures = [pressures[j] for j in twin.customers]
    assert REQUIRED_PRESSURE_M <= min(customer_pressures) and max(customer_pressures) < 120.0
    service = twin.service()
    assert service.without_water == () and service.low_pressure == () and service.leak_m3s == 0.0
    assert service.delivered_fraction == pytest.approx(1.0, abs=1e-6)
    levels = [r.value for r in readings if r.quantity == "level_m"]
    assert len(levels) == 3 and all(0.0 < level < 15.0 for level in levels)


def test_pipe_break_lowers_nearby_pressure_and_causes_shortfall(twin: WaterTwin) -> None:
    healthy = copy.deepcopy(twin)
    twin.inject_fault(FaultKind.PIPE_BREAK, f"pipe:{BROKEN_PIPE}")
    broken, normal = by_sensor(twin.step()), by_sensor(healthy.step())
    near = f"junction:{NEAR_JUNCTION}/pressure_m"
    assert broken[near] < normal[near] - 10.0
    assert broken[near] < REQUIRED_PRESSURE_M
    service, reference = twin.service(), healthy.service()
    assert service.leak_m3s > 0.05
    assert service.shortfall_m3s > reference.shortfall_m3s + 0.005
    assert NEAR_JUNCTION in service.low_pressure + service.without_water
    assert twin.events[-1].kind == "fault:pipe-break" and twin.events[-1].asset_id == f"pipe:{BROKEN_PIPE}"


def test_isolating_the_break_segment_stops_the_leak_and_lists_who_is_dry(twin: WaterTwin) -> None:
    twin.inject_fault(FaultKind.PIPE_BREAK, f"pipe:{BROKEN_PIPE}")
    twin.step()
    plan = twin.isolation_plan(f"pipe:{BROKEN_PIPE}")
    assert BROKEN_PIPE in plan.links and plan.valves and not plan.sources
    forecast = twin.cut_off_by(plan)
    assert twin.isolate(f"pipe:{BROKEN_PIPE}", decision_ref="proposal-1") == plan
    assert all(twin.valve_closed(v.valve_id) for v in plan.valves)
    readings = by_sensor(twin.step())
    service = twin.service()
    assert service.leak_m3s == 0.0
    assert abs(readings[f"pipe:{BROKEN_PIPE}/flow_m3s"]) < 1e-6
    in_segment = {j for j in plan.junctions if j in twin.customers}
    assert in_segment and in_segment <= set(service.without_water)
    assert set(service.without_water) == set(forecast)  # topology forecast matches the hydraulics
    assert service.customers_without_water == sum(twin.customers[j] for j in service.without_water)
    served = [
        v
        for k, v in readings.items()
        if k.endswith("pressure_m")
        and k.split(":")[1].split("/")[0] in twin.customers
        and k.split(":")[1].split("/")[0] not in service.without_water
    ]
    assert min(served) >= MINIMUM_PRESSURE_M  # the rest of the network keeps its pressure

    twin.clear_fault(f"pipe:{BROKEN_PIPE}")
    twin.restore(plan)
    twin.step()
    repaired = twin.service()
    assert repaired.without_water == () and repaired.leak_m3s == 0.0
    assert repaired.delivered_fraction == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("pipe", ["123", "105"])
def test_a_valve_beside_the_far_end_of_a_broken_pipe_shuts_the_half_it_sits_on(twin: WaterTwin, pipe: str) -> None:
    """A break splits its pipe at the middle; a valve beside the pipe's end node is on the far
    half. Shutting the near half instead left the break fed through the far one: pipe 123 (a
    plug-in fault case) and pipe 105 kept leaking at full rate with every valve of the plan shut."""
    plan = twin.isolation_plan(f"pipe:{pipe}")
    end = twin.wn.get_link(pipe).end_node_name
    assert any(v.link == pipe and v.node == end for v in plan.valves)  # the case this test is about
    twin.inject_fault(FaultKind.PIPE_BREAK, f"pipe:{pipe}")
    twin.step(300)
    assert twin.service().leak_m3s > 0.05
    twin.isolate(f"pipe:{pipe}")
    twin.step(300)
    service = twin.service()
    assert service.leak_m3s == 0.0
    assert set(service.without_water) == set(twin.cut_off_by(plan))


def test_leak_is_smaller_than_a_break(twin: WaterTwin) -> None:
    broken = copy.deepcopy(twin)
    twin.inject_fault(FaultKind.LEAK, f"junction:{NEAR_JUNCTION}")
    broken.inject_fault(FaultKind.PIPE_BREAK, f"junction:{NEAR_JUNCTION}")
    twin.step()
    broken.step()
    assert 0.0 < twin.service().leak_m3s < broken.service().leak_m3s / 3


def test_pump_failure_drains_the_tank_it_fills(twin: WaterTwin) -> None:
    healthy = copy.deepcopy(twin)
    twin.inject_fault(FaultKind.PUMP_FAILURE, "pump:335")
    for _ in range(2):
        failed, normal = by_sensor(twin.step()), by_sensor(healthy.step())
    assert normal["pump:335/status"] == 1.0 and normal["pump:335/flow_m3s"] > 0.1
    assert failed["pump:335/status"] == 0.0 and failed["pump:335/flow_m3s"] == pytest.approx(0.0, abs=1e-9)
    assert failed["tank:1/level_m"] < normal["tank:1/level_m"] - 0.2
    # a failed pump ignores the operator; after repair it obeys again
    twin.apply(twin.command("pump:335", "start"))
    assert by_sensor(twin.step())["pump:335/status"] == 0.0
    twin.clear_fault("pump:335")
    assert by_sensor(twin.step())["pump:335/status"] == 1.0


def test_commands_move_the_physics(twin: WaterTwin) -> None:
    reference = copy.deepcopy(twin)
    twin.apply(twin.command("pump:335", "speed", 0.8))
    slow, normal = by_sensor(twin.step()), by_sensor(reference.step())
    assert 0.0 < slow["pump:335/flow_m3s"] < normal["pump:335/flow_m3s"] - 0.01
    twin.apply(twin.command("pipe:329", "close"))
    assert by_sensor(twin.step())["pipe:329/flow_m3s"] == pytest.approx(0.0, abs=1e-9)
    twin.apply(twin.command("pipe:329", "auto"))
    assert abs(by_sensor(twin.step())["pipe:329/flow_m3s"]) > 1e-3


def test_clock_steps_by_any_whole_number_of_seconds(twin: WaterTwin) -> None:
    start = twin.now_s
    twin.step(600)
    assert twin.now_s == start + 600
    twin.step(5400)
    assert twin.now_s == start + 6000
    with pytest.raises(ValueError, match="forward"):
        twin.step(0)
