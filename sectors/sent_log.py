"""A twin's recent report periods, written before they are published, so the broker can be given them again.

Why the twin keeps them. An MQTT broker acknowledges a QoS 1 message (PUBACK) when it has queued it,
not when every subscriber has it, and Mosquitto writes its queues to disk only every few seconds
(`bus.mosquitto.AUTOSAVE_S`). A broker killed in between restarts from its last save: a message it
had acknowledged to the twin but not yet delivered to a lagging oracle is gone, and the oracle's
persistent session cannot bring it back (the crash campaign lost one report period at two of four
banking oracles this way; `tests/sectors/test_sent_log_broker_kill.py` shows it with a real
Mosquitto). The publisher is the only party that still has the readings, so it resends: after every
start that resumes a twin and after every reconnect to the broker, the periods of the last
`RESEND_WINDOW_S` wall seconds are published again. The oracles' stores keep the first reading of
each (sensor, field time) (`oracles.telemetry_once`), so a period that did arrive is dropped there
and one that did not arrives late, exactly once.

Written ahead. A period is logged (committed) before its first message leaves, and the twin's
clock resumes from the later of its clock file and the last period logged, so a twin killed between
publishing a period and saving its clock resends that period's own readings on restart instead of
publishing the same moment again from fresh physics (which the oracles counted as a conflict).

One SQLite file per twin (``<home>/twins/<sector>.sent.sqlite``, WAL, ``synchronous=NORMAL``: a
commit survives the process being killed; a power cut may lose the last periods, as it would the
broker's queue). Rows hold the batch payloads without their trace (`bus.mqtt.encode_batch` without
``stamped``) and the wall time the period was stamped; the trace is added when a payload is sent, so
a resent batch shows how late it really is. Rows older than the window (and past `MAX_PERIODS`) are
pruned as periods are added.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Self

from bus.mosquitto import AUTOSAVE_S
from core.errors import ConfigError

__all__ = ["MAX_PERIODS", "RESEND_WINDOW_S", "LoggedPeriod", "SentLog", "sent_log_path"]

RESEND_WINDOW_S = 3.0 * AUTOSAVE_S
"""Wall seconds of periods resent after a restart or reconnect, counted back from the last period
logged: the broker's save interval (what a kill can lose) with room for a save that was itself slow."""

MAX_PERIODS = 2_000
"""At most this many periods are kept, however fast the twin runs: the window holds 300 of banking's
at 600x (30 s periods) and 1,800 of electricity's (5 s periods, about 37 KB each: 67 MB); a twin
faster still resends fewer than the window's wall seconds."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS periods (
    step     INTEGER PRIMARY KEY,
    now      TEXT NOT NULL,
    stamped  REAL NOT NULL,
    payloads BLOB NOT NULL
);
"""


def sent_log_path(home: Path, sector: str) -> Path:
    """Where the twin of `sector` logs what it publishes under the data directory."""
    return home / "twins" / f"{sector}.sent.sqlite"


@dataclass(frozen=True)
class LoggedPeriod:
    """One report period as published: the twin's clock after it, when it was stamped, its batches."""

    step: int
    now: datetime
    stamped: float
    payloads: tuple[bytes, ...]


def _pack(payloads: list[bytes]) -> bytes:
    return json.dumps([p.decode() for p in payloads]).encode()


def _unpack(blob: bytes) -> tuple[bytes, ...]:
    return tuple(p.encode() for p in json.loads(blob))


class SentLog:
    """The periods a twin published in the last `window_s` wall seconds (one writer: the twin)."""

    def __init__(self, path: Path, *, window_s: float = RESEND_WINDOW_S, max_periods: int = MAX_PERIODS) -> None:
        if window_s < 0 or max_periods < 1:
            raise ConfigError("a sent log needs a window of at least 0 s and room for at least one period")
        self.path, self.window_s, self.max_periods = path, window_s, max_periods
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT MAX(step) FROM periods").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"the twin's sent log {path} is damaged ({exc}): move it aside") from None
        self._next = 1 if row[0] is None else int(row[0]) + 1

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(self, now: datetime, stamped: float, payloads: list[bytes]) -> int:
        """Log one period (committed when this returns) and prune what fell out of the window."""
        step = self._next
        cutoff = stamped - self.window_s
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT INTO periods(step, now, stamped, payloads) VALUES (?, ?, ?, ?)",
                             (step, now.isoformat(), stamped, _pack(payloads)))
            self._db.execute("DELETE FROM periods WHERE step <= ? AND (stamped < ? OR step <= ?)",
                             (step - 1, cutoff, step - self.max_periods))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._next = step + 1
        return step

    def recent(self) -> list[LoggedPeriod]:
        """The periods to resend, oldest first: those stamped within the window before the last one."""
        last = self._db.execute("SELECT MAX(stamped) FROM periods").fetchone()[0]
        if last is None:
            return []
        rows = self._db.execute("SELECT step, now, stamped, payloads FROM periods WHERE stamped >= ? ORDER BY step",
                                (float(last) - self.window_s,)).fetchall()
        try:
            return [LoggedPeriod(int(s), datetime.fromisoformat(n), float(t), _unpack(p)) for s, n, t, p in rows]
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"the twin's sent log {self.path} is damaged ({exc}): move it aside") from None

    def last_clock(self) -> datetime | None:
        """The twin's clock after the last period logged (None: nothing logged)."""
        row = self._db.execute("SELECT now FROM periods ORDER BY step DESC LIMIT 1").fetchone()
        if row is None:
            return None
        try:
            return datetime.fromisoformat(str(row[0]))
        except ValueError as exc:
            raise ConfigError(f"the twin's sent log {self.path} is damaged ({exc}): move it aside") from None

    def clear(self) -> None:
        """Forget every period: the twin starts a new timeline (an explicit ``--start``)."""
        self._db.execute("DELETE FROM periods")
