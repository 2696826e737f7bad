"""The telemetry store keeps one reading per (sensor, field time): a twin that publishes a period again
after a restart, or a broker that redelivers a QoS 1 message, adds nothing twice (no chain needed)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from core.messages import Reading, Sector
from oracles.ingest.sink import ReadingSink
from oracles.merkle import reading_body, reading_from_body
from oracles.telemetry import LOGGER_NAME, SensorCatalogue, TelemetryStore
from oracles.telemetry_chunks import read_bodies
from qeaims.crash_checks import check_coverage, check_ledger
from tests.support import opened_db

ORACLE = "0x" + "ab" * 20
PERIOD_S = 30
T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SENSORS = [("banking", f"branch-{a}", f"branch-{a}/{q}", q, "") for a in range(6) for q in ("load", "queue", "atm")]


def period(k: int, *, bump: float = 0.0) -> list[Reading]:
    """Report period `k`: the 18 sensors' readings at T0 + k periods (as the twin publishes them)."""
    at = T0 + timedelta(seconds=PERIOD_S * k)
    return [Reading(sector=Sector(s), asset_id=a, sensor_id=sid, quantity=q, unit=u,
                    value=round(k + i / 100 + bump, 3), timestamp=at) for i, (s, a, sid, q, u) in enumerate(SENSORS)]


def stored_bodies(store: TelemetryStore) -> list[bytes]:
    with opened_db(store.path) as db:
        last = int(db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM chunks").fetchone()[0])
        return read_bodies(db, 1, last) if last else []


def test_a_period_delivered_twice_is_stored_once(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE, batch_size=1000)
    first = store.add_many(period(0) + period(1))
    again = store.add_many(period(1) + period(2))  # the restarted twin publishes period 1 again
    assert again[:18] == first[18:] and again[18:] == list(range(37, 55))
    assert store.pending_count() == 54 and store.repeats == 18 and store.conflicts == 0
    # the fast path drops the repeat too, and reports only the readings it stored
    catalogue = SensorCatalogue(SENSORS)
    ms = int((T0 + timedelta(seconds=2 * PERIOD_S)).timestamp() * 1000)
    assert len(store.add_encoded(catalogue.encode(list(range(18)), [2 + i / 100 for i in range(18)], [ms] * 18))) == 0
    bodies = stored_bodies(store)
    assert bodies == [reading_body(r) for r in period(0) + period(1) + period(2)]
    store.close()
    # the index is as durable as the readings: after a crash and a restart the repeat is still known
    reopened = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    assert reopened.add_many(period(2)) == list(range(37, 55)) and reopened.pending_count() == 54


def test_a_repeat_with_another_value_is_logged_and_not_stored(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    store.add_many(period(0))
    changed = period(0)
    changed[4] = changed[4].model_copy(update={"value": 99.5})
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        ids = store.add_many([changed[4], *period(1)])
    assert ids[0] == 5 and store.pending_count() == 36 and (store.repeats, store.conflicts) == (1, 1)
    assert reading_from_body(stored_bodies(store)[4]).value == period(0)[4].value  # the first one stays
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
    assert lines == [{"event": "reading-conflict", "oracle": ORACLE, "count": 1, "conflicts": 1,
                      "asset": "branch-1", "sensor": "branch-1/queue", "time": "2026-11-26T03:00:00Z",
                      "kept_id": 5, "kept_value": period(0)[4].value, "dropped_value": 99.5}]
    assert [r.levelname for r in caplog.records if r.name == LOGGER_NAME] == ["WARNING"]
    # two values for one moment inside one chunk: the first is kept, the second is a conflict
    twice = period(2)[:1] + [period(2, bump=1.0)[0]]
    assert store.add_many(twice) == [37, 37] and store.conflicts == 2 and store.pending_count() == 37


def test_batches_stay_numbered_and_contiguous_after_a_repeated_period(tmp_path: Path) -> None:
    """What `qeaims campaign crash` checks: batches 1..n on the ledger, and in the store each sensor once
    a period with none missing (`check_coverage`). Before the fix, the repeated period made 198 readings
    over 10 periods."""
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE, batch_size=24)  # batches cut periods part-way
    sink = ReadingSink()
    acks: list[int] = []
    for k in [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9]:  # period 4 republished by a restarted twin; 9 redelivered
        sink.put_many(period(k), source="mqtt", on_stored=partial(acks.append, k))
        sink.drain_into(store)
        store.seal(force=k % 3 == 0)
    store.seal(force=True)
    assert acks == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9]  # every delivery is acknowledged, stored or not
    # the judge replays the store by arrival number: it sees each reading once, in order
    assert stored_bodies(store) == [reading_body(r) for k in range(10) for r in period(k)]
    batches = store.batches()
    events = [{"oracle": ORACLE, "seq": b.batch, "kind": "telemetry-root", "sector": "banking",
               "payload": json.loads(b.payload)} for b in batches]
    result = check_ledger(events)
    assert result.ok, result.telemetry_problems
    seen = [(int(a), int(b)) for a, b in store._db.execute("SELECT sensor, time_ms FROM seen")]
    assert check_coverage(ORACLE, store.sealed_through, seen, PERIOD_S * 1000) == []
    assert result.telemetry_readings == 180 and [b.batch for b in batches] == list(range(1, len(batches) + 1))
    for ref in (f"{b.batch}:{i}" for b in batches for i in (0, b.count - 1)):
        assert store.proof(ref).verify()


