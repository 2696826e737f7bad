"""How `oracles.telemetry` keeps readings in SQLite: one row per accepted chunk, columns as blobs.

A chunk row holds readings ``first_id .. first_id + count - 1``: ``bodies`` (canonical JSON back to
back), ``ends`` (uint64 little-endian end offset of each body), ``leaves`` (32 bytes each),
``times`` (uint64 milliseconds), ``assets`` (JSON list of the distinct asset ids) and ``asset_ix``
(uint16 index into ``assets`` per reading), in that column order: the bodies come last because
SQLite walks a row's overflow pages to reach later columns, and sealing reads only the small ones. Anything that does not fit this shape, say a row that
was edited behind the store's back, is reported as `ChunkDamaged`.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from array import array
from dataclasses import dataclass

from oracles.telemetry_codec import EncodedReadings

__all__ = [
    "CHUNK_SCHEMA", "MAX_CHUNK", "ChunkDamaged", "Columns", "Span", "read_bodies", "read_body", "read_columns", "read_span",
    "write_chunks",
]

MAX_CHUNK = 16_384
"""Readings per chunk row at most (a bigger `add_many` writes several rows in its one transaction)."""

CHUNK_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    first_id INTEGER PRIMARY KEY,
    count    INTEGER NOT NULL,
    leaves   BLOB NOT NULL,
    times    BLOB NOT NULL,
    asset_ix BLOB NOT NULL,
    assets   TEXT NOT NULL,
    ends     BLOB NOT NULL,
    bodies   BLOB NOT NULL
);
"""


class ChunkDamaged(ValueError):
    """A chunk row is not what the store wrote (wrong sizes, not contiguous, unreadable)."""


@dataclass(frozen=True)
class Columns:
    """Leaves, times and assets of readings ``lo .. lo + len - 1``."""

    lo: int
    leaves: list[bytes]
    times: list[int]
    assets: list[str]


def _le(kind: str, blob: bytes) -> array[int]:
    values = array(kind)
    values.frombytes(blob)
    if sys.byteorder != "little":  # pragma: no cover - stored little-endian everywhere
        values.byteswap()
    return values


def _raw(value: bytes | str) -> bytes:
    """A BLOB column as bytes, even if someone rewrote it as TEXT."""
    return value.encode() if isinstance(value, str) else bytes(value)


