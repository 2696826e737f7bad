"""Sewer rules (`sectors.invariants.BlockedSewer`, `ConduitRating`, `DryWeatherOverflow`): a blocked
sewer and a dry-weather overflow named from the SCADA rows, and what is not one.

Issue 16 asks every fault class to be caught, named and acted on; a sewer blockage was detected in
none of its runs, and a CSO spilling in dry weather had no case at all. The rules are tried on the
states normal operation passes through (a dry day, storms up to the cloudburst of normal weather,
days of drawn weather), on real blockages (SWMM with the conduit closed), and on instruments an
attacker falsified, written here as the attacker would write them: each must be an instrument to
distrust, never a fault.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import FaultKind, Sector
from sectors.invariants import Violation
from sectors.runner import REPORT_PERIOD_S
from sectors.sewage.rules import C1, C3, C4, C4_RATING, DRY_OVERFLOW, J4_LEVEL, REACHES, SPILL, SPILL_VOLUME
from tests.sectors.test_pump_rules import sewage_rows as pump_rows

Rows = dict[str, np.ndarray]
ROW_S = REPORT_PERIOD_S[Sector.SEWAGE]
AT = 240  # two hours into the day: the sewers the twin starts empty carry their sanitary flow
RULES = (DRY_OVERFLOW, *REACHES, C4_RATING)


def sewage_rows(rows: int, *, rain: float | None = None, fault: tuple[FaultKind, str] | None = None,
                weather_seed: int | None = None) -> Rows:
    """`rows` rows of the sewage twin, `ROW_S` apart; `fault` (closed: severity 1) at row `AT`."""
    if fault is None:
        return pump_rows(rows, rain=rain, weather_seed=weather_seed)
    return pump_rows(rows, rain=rain, weather_seed=weather_seed, fail_at=AT, fault=fault, severity=1.0)


def sewer_rules_at(rows: Rows, i: int) -> list[Violation]:
    """The sewer rules broken at row `i`, seen through the oracle's 32-row window."""
    window = {k: v[max(0, i - 31):i + 1] for k, v in rows.items()}
    return [v for rule in RULES for v in rule.check(window)]


def first(rows: Rows, start: int, stop: int, *, fault: bool = True) -> tuple[int, Violation] | None:
    return next(((i, v) for i in range(start, stop) for v in sewer_rules_at(rows, i) if v.fault is fault), None)


@pytest.fixture(scope="module")
def dry() -> Rows:
    return sewage_rows(AT + 120)


@pytest.mark.parametrize(("rows", "rain", "seed"), [(2880, None, None), (360, 25.0, None), (360, 45.0, None),
                                                    (3000, None, 3)], ids=["dry-day", "storm-25", "storm-45", "weather-3"])
def test_normal_days_break_no_sewer_rule(rows: int, rain: float | None, seed: int | None) -> None:
    """A dry day (the sanitary flow's night minimum included), the storm day's 25 mm/h, the cloudburst
    of normal weather, and 25 hours of drawn weather (dry spells, showers, storms, their recessions)."""
    normal = sewage_rows(rows, rain=rain, weather_seed=seed)
    assert [(i, v.message) for i in range(len(normal[C3])) for v in sewer_rules_at(normal, i)] == []


@pytest.mark.parametrize("conduit", ["conduit:C1", "conduit:C3"])
def test_a_blocked_sewer_is_named_within_two_rows(dry: Rows, conduit: str) -> None:
    blocked = sewage_rows(AT + 60, fault=(FaultKind.BLOCKAGE, conduit))
    assert first(blocked, 0, AT) is None
    found = first(blocked, AT, AT + 60)
    assert found is not None and found[0] <= AT + 2 and found[1].asset == conduit, found
    assert found[1].sensor == f"{conduit}/flow_m3s" and found[1].reads == (found[1].sensor,), found
    if conduit == "conduit:C3":  # its flow has nowhere to go but C4 and the weir: they must have lost it
        assert found[1].checked == (C4, SPILL) and "fell" in found[1].message, found
    # and only that sewer: the sewers above a blocked trunk back up, which is its backwater
    assert {v.asset for i in range(AT, AT + 60) for v in sewer_rules_at(blocked, i) if v.fault} == {conduit}


@pytest.mark.parametrize("meter", [C3, C4])
def test_a_sewer_meter_falsified_to_zero_is_a_meter_that_lies(dry: Rows, meter: str) -> None:
    """The meter reports its sewer dry while its witness says it flows (C4 still carrying C3's flow on;
    J4 not filling behind C4): after the rows the witness needs, the meter is the suspect, and no sewer
    is ever called blocked."""
    spoofed = dict(dry)
    spoofed[meter] = dry[meter].copy()
    spoofed[meter][AT:] = 0.0
    assert first(spoofed, AT, AT + 60) is None
    lie = first(spoofed, AT, AT + 60, fault=False)
    assert lie is not None and lie[0] <= AT + 4 and lie[1].suspects == (meter,), lie


