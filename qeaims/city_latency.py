"""How late readings reach the city's oracles, read back from the oracle hosts' logs.

Each oracle logs an ``ingest-latency`` line every 15 s with the p95/max of each hop over its last
2,000 traced batches (`oracles.ingest.latency`). `ingest_latency` (`oracles.ingest.latency_report` over
this run's logs directory) takes every oracle's latest line
and keeps, per sector, the worst oracle: what `qeaims ps --latency` shows and what a scenario's
report carries (`kpis.ingest_latency`), so "readings reach every oracle within a second" is checked
on the run that produced the other figures, not on an idle city.
"""

from __future__ import annotations

from typing import Any

from core.config import Settings
from oracles.ingest import latency_report
from qeaims.supervisor import run_dir

__all__ = ["KEEPING_UP_S", "ingest_latency", "keeping_up"]

KEEPING_UP_S = 1.0
"""The issue's bar: a reading reaches every oracle (stored) within this many seconds of its stamp (p95)."""


def ingest_latency(settings: Settings) -> dict[str, dict[str, Any]]:
    """Per sector, the worst of its oracles' latest per-hop p95/max (seconds), from this run's hosts' logs
    (the reading itself is `oracles.ingest.latency_report`, which the API's metrics share)."""
    return latency_report.ingest_latency(run_dir(settings) / "logs")


def keeping_up(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Per sector: is the worst oracle's stamp-to-store p95 within `KEEPING_UP_S`?"""
    return {sector: row.get("total_p95_s") is not None and float(row["total_p95_s"]) <= KEEPING_UP_S
            for sector, row in rows.items()}
