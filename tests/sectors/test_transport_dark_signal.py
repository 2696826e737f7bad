"""The dark-signal rule (`sectors.transportation.rules.DarkSignal`): a signal outage named as a fault of
its junction once a second system agrees with the controller's health flag, and a falsified flag
distrusted (quarantined), never obeyed (no traffic diverted from a working junction).

The rows are the traffic twin's own (uxsim); the falsifications are the attacker's, made with the
twin's measurement attacks as the scenarios make them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind, Reading
from sectors.invariants import Violation
from sectors.transportation.network import SIGNALS
from sectors.transportation.plugin import PLUGIN
from sectors.transportation.rules import (
    DARK_RULES,
    PASS_ROWS,
    ROW_S,
    STANDSTILL_KMH,
    all_way_bound,
    invariants,
)
from sectors.transportation.twin import CAD_DELAY_S, TransportTwin
from tests.sectors.test_transport_rules import decided

pytestmark = pytest.mark.unit

RULE = next(r for r in DARK_RULES if r.node == "node:n11")
BUSY = 1200.0  # veh/h through a working junction at the morning peak, shared among its exits
WORKING_SPEED, WORKING_DENSITY = 35.0, 15.0


def window(health: Sequence[float], cad: Sequence[float] | None = None, *, through: float = BUSY,
           speed: float = WORKING_SPEED, density: float = WORKING_DENSITY) -> dict[str, np.ndarray]:
    """`len(health)` rows of junction n11: its flags, its exits passing `through` veh/h in all, its approaches."""
    n = len(health)
    out = {RULE.health: np.array(health, dtype=float),
           RULE.cad: np.array(cad if cad is not None else [0.0] * n, dtype=float)}
    out |= {name: np.full(n, through / len(RULE.exits)) for name in RULE.exits}
    out |= {name: np.full(n, speed) for name in RULE.speeds}
    out |= {name: np.full(n, density) for name in RULE.densities}
    return out


class Rows:
    """The twin's rows, kept as the oracle keeps its window (the last few rows, oldest first)."""

    def __init__(self, twin: TransportTwin, keep: int = 6) -> None:
        self.twin, self.keep, self.rows = twin, keep, list[list[Reading]]()

    def step(self) -> list[Violation]:
        self.rows = [*self.rows, self.twin.advance(int(ROW_S))][-self.keep:]
        ids = [r.sensor_id for r in self.rows[-1]]
        return invariants({sid: np.array([row[j].value for row in self.rows]) for j, sid in enumerate(ids)})


def test_every_signal_has_its_rule_and_every_sensor_it_reads_is_on_the_wire() -> None:
    assert ROW_S == PLUGIN.report_period_s
    sensors = set(TransportTwin(seed=0, baseline=False, duration_h=1).sensor_ids())
    assert [r.node for r in DARK_RULES] == [f"node:{n}" for n in SIGNALS]
    for rule in DARK_RULES:
        assert set(rule.sensors()) <= sensors and len(rule.exits) == len(rule.speeds) == 4


def test_an_all_way_stop_cannot_pass_what_a_working_junction_does() -> None:
    from sectors.transportation.rules import _STEP_S
    from sectors.transportation.twin import STEP_S

    assert _STEP_S == STEP_S
    """The bound is the twin's physics: 540 veh/h, a platoon of 5 at a time, one platoon in hand."""
    assert all_way_bound(PASS_ROWS) == pytest.approx(0.15 * (PASS_ROWS * 30 + 5) + 5)
    assert all_way_bound(PASS_ROWS) < BUSY * PASS_ROWS * ROW_S / 3600 / 1.5


def test_the_controller_dark_and_the_dispatch_record_are_a_fault_of_the_junction() -> None:
    [violation] = RULE.check(window((1, 0), cad=(0, 1)))
    assert violation.fault and violation.asset == "node:n11"
    assert violation.sensor == RULE.health and violation.reads == (RULE.cad,)


def test_the_controller_dark_over_an_all_way_stop_queue_is_a_fault_before_anyone_calls_it_in() -> None:
    quiet = all_way_bound(PASS_ROWS) * 3600 / (PASS_ROWS * ROW_S) * 0.9
    [violation] = RULE.check(window((0,) * PASS_ROWS, through=quiet, speed=STANDSTILL_KMH, density=20.0))
    assert violation.fault and violation.asset == "node:n11" and violation.sensor == RULE.health
    assert set(violation.reads) == {*RULE.exits, *RULE.speeds, *RULE.densities}
    # a standstill in three of the four rows only: a red light and a quiet minute, as normal mornings show
    w = window((0,) * PASS_ROWS, through=quiet, speed=STANDSTILL_KMH, density=20.0)
    for name in RULE.speeds:
        w[name][0] = STANDSTILL_KMH + 1
    assert decided(RULE.check(w)) == []


@pytest.mark.parametrize("alone", ["health", "cad"])
def test_one_flag_over_a_junction_passing_more_than_an_all_way_stop_can_is_distrusted(alone: str) -> None:
    health, cad = ((0,) * PASS_ROWS, None) if alone == "health" else ((1,) * PASS_ROWS, (1,) * PASS_ROWS)
    [violation] = RULE.check(window(health, cad))
    assert not violation.fault and violation.sensor == getattr(RULE, alone)
    assert violation.suspects == (getattr(RULE, alone),)


def test_a_fresh_flag_is_no_lie_yet() -> None:
    """Fewer than PASS_ROWS rows of it: the rows before it counted the junction's traffic before the outage."""
    for w in (window((1,) + (0,) * (PASS_ROWS - 1)), window((1,) * PASS_ROWS, (0,) + (1,) * (PASS_ROWS - 1))):
        [alert] = RULE.check(w)
        assert alert.alert and not alert.fault and alert.asset == RULE.node


