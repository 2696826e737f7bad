"""Valve layer and segments: reproducible, side-effect free, and complete over the network."""

from __future__ import annotations

import random

import numpy as np

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
