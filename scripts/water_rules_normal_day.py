"""Every water rule (`sectors.water.rules.invariants`) over 30 hours of the twin's normal operation at
the oracles' 30-second rows, with the rows' hour (`sectors.invariants.CLOCK`) as the oracles give it:
the leak and scheduled-pump rules' check against false alarms (pump 10's 01:00 start and 15:00 stop,
twice). Prints the rows judged and every violation; expect none. About ten minutes on one core.

    PYTHONPATH=. python scripts/water_rules_normal_day.py
"""

from __future__ import annotations

import time

import numpy as np

from sectors.invariants import CLOCK
from sectors.water import WaterTwin
from sectors.water.rules import ROW_S, invariants

ROWS = 3600
HISTORY = 32  # rows an oracle keeps


def main() -> None:
    twin, started = WaterTwin(), time.monotonic()
    rows: list[dict[str, float]] = []
    found: list[tuple[int, str, str, bool, str]] = []
    for i in range(ROWS):
        readings = twin.step(int(ROW_S))
        at = readings[0].timestamp
        row = {r.sensor_id: r.value for r in readings}
        row[CLOCK] = at.hour * 3600.0 + at.minute * 60.0 + at.second
        rows = [*rows, row][-HISTORY:]
        window = {k: np.array([r[k] for r in rows]) for k in rows[-1]}
        found += [(i + 1, at.isoformat(), v.asset, v.fault, v.message) for v in invariants(window)]
    print(f"{ROWS} rows judged in {time.monotonic() - started:.0f} s: {len(found)} violations")
    for v in found:
        print(*v, sep=" | ")


if __name__ == "__main__":
    main()
