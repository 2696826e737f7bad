"""Pump rules (`sectors.invariants.LevelControlledPump`): what they call a failed pump, and what not.

The rules are the oracle's one-row evidence of a pump failure, so each is tried against the
states normal operation passes through (a pump about to be started by the PLC, one stopped at its
stop level, a storm refilling the well right after a stop) as well as the failures themselves,
and against the twin itself: a day of dry weather and storms at a row a minute breaks no rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import FaultKind
from sectors.runner import open_twin
from sectors.sewage.rules import LEVEL, invariants
from sectors.sewage.station import RULES
from sectors.sewage.weather import rain_series

P1, P2 = "pump:P1", "pump:P2"
START, STOP = RULES["P1"].start_m, RULES["P1"].stop_m


def window(levels: list[float], p1: list[float], p2: list[float] | None = None) -> dict[str, np.ndarray]:
    p2 = p2 if p2 is not None else [0.0] * len(levels)
    flow = {0.0: 0.0, 1.0: 0.37}
    return {LEVEL: np.array(levels), f"{P1}/status": np.array(p1), f"{P1}/flow_m3s": np.array([flow[s] for s in p1]),
            f"{P2}/status": np.array(p2), f"{P2}/flow_m3s": np.array([flow[s] for s in p2])}


def test_an_idle_pump_above_its_start_level_for_two_rows_has_failed() -> None:
    broken = invariants(window([START - 0.1, START + 0.1, START + 0.2], [0, 0, 0]))
    assert [(v.asset, v.sensor, v.reads) for v in broken] == [(P1, f"{P1}/status", (LEVEL,))]
    assert "start level" in broken[0].message


def test_one_row_above_the_start_level_is_the_plc_yet_to_scan() -> None:
    assert invariants(window([START - 0.2, START - 0.1, START + 0.3], [0, 0, 0])) == []


def test_a_running_pump_breaks_nothing() -> None:
    assert invariants(window([START + 0.5, START + 0.6, START + 0.7], [1, 1, 1])) == []


def test_a_pump_that_stopped_above_its_stop_level_has_failed() -> None:
    broken = invariants(window([1.5, 1.4, 1.3], [1, 1, 0]))
    assert [v.asset for v in broken] == [P1] and "stop level" in broken[0].message


def test_a_pump_stopped_at_its_stop_level_and_refilling_is_normal() -> None:
    # stopped by the PLC at 0.6 m, then a storm refills the well between two rows
    assert invariants(window([0.9, STOP - 0.01, STOP + 0.3], [1, 1, 0])) == []


def test_pump_flow_without_the_run_contact_counts_as_running() -> None:
    w = window([START + 0.5] * 3, [0, 0, 0])
    w[f"{P1}/flow_m3s"] = np.array([0.37, 0.37, 0.37])
    assert invariants(w) == []


def test_missing_instruments_break_no_rule() -> None:
    assert invariants({}) == []
    assert invariants({LEVEL: np.array([3.0, 3.0])}) == []


@pytest.mark.parametrize("mm_h", [None, 25.0, 45.0, "weather"])
def test_the_twin_in_normal_weather_breaks_no_rule(mm_h: float | str | None) -> None:
    rows = 900 if mm_h == "weather" else 360
    series = rain_series(np.random.default_rng(3), rows * 60, step_s=60, dry_start_h=1.0) if mm_h == "weather" else []
    history: dict[str, list[float]] = {}
    with open_twin("sewage") as runner:
        if isinstance(mm_h, float):
            runner.twin.set_rain(mm_h)
        for i in range(rows):
            if series and (i == 0 or series[i] != series[i - 1]):
                runner.twin.set_rain(series[i])
            for r in runner.advance(60):
                history.setdefault(r.sensor_id, []).append(r.value)
            assert invariants({k: np.array(v[-32:]) for k, v in history.items()}) == [], f"row {i + 1}"


def test_a_failed_duty_pump_in_a_storm_breaks_a_rule_in_one_row() -> None:
    history: dict[str, list[float]] = {}
    with open_twin("sewage") as runner:
        runner.twin.set_rain(25.0)
        for i in range(60):
            if i == 40:
                runner.twin.inject_fault(FaultKind.PUMP_FAILURE, P1)
            for r in runner.advance(60):
                history.setdefault(r.sensor_id, []).append(r.value)
            broken = invariants({k: np.array(v[-32:]) for k, v in history.items()})
            if i < 40:
                assert broken == []
            elif i == 40:
                assert [v.asset for v in broken] == [P1]
                return


# --- the same rules on a tank that calls for its pump by draining (water, Net3) ------------------

def test_net3_pump_335_is_controlled_by_tank_1_as_the_network_says() -> None:
    from sectors.water.rules import level_controlled_pumps

    (pump,) = level_controlled_pumps()
    assert (pump.pump, pump.level, pump.rising) == ("pump:335", "tank:1/level_m", False)
    assert 5.2 < pump.start_m < pump.stop_m < 5.9


def test_a_draining_tank_calls_for_its_pump() -> None:
    from sectors.invariants import LevelControlledPump

    pump = LevelControlledPump("pump:335", "tank:1/level_m", 5.21, 5.82, rising=False, margin_m=0.02,
                               stop_margin_m=0.1)

    def w(levels: list[float], status: list[float]) -> dict[str, np.ndarray]:
        return {"tank:1/level_m": np.array(levels), "pump:335/status": np.array(status),
                "pump:335/flow_m3s": np.array([0.1 * s for s in status])}

    assert [v.asset for v in pump.check(w([5.3, 5.18, 5.17], [0, 0, 0]))] == ["pump:335"]
    assert pump.check(w([5.3, 5.22, 5.17], [0, 0, 0])) == []  # one row past: the control has yet to act
    assert pump.check(w([5.3, 5.18, 5.17], [0, 1, 1])) == []  # running
    assert [v.asset for v in pump.check(w([5.4, 5.5, 5.5], [1, 1, 0]))] == ["pump:335"]  # stopped half-full
    assert pump.check(w([5.8, 5.83, 5.8], [1, 1, 0])) == []  # stopped full, as the control does
