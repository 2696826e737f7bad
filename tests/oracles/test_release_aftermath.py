"""Review (release): hospital-1's load excused for the two-hour arrival window after hospital-2's
diversion is lifted (`oracles.node.voting._lingering`, `SectorPlugin.command_aftermath_s`), against
a real fault at hospital-1 inside that window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from chain.commanded import Release
from core.messages import Reading, Sector, Verdict, VerdictKind
from oracles.node.voting import _lingering
from oracles.stream import SectorStream
from sectors.healthcare.plugin import PLUGIN

ARRIVALS, BOARD = "hospital-1/arrivals_per_h", "hospital-1/mci_prealert"
RELEASED = {"hospital-2": Release("hospital-2/admissions divert (isolation 5)", 1735698270000)}  # 02:24:30Z
START = datetime(2025, 1, 1, 2, 25, tzinfo=UTC)


def _moot(sensor: str, observed: datetime) -> str | None:
    """Why voting finds a FAULT verdict naming `sensor` first on the reading at `observed` moot
    (hospital-2's diversion lifted at 02:24:30, nothing held now), None if it is voted."""
    assert PLUGIN.commanded_effect is not None
    in_force = _lingering(RELEASED, {"observed_at": observed.isoformat()}, PLUGIN.command_aftermath_s)
    return PLUGIN.commanded_effect(sensor, in_force) if in_force else None


def test_an_mci_declared_at_the_receiving_hospital_is_not_excused_by_the_aftermath() -> None:
    at = START + timedelta(minutes=30)
    assert _moot(ARRIVALS, at) is not None  # the diverted patients still in the count: excused
    assert _moot(BOARD, at) is None  # the MCI rule names the board, which no diversion moves
    # any other load (a surge no system declared) is excused for the whole two hours
    assert _moot("hospital-1/queue_length", START + timedelta(minutes=110)) is not None


@dataclass
class _Hospital1:
    """hospital-1 as the sector model judges it: FAULT on its board when an MCI is declared (the rule
    names the board first), else FAULT on its arrivals when the count is high (the diverted patients)."""

    sector: Sector = Sector.HEALTHCARE
    sensors: tuple[str, ...] = (ARRIVALS, BOARD)
    period_s: int = 30

    def assess(self, recent: NDArray[np.float64], observed_at: datetime) -> Verdict | None:
        arrivals, board = recent[-1]
        named = BOARD if board >= 0.5 else ARRIVALS if arrivals > 20 else None
        if named is None:
            return None
        return Verdict(sector=self.sector, asset_id="hospital-1", kind=VerdictKind.FAULT, score=1.0, threshold=0.5,
                       sensors=(named,), reason=f"{named} high", observed_at=observed_at)


def _rows(rows: list[tuple[float, float]], start: int) -> list[Reading]:
    out = []
    for i, (arrivals, board) in enumerate(rows, start=start):
        at = START + timedelta(seconds=30 * i)
        out += [Reading(sector=Sector.HEALTHCARE, asset_id="hospital-1", sensor_id=ARRIVALS, quantity="arrivals_per_h",
                        unit="1/h", value=arrivals, timestamp=at),
                Reading(sector=Sector.HEALTHCARE, asset_id="hospital-1", sensor_id=BOARD, quantity="mci_prealert",
                        unit="1", value=board, timestamp=at)]
    return out


@pytest.mark.xfail(strict=True, reason="review-release: an oracle opens one episode per subject and kind "
                   "(`SectorStream._episode`: 'hospital-1|fault') and votes only the verdict that opened it. The "
                   "aftermath keeps hospital-1's load verdicts coming and moot for up to two hours after the diversion "
                   "is lifted, so the episode stays open; an MCI declared at hospital-1 meanwhile is a verdict of the "
                   "same episode, never put to a vote, and the MCI itself keeps the episode open past the window. "
                   "The same held while the diversion was held (pre-existing), and fd7b6a7 stretches it by two hours. "
                   "A fix (a verdict naming another sensor, or one no longer moot, reopens the vote) is in "
                   "`oracles.stream`/`oracles.node.judging`, outside this review's files: the lead's call")
def test_an_mci_declared_inside_an_excused_load_episode_is_put_to_a_vote() -> None:
    stream = SectorStream(_Hospital1())
    quiet = [(10.0, 0.0)] * 3
    opened = stream.feed(_rows(quiet + [(40.0, 0.0)] * 10, 0))  # 02:25 on: the diverted patients in the count
    [load] = opened
    assert load.verdict.sensors[0] == ARRIVALS and _moot(ARRIVALS, load.verdict.observed_at) is not None
    mci = stream.feed(_rows([(45.0, 12.0)] * 4, 13))  # 02:31:30: an MCI declared for hospital-1
    assert [e.verdict.sensors[0] for e in mci] == [BOARD]  # the MCI opens a verdict voting sees
