"""How late readings reach the city's oracles, read back from the oracle hosts' logs.

Each oracle logs an ``ingest-latency`` line every 15 s with the p95/max of each hop over its last
2,000 traced batches (`oracles.ingest.latency`). `ingest_latency` takes every oracle's latest line
and keeps, per sector, the worst oracle: what `qeaims ps --latency` shows and what a scenario's
report carries (`kpis.ingest_latency`), so "readings reach every oracle within a second" is checked
on the run that produced the other figures, not on an idle city.
"""

from __future__ import annotations

import json
import os
from typing import Any

from core.config import Settings
from qeaims.supervisor import run_dir

__all__ = ["KEEPING_UP_S", "ingest_latency", "keeping_up"]

KEEPING_UP_S = 1.0
"""The issue's bar: a reading reaches every oracle (stored) within this many seconds of its stamp (p95)."""


def ingest_latency(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per sector, the worst of its oracles' latest per-hop p95/max (seconds), from the hosts' logs."""
    from oracles.ingest.latency import HOPS

    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for log in sorted((run_dir(settings) / "logs").glob("oracle*.log")):
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 256 * 1024))
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


def keeping_up(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Per sector: is the worst oracle's stamp-to-store p95 within `KEEPING_UP_S`?"""
    return {sector: row.get("total_p95_s") is not None and float(row["total_p95_s"]) <= KEEPING_UP_S
            for sector, row in rows.items()}
