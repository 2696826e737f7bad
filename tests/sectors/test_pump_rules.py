"""Pump rules (`sectors.invariants.LevelControlledPump`): what they call a failed pump, and what not.

The rules are the oracle's fastest evidence of a pump failure and, unchecked, an attacker's
fastest way to have a healthy lift station voted out of service. So they are tried against the
states normal operation passes through (weeks of weather at SCADA's rows), against real
failures, and against falsified instruments: a level stepped or ramped up, a running pump
reported stopped, a one-row spike hiding a real failure. The twin's rows are real (SWMM); only
the falsifications are written here, as an attacker would write them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from core.messages import FaultKind, Sector
from sectors.invariants import LevelControlledPump, Violation
from sectors.runner import REPORT_PERIOD_S, open_twin
from sectors.sewage.rules import BALANCE, LEVEL, MARGIN_M, OFF_ROWS, invariants
from sectors.sewage.sensors import KW_PER_M3S, RUNNING_KW
from sectors.sewage.weather import rain_series

P1 = "pump:P1"
Rows = dict[str, np.ndarray]
ROW_S = REPORT_PERIOD_S[Sector.SEWAGE]


def m(minutes: float) -> int:
    """Rows in `minutes` of SCADA's rows (the tests speak in minutes; the rules count rows)."""
    return int(minutes * 60 // ROW_S)


def sewage_rows(rows: int, *, rain: float | None = None, fail_at: int | None = None,
                weather_seed: int | None = None, fault: tuple[FaultKind, str] = (FaultKind.PUMP_FAILURE, P1),
                severity: float | None = None) -> Rows:
    """`rows` rows of the sewage twin (seed 0), `ROW_S` apart, as the oracles receive them; `fault`
    (P1 failing, unless another is given, at `severity` if one is) injected at row `fail_at`."""
    series = rain_series(np.random.default_rng(weather_seed), rows * ROW_S, step_s=ROW_S, dry_start_h=1.0) \
        if weather_seed is not None else []
    history: dict[str, list[float]] = {}
    with open_twin("sewage") as runner:
        if rain is not None:
            runner.twin.set_rain(rain)
        for i in range(rows):
            if series and (i == 0 or series[i] != series[i - 1]):
                runner.twin.set_rain(series[i])
            if i == fail_at:
                runner.twin.inject_fault(*fault, **({} if severity is None else {"severity": severity}))
            for r in runner.advance(ROW_S):
                history.setdefault(r.sensor_id, []).append(r.value)
    return {k: np.array(v) for k, v in history.items()}


def rule_at(rows: Rows, i: int) -> list[Violation]:
    """The rules broken at row `i`, seen through the oracle's 32-row window."""
    return invariants({k: v[max(0, i - 31):i + 1] for k, v in rows.items()})


def faults_between(rows: Rows, start: int, stop: int) -> list[tuple[int, str]]:
    return [(i, v.asset) for i in range(start, stop) for v in rule_at(rows, i) if v.fault]


@pytest.fixture(scope="module")
def dry() -> Rows:
    return sewage_rows(m(420))  # P1 first starts about five hours in


@pytest.fixture(scope="module")
def storm() -> Rows:
    return sewage_rows(m(90), rain=25.0)


def test_the_balance_runs_at_the_sewage_report_period() -> None:
    assert BALANCE.row_s == REPORT_PERIOD_S[Sector.SEWAGE]


@pytest.mark.parametrize(("rain", "seed"), [(None, None), (25.0, None), (45.0, None), (None, 3), (None, 13)])
def test_normal_weather_breaks_no_rule(rain: float | None, seed: int | None) -> None:
    rows = sewage_rows(m(1500) if seed is not None else m(360), rain=rain, weather_seed=seed)
    broken = [(i, v.message) for i in range(len(rows[LEVEL])) for v in rule_at(rows, i)]
    assert broken == []


def test_a_failed_duty_pump_in_a_storm_is_named_within_two_rows(storm: Rows) -> None:
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    assert faults_between(failed, 0, m(40)) == []
    found = faults_between(failed, m(40), m(60))
    assert found and found[0][0] <= m(40) + 1 and found[0][1] == P1, found


def test_a_pump_failed_while_idle_is_named_once_the_level_calls_for_it() -> None:
    failed = sewage_rows(m(420), fail_at=m(200))
    level = failed[LEVEL]
    called = int(np.argmax(level >= 1.8 + MARGIN_M))  # the first row past start + margin
    found = faults_between(failed, m(200), m(420))
    assert found and called <= found[0][0] <= called + 2 and found[0][1] == P1, (called, found)


Spoof = Callable[[Rows], Rows]


def _level_step(metres: float, at: int) -> Spoof:
    def spoof(rows: Rows) -> Rows:
        out = dict(rows)
        out[LEVEL] = rows[LEVEL].copy()
        out[LEVEL][m(at):] += metres
        return out
    return spoof


def _level_ramp(m_per_h: float, at: int) -> Spoof:
    def spoof(rows: Rows) -> Rows:
        out = dict(rows)
        out[LEVEL] = rows[LEVEL].copy()
        out[LEVEL][m(at):] += m_per_h * ROW_S / 3600.0 * np.arange(1, len(rows[LEVEL]) - m(at) + 1)
        return out
    return spoof


@pytest.mark.parametrize("spoof", [_level_step(0.3, 240), _level_step(1.0, 240), _level_step(2.0, 240),
                                   _level_ramp(3.0, 230), _level_ramp(1.0, 220)],
                         ids=["step-0.3m", "step-1m", "step-2m", "ramp-3m/h", "ramp-1m/h"])
def test_a_falsified_level_fails_no_idle_pump_while_the_window_shows_it(dry: Rows, spoof: Spoof) -> None:
    """Once the falsification has left the 32-row window the level is self-consistent again; by then
    the intrusion verdicts raised meanwhile have had the level quarantined, and a physics fault
    resting on a quarantined instrument is moot (`tests/oracles/test_voting_physics.py`)."""
    first_start = int(np.argmax(dry[f"{P1}/status"] > 0.5))
    watched = range(m(210), m(240) + 31)  # until the falsification's first row leaves the window
    assert first_start > watched.stop, "P1 must still be idle (healthy) while the falsification is watched"
    spoofed = spoof(dry)
    assert faults_between(spoofed, watched.start, watched.stop) == []
    distrusted = [v for i in watched for v in rule_at(spoofed, i) if not v.fault]
    # a falsified level high enough to call for the pump is named as an instrument to distrust
    if float(spoofed[LEVEL][watched.stop - 1]) >= 1.8 + MARGIN_M:
        assert distrusted and distrusted[0].sensor == LEVEL, "the falsified level must be named"


def test_a_running_pump_reported_stopped_is_not_a_failure(storm: Rows) -> None:
    assert storm[f"{P1}/status"][m(40):].min() > 0.5, "P1 must be running in the storm"
    spoofed = dict(storm)
    for q in ("status", "flow_m3s"):
        spoofed[f"{P1}/{q}"] = storm[f"{P1}/{q}"].copy()
        spoofed[f"{P1}/{q}"][m(40):] = 0.0
    assert faults_between(spoofed, m(40), m(70)) == []
    assert any(not v.fault for i in range(m(40), m(70)) for v in rule_at(spoofed, i)), "the contradiction must be named"


def test_a_one_row_level_spike_does_not_hide_a_real_failure() -> None:
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    spiked = dict(failed)
    spiked[LEVEL] = failed[LEVEL].copy()
    spiked[LEVEL][m(40) - 2] += 1.2
    found = faults_between(spiked, m(40), m(60))
    assert found and found[0][0] <= m(40) + 3 and found[0][1] == P1, found


def test_missing_instruments_break_no_rule() -> None:
    assert invariants({}) == []
    assert invariants({LEVEL: np.array([3.0, 3.0, 3.0])}) == []


def test_a_draining_tank_calls_for_its_pump() -> None:
    """The same rules where a falling level starts the pump (a water tank), without a balance."""
    pump = LevelControlledPump("pump:335", "tank:1/level_m", 5.21, 5.82, rising=False, margin_m=0.02,
                               stop_margin_m=0.1)

    def w(levels: list[float], status: list[float]) -> dict[str, np.ndarray]:
        return {"tank:1/level_m": np.array(levels), "pump:335/status": np.array(status),
                "pump:335/flow_m3s": np.array([0.1 * s for s in status])}

    assert [v.asset for v in pump.check(w([5.3, 5.18, 5.17], [0, 0, 0]))] == ["pump:335"]
    assert pump.check(w([5.3, 5.22, 5.17], [0, 0, 0])) == []  # one row past: the control has yet to act
    assert pump.check(w([5.3, 5.18, 5.17], [0, 1, 1])) == []  # running
    assert [v.asset for v in pump.check(w([5.4, 5.5, 5.5, 5.5], [1, 1, 0, 0]))] == ["pump:335"]  # stopped half-full
    assert pump.check(w([5.4, 5.5, 5.5, 5.5], [1, 1, 1, 0])) == []  # one row off: wait for the second
    assert pump.check(w([5.8, 5.83, 5.8, 5.8], [1, 1, 0, 0])) == []  # stopped full, as the control does


# --- the station's power meter: a witness that only ever speeds a named failure up -------------

POWER = "station:PS1/power_kw"


def test_a_running_pump_that_trips_is_named_in_the_first_row() -> None:
    """Issue 16: run contact, flow meter and power meter all see the trip in the row it happens."""
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    [(row, violation)] = [(i, v) for i in range(m(40), m(40) + 3) for v in rule_at(failed, i) if v.fault][:1]
    assert row == m(40) and violation.asset == P1 and POWER in violation.checked
    assert "same row" in violation.message


def test_a_stop_the_power_meter_did_not_see_fall_waits_for_its_rows() -> None:
    """The first-row rule needs the meter's drop in that row: a meter that showed no motor before the
    stop (a row the meter missed) leaves the corroborated two rows."""
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    flat = dict(failed)
    flat[POWER] = failed[POWER].copy()
    flat[POWER][m(40) - 1] = flat[POWER][m(40)]  # the meter already showed the motor gone a row early
    found = faults_between(flat, m(40), m(60))
    assert found and found[0][0] == m(40) + 1 and found[0][1] == P1, found


def test_a_meter_falsified_to_show_the_motor_turning_only_delays_a_real_failure() -> None:
    """The attacker who hides a failed pump behind a power reading gains two rows, not the failure."""
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    hidden = dict(failed)
    hidden[POWER] = failed[POWER] + 45.0
    found = faults_between(hidden, m(40), m(60))
    assert found and found[0][0] == m(40) + OFF_ROWS - 1 and found[0][1] == P1, found


def test_a_running_pump_reported_stopped_on_every_witness_is_named_in_the_second_row(storm: Rows) -> None:
    """Run contact, flow meter and power meter falsified alike (two systems: the pump's SCADA and the
    motor control centre's meter): the first row looks like a real trip and is called one (the price of
    naming real trips in their first row, issue 16), then the level keeps falling as a running pump makes
    it fall, and the balance names the contradiction in the second row and every row after."""
    running = storm[f"{P1}/status"][m(40):] > 0.5
    assert running.all()
    spoofed = dict(storm)
    draw = RUNNING_KW + KW_PER_M3S * storm[f"{P1}/flow_m3s"]  # what P1's motor adds to the meter
    for q in ("status", "flow_m3s"):
        spoofed[f"{P1}/{q}"] = storm[f"{P1}/{q}"].copy()
        spoofed[f"{P1}/{q}"][m(40):] = 0.0
    spoofed[POWER] = storm[POWER].copy()
    spoofed[POWER][m(40):] -= draw[m(40):]
    assert [i for i, _ in faults_between(spoofed, m(40), m(70))] == [m(40)]
    assert any(not v.fault for v in rule_at(spoofed, m(40) + 1))


# --- review findings: each an attack (or a missed fault) written as the attacker would ----------

C4 = "conduit:C4/flow_m3s"
OWN = {LEVEL, f"{P1}/status", f"{P1}/flow_m3s"}


def _first_fault(rows: Rows, start: int, stop: int) -> Violation:
    return next(v for i in range(start, stop) for v in rule_at(rows, i) if v.fault)


def test_a_pump_fault_rests_only_on_the_level_and_the_pumps_own_instruments() -> None:
    """Finding 1: the verdict names (and so is made moot by) only what it rests on; the balance's other
    instruments it was checked against (the C4 inflow, the other pump) are context, so a quarantined
    inflow meter does not leave a real failure unvoted."""
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    violation = _first_fault(failed, m(40), m(60))
    assert {violation.sensor, *violation.reads} <= OWN, violation.reads
    assert C4 in violation.checked and "pump:P2/flow_m3s" in violation.checked


@pytest.mark.parametrize("bias", [0.05, -0.05])
def test_a_biased_inflow_meter_gets_no_honest_level_distrusted(bias: float) -> None:
    """Finding 1: a real failure seen through a biased inflow meter breaks the balance; which meter lies
    the balance alone cannot say, so it names every instrument it read as a suspect, not the level."""
    failed = sewage_rows(m(60), rain=25.0, fail_at=m(40))
    biased = dict(failed)
    biased[C4] = failed[C4] + bias
    seen = [v for i in range(m(40), m(60)) for v in rule_at(biased, i)]
    assert seen, "the broken rule must still be seen"
    for v in seen:
        assert v.fault or (len(v.suspects) > 1 and C4 in v.suspects and LEVEL in v.suspects), v


def test_a_level_step_is_still_the_level_alone() -> None:
    """A one-row jump no flow shows is the level's own: it stays the single instrument to distrust."""
    dry = sewage_rows(m(300))
    spoofed = _level_step(1.0, 240)(dry)
    distrusted = [v for i in range(m(240), m(240) + 4) for v in rule_at(spoofed, i) if not v.fault]
    assert distrusted and distrusted[0].suspects == (LEVEL,) and distrusted[0].sensor == LEVEL


@pytest.mark.parametrize("m_per_h", [0.03, 0.04, 0.08, 0.1, 0.12])
def test_a_slow_level_ramp_fails_no_idle_pump(dry: Rows, m_per_h: float) -> None:
    """Finding 2: a level ramped a little at a time stays inside the balance's per-window tolerance,
    which holds for wells whose pumps start and stop; a well where no pump ran is a pure integrator of
    its inflow, and its level may drift from the metered volume only by the meter's calibration."""
    first_start = int(np.argmax(dry[f"{P1}/status"] > 0.5))
    spoofed = _level_ramp(m_per_h, 0)(dry)
    assert float(spoofed[LEVEL][first_start - 1]) >= 1.8 + MARGIN_M, "the ramp must call for the idle pump"
    assert faults_between(spoofed, 0, first_start) == []


def test_a_stop_reported_on_status_flow_and_inflow_alike_is_not_a_failure(storm: Rows) -> None:
    """Finding 3: an attacker who reports a running P1 stopped and takes its flow off the C4 inflow
    keeps the balance; the station's power meter still shows the motor turning, and a trunk sewer
    whose flow falls by the pump's own in the row it stops is not physics but a forgery."""
    assert storm[f"{P1}/status"][m(40):].min() > 0.5
    spoofed = dict(storm)
    for q in ("status", "flow_m3s"):
        spoofed[f"{P1}/{q}"] = storm[f"{P1}/{q}"].copy()
        spoofed[f"{P1}/{q}"][m(40):] = 0.0
    spoofed[C4] = storm[C4].copy()
    spoofed[C4][m(40):] -= storm[f"{P1}/flow_m3s"][m(40):]
    assert faults_between(spoofed, m(40), m(70)) == []


@pytest.mark.parametrize("sensor", [C4, LEVEL, "pump:P2/flow_m3s"])
def test_a_non_finite_value_is_a_missing_instrument(dry: Rows, sensor: str) -> None:
    """Finding 5: a NaN (rejected upstream; this is defence in depth) leaves the balance nothing to
    check the level against, so a level the balance would have caught fails no pump."""
    spoofed = _level_step(1.0, 240)(dry)
    spoofed[sensor] = spoofed[sensor].copy()
    spoofed[sensor][m(240) - 10] = np.nan
    assert faults_between(spoofed, m(240), m(240) + 5) == []
