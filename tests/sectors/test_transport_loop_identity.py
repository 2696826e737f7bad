"""The loop identity (`sectors.transportation.rules.LoopIdentity`): a loop's speed held against its own
flow and density (q = k·v, with what the link stores), on the traffic twin's own rows.

The falsifications are the attacker's, made with the twin's measurement attacks as the attribution
benchmark makes them (`sectors.transportation.plugin` fault cases: the speed 20 km/h low).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind, Reading, Sector, VerdictKind
from oracles.detect.attribution import run_case
from sectors.invariants import Violation
from sectors.plugin import FaultCase
from sectors.transportation.rules import (
    IDENTITY_DEFICIT_VEH,
    IDENTITY_EXCESS_VEH,
    IDENTITY_ROWS,
    IDENTITY_RULES,
    LoopIdentity,
    loop_invariants,
    vouches,
)
from sectors.transportation.twin import TransportTwin
from tests.conftest import ModelCache

pytestmark = pytest.mark.unit

ROW_S = 30
KEEP = 32  # rows an oracle keeps (`oracles.stream.SectorStream`)
ONSET = 8  # rows before the fault or attack, as the attribution benchmark runs them
SPEED = "link:n11-n12/speed_kmh"
RULE = LoopIdentity("link:n11-n12", "link:n11-n12/flow_veh_h", "link:n11-n12/density_veh_km", SPEED)


def rows(seed: int, n: int, *, attack: tuple[str, float] | None = None,
         crash: tuple[str, float] | None = None) -> list[dict[str, float]]:
    """`n` rows of the twin's 07:00 peak, the attack or crash begun after `ONSET` rows."""
    twin, out = TransportTwin(seed=seed, baseline=False, duration_h=1.6), list[dict[str, float]]()
    for i in range(n):
        if i == ONSET and attack is not None:
            twin.inject_attack(AttackKind.BIAS, attack[0], magnitude=attack[1])
        if i == ONSET and crash is not None:
            twin.inject_fault(FaultKind.INCIDENT, crash[0], severity=crash[1])
        readings: list[Reading] = twin.advance(ROW_S)
        out.append({r.sensor_id: r.value for r in readings})
    return out


def window(history: list[dict[str, float]], end: int) -> dict[str, np.ndarray]:
    """The oracle's window on the row `end` (1-based): its last `KEEP` rows."""
    kept = history[max(0, end - KEEP):end]
    return {name: np.array([row[name] for row in kept]) for name in kept[0]}


def verdicts(history: list[dict[str, float]]) -> list[tuple[int, Violation]]:
    return [(end, v) for end in range(1, len(history) + 1) for v in loop_invariants(window(history, end))]


def test_every_link_has_its_loop_identity_on_the_wire() -> None:
    sensors = set(TransportTwin(seed=0, baseline=False, duration_h=1).sensor_ids())
    assert len(IDENTITY_RULES) == 48
    for rule in IDENTITY_RULES:
        assert set(rule.sensors()) <= sensors


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_normal_morning_peaks_break_no_loop_identity_and_vouch_for_every_speed(seed: int) -> None:
    """The margins were chosen on these peaks (07:00–08:30): none broken on any link, and every speed
    vouched for once the window is full."""
    history = rows(seed, 180)
    assert verdicts(history) == []
    for end in range(IDENTITY_ROWS + 1, len(history) + 1, 7):
        assert vouches(window(history, end)) == frozenset(r.speed for r in IDENTITY_RULES)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_speed_falsified_20_kmh_low_is_an_intrusion_on_that_loop_within_ten_rows(seed: int) -> None:
    history = rows(seed, ONSET + 20, attack=(SPEED, -20.0))
    found = verdicts(history)
    assert found, "the falsified speed was never seen"
    end, first = found[0]
    assert ONSET < end <= ONSET + 10
    assert not first.fault and first.suspects == (SPEED,) and first.sensor == SPEED
    assert {v.sensor for _, v in found} == {SPEED}  # no other loop is ever named
    assert SPEED not in vouches(window(history, end))


def test_a_speed_falsified_high_breaks_the_identity_the_other_way() -> None:
    history = rows(1, ONSET + 20, attack=(SPEED, 25.0))
    found = verdicts(history)
    assert found and {v.sensor for _, v in found} == {SPEED}
    assert all(not v.fault and v.suspects == (SPEED,) for _, v in found)
    excess, deficit = RULE.residuals(window(history, found[0][0])) or (0.0, 0.0)
    assert deficit > IDENTITY_DEFICIT_VEH >= excess


