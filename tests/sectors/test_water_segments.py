"""Valve layer and segments: reproducible, side-effect free, and complete over the network."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sectors.water import ValveSegments, load_network, place_valves


def test_strategic_layer_is_reproducible_and_leaves_global_random_state_alone() -> None:
    wn = load_network()
    random.seed(7)
    np.random.seed(7)
    expected_py, expected_np = random.random(), np.random.random()
    random.seed(7)
    np.random.seed(7)
    first = place_valves(wn, "strategic", n=2, seed=123)
    assert (random.random(), np.random.random()) == (expected_py, expected_np)
    assert place_valves(wn, "strategic", n=2, seed=123) == first
    assert len({v.valve_id for v in first}) == len(first) > 0
    assert all(len(v.valve_id) <= 32 for v in first)


def test_every_pipe_has_a_segment_and_plans_close_only_boundary_valves() -> None:
    wn = load_network()
    segments = ValveSegments(wn, place_valves(wn, "random", n=80, seed=1))
    assert 1 < segments.segment_count < len(wn.pipe_name_list) + len(wn.node_name_list)
    for pipe in wn.pipe_name_list:
        plan = segments.plan(segments.segment_of_link(pipe))
        assert pipe in plan.links
        for valve in plan.valves:
            inside_link = segments.segment_of_link(valve.link) == plan.segment
            inside_node = segments.segment_of_node(valve.node) == plan.segment
            assert inside_link != inside_node



def _supplied(wn: object, closed: set[tuple[str, str]]) -> set[str]:
    """Nodes (and ``mid:<link>`` points) with a path to a tank or reservoir while the valves in
    ``closed`` (``(link, node)``) are shut. Each link is two halves joined at its middle, and a
    valve shuts the half next to its node, as a valve in the street does."""
    import networkx as nx

    graph = nx.Graph()
    for name, link in wn.links():  # type: ignore[attr-defined]
        for end in (link.start_node_name, link.end_node_name):
            if (name, end) not in closed:
                graph.add_edge(end, f"mid:{name}")
            else:
                graph.add_node(end)
                graph.add_node(f"mid:{name}")
    sources = set(wn.tank_name_list) | set(wn.reservoir_name_list)  # type: ignore[attr-defined]
    return {n for part in nx.connected_components(graph) if part & sources for n in part}


@pytest.mark.parametrize(("n", "valves", "boundary", "stranded"), [
    (1, ["ivalve:47", "ivalve:48"], 2, ()),  # the city's layer (N-1, the design standards' valve spacing)
    (2, ["ivalve:11", "ivalve:18", "ivalve:20"], 4, ("143", "15")),  # the strategic N-2 it kept before
])
def test_plans_close_the_fewest_valves_that_cut_a_segment_off_from_supply(
        n: int, valves: list[str], boundary: int, stranded: tuple[str, ...]) -> None:
    """Every valve of a plan is needed (re-open any one and the pipe reaches a source again), the
    set is enough (closed, nothing inside reaches one), and it cuts no junction beyond the segment
    and the dead ends stranded behind it. Before, a plan closed every boundary valve, those towards
    dead ends included: four for the storm day's pipe 159 on the N-2 layer where three stop its leak."""
    wn = load_network()
    segments = ValveSegments(wn, place_valves(wn, "strategic", n=n, seed=123))
    checked = 0
    for pipe in wn.pipe_name_list:
        plan = segments.plan(segments.segment_of_link(pipe))
        if not plan.valves or plan.sources:
            continue
        closed = {(v.link, v.node) for v in plan.valves}
        assert f"mid:{pipe}" not in _supplied(wn, closed), pipe
        for valve in plan.valves:
            assert f"mid:{pipe}" in _supplied(wn, closed - {(valve.link, valve.node)}), (pipe, valve)
        cut = set(wn.junction_name_list) - _supplied(wn, closed)
        assert cut == set(plan.junctions) | set(plan.stranded), pipe
        checked += 1
    assert checked > 10
    storm = segments.plan(segments.segment_of_link("159"))
    assert [v.valve_id for v in storm.valves] == valves and storm.boundary == boundary
    assert storm.stranded == stranded


def test_the_city_builds_the_n1_layer() -> None:
    """The twin's default layer is N-1 (141 valves on Net3) and a valve beside each tank and reservoir on its
    pipe (4 more), the one the city runs (`sectors.water.segments`)."""
    from sectors.water import WaterTwin

    wn = load_network()
    assert len(WaterTwin().segments.valves) == len(place_valves(wn, "strategic", n=1, seed=123)) == 145
    assert len(place_valves(wn, "strategic", n=1, seed=123, source_valves=False)) == 141


def test_no_pipe_of_the_city_shares_a_segment_with_a_tank_or_reservoir() -> None:
    """Storage has isolation valves on its piping: without them Net3's tanks (one pipe each, so N-1 gives
    them none) shared a segment with their outlet main, and a plan for a break there left the tank
    feeding it. With them, every pipe's plan cuts the break off from every source, tanks included."""
    wn = load_network()
    bare = ValveSegments(wn, place_valves(wn, "strategic", n=1, seed=123, source_valves=False))
    city = ValveSegments(wn, place_valves(wn, "strategic", n=1, seed=123))
    assert bare.plan(bare.segment_of_link("40")).sources == ("1",)  # the gap this closes
    for pipe in wn.pipe_name_list:
        plan = city.plan(city.segment_of_link(pipe))
        assert not plan.sources, pipe
        assert f"mid:{pipe}" not in _supplied(wn, {(v.link, v.node) for v in plan.valves}), pipe


@pytest.mark.parametrize("pipe", ["40", "20"])
def test_a_break_on_a_tank_main_isolated_leaves_the_tank_full(pipe: str) -> None:
    """The review's finding: isolating a break beside a tank closed only the valve away from it, and the
    tank drained through the break until the repair. Now the tank's own valve closes too: after an hour
    its level is where the isolation found it, while left open it drains."""
    from controller.responses import isolate_plan
    from core.messages import FaultKind
    from sectors.water import WaterTwin

    tank = {"40": "1", "20": "3"}[pipe]

    def level(twin: WaterTwin) -> float:
        return next(r.value for r in twin.true_readings() if r.asset_id == f"tank:{tank}" and r.quantity == "level_m")

    isolated, flowing = WaterTwin(), WaterTwin()
    for twin in (isolated, flowing):
        twin.step(600)
        twin.inject_fault(FaultKind.PIPE_BREAK, f"pipe:{pipe}")
    for command in isolate_plan(isolated, f"pipe:{pipe}").commands:
        isolated.apply(command)
    isolated.step(60)
    flowing.step(60)
    start = level(isolated), level(flowing)
    for twin in (isolated, flowing):
        twin.step(3600)
    assert abs(level(isolated) - start[0]) < 0.01
    assert start[1] - level(flowing) > 0.3
