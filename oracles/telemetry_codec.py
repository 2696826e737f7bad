"""Readings checked and encoded in bulk: canonical bodies, leaves and columns for the telemetry store.

`encode_readings` takes `Reading` models (already validated by pydantic). `SensorCatalogue.encode`
is the fast path for a stream of samples from known sensors, as an oracle receives them from its
field devices: the sensors' identity fields (sector, asset, sensor, quantity, unit) are validated
once, by constructing a `Reading` with the same pydantic rules, and each sample then only needs
its value (finite: the same rule as `Reading.value`) and its timestamp (whole milliseconds, UTC,
within the range a `datetime` and a uint64 can hold). Both paths produce byte-identical bodies
(``reading_body``) and leaves (scheme ``qeaims-telemetry-leaf-v1``), tested side by side.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from core.messages import Reading
from keys.ids import to_bytes32
from oracles.hashing import leaves_of
from oracles.merkle import reading_body, timestamp_ms

__all__ = ["MAX_TIMESTAMP_MS", "EncodedReadings", "SensorCatalogue", "encode_readings", "iso_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP_MS = int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) / timedelta(milliseconds=1))
"""The last millisecond a `datetime` can hold (and well inside a uint64)."""
_STAMP_PROBE = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class EncodedReadings:
    """n readings as the store keeps them: bodies back to back, and one column per field it needs."""

    bodies: bytes
    ends: array[int]  # 'Q': cumulative end offset of each body
    times_ms: array[int]  # 'Q'
    asset_names: tuple[str, ...]  # distinct assets of these readings
    asset_ix: array[int]  # 'H': each reading's asset, as an index into asset_names
    leaves: bytes  # 32 bytes per reading

    def __len__(self) -> int:
        return len(self.ends)

    def body(self, i: int) -> bytes:
        return self.bodies[self.ends[i - 1] if i else 0:self.ends[i]]

    def leaf(self, i: int) -> bytes:
        return self.leaves[32 * i:32 * i + 32]


def _columns(bodies: Sequence[bytes], assets: Sequence[str], times: Sequence[int]) -> EncodedReadings:
    names: dict[str, int] = {}
    asset_ix = array("H", [names.setdefault(a, len(names)) for a in assets])
    words = [to_bytes32(a) for a in names]
    ends = array("Q", itertools.accumulate(map(len, bodies)))
    blob = b"".join(bodies)
    times_ms = array("Q", times)
    leaves = leaves_of(blob, ends, b"".join([words[i] for i in asset_ix]), times_ms)
    return EncodedReadings(blob, ends, times_ms, tuple(names), asset_ix, leaves)


def encode_readings(readings: Sequence[Reading]) -> EncodedReadings:
    """Bodies, columns and leaves of validated `Reading` models."""
    if len({r.asset_id for r in readings}) > 65_535:
        raise ValueError("at most 65,535 distinct assets per chunk of readings")
    return _columns([reading_body(r) for r in readings], [r.asset_id for r in readings],
                    [timestamp_ms(r.timestamp) for r in readings])


class SensorCatalogue:
    """The sensors an oracle takes samples from, each checked once as a `Reading` would check it.

    A sensor is ``(sector, asset_id, sensor_id, quantity, unit)``. Raises pydantic's
    ValidationError (a ValueError) for any sensor a `Reading` would refuse.
    """

    def __init__(self, sensors: Sequence[tuple[str, str, str, str, str]]) -> None:
        if not 0 < len(sensors) <= 65_535:
            raise ValueError("a catalogue holds 1 to 65,535 sensors")
        heads: list[str] = []
        tails: list[str] = []
        names: dict[str, int] = {}
        asset_of: list[int] = []
        for sector, asset_id, sensor_id, quantity, unit in sensors:
            probe = Reading.model_validate({"sector": sector, "asset_id": asset_id, "sensor_id": sensor_id,
                                            "quantity": quantity, "unit": unit, "value": 0.0, "timestamp": _EPOCH})
            body = reading_body(probe).decode()
            # Quotes inside JSON strings are escaped, so these unescaped separators are structural.
            stamp = body.index(f',"timestamp":"{_STAMP_PROBE}"')
            value = body.rindex(',"value":')
            heads.append(body[:stamp] + ',"timestamp":"')
            tails.append('"' + body[stamp + len(f',"timestamp":"{_STAMP_PROBE}"'):value] + ',"value":')
            asset_of.append(names.setdefault(probe.asset_id, len(names)))
        self.sensors = tuple(sensors)
        self._heads = heads
        self._tails = tails
        self._ascii = all(s.isascii() for s in heads + tails)
        self._asset_names = tuple(names)
        self._asset_of = asset_of
        self._words = [to_bytes32(a) for a in names]
        self._seconds: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.sensors)

    def _second(self, second: int) -> str:
        text = self._seconds.get(second)
        if text is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            text = (_EPOCH + timedelta(seconds=second)).isoformat()[:19]
            self._seconds[second] = text
        return text

    def encode(self, sensor: npt.ArrayLike, value: npt.ArrayLike, time_ms: npt.ArrayLike) -> EncodedReadings:
        """Check and encode samples: reading k is sensor ``sensor[k]`` reading ``value[k]`` at ``time_ms[k]``.

        Raises ValueError naming the first bad sample: a sensor index outside the catalogue, a value
        that is not a finite number, or a time that is not whole milliseconds in 1970..9999 UTC.
        """
        ix = np.asarray(sensor)
        values = np.asarray(value, dtype=np.float64)
        times = np.asarray(time_ms)
        n = len(ix)
        if ix.shape != (n,) or values.shape != (n,) or times.shape != (n,):
            raise ValueError("sensor, value and time_ms must be flat and of one length")
        if n and (ix.dtype.kind not in "iu" or times.dtype.kind not in "iu"):
            raise ValueError("sensor indexes and millisecond times must be integers")
        _first_bad(n, (ix < 0) | (ix >= len(self.sensors)), "sensor index outside the catalogue")
        _first_bad(n, ~np.isfinite(values), "value is not a finite number")
        _first_bad(n, (times < 0) | (times > MAX_TIMESTAMP_MS), "time is outside 1970..9999 UTC")
        sensors: list[int] = ix.tolist()
        stamps: list[int] = times.tolist()
        heads, tails, second = self._heads, self._tails, self._second
        stamp = {t: f"{second(t // 1000)}{'Z' if t % 1000 == 0 else f'.{t % 1000:03d}000Z'}"
                 for t in np.unique(times).tolist()}  # a sweep of sensors shares a few timestamps
        parts = [f"{heads[s]}{stamp[t]}{tails[s]}{v!r}}}" for s, t, v in zip(sensors, stamps, values.tolist(), strict=True)]
        if self._ascii:
            blob = "".join(parts).encode("ascii")
            ends = array("Q", itertools.accumulate(map(len, parts)))
        else:
            encoded = [p.encode() for p in parts]
            blob = b"".join(encoded)
            ends = array("Q", itertools.accumulate(map(len, encoded)))
        asset_of = self._asset_of
        asset_ix = array("H", [asset_of[s] for s in sensors])
        words = self._words
        times_ms = array("Q", stamps)
        leaves = leaves_of(blob, ends, b"".join([words[a] for a in asset_ix]), times_ms)
        return EncodedReadings(blob, ends, times_ms, self._asset_names, asset_ix, leaves)


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds (``2026-11-26T05:00:00.000Z``)."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _first_bad(n: int, bad: npt.NDArray[np.bool_], what: str) -> None:
    if n and bool(bad.any()):
        raise ValueError(f"sample {int(np.argmax(bad))}: {what}")
