"""The feeder-overload rule (`sectors.electricity.rules`): named when the bus RTUs and the substation
meter agree, never on a normal day, never on one RTU alone."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind
from sectors.electricity.rules import FEEDER_ID, HEAD, SUBSTATION_ID, invariants
from sectors.electricity.twin import DEFAULT_START, ElectricityTwin
from sectors.invariants import Violation

AFTERNOON = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)


def newest(twin: ElectricityTwin, seconds: float = 5.0) -> list[Violation]:
    return invariants({r.sensor_id: np.array([r.value]) for r in twin.advance(seconds)})


def test_the_rule_names_what_the_network_module_names() -> None:
    from sectors.electricity import FEEDER_ID as feeder
    from sectors.electricity import SUBSTATION_ID as substation

    assert (FEEDER_ID, SUBSTATION_ID) == (feeder, substation)
    assert HEAD in set(ElectricityTwin().sensor_ids())


def test_a_normal_day_breaks_no_limit() -> None:
    twin = ElectricityTwin(seed=2, start=DEFAULT_START)
    for _ in range(288):  # five-minute rows: the daily profile's peaks included
        assert newest(twin, 300.0) == []


@pytest.mark.parametrize(("target", "factor"), [("feeder-1", 1.6), ("bus-6", 1.8)])
def test_an_afternoon_overload_is_a_fault_of_the_feeder_in_its_first_row(target: str, factor: float) -> None:
    twin = ElectricityTwin(seed=1, start=AFTERNOON)
    assert newest(twin) == []
    twin.inject_fault(FaultKind.FEEDER_OVERLOAD, target, severity=factor)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == FEEDER_ID and HEAD in violation.reads
    assert "overloaded" in violation.message


def test_the_same_surge_at_night_stays_within_the_limits_and_is_no_overload() -> None:
    twin = ElectricityTwin(seed=1, start=DEFAULT_START)
    newest(twin)
    twin.inject_fault(FaultKind.FEEDER_OVERLOAD, "feeder-1", severity=1.6)
    assert newest(twin) == []


def test_one_rtu_reading_low_is_not_an_overload() -> None:
    twin = ElectricityTwin(seed=1, start=AFTERNOON)
    newest(twin)
    twin.inject_attack(AttackKind.BIAS, "bus-18/voltage_pu", magnitude=-0.1)
    assert newest(twin) == []  # the model calls the lone RTU falsified; the rule says nothing
