"""An oracle's recent readings of one asset, read from its telemetry store without writing to it.

The dashboard's technical view draws an asset's readings beside its anomaly scores (issue 19). The
store belongs to the oracle's process (`oracles.telemetry.TelemetryStore`, one writer per file); the
API must never become a second writer, and opening a `TelemetryStore` writes (schema, meta row). So
this reads the ``chunks`` table through a SQLite connection opened ``mode=ro`` and the column readers
of `oracles.telemetry_chunks`.

The scan is bounded: only the newest `scan` arrivals (default 50,000, a few minutes of a busy
oracle) are looked at, so a request costs the same on the first day and after a year. The asset
column picks the asset's arrivals without parsing a body; bodies are parsed newest first, a window
at a time, until `limit` readings (of the asked sensor, if one is) are found.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.errors import ConfigError
from oracles import telemetry_chunks as chunks
from oracles.merkle import timestamp_ms

__all__ = ["SCAN", "StoredReading", "recent_readings"]

SCAN = 50_000
"""How many of the newest arrivals a request looks at, at most."""
_WINDOW = 4_096  # bodies read per step, newest first


@dataclass(frozen=True)
class StoredReading:
    """One stored reading as a chart needs it (arrival: its number in the store, from 1)."""

    arrival: int
    sensor: str
    quantity: str
    unit: str
    value: float
    time_ms: int


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise ConfigError(f"no telemetry store at {path}")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def _decode(arrival: int, body: bytes) -> StoredReading:
    """A stored body (canonical JSON of `core.messages.Reading`) as what a chart draws."""
    raw = json.loads(body)
    stamp = datetime.fromisoformat(str(raw["timestamp"]))
    return StoredReading(arrival=arrival, sensor=str(raw["sensor_id"]), quantity=str(raw.get("quantity", "")),
                         unit=str(raw.get("unit", "")), value=float(raw["value"]), time_ms=timestamp_ms(stamp))


def recent_readings(path: Path, asset: str, *, sensor: str | None = None, limit: int = 500,
                    scan: int = SCAN) -> list[StoredReading]:
    """The newest readings of `asset` (and of `sensor`, if given) among the store's last `scan` arrivals,
    at most `limit`, oldest first. Raises ConfigError if there is no store at `path`, and
    `oracles.telemetry_chunks.ChunkDamaged` if the chunks it reads are damaged."""
    if limit < 1 or scan < 1:
        raise ConfigError("limit and scan must be at least 1")
    db = _open(path)
    try:
        try:
            row = db.execute("SELECT first_id + count - 1 FROM chunks ORDER BY first_id DESC LIMIT 1").fetchone()
        except sqlite3.OperationalError as exc:  # no chunks table: not a telemetry store
            raise ConfigError(f"{path} is not a telemetry store: {exc}") from exc
        if row is None:
            return []
        last = int(row[0])
        lo = max(1, last - scan + 1)
        columns = chunks.read_columns(db, lo, last)
        mine = [columns.lo + i for i, name in enumerate(columns.assets) if name == asset]
        found: list[StoredReading] = []
        end = len(mine)
        while end > 0 and len(found) < limit:
            start = max(0, end - _WINDOW)
            window = mine[start:end]
            bodies = chunks.read_bodies(db, window[0], window[-1])
            for arrival in reversed(window):
                reading = _decode(arrival, bodies[arrival - window[0]])
                if sensor is None or reading.sensor == sensor:
                    found.append(reading)
                    if len(found) == limit:
                        break
            end = start
        found.reverse()
        return found
    finally:
        db.close()