def test_a_lone_flag_over_quiet_traffic_stays_an_alert() -> None:
    """A junction that passes little may be dark or merely quiet: told, but no verdict either way."""
    quiet = all_way_bound(PASS_ROWS) * 3600 / (PASS_ROWS * ROW_S) * 0.9
    [alert] = RULE.check(window((0,) * PASS_ROWS, through=quiet, speed=45.0, density=2.0))
    assert alert.alert and alert.sensor == RULE.health


@pytest.mark.parametrize("missing", ["health", "cad", "exit"])
def test_a_missing_sensor_is_no_evidence(missing: str) -> None:
    w = window((0,) * PASS_ROWS, (0,) + (1,) * (PASS_ROWS - 1))
    del w[RULE.exits[0] if missing == "exit" else getattr(RULE, missing)]
    assert RULE.check(w) == []


def test_a_normal_morning_peak_breaks_no_dark_signal_rule() -> None:
    rows = Rows(TransportTwin(seed=1, baseline=False, duration_h=1))
    for _ in range(100):
        assert [v for v in rows.step() if v.asset.startswith("node:")] == []


@pytest.mark.parametrize("node,seed", [("node:n11", 1), ("node:n12", 2), ("node:n22", 3)])
def test_a_dark_signal_is_a_fault_of_its_junction_by_the_second_row(node: str, seed: int) -> None:
    """The UTC poll sees it in the first row, the CAD has it once the call is in (60 s: two rows)."""
    assert CAD_DELAY_S == 2 * ROW_S
    rows = Rows(TransportTwin(seed=seed, baseline=False, duration_h=1))
    for _ in range(30):
        assert rows.step() == []
    rows.twin.inject_fault(FaultKind.SIGNAL_OUTAGE, node)
    first, second = rows.step(), rows.step()
    # the flag alone, and nothing to weigh it against yet: told at once, and nothing moves
    assert [(v.asset, v.alert, v.fault) for v in first] == [(node, True, False)]
    assert {(v.asset, v.fault) for v in second} == {(node, True)}
    named = [v for _ in range(20) for v in rows.step()]
    assert {(v.asset, v.fault) for v in named} == {(node, True)}


def test_a_falsified_health_flag_on_a_busy_junction_is_distrusted_not_obeyed() -> None:
    rows = Rows(TransportTwin(seed=1, baseline=False, duration_h=1))
    for _ in range(30):
        rows.step()
    rows.twin.inject_attack(AttackKind.BIAS, "node:n11/controller_ok", magnitude=-1.0)
    named = [(i, v) for i in range(20) for v in rows.step()]
    assert named, "a dark-signal flag over a junction passing its peak traffic went unremarked for 10 minutes"
    assert all(not v.fault and v.sensor == "node:n11/controller_ok" for _, v in named)
    distrusted = [i for i, v in named if not v.alert]
    assert distrusted and distrusted[0] < PASS_ROWS + 2, f"distrusted only in row {distrusted[:1]}"


@pytest.mark.parametrize("sensor,magnitude", [("node:n11/cad_signal_out", 1.0), ("node:n11/controller_ok", -1.0)])
def test_one_falsified_system_never_diverts_traffic_from_a_working_junction(sensor: str, magnitude: float) -> None:
    rows = Rows(TransportTwin(seed=2, baseline=False, duration_h=1))
    for _ in range(30):
        rows.step()
    rows.twin.inject_attack(AttackKind.BIAS, sensor, magnitude=magnitude)
    assert not [v for _ in range(60) for v in rows.step() if v.fault]


def test_a_dark_signal_nobody_calls_in_is_named_by_its_loops() -> None:
    """The dispatch's record withheld (a CAD link down, or an attacker hiding the outage): the loops on
    its exits count no more than an all-way stop passes while its approaches stand, within ten rows."""
    rows = Rows(TransportTwin(seed=1, baseline=False, duration_h=1))
    for _ in range(30):
        rows.step()
    rows.twin.inject_attack(AttackKind.BIAS, "node:n11/cad_signal_out", magnitude=-1.0)
    rows.twin.inject_fault(FaultKind.SIGNAL_OUTAGE, "node:n11")
    found = [(i, v) for i in range(12) for v in rows.step() if not v.alert]
    assert found and found[0][0] < 10, found
    assert {(v.asset, v.fault, v.sensor) for _, v in found} == {("node:n11", True, "node:n11/controller_ok")}


def test_the_thresholds_hold_on_the_normal_mornings_they_were_chosen_on() -> None:
    """Seeds 1-3, 07:00-08:30 at 30-second rows, every junction, each flag held falsely dark: the loops
    never bear a dark signal out (no FAULT), and contradict the flag in most windows (INTRUSION)."""
    judged = contradicted = 0
    for seed in (1, 2, 3):
        twin = TransportTwin(seed=seed, baseline=False, duration_h=2)
        rows = [{r.sensor_id: r.value for r in twin.advance(int(ROW_S))} for _ in range(180)]
        for end in range(PASS_ROWS, len(rows) + 1):
            recent = rows[end - PASS_ROWS:end]
            for rule in DARK_RULES:
                w = {name: np.array([row[name] for row in recent]) for name in rule.sensors()}
                w[rule.health] = np.zeros(PASS_ROWS)
                found = rule.check(w)
                assert not [v for v in found if v.fault], (seed, end, rule.node)
                judged += 1
                contradicted += bool(decided(found))
    assert judged == 3 * 177 * 4 and contradicted / judged > 0.85