def test_a_store_from_before_the_index_is_indexed_when_opened(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    store.add_many(period(0))
    store.close()
    with opened_db(tmp_path / "t.sqlite") as db:
        db.execute("DROP TABLE seen")
    reopened = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    assert reopened.add_many(period(0)) == list(range(1, 19)) and reopened.pending_count() == 18


def test_an_older_reading_is_looked_up_not_assumed_new_or_repeated(tmp_path: Path) -> None:
    """The index skips the lookup only for a reading newer than its sensor's latest: a late but new
    reading is stored, a late repeat is dropped, before and after a restart."""
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    store.add_many(period(0) + period(2))
    assert store.add_many(period(1)) == list(range(37, 55))  # late, not a repeat: stored
    assert store.add_many(period(0)) == list(range(1, 19)) and store.pending_count() == 54
    store.close()
    reopened = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    assert reopened.add_many(period(1) + period(3)) == [*range(37, 55), *range(55, 73)]
    assert reopened.pending_count() == 72 and reopened.repeats == 18
    assert stored_bodies(reopened)[54:] == [reading_body(r) for r in period(3)]


def test_repeats_inside_one_chunk_after_a_late_reading_are_caught(tmp_path: Path) -> None:
    """A late reading switches the index to its careful path part-way through a chunk; a repeat of a
    reading kept after that point in the same chunk is still a repeat."""
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    store.add_many(period(0) + period(2))
    late, new, again = period(1)[0], period(3)[0], period(3)[0]
    assert store.add_many([late, new, again]) == [37, 38, 38] and store.repeats == 1
    assert store.pending_count() == 38


def test_random_histories_keep_exactly_the_first_reading_of_each_sensor_and_time(tmp_path: Path) -> None:
    """The chunk is judged as a whole (numpy): against a plain first-wins dictionary, over random
    chunks with repeats inside and across chunks, late readings, conflicts and restarts."""
    import random

    rng = random.Random(7)
    store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
    model: dict[tuple[str, datetime], tuple[int, bytes]] = {}  # (sensor, time) → (arrival, body kept)
    conflicts = repeats = 0
    for chunk in range(30):
        readings = [Reading(sector=Sector("banking"), asset_id=f"branch-{s}", sensor_id=f"branch-{s}/load",
                            quantity="load", unit="", value=float(rng.randint(0, 2)),
                            timestamp=T0 + timedelta(seconds=rng.randint(max(0, chunk - 3), chunk + 2)))
                    for s in (rng.randint(0, 5) for _ in range(rng.randint(1, 40)))]
        expected: list[int] = []
        for r in readings:
            body, key = reading_body(r), (r.sensor_id, r.timestamp)
            if key in model:
                repeats += 1
                conflicts += model[key][1] != body
            else:
                model[key] = (len(model) + 1, body)
            expected.append(model[key][0])
        assert store.add_many(readings) == expected, chunk
        if rng.random() < 0.2:
            store.close()
            store = TelemetryStore(tmp_path / "t.sqlite", ORACLE)
            repeats = conflicts = 0
        assert (store.repeats, store.conflicts) == (repeats, conflicts)
    assert stored_bodies(store) == [body for _, body in sorted(model.values())]
