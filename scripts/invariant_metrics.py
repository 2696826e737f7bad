"""Sum the per-run action counts the forge invariant suites append to build/invariant-metrics/*.csv.

Usage: rm -rf build/invariant-metrics && mkdir -p build/invariant-metrics
       forge test --match-test invariant && python3 scripts/invariant_metrics.py
Each line is `action,calls,successes` (successes empty for transitions and executions). A run's
afterInvariant writes one line per action, so the sums are over the whole campaign.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path


def main(folder: str = "build/invariant-metrics") -> int:
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        print(f"error: no metrics in {folder}: run the invariant suites first", file=sys.stderr)
        return 2
    for path in files:
        calls: dict[str, int] = defaultdict(int)
        ok: dict[str, int] = defaultdict(int)
        runs = 0
        for line in path.read_text().splitlines():
            name, count, success = (line.split(",") + ["", ""])[:3]
            calls[name] += int(count)
            if success:
                ok[name] += int(success)
        first = next(iter(calls), None)
        runs = sum(1 for line in path.read_text().splitlines() if line.startswith(f"{first},")) if first else 0
        print(f"{path.stem}: {runs} runs")
        print(f"  {'action':<22}{'calls':>10}{'succeeded':>11}")
        for name in calls:
            succeeded = f"{ok[name]:>11}" if name in ok else ""
            print(f"  {name:<22}{calls[name]:>10}{succeeded}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
