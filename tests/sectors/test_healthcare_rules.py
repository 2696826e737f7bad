"""The MCI rule (`sectors.healthcare.rules`): a surge named in its first row, and not by one falsified system.

The rows are the healthcare twin's own (simpy); only the falsifications are the attacker's, made
with the twin's measurement attacks as the scenarios make them.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind
from sectors.healthcare.rules import RULES, invariants
from sectors.healthcare.twin import DISPATCH, HealthcareTwin
from sectors.invariants import Violation

pytestmark = pytest.mark.unit

CAD, BOARD = f"{DISPATCH}/mci_hospital-2", "hospital-2/mci_prealert"


def newest(twin: HealthcareTwin, minutes: int = 1) -> list[Violation]:
    """Advance `minutes` a minute at a time; the violations of the last row."""
    for _ in range(minutes):
        rows = twin.advance(60)
    return invariants({r.sensor_id: np.array([r.value]) for r in rows})


def test_every_hospital_has_both_systems_on_the_wire() -> None:
    sensors = set(HealthcareTwin(seed=0).sensor_ids())
    for rule in RULES:
        assert set(rule.sensors()) <= sensors


def test_a_normal_day_breaks_no_rule() -> None:
    twin = HealthcareTwin(seed=3)
    for _ in range(1440):
        assert newest(twin) == []


@pytest.mark.parametrize("factor,expected", [(3.0, 7), (1.2, 1)])
def test_a_surge_is_a_fault_of_its_hospital_in_the_first_row(factor: float, expected: int) -> None:
    twin = HealthcareTwin(seed=1)
    newest(twin, 30)
    twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2", severity=factor)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == "hospital-2"
    assert violation.sensor == BOARD and violation.reads == (CAD,)
    assert f"{expected} casualties" in violation.message  # 1.7 arrivals an hour, (factor - 1) of them for 2 h
    twin.clear_fault("hospital-2")
    assert newest(twin) == []  # the MCI stood down


@pytest.mark.parametrize("falsified,other", [(CAD, BOARD), (BOARD, CAD)])
def test_one_system_alone_is_an_instrument_to_distrust(falsified: str, other: str) -> None:
    twin = HealthcareTwin(seed=2)
    newest(twin, 10)
    twin.inject_attack(AttackKind.BIAS, falsified, magnitude=7.0)
    [violation] = newest(twin)
    assert not violation.fault
    assert violation.sensor == falsified and violation.reads == (other,)


def test_a_real_mci_with_one_system_hiding_it_is_still_not_a_fault() -> None:
    """An attacker who zeroes the board during a real MCI gets an instrument distrusted, not silence."""
    twin = HealthcareTwin(seed=4)
    twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2", severity=3.0)
    twin.inject_attack(AttackKind.BIAS, BOARD, magnitude=-7.0)
    [violation] = newest(twin)
    assert not violation.fault and violation.sensor == CAD


def test_missing_sensors_break_nothing() -> None:
    assert invariants({}) == []
    assert invariants({CAD: np.array([], dtype=np.float64)}) == []
