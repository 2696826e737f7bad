"""Each reading stored once: the telemetry store's index of (sensor, field time) it already holds.

A reading can reach an oracle twice. The twin saves its clock after it publishes a report period,
so a twin killed in between publishes that period again when it restarts; an MQTT QoS 1 broker
redelivers a message whose acknowledgement it did not get. The project's rule is that a crash or a
restart applies no event twice, so the store (`oracles.telemetry`) keeps the first reading of each
(sensor, field time) and drops any later one before it gets an arrival number: a repeat is never
sealed into a batch, anchored, or replayed to the detectors (they read the store by arrival number).

A reading's sensor is a 64-bit BLAKE2b digest of its canonical body (`oracles.merkle`) up to its
time (``asset_id, quantity, sector, sensor_id``; the unit goes with the quantity, and a repeat
whose unit or value differs is a conflict). The ``seen`` table maps (sensor,
field time in ms) to the arrival number of the reading kept, written in the same transaction as its
chunk, so the index is exactly as durable as the readings. Readings mostly arrive in time order per
sensor, so `SeenIndex` keeps each sensor's latest time in memory and looks a reading up only when it
is not newer than that. A repeat whose value differs from the reading kept is a
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

from oracles.merkle import reading_from_body, timestamp_ms
from oracles.telemetry_codec import EncodedReadings

__all__ = ["SEEN_SCHEMA", "Admitted", "Conflict", "SeenIndex", "sensor_key", "subset"]

SEEN_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    sensor  INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    PRIMARY KEY (time_ms, sensor)
) WITHOUT ROWID;
"""

_STAMP = b',"timestamp":"'
_CACHE_MAX = 100_000


def _digest(identity: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(identity, digest_size=8).digest(), "little", signed=True)


def sensor_key(body: bytes) -> int:
    """The sensor of a canonical reading body: a signed 64-bit digest of what precedes its time (the
    sorted keys ``asset_id, quantity, sector, sensor_id``). Strings in the body escape their quotes,
    so the first unescaped ``,"timestamp":"`` is the body's own."""
    stamp = body.find(_STAMP)
    if stamp < 0:
        raise ValueError("not a canonical reading body: it has no timestamp")
    return _digest(body[:stamp])


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


class SeenIndex:
    """The ``seen`` table of one store, and per sensor an upper bound of the latest field time stored,
    so a reading newer than that, the usual case, is known fresh without a lookup.

    The bound only has to be at least the true latest time: too high costs a lookup, never a wrong
    answer. It starts, for every sensor, as the latest time in the whole table (after a restart the
    readings up to it are looked up: that is where a republished period lands) and rises with each
    reading stored. The table is keyed (time, sensor) so a chunk's rows land next to each other at
    its end, not scattered over one page per sensor.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._latest: dict[int, int] = {}
        self._sensors: dict[bytes, int] = {}  # identity bytes → sensor_key
        self._floor = self._max_time()

    def _max_time(self) -> int:
        row = self._db.execute("SELECT MAX(time_ms) FROM seen").fetchone()
        return -1 if row[0] is None else int(row[0])

    def _stored(self, sensor: int, time_ms: int) -> int | None:
        row = self._db.execute("SELECT id FROM seen WHERE sensor = ? AND time_ms = ?", (sensor, time_ms)).fetchone()
        return None if row is None else int(row[0])

    def admit(self, first: int, readings: EncodedReadings, read_body: Callable[[int], bytes]) -> Admitted:
        """Drop readings whose (sensor, time) is stored already or earlier in this chunk, and index the
        rest from arrival number `first` (inside the caller's transaction, with their chunk).

        `read_body(arrival)` fetches a stored body, to tell an exact repeat from a conflict; it is
        called only for repeats, which are rare.
        """
        keep: list[int] = []
        rows: list[tuple[int, int, int]] = []  # (sensor, time, arrival number) of the readings kept
        ids: list[int] = []
        conflicts: list[Conflict] = []
        fresh: dict[tuple[int, int], int] | None = None  # (sensor, time) → index in rows; built when first needed
        blob, cache, latest_of, floor = readings.bodies, self._sensors, self._latest, self._floor
        start = 0
        for i, (end, time_ms) in enumerate(zip(readings.ends.tolist(), readings.times_ms.tolist(), strict=True)):
            identity = blob[start:blob.find(_STAMP, start, end)]  # the hot path: sensor_key, digest cached
            sensor = cache.get(identity)
            if sensor is None:
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                sensor = cache[identity] = sensor_key(blob[start:end])
            latest = latest_of.get(sensor, floor)
            if time_ms > latest:  # newer than anything of this sensor stored or kept here: new
                latest_of[sensor] = time_ms
                if fresh is not None:
                    fresh[(sensor, time_ms)] = len(rows)
                new_id = first + len(keep)
                ids.append(new_id)
                keep.append(i)
                rows.append((sensor, time_ms, new_id))
                start = end
                continue
            body = blob[start:end]
            start = end
            if fresh is None:
                fresh = {(r[0], r[1]): k for k, r in enumerate(rows)}
            k = fresh.get((sensor, time_ms))
            if k is not None:
                kept_id, kept = rows[k][2], readings.body(keep[k])
            else:
                stored = self._stored(sensor, time_ms)
                if stored is None:  # late but new
                    new_id = first + len(keep)
                    fresh[(sensor, time_ms)] = len(rows)
                    ids.append(new_id)
                    keep.append(i)
                    rows.append((sensor, time_ms, new_id))
                    continue
                kept_id, kept = stored, read_body(stored)
            if kept != body:
                conflicts.append(Conflict(kept_id, kept, body))
            ids.append(kept_id)
        self._db.executemany("INSERT INTO seen(sensor, time_ms, id) VALUES (?, ?, ?)", rows)
        return Admitted(first, subset(readings, keep), ids, len(readings) - len(keep), conflicts)

    def backfill(self, bodies: list[tuple[int, bytes]]) -> None:
        """Index readings stored before this index existed (a store from an older release); first wins."""
        rows = []
        for arrival, body in bodies:
            time_ms = timestamp_ms(reading_from_body(body).timestamp)
            rows.append((sensor_key(body), time_ms, arrival))
        self._db.executemany("INSERT OR IGNORE INTO seen(sensor, time_ms, id) VALUES (?, ?, ?)", rows)
        self._latest.clear()
        self._floor = self._max_time()
