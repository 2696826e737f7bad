"""`oracles.telemetry_view`: readings written by a real `TelemetryStore`, read back without writing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.messages import Reading, Sector
from oracles.merkle import timestamp_ms
from oracles.telemetry import TelemetryStore, telemetry_path
from oracles.telemetry_view import recent_readings

T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
ORACLE = "0x" + "ab" * 20


def _reading(i: int, asset: str, sensor: str) -> Reading:
    return Reading(sector=Sector.WATER, asset_id=asset, sensor_id=sensor, quantity="pressure", unit="bar",
                   value=1.0 + i / 100, timestamp=T0 + timedelta(seconds=i))


def _store(home: Path) -> Path:
    """60 readings in three chunks: junction:10 (sensors a, b alternate) and junction:15 interleaved."""
    path = telemetry_path(home, ORACLE)
    store = TelemetryStore(path, ORACLE, batch_size=16)
    try:
        for part in range(3):
            store.add_many([_reading(i, "junction:10" if i % 3 else "junction:15", "a" if i % 2 else "b")
                            for i in range(20 * part, 20 * part + 20)])
        store.seal(force=True)
    finally:
        store.close()
    return path


def _digest(path: Path) -> str:
    """The database file's bytes (an empty WAL the writer left may go when the last reader closes)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_assets_newest_readings_oldest_first_and_the_store_unchanged(tmp_path: Path) -> None:
    path = _store(tmp_path)
    before = _digest(path)
    got = recent_readings(path, "junction:10", limit=5)
    expected = [i for i in range(60) if i % 3][-5:]
    assert [r.arrival for r in got] == [i + 1 for i in expected]
    assert [r.time_ms for r in got] == [timestamp_ms(T0 + timedelta(seconds=i)) for i in expected]
    assert [r.value for r in got] == [1.0 + i / 100 for i in expected]
    assert [r.sensor for r in got] == ["a" if i % 2 else "b" for i in expected]
    assert {(r.quantity, r.unit) for r in got} == {("pressure", "bar")}
    assert _digest(path) == before
    again = TelemetryStore(path, ORACLE, batch_size=16)  # the writer finds its store as it left it
    try:
        assert again.pending_count() == 0 and len(again.batches()) == 4 and again.sealed_through == 60
    finally:
        again.close()


def test_one_sensor_and_a_bounded_scan(tmp_path: Path) -> None:
    path = _store(tmp_path)
    only_b = recent_readings(path, "junction:10", sensor="b", limit=100)
    assert [r.arrival - 1 for r in only_b] == [i for i in range(60) if i % 3 and i % 2 == 0]
    # the newest 10 arrivals only: 50..59, of which junction:10's
    assert [r.arrival - 1 for r in recent_readings(path, "junction:10", scan=10)] == [i for i in range(50, 60) if i % 3]
    assert recent_readings(path, "junction:99") == []
    assert recent_readings(path, "junction:10", sensor="zz") == []


def test_no_store_and_bad_bounds_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no telemetry store"):
        recent_readings(tmp_path / "absent.sqlite", "junction:10")
    path = _store(tmp_path)
    with pytest.raises(ConfigError, match="at least 1"):
        recent_readings(path, "junction:10", limit=0)
    assert not (tmp_path / "absent.sqlite").exists()
