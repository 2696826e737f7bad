"""Water twin runs that tests in two modules replay: stepped once a run (`RunCache`), read by each.

The review's finding 4 (tank 1's level drifted slower than a window, `docs/detection.md`) is judged
twice, by the rules alone (`tests/sectors/test_water_rules.py`) and by the oracles' model with the
rules behind it (`tests/oracles/test_water_detect.py`), on the same nine field hours of the twin:
about 50 s of hydraulic solves each. Both read one recording of it: one genuine run of the twin, as
either test would have stepped it (two runs of the twin differ by rounding only, 1e-14 m in a gauge, and
no test may depend on that).
"""

from __future__ import annotations

from core.messages import AttackKind, Reading
from sectors.water import WaterTwin
from tests.conftest import RunCache

ROW_S = 30  # the oracles' rows (`sectors.water.rules.ROW_S`)
DRIFT_FROM_ROW = 8  # rows of normal operation before the attack
DRIFT_ROWS = 549  # rows in all: past pump 335's stop at tank 1's true stop level


class Replay:
    """A recorded twin run, stepped as the twin was: `step` returns the next row's readings."""

    def __init__(self, rows: list[list[Reading]]) -> None:
        self._rows = rows
        self._next = 0

    def step(self, dt_s: int = ROW_S) -> list[Reading]:
        assert dt_s == ROW_S, f"the run was recorded at {ROW_S}-second steps"
        assert self._next < len(self._rows), f"the recording has {len(self._rows)} rows"
        self._next += 1
        return self._rows[self._next - 1]


def _drifted_tank_1() -> list[list[Reading]]:
    twin, rows = WaterTwin(), list[list[Reading]]()
    for i in range(DRIFT_ROWS):
        if i == DRIFT_FROM_ROW:
            twin.inject_attack(AttackKind.DRIFT, "tank:1/level_m", rate_per_hour=-0.03)
        rows.append(twin.step(ROW_S))
    return rows


def drifted_tank_1(cache: RunCache) -> Replay:
    """`WaterTwin()` stepped `DRIFT_ROWS` 30-second rows, tank 1's level drifting down 0.03 m an hour
    from after row `DRIFT_FROM_ROW` (0.095 m in 3.2 h, 8 mm in a 32-row window)."""
    return Replay(cache.get(f"water: drifted tank:1 -0.03 m/h from row {DRIFT_FROM_ROW}, {DRIFT_ROWS} rows",
                            _drifted_tank_1))
