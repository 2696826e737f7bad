"""The water restore plan on the real Net3 twin (wntr): it feeds again customers an isolation left
dry, the reintegration undoes every command, and on a healthy network it sends nothing.

Pipe 120 broken at the storm day's hour (00:30, the Lake pump 10 idle until its 01:00 schedule), on
the city's N-1 valve layer: shutting its segment's 6 valves cuts the segment's 1,357 customers
(junctions 119 and 120) and leaves 2,489 more beyond it dry (junctions 101 and 103, downstream of the
idle Lake pump) and 20,429 short of pressure. The restore plan starts pump 10 — the second source's
path into that part of the network — and drives both pumps at full speed: only the segment stays
dry. (Under the N-2 layer the city kept before, pipe 173 showed the same with 11 valves.) Each
figure comes from the physics of the run, the plan's forecast is checked against it.
"""

from __future__ import annotations

import copy

import pytest

from controller import _responses_water as water_responses
from controller.plans import ResponsePlan
from core.messages import FaultKind
from sectors.water import WaterTwin

ONSET_S = 1800  # the storm day's water break, 00:30 on the twin's clock
PIPE = "pipe:120"


def _apply(twin: WaterTwin, plan: ResponsePlan) -> None:
    for command in plan.commands:
        twin.apply(command)


def _low(twin: WaterTwin) -> int:
    return sum(twin.customers.get(j, 0) for j in twin.service().low_pressure)


@pytest.fixture(scope="module")
def at_onset() -> WaterTwin:
    twin = WaterTwin()
    twin.step(ONSET_S)
    return twin


def test_the_restore_plan_feeds_again_customers_the_isolation_left_dry_and_is_undone(at_onset: WaterTwin) -> None:
    twin = copy.deepcopy(at_onset)
    twin.inject_fault(FaultKind.PIPE_BREAK, PIPE)
    isolate = water_responses.isolate_plan(twin, PIPE)
    _apply(twin, isolate)
    segment = int(isolate.impact["cut_off_customers"])
    shut_only = copy.deepcopy(twin)
    shut_only.step(30)
    dry_shut = shut_only.service().customers_without_water
    assert dry_shut > segment + 1000 and _low(shut_only) > 1000  # the isolation strands more than its segment

    restore = water_responses.restore_plan(twin, PIPE)
    assert ("pump:10", "start") in {(c.asset_id, c.action) for c in restore.commands}
    _apply(twin, restore)
    twin.step(30)
    service = twin.service()
    assert service.customers_without_water == segment  # only the segment waits for the repair
    assert _low(twin) == 0 and service.leak_m3s == 0.0
    assert restore.impact["customers_refed"] == dry_shut - segment  # the forecast said so
    assert restore.impact["customers_without_water"] == segment
    assert "fed again" in restore.reason

    twin.clear_fault(PIPE)
    back = water_responses.reintegrate_plan(twin, PIPE)
    _apply(twin, back)
    twin.step(30)
    assert twin.service().customers_without_water == 0 and _low(twin) == 0
    # every command undone: no valve shut, no link held by hand, every pump at its rated speed
    assert not twin.overrides.closing_valves and not twin.overrides.manual and not twin.overrides.speeds
    assert not any(twin.valve_closed(c.asset_id) for c in isolate.commands)


def test_on_a_healthy_network_the_restore_plan_sends_nothing(at_onset: WaterTwin) -> None:
    twin = copy.deepcopy(at_onset)
    plan = water_responses.restore_plan(twin, PIPE)
    assert plan.commands == ()
    assert plan.impact["customers_without_water"] == 0 and plan.impact.get("customers_refed", 0) == 0


@pytest.mark.parametrize(("n", "boundary", "stopping"), [(2, 4, 2), (1, 2, 1)])
def test_pipe_159_offers_no_isolation_that_cuts_fewer_and_no_feed_around_it(n: int, boundary: int, stopping: int) -> None:
    """What the valve layer decides on the storm day's break (`sectors.water.segments`). Under either
    layer every choice of the segment's boundary valves that stops the leak dries at least the whole
    cut-off set, and the restore plan finds nothing to re-feed it with. Under N-2 (the layer the city
    kept until the storm day) that set is 3,671 customers, most of whom the flowing break leaves at full
    pressure: isolating sooner cannot beat the crew (the `controller._responses_water` docstring has the
    figures). On N-1, the city's layer, it is junction 147 alone (66 customers), while the flowing break
    starves more than 2,000 of pressure: isolating sooner serves more."""
    twin = WaterTwin(valves_n=n)
    twin.step(ONSET_S)
    twin.inject_fault(FaultKind.PIPE_BREAK, "pipe:159")
    plan = twin.isolation_plan("pipe:159")
    cut = sum(twin.customers.get(j, 0) for j in twin.cut_off_by(plan))
    flowing = copy.deepcopy(twin)
    flowing.step(30)
    short = flowing.service().customers_without_water + _low(flowing)
    served_while_flowing = [j for j in (*plan.junctions, *plan.stranded)
                            if j not in flowing.service().low_pressure and j not in flowing.service().without_water]
    if n == 2:
        assert cut == 3671 and sum(twin.customers[j] for j in served_while_flowing) > 1000
    else:
        assert cut == 66 and plan.junctions == ("147",) and short > 2000
    valves = [v for v in twin.segments.valves
              if (twin.segments.segment_of_link(v.link) == plan.segment) != (twin.segments.segment_of_node(v.node) == plan.segment)]
    assert len(valves) == boundary
    stopped = 0
    for mask in range(1, 1 << len(valves)):
        trial = copy.deepcopy(twin)
        for i, valve in enumerate(valves):
            if mask >> i & 1:
                trial.apply(trial.command(valve.valve_id, "close"))
        trial.step(30)
        service = trial.service()
        if service.leak_m3s < 1e-6:  # the leak stopped: the segment and its dead ends are dry
            assert service.customers_without_water + _low(trial) >= cut
            stopped += 1
    assert stopped == stopping  # N-2: the plan's three valves, and all four; N-1: both valves
    twin.isolate("pipe:159")
    assert water_responses.restore_plan(twin, "pipe:159").commands == ()
