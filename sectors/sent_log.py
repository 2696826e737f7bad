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

What is resent. Each period is marked *published* once the broker acknowledged it. The resend holds
every period not marked (logged ahead, never acknowledged: the twin died or lost the broker first)
and the published ones within the window before the last published period, so a twin whose next
period came after the broker died (and found it still down) still resends what the broker lost
(review s40, finding 2). The window is measured on the monotonic clock (``time.monotonic``, one
clock for every process of a boot), not the wall clock, so an NTP step cannot shrink or stretch it;
a row whose monotonic time is above the anchor's (a reboot between them) is resent, to be safe
(finding 4).

One SQLite file per twin (``<home>/twins/<sector>.sent.sqlite``, WAL, ``synchronous=NORMAL``: a
commit survives the process being killed; a power cut may lose the last periods, as it would the
broker's queue). Rows hold the batch payloads without their trace (`bus.mqtt.encode_batch` without
``stamped``) and the wall time the period was stamped; the trace is added when a payload is sent, so
a resent batch shows how late it really is. Published rows out of the window (and any past
`MAX_PERIODS`) are pruned as periods are added. A damaged file is one ``error:`` line naming it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Self

from bus.mosquitto import AUTOSAVE_S
from core.errors import ConfigError

__all__ = ["MAX_PERIODS", "RESEND_WINDOW_S", "LoggedPeriod", "SentLog", "sent_log_path"]

RESEND_WINDOW_S = 3.0 * AUTOSAVE_S
"""Seconds of published periods resent after a restart or reconnect, counted back from the last one
the broker acknowledged: its save interval (what a kill can lose) with room for a slow save."""

MAX_PERIODS = 2_000
"""At most this many periods are kept, however fast the twin runs: the window holds 300 of banking's
at 600x (30 s periods) and 1,800 of electricity's (5 s periods, about 37 KB each: 67 MB); a twin
faster still resends fewer than the window's wall seconds."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS periods (
    step      INTEGER PRIMARY KEY,
    now       TEXT NOT NULL,
    stamped   REAL NOT NULL,
    mono      REAL NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,
    payloads  BLOB NOT NULL
);
"""


def sent_log_path(home: Path, sector: str) -> Path:
    """Where the twin of `sector` logs what it publishes under the data directory."""
    return home / "twins" / f"{sector}.sent.sqlite"


@dataclass(frozen=True)
class LoggedPeriod:
    """One report period as logged: the twin's clock after it, when it was stamped, its batches."""

    step: int
    now: datetime
    stamped: float
    payloads: tuple[bytes, ...]


def _pack(payloads: list[bytes]) -> bytes:
    return json.dumps([p.decode() for p in payloads]).encode()


def _unpack(blob: bytes) -> tuple[bytes, ...]:
    return tuple(p.encode() for p in json.loads(blob))


class SentLog:
    """The periods a twin logged and published lately (one writer: the twin)."""

    def __init__(self, path: Path, *, window_s: float = RESEND_WINDOW_S, max_periods: int = MAX_PERIODS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if window_s < 0 or max_periods < 1:
            raise ConfigError("a sent log needs a window of at least 0 s and room for at least one period")
        self.path, self.window_s, self.max_periods, self._clock = path, window_s, max_periods, clock
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._reading():
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(periods)")}
            for name, kind in (("mono", "REAL NOT NULL DEFAULT 0"), ("published", "INTEGER NOT NULL DEFAULT 0")):
                if name not in columns:  # a log written before the column existed: its rows count as unpublished
                    self._db.execute(f"ALTER TABLE periods ADD COLUMN {name} {kind}")
            row = self._db.execute("SELECT MAX(step) FROM periods").fetchone()
        self._next = 1 if row[0] is None else int(row[0]) + 1

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite's and the rows' own errors as the one line a user gets."""
        try:
            yield
        except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"the twin's sent log {self.path} is damaged ({exc}): move it aside") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(self, now: datetime, stamped: float, payloads: list[bytes]) -> int:
        """Log one period (committed when this returns) and prune what fell out of the window."""
        step = self._next
        with self._reading():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO periods(step, now, stamped, mono, payloads) VALUES (?, ?, ?, ?, ?)",
                                 (step, now.isoformat(), stamped, self._clock(), _pack(payloads)))
                self._prune(step)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._next = step + 1
        return step

    def _prune(self, newest: int) -> None:
        self._db.execute("DELETE FROM periods WHERE step <= ?", (newest - self.max_periods,))
        anchor = self._anchor()
        if anchor is not None:  # published, older than the window before the last published period
            step, mono = anchor
            self._db.execute("DELETE FROM periods WHERE published = 1 AND step < ? AND mono <= ? AND mono < ?",
                             (step, mono, mono - self.window_s))

    def _anchor(self) -> tuple[int, float] | None:
        row = self._db.execute("SELECT step, mono FROM periods WHERE published = 1 ORDER BY step DESC LIMIT 1"
                               ).fetchone()
        return None if row is None else (int(row[0]), float(row[1]))

    def mark_published(self, step: int) -> None:
        """The broker acknowledged every batch of period `step`."""
        with self._reading():
            self._db.execute("UPDATE periods SET published = 1 WHERE step = ?", (step,))

    def recent(self) -> list[LoggedPeriod]:
        """The periods to resend, oldest first: every one not yet published, and the published ones
        within the window (monotonic seconds) before the last published period."""
        with self._reading():
            anchor = self._anchor()
            if anchor is None:
                rows = self._db.execute("SELECT step, now, stamped, payloads FROM periods ORDER BY step").fetchall()
            else:
                step, mono = anchor
                rows = self._db.execute(
                    "SELECT step, now, stamped, payloads FROM periods WHERE published = 0 OR step >= ? OR mono > ? "
                    "OR mono >= ? ORDER BY step", (step, mono, mono - self.window_s)).fetchall()
            return [LoggedPeriod(int(s), datetime.fromisoformat(n), float(t), _unpack(p)) for s, n, t, p in rows]

    def last_clock(self) -> datetime | None:
        """The twin's clock after the last period logged (None: nothing logged)."""
        with self._reading():
            row = self._db.execute("SELECT now FROM periods ORDER BY step DESC LIMIT 1").fetchone()
            return None if row is None else datetime.fromisoformat(str(row[0]))

    def clear(self) -> None:
        """Forget every period: the twin starts a new timeline (an explicit ``--start``)."""
        with self._reading():
            self._db.execute("DELETE FROM periods")