@pytest.mark.xfail(strict=True, reason="open: J3 has a catchment of its own, unmetered, so C3 moves with it as "
                   "much as with C1 (sectors.sewage.rules); C1's meter alone says it is blocked")
def test_a_meter_falsified_to_zero_above_a_manhole_with_its_own_catchment_is_not_a_blockage(dry: Rows) -> None:
    spoofed = dict(dry)
    spoofed[C1] = dry[C1].copy()
    spoofed[C1][AT:] = 0.0
    assert first(spoofed, AT, AT + 60) is None


def test_a_blocked_trunk_is_not_also_a_lying_interceptor_meter() -> None:
    """Below a blocked C3, C4 drains dry: nothing arrives, so it is neither blocked nor lying."""
    blocked = sewage_rows(AT + 120, fault=(FaultKind.BLOCKAGE, "conduit:C3"))
    assert blocked[C4][-1] < 0.2 * 0.0072, "C4 must have drained dry, or this tries nothing"
    assert {(v.asset, v.fault) for i in range(AT, AT + 120) for v in sewer_rules_at(blocked, i)} == {("conduit:C3", True)}


def test_a_falsified_cso_chamber_level_is_a_level_that_lies(dry: Rows) -> None:
    """J4's depth raised by 1 m calls for a flow C4 does not carry: with its meters agreeing and the
    weir not spilling, the depth is what lies."""
    spoofed = dict(dry)
    spoofed[J4_LEVEL] = dry[J4_LEVEL].copy()
    spoofed[J4_LEVEL][AT:] += 1.0
    assert first(spoofed, AT, AT + 60) is None
    lie = first(spoofed, AT, AT + 60, fault=False)
    assert lie is not None and lie[0] <= AT + 2 and lie[1].suspects == (J4_LEVEL,), lie


def test_a_dry_weather_overflow_names_the_blocked_interceptor_below_the_weir() -> None:
    """C4 closed on a dry day: named a blockage in its second row (J4 filling behind it), hours before
    the chamber reaches the weir's crest; left alone, the weir spills sanitary sewage about four hours
    later, and the spill is a dry-weather overflow named to C4 in its second row."""
    overflow = sewage_rows(AT + 600, fault=(FaultKind.OVERFLOW, "conduit:C4"))
    found = first(overflow, AT, AT + 60)
    assert found is not None and found[0] <= AT + 2 and found[1].asset == "conduit:C4", found
    spills = np.flatnonzero(overflow[SPILL] > 1e-4)
    assert spills.size and spills[0] > AT + 60, "the weir must spill, later"
    named = [v for v in sewer_rules_at(overflow, int(spills[0]) + 1) if v.fault]
    assert [v.asset for v in named] == ["conduit:C4"] and "dry-weather overflow" in named[0].message, named


def test_a_dry_weather_overflow_with_no_blockage_below_names_the_outfall(dry: Rows) -> None:
    """A weir spilling part of the dry-weather flow while the interceptor carries the rest (a crest
    broken or a stop log gone): the chamber's meters balance, no sewer below is blocked."""
    broken = dict(dry)
    spill = np.where(np.arange(len(dry[C3])) >= AT, 0.3 * dry[C4], 0.0)
    broken[SPILL], broken[C4] = spill, dry[C4] - spill
    broken[SPILL_VOLUME] = np.concatenate([[0.0], np.cumsum((spill[1:] + spill[:-1]) / 2.0 * ROW_S)])
    found = first(broken, AT, AT + 60)
    assert found is not None and found[0] <= AT + 2 and found[1].asset == "outfall:CSO", found


def test_a_spill_reported_in_dry_weather_that_the_chamber_does_not_lose_is_a_meter_that_lies(dry: Rows) -> None:
    forged = dict(dry)
    forged[SPILL] = np.where(np.arange(len(dry[C3])) >= AT, 0.02, 0.0)
    assert first(forged, AT, AT + 60) is None
    lie = first(forged, AT, AT + 60, fault=False)
    assert lie is not None and lie[0] <= AT + 2 and lie[1].suspects == (SPILL,), lie


def test_a_spill_in_the_rain_is_weather() -> None:
    storm = sewage_rows(240, rain=45.0)
    assert storm[SPILL].max() > 0.0, "the cloudburst must spill"
    assert [v for i in range(240) for v in DRY_OVERFLOW.check({k: s[max(0, i - 31):i + 1] for k, s in storm.items()})] == []
