"""Review (release): hospital-1's load excused for the two-hour arrival window after hospital-2's
diversion is lifted (`oracles.node.voting._lingering`, `SectorPlugin.command_aftermath_s`), against
a real fault at hospital-1 inside that window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from chain.commanded import Release
from core.messages import Reading, Sector, Verdict, VerdictKind
from oracles.node.voting import _lingering
from oracles.sector_model import PHYSICS_NOTE
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
        # the MCI is the rule's verdict (`oracles.sector_model.PHYSICS_NOTE`), the load the model's
        reason = (PHYSICS_NOTE if named == BOARD else "") + f"{named} high"
        return Verdict(sector=self.sector, asset_id="hospital-1", kind=VerdictKind.FAULT, score=1.0, threshold=0.5,
                       sensors=(named,), reason=reason, observed_at=observed_at)


def _rows(rows: list[tuple[float, float]], start: int) -> list[Reading]:
    out = []
    for i, (arrivals, board) in enumerate(rows, start=start):
        at = START + timedelta(seconds=30 * i)
        out += [Reading(sector=Sector.HEALTHCARE, asset_id="hospital-1", sensor_id=ARRIVALS, quantity="arrivals_per_h",
                        unit="1/h", value=arrivals, timestamp=at),
                Reading(sector=Sector.HEALTHCARE, asset_id="hospital-1", sensor_id=BOARD, quantity="mci_prealert",
                        unit="1", value=board, timestamp=at)]
    return out


def test_an_mci_declared_inside_an_excused_load_episode_is_put_to_a_vote() -> None:
    stream = SectorStream(_Hospital1())
    quiet = [(10.0, 0.0)] * 3
    opened = stream.feed(_rows(quiet + [(40.0, 0.0)] * 10, 0))  # 02:25 on: the diverted patients in the count
    [load] = opened
    assert load.verdict.sensors[0] == ARRIVALS and _moot(ARRIVALS, load.verdict.observed_at) is not None
    mci = stream.feed(_rows([(45.0, 12.0)] * 4, 13))  # 02:31:30: an MCI declared for hospital-1
    assert [e.verdict.sensors[0] for e in mci] == [BOARD]  # the MCI opens a verdict voting sees


def test_a_rule_naming_its_instrument_row_after_row_is_one_episode() -> None:
    """Grouping a rule's verdicts by the instrument it names first must not make a verdict a row: the
    board named for ten rows is one episode, and so is the load beside it."""
    stream = SectorStream(_Hospital1())
    opened = stream.feed(_rows([(10.0, 0.0)] * 3 + [(45.0, 12.0)] * 10 + [(45.0, 0.0)] * 5, 0))
    assert [e.verdict.sensors[0] for e in opened] == [BOARD, ARRIVALS]
    assert len({e.key for e in opened}) == 2