def write_chunks(db: sqlite3.Connection, first: int, readings: EncodedReadings) -> None:
    """Insert the readings as chunk rows from arrival number `first` (inside the caller's transaction)."""
    n = len(readings)
    names = json.dumps(list(readings.asset_names), separators=(",", ":"), ensure_ascii=False)
    rows = []
    for lo in range(0, n, MAX_CHUNK):
        hi = min(n, lo + MAX_CHUNK)
        start = readings.ends[lo - 1] if lo else 0
        ends = array("Q", [e - start for e in readings.ends[lo:hi]])
        if sys.byteorder != "little":  # pragma: no cover
            ends.byteswap()
        times = array("Q", readings.times_ms[lo:hi])
        ix = array("H", readings.asset_ix[lo:hi])
        if sys.byteorder != "little":  # pragma: no cover
            times.byteswap()
            ix.byteswap()
        rows.append((first + lo, hi - lo, readings.bodies[start:readings.ends[hi - 1]], ends.tobytes(),
                     readings.leaves[32 * lo:32 * hi], times.tobytes(), names, ix.tobytes()))
    db.executemany("INSERT INTO chunks(first_id, count, bodies, ends, leaves, times, assets, asset_ix) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _covering(db: sqlite3.Connection, columns: str, lo: int, hi: int) -> list[tuple[object, ...]]:
    """Chunk rows that hold readings lo..hi, checked to be contiguous and to cover the whole range."""
    start = db.execute("SELECT MAX(first_id) FROM chunks WHERE first_id <= ?", (lo,)).fetchone()[0]
    rows = [] if start is None else db.execute(
        f"SELECT first_id, count, {columns} FROM chunks WHERE first_id BETWEEN ? AND ? ORDER BY first_id",
        (start, hi)).fetchall()
    expect = None if not rows else int(rows[0][0])
    for row in rows:
        if int(row[0]) != expect or int(row[1]) < 1:
            raise ChunkDamaged(f"readings around {expect} are missing: the chunks are not contiguous")
        expect = int(row[0]) + int(row[1])
    if not rows or int(rows[0][0]) > lo or expect is None or expect <= hi:
        raise ChunkDamaged(f"readings {lo}..{hi} are not all stored")
    return rows


@dataclass(frozen=True)
class Span:
    """What sealing readings ``lo .. hi`` needs: their leaves back to back, time range and assets."""

    leaves: bytes
    first_ms: int
    last_ms: int
    assets: frozenset[str]


def read_span(db: sqlite3.Connection, lo: int, hi: int) -> Span:
    """Leaves (one blob), earliest and latest time and the distinct assets of readings lo..hi."""
    leaves: list[bytes] = []
    firsts: list[int] = []
    lasts: list[int] = []
    assets: set[str] = set()
    for first, count, leaf_blob, time_blob, names_json, ix_blob in _covering(
            db, "leaves, times, assets, asset_ix", lo, hi):
        first, count = int(str(first)), int(str(count))
        leaf_bytes, time_bytes, ix_bytes = _raw(leaf_blob), _raw(time_blob), _raw(ix_blob)  # type: ignore[arg-type]
        if len(leaf_bytes) != 32 * count or len(time_bytes) != 8 * count or len(ix_bytes) != 2 * count:
            raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has columns of the wrong size")
        a, b = max(lo, first) - first, min(hi, first + count - 1) - first + 1
        leaves.append(leaf_bytes[32 * a:32 * b])
        times = _le("Q", time_bytes[8 * a:8 * b])
        firsts.append(min(times))
        lasts.append(max(times))
        try:
            names = [str(x) for x in json.loads(str(names_json))]
            assets.update(names[i] for i in set(_le("H", ix_bytes[2 * a:2 * b])))
        except (ValueError, IndexError, TypeError) as exc:
            raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has unreadable assets") from exc
    return Span(b"".join(leaves), min(firsts), max(lasts), frozenset(assets))


def read_columns(db: sqlite3.Connection, lo: int, hi: int) -> Columns:
    """Leaves, times and assets of readings lo..hi (inclusive)."""
    leaves: list[bytes] = []
    times: list[int] = []
    assets: list[str] = []
    for first, count, leaf_blob, time_blob, names_json, ix_blob in _covering(
            db, "leaves, times, assets, asset_ix", lo, hi):
        first, count = int(str(first)), int(str(count))
        leaf_bytes, time_bytes, ix_bytes = _raw(leaf_blob), _raw(time_blob), _raw(ix_blob)  # type: ignore[arg-type]
        if len(leaf_bytes) != 32 * count or len(time_bytes) != 8 * count or len(ix_bytes) != 2 * count:
            raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has columns of the wrong size")
        try:
            names = [str(a) for a in json.loads(str(names_json))]
            chunk_assets = [names[i] for i in _le("H", ix_bytes)]
        except (ValueError, IndexError, TypeError) as exc:
            raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has unreadable assets") from exc
        a, b = max(lo, first) - first, min(hi, first + count - 1) - first + 1
        leaves.extend(leaf_bytes[32 * i:32 * i + 32] for i in range(a, b))
        times.extend(_le("Q", time_bytes)[a:b])
        assets.extend(chunk_assets[a:b])
    return Columns(lo, leaves, times, assets)


def read_bodies(db: sqlite3.Connection, lo: int, hi: int) -> list[bytes]:
    """The stored bodies of readings lo..hi (inclusive), each chunk read once.

    The oracle's judge reads back every reading it stores: reading the whole chunk once per reading
    made that quadratic in the chunk's size (a gateway batch of 255 readings is one chunk), and it
    was most of an oracle's time.
    """
    out: list[bytes] = []
    for first, count, bodies, ends_blob in _covering(db, "bodies, ends", lo, hi):
        first, count = int(str(first)), int(str(count))
        body_bytes, ends_bytes = _raw(bodies), _raw(ends_blob)  # type: ignore[arg-type]
        if len(ends_bytes) != 8 * count:
            raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has the wrong body offsets")
        ends = _le("Q", ends_bytes)
        for k in range(max(lo, first) - first, min(hi, first + count - 1) - first + 1):
            start, end = (ends[k - 1] if k else 0), ends[k]
            if not start <= end <= len(body_bytes):
                raise ChunkDamaged(f"the chunk of readings {first}..{first + count - 1} has the wrong body offsets")
            out.append(body_bytes[start:end])
    return out


def read_body(db: sqlite3.Connection, arrival: int) -> bytes:
    """The stored body of one reading."""
    return read_bodies(db, arrival, arrival)[0]
