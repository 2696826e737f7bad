"""The loop identity's margins (`sectors.transportation.rules.LoopIdentity`), measured on the twin's rows.

Prints, over every link and every full window of the 07:00-08:30 peak at 30-second rows: the largest
excess and deficit (vehicles) on the normal peaks the margins were chosen on (seeds 1-3), on three
others (0, 4, 5) and on crashes (severity 0.5, 0.95 on n11-n12 and 1.0 on n13-n12, seeds 1-3, from
the 9th row), and the row a speed falsified 20 km/h low on n11-n12 from the 9th row is first named.

Run: PYTHONPATH=. python scripts/transport_loop_identity_margins.py
"""

from __future__ import annotations

import numpy as np

from core.messages import AttackKind, FaultKind
from sectors.transportation.rules import IDENTITY_RULES, loop_invariants
from sectors.transportation.twin import TransportTwin

ROWS, ONSET, KEEP_ROWS = 180, 8, 32  # rows of the peak, rows before the fault, rows an oracle keeps


def history(seed: int, crash: tuple[str, float] | None = None, spoof: str | None = None) -> dict[str, np.ndarray]:
    twin, rows = TransportTwin(seed=seed, baseline=False, duration_h=1.6), list[dict[str, float]]()
    for i in range(ROWS):
        if i == ONSET and crash:
            twin.inject_fault(FaultKind.INCIDENT, crash[0], severity=crash[1])
        if i == ONSET and spoof:
            twin.inject_attack(AttackKind.BIAS, spoof, magnitude=-20.0)
        rows.append({r.sensor_id: r.value for r in twin.advance(30)})
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}


def extremes(h: dict[str, np.ndarray]) -> tuple[float, float]:
    worst = [-np.inf, -np.inf]
    for end in range(1, ROWS + 1):
        w = {k: v[max(0, end - KEEP_ROWS):end] for k, v in h.items()}
        for rule in IDENTITY_RULES:
            found = rule.residuals(w)
            if found is not None:
                worst = [max(worst[0], found[0]), max(worst[1], found[1])]
    return worst[0], worst[1]


def main() -> None:
    for label, seeds in (("normal, chosen on", (1, 2, 3)), ("normal, checked on", (0, 4, 5))):
        for seed in seeds:
            print(f"{label} seed {seed}: excess, deficit max {extremes(history(seed))}")
    for seed in (1, 2, 3):
        for crash in (("link:n11-n12", 0.5), ("link:n11-n12", 0.95), ("link:n13-n12", 1.0)):
            print(f"crash {crash} seed {seed}: excess, deficit max {extremes(history(seed, crash=crash))}")
        h = history(seed, spoof="link:n11-n12/speed_kmh")
        first = next((end for end in range(1, ROWS + 1)
                      if loop_invariants({k: v[max(0, end - KEEP_ROWS):end] for k, v in h.items()})), None)
        print(f"speed -20 km/h on n11-n12 seed {seed}: first named in row {first} (onset: row {ONSET + 1})")


if __name__ == "__main__":
    main()
