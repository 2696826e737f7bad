"""How late readings reach a city's oracles, read back from the oracle hosts' logs.

Each oracle logs an ``ingest-latency`` line every 15 s with the p95/max of each hop over its last
2,000 traced batches (`oracles.ingest.latency`). `ingest_latency(logs_dir)` takes every oracle's latest
line and keeps, per sector, the worst oracle. It lives here, below the command layer, because the
command (`qeaims ps --latency`, a scenario's report) and the API's metrics both read it; it takes the
logs directory rather than the settings so that nothing here needs to know where a run keeps them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["TAIL_BYTES", "ingest_latency"]

TAIL_BYTES = 256 * 1024
"""How much of each log's end is read: an oracle logs a latency line every 15 s, so this holds many."""


def ingest_latency(logs_dir: Path) -> dict[str, dict[str, Any]]:
    """Per sector, the worst of its oracles' latest per-hop p95/max (seconds), from `oracle*.log` in `logs_dir`."""
    from oracles.ingest.latency import HOPS  # lazily, as before the move: it pulls in the bus's MQTT client

    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for log in sorted(logs_dir.glob("oracle*.log")):
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - TAIL_BYTES))
            tail = fh.read().decode(errors="replace").splitlines()
        for line in tail:
            if '"ingest-latency"' not in line:
                continue
            try:
                body = json.loads(line)
                latest[(str(body["sector"]), int(body["index"]))] = body
            except (ValueError, KeyError, TypeError):
                continue
    out: dict[str, dict[str, Any]] = {}
    for (sector, _index), body in sorted(latest.items()):
        row = out.setdefault(sector, {"oracles": 0, "batches": 0, "at": ""})
        row["oracles"] += 1
        row["batches"] += int(body.get("batches") or 0)
        row["at"] = max(row["at"], str(body.get("ts", "")))
        for hop in HOPS:
            for stat in ("p95", "max"):
                value = (body.get(hop) or {}).get(stat)
                key = f"{hop}_{stat}_s"
                if value is not None:
                    row[key] = max(float(value), float(row.get(key) or 0.0))
    return out
