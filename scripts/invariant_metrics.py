"""Sum the per-run action counts the forge invariant suites append to build/invariant-metrics/*.csv.

Usage: make test-contracts   (or: rm -rf build/invariant-metrics; FOUNDRY_PROFILE=deep forge test --match-test invariant)
       python3 scripts/invariant_metrics.py
Each line is `action,calls,successes` (calls empty where the handler does not count attempts). Every
run's afterInvariant writes one line per action, so the sums are over the whole campaign (all runs
of all invariant functions of the suite). See tests/contracts/utils/InvariantMetrics.sol.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(folder: str = "build/invariant-metrics") -> int:
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        print(f"error: no metrics in {folder}: run the invariant suites first", file=sys.stderr)
        return 2
    for path in files:
        calls: dict[str, int | None] = {}
        ok: dict[str, int] = {}
        runs = 0
        for line in path.read_text().splitlines():
            action, count, success = (line.split(",") + ["", ""])[:3]
            if not calls:
                first = action
            if action == first:
                runs += 1
            previous = calls.get(action, 0)
            calls[action] = None if not count or previous is None else previous + int(count)
            ok[action] = ok.get(action, 0) + int(success or 0)
        print(f"{path.stem}: {runs} runs reported (afterInvariant calls)")
        print(f"  {'action':<26}{'calls':>10}{'succeeded':>11}")
        for action, total in calls.items():
            print(f"  {action:<26}{'' if total is None else total:>10}{ok[action]:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