@pytest.mark.parametrize("link,severity,seed", [("link:n11-n12", 0.95, 1), ("link:n13-n12", 1.0, 2),
                                                ("link:n11-n12", 0.5, 3)])
def test_a_real_crash_breaks_no_loop_identity(link: str, severity: float, seed: int) -> None:
    """A queue stores vehicles on the link: its loops still agree, and no loop is distrusted."""
    assert verdicts(rows(seed, ONSET + 40, crash=(link, severity))) == []


def test_a_flow_falsified_high_does_not_have_the_speed_named() -> None:
    """A constant lie on the flow counts vehicles onto an empty link, which cannot be: the flow or the
    density lies, and the healthy speed is not a suspect."""
    found = verdicts(rows(1, ONSET + 20, attack=("link:n11-n12/flow_veh_h", 300.0)))
    assert found
    assert all(v.suspects == (RULE.flow, RULE.density) for _, v in found)


def test_a_density_falsified_low_is_named_alone_once_it_reads_below_zero() -> None:
    found = verdicts(rows(1, ONSET + 20, attack=("link:n11-n12/density_veh_km", -8.0)))
    assert found
    assert all(v.suspects in {(RULE.density,), (RULE.flow, RULE.density)} for _, v in found)
    assert (RULE.density,) in {v.suspects for _, v in found}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_closure_forged_with_its_flow_frozen_never_has_a_speed_named(seed: int) -> None:
    """A spoofed command closes ``n12-n13`` and holds its flow at what it read before: the loop's
    speed and density are true, and never suspected."""
    twin, history = TransportTwin(seed=seed, baseline=False, duration_h=1.6), list[dict[str, float]]()
    for i in range(ONSET + 40):
        if i == ONSET:
            twin.inject_attack(AttackKind.SPOOFED_COMMAND, "link:n12-n13/flow_veh_h",
                               command=twin.command("link:n12-n13", "close"))
        history.append({r.sensor_id: r.value for r in twin.advance(ROW_S)})
    assert all("speed_kmh" not in s for _, v in verdicts(history) for s in v.suspects)


def test_rows_too_few_or_not_finite_are_no_evidence() -> None:
    history = rows(1, ONSET + 20, attack=(SPEED, -20.0))
    end = verdicts(history)[0][0]
    full = window(history, end)
    assert RULE.check({k: v[-IDENTITY_ROWS:] for k, v in full.items()}) == []
    broken = dict(full)
    broken[RULE.flow] = full[RULE.flow].copy()
    broken[RULE.flow][-3] = np.nan
    assert RULE.check(broken) == [] and not RULE.holds(broken)
    assert RULE.check({k: v for k, v in full.items() if k != RULE.density}) == []


def test_the_margins_are_what_the_docstrings_say() -> None:
    assert (IDENTITY_ROWS, IDENTITY_EXCESS_VEH, IDENTITY_DEFICIT_VEH) == (10, 10.0, 6.0)


@pytest.mark.slow
def test_the_model_calls_no_healthy_loop_falsified_on_a_normal_peak(model_cache: ModelCache) -> None:
    """Seed 1's peak, rows 92–94: the model scored 1.73 over its threshold of 1.53 and found
    ``link:n12-n13/speed_kmh`` alone explained 82 % of it (a loop reading 50 km/h on an empty street):
    an intrusion that would have had it quarantined. Its own flow and density vouch for it."""
    model = model_cache.train(Sector.TRANSPORTATION)
    normal = run_case(model, FaultCase(None, max_rows=120), seed=1)
    assert normal.wrongful == ()
    assert not [a for a in normal.false_alarms if VerdictKind.INTRUSION.value in a], normal.false_alarms
    spoof = run_case(model, FaultCase(AttackKind.BIAS, SPEED, -20.0), seed=1, max_rows=20)
    assert spoof.kind == VerdictKind.INTRUSION.value and spoof.asset == "link:n11-n12", spoof.reason
    assert spoof.rows_to_detect is not None and spoof.rows_to_detect <= 10 and spoof.wrongful == ()
