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
import re
import sqlite3
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
_STAMP_RE = re.compile(re.escape(_STAMP))
_CACHE_MAX = 1_000_000  # sensors with a slot; past it all slots are forgotten (bounds kept as the floor)


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

    A chunk is judged as a whole, in numpy: each sensor has a slot (its identity bytes → slot, the
    only per-reading Python left), the bounds are an array by slot, and repeats inside the chunk are
    found by one stable sort on (slot, time). Only readings not newer than their bound are looked up.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._floor = self._max_time()
        self._slot_of: dict[bytes, int] = {}  # identity bytes → slot
        self._used = 0
        self._sensor = np.zeros(1024, dtype=np.int64)  # slot → sensor_key
        self._latest = np.full(1024, self._floor, dtype=np.int64)  # slot → bound of its latest time stored

    def _reset_slots(self) -> None:
        """Forget every sensor's slot; the bounds fold into the floor, so they stay upper bounds."""
        if self._used:
            self._floor = max(self._floor, int(self._latest[:self._used].max()))
        self._slot_of = {}
        self._used = 0
        self._sensor = np.zeros(1024, dtype=np.int64)
        self._latest = np.full(1024, self._floor, dtype=np.int64)

    def _max_time(self) -> int:
        row = self._db.execute("SELECT MAX(time_ms) FROM seen").fetchone()
        return -1 if row[0] is None else int(row[0])

    def _stored(self, sensor: int, time_ms: int) -> int | None:
        row = self._db.execute("SELECT id FROM seen WHERE sensor = ? AND time_ms = ?", (sensor, time_ms)).fetchone()
        return None if row is None else int(row[0])

    def _slots(self, readings: EncodedReadings) -> np.ndarray:
        """Each reading's sensor slot (a new sensor gets one, bounded by the floor)."""
        blob, ends = readings.bodies, readings.ends.tolist()
        starts = [0, *ends[:-1]]
        stamps = [m.start() for m in _STAMP_RE.finditer(blob)]
        if len(stamps) != len(ends) or not all(s <= t < e for s, t, e in zip(starts, stamps, ends, strict=True)):
            # not one stamp per body: find each body's own (as `sensor_key` does; it raises on none)
            stamps = [blob.find(_STAMP, s, e) for s, e in zip(starts, ends, strict=True)]
            if -1 in stamps:
                raise ValueError("not a canonical reading body: it has no timestamp")
        if len(self._slot_of) + len(ends) > _CACHE_MAX:
            self._reset_slots()
        get = self._slot_of.get
        identities = [blob[s:t] for s, t in zip(starts, stamps, strict=True)]
        slots = [get(x, -1) for x in identities]
        if -1 in slots:
            for i, slot in enumerate(slots):
                if slot < 0:
                    slots[i] = self._new_slot(identities[i])
        return np.array(slots, dtype=np.int64)

    def _new_slot(self, identity: bytes) -> int:
        slot = self._slot_of.get(identity)
        if slot is not None:  # an earlier reading of this chunk gave it one
            return slot
        slot = self._slot_of[identity] = self._used
        self._used += 1
        if slot >= len(self._sensor):
            self._sensor = np.concatenate([self._sensor, np.zeros(len(self._sensor), dtype=np.int64)])
            self._latest = np.concatenate([self._latest, np.full(len(self._latest), self._floor, dtype=np.int64)])
        self._sensor[slot] = _digest(identity)
        return slot

    def admit(self, first: int, readings: EncodedReadings, read_body: Callable[[int], bytes]) -> Admitted:
        """Drop readings whose (sensor, time) is stored already or earlier in this chunk, and index the
        rest from arrival number `first` (inside the caller's transaction, with their chunk).

        `read_body(arrival)` fetches a stored body, to tell an exact repeat from a conflict; it is
        called only for repeats, which are rare.
        """
        n = len(readings)
        if n == 0:
            return Admitted(first, readings, [], 0, [])
        slots = self._slots(readings)
        times = np.frombuffer(readings.times_ms, dtype=np.uint64).astype(np.int64)
        # the first reading of each (sensor, time) in the chunk: a stable sort keeps arrival order in a key
        order = np.lexsort((times, slots))
        s_sorted, t_sorted = slots[order], times[order]
        opens = np.ones(n, dtype=bool)
        opens[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
        origin = np.empty(n, dtype=np.int64)  # per reading: the index of its key's first reading
        origin[order] = order[opens][np.cumsum(opens) - 1]
        is_first = origin == np.arange(n)
        newer = times > self._latest[slots]  # newer than anything of its sensor stored: not in the table
        kept = is_first & newer
        stored_ids: dict[int, int] = {}
        for i in np.flatnonzero(is_first & ~newer).tolist():  # not newer than its bound: look it up
            found = self._stored(int(self._sensor[slots[i]]), int(times[i]))
            if found is None:
                kept[i] = True  # late but new
            else:
                stored_ids[i] = found
        keep = np.flatnonzero(kept)
        ids = np.empty(n, dtype=np.int64)
        ids[keep] = first + np.arange(len(keep), dtype=np.int64)
        for i, found in stored_ids.items():
            ids[i] = found
        ids = ids[origin]  # a repeat inside the chunk takes the number of its key's first reading
        conflicts: list[Conflict] = []
        if len(keep) < n:
            for i in np.flatnonzero(~kept).tolist():
                o = int(origin[i])
                kept_body = readings.body(o) if kept[o] else read_body(int(ids[i]))
                body = readings.body(i)
                if kept_body != body:
                    conflicts.append(Conflict(int(ids[i]), kept_body, body))
        np.maximum.at(self._latest, slots[keep], times[keep])
        self._db.executemany("INSERT INTO seen(sensor, time_ms, id) VALUES (?, ?, ?)",
                             zip(self._sensor[slots[keep]].tolist(), times[keep].tolist(), ids[keep].tolist(),
                                 strict=True))
        return Admitted(first, subset(readings, keep.tolist()), ids.tolist(), n - len(keep), conflicts)

    def backfill(self, bodies: list[tuple[int, bytes]]) -> None:
        """Index readings stored before this index existed (a store from an older release); first wins."""
        rows = []
        for arrival, body in bodies:
            time_ms = timestamp_ms(reading_from_body(body).timestamp)
            rows.append((sensor_key(body), time_ms, arrival))
        self._db.executemany("INSERT OR IGNORE INTO seen(sensor, time_ms, id) VALUES (?, ?, ?)", rows)
        self._floor = self._max_time()
        self._used = 0  # the bounds restart from the new floor
        self._reset_slots()
