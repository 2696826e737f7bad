"""Each reading stored once: the telemetry store's index of (sensor, field time) it already holds.

A reading can reach an oracle twice. The twin saves its clock after it publishes a report period,
so a twin killed in between publishes that period again when it restarts; an MQTT QoS 1 broker
redelivers a message whose acknowledgement it did not get. The project's rule is that a crash or a
restart applies no event twice, so the store (`oracles.telemetry`) keeps the first reading of each
(sensor, field time) and drops any later one before it gets an arrival number: a repeat is never
sealed into a batch, anchored, or replayed to the detectors (they read the store by arrival number).

The key of a reading is a 16-byte BLAKE2b digest of its canonical body (`oracles.merkle`) without
its value: ``sector, asset_id, quantity, sensor_id, timestamp, unit``. The ``seen`` table maps the
key to the arrival number of the reading kept, in the same transaction as its chunk, so the index
is exactly as durable as the readings. A repeat whose value differs from the reading kept is a
*conflict*: the device or the twin said two things about one moment. The first stays (it may
already be anchored); the conflict is reported to the caller, which logs it.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from oracles.telemetry_codec import EncodedReadings

__all__ = ["SEEN_SCHEMA", "Admitted", "Conflict", "admit", "backfill", "reading_key", "subset"]

SEEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (key BLOB PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
"""

_VALUE = b',"value":'
_LOOKUP = 400  # keys per SELECT (well under SQLite's limit of bound parameters)


def reading_key(body: bytes) -> bytes:
    """The (sensor, field time) identity of a canonical reading body: everything but the value."""
    cut = body.rfind(_VALUE)
    if cut < 0:
        raise ValueError("not a canonical reading body: it has no value")
    return hashlib.blake2b(body[:cut], digest_size=16).digest()


@dataclass(frozen=True)
class Conflict:
    """A repeat of a stored reading with another value: the stored one (kept) and the one dropped."""

    kept_id: int
    kept: bytes
    dropped: bytes


@dataclass(frozen=True)
class Admitted:
    """What `admit` made of a chunk: the readings to store and each input's arrival number."""

    first: int  # the arrival number of kept[0]; the kept readings are numbered on from it
    kept: EncodedReadings
    ids: list[int]  # per input reading: its own new number, or the number of the reading it repeats
    repeats: int  # inputs dropped as repeats (conflicts included)
    conflicts: list[Conflict]


def subset(readings: EncodedReadings, keep: list[int]) -> EncodedReadings:
    """Readings `keep` (indexes, in order) of an encoded chunk, without encoding anything again."""
    if len(keep) == len(readings):
        return readings
    bodies = [readings.body(i) for i in keep]
    names: dict[str, int] = {}
    asset_ix = array("H", [names.setdefault(readings.asset_names[readings.asset_ix[i]], len(names)) for i in keep])
    return EncodedReadings(
        bodies=b"".join(bodies), ends=array("Q", itertools.accumulate(map(len, bodies))),
        times_ms=array("Q", [readings.times_ms[i] for i in keep]), asset_names=tuple(names), asset_ix=asset_ix,
        leaves=b"".join(readings.leaf(i) for i in keep))


def _known(db: sqlite3.Connection, keys: list[bytes]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    unique = list(dict.fromkeys(keys))
    for lo in range(0, len(unique), _LOOKUP):
        part = unique[lo:lo + _LOOKUP]
        marks = ",".join("?" * len(part))
        found.update((bytes(k), int(i)) for k, i in db.execute(f"SELECT key, id FROM seen WHERE key IN ({marks})", part))
    return found


def admit(db: sqlite3.Connection, first: int, readings: EncodedReadings,
          read_body: Callable[[int], bytes]) -> Admitted:
    """Drop readings whose key is stored already (or earlier in this chunk), and index the rest from
    arrival number `first` (inside the caller's transaction, with their chunk).

    `read_body(arrival)` fetches a stored body, to tell an exact repeat from a conflict; it is called
    only for repeats, which are rare.
    """
    keys = [reading_key(readings.body(i)) for i in range(len(readings))]
    known = _known(db, keys)
    fresh: dict[bytes, tuple[int, int]] = {}  # key → (index in this chunk, arrival number) of the one kept
    keep: list[int] = []
    ids: list[int] = []
    conflicts: list[Conflict] = []
    for i, key in enumerate(keys):
        body = readings.body(i)
        if key in known:
            kept_id = known[key]
            kept = read_body(kept_id)
        elif key in fresh:
            j, kept_id = fresh[key]
            kept = readings.body(j)
        else:
            fresh[key] = (i, first + len(keep))
            ids.append(first + len(keep))
            keep.append(i)
            continue
        if kept != body:
            conflicts.append(Conflict(kept_id, kept, body))
        ids.append(kept_id)
    db.executemany("INSERT INTO seen(key, id) VALUES (?, ?)", [(keys[i], first + n) for n, i in enumerate(keep)])
    return Admitted(first, subset(readings, keep), ids, len(readings) - len(keep), conflicts)


def backfill(db: sqlite3.Connection, bodies: list[tuple[int, bytes]]) -> None:
    """Index readings stored before this index existed (a store from an older release); first wins."""
    db.executemany("INSERT OR IGNORE INTO seen(key, id) VALUES (?, ?)", [(reading_key(b), i) for i, b in bodies])
