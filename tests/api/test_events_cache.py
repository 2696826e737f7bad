"""What `GET /events` and `GET /events/{block}/{log_index}` keep between requests is never stale: the key
history is rebuilt when the indexed head moves, and a memoised event row is keyed on all of its content."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

from api.routers.events import _key_history
from chain.event_query import EventFilters, query_events
from chain.indexer import _SCHEMA
from keys.ids import to_bytes32

ORACLE = "0x" + "11" * 20
REGISTRY = "0x" + "22" * 20


def _index(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("last_block", "5"), ("registry", REGISTRY)])
    db.execute("INSERT INTO oracle_keys VALUES (?, 1, x'00', '0x00', ?, '0x00', x'00', NULL, 1, 0)",
               (ORACLE, "0x" + to_bytes32("water").hex()))
    db.execute("INSERT INTO events VALUES (?, 1, 2, ?, 1, ?, 3, 0, ?, 1764900000)",
               (ORACLE, "0x" + to_bytes32("pump-1").hex(), b'{"pressure_bar": 0.4}', "0x" + "ab" * 32))
    db.commit()
    return db


def test_the_key_history_is_kept_per_head_and_rebuilt_when_the_head_moves(tmp_path: Path) -> None:
    db = _index(tmp_path / "index.sqlite")
    first = _key_history(db, 31337, REGISTRY)
    assert _key_history(db, 31337, REGISTRY) is first  # the same head: the same history, not rebuilt
    assert list(first) == [ORACLE] and list(first[ORACLE]) == [1]
    db.execute("INSERT INTO oracle_keys VALUES (?, 2, x'01', '0x01', '0x00', '0x00', x'00', x'00', 6, 0)", (ORACLE,))
    db.execute("UPDATE meta SET value = '6' WHERE key = 'last_block'")
    db.commit()
    moved = _key_history(db, 31337, REGISTRY)
    assert moved is not first and list(moved[ORACLE]) == [1, 2]
    assert not isinstance(moved, defaultdict)  # shared by requests: a lookup of an unknown oracle adds nothing


def test_a_memoised_row_follows_its_content(tmp_path: Path) -> None:
    db = _index(tmp_path / "index.sqlite")
    (before,) = query_events(db, EventFilters())
    assert before.payload == {"pressure_bar": 0.4} and before.node == "pump-1" and before.sector == "water"
    assert query_events(db, EventFilters())[0] is before  # the same row read again: parsed once
    # the same position with other content (as after a reorg re-indexed it): read anew, not the memo
    db.execute("UPDATE events SET payload = ?, node = ? WHERE block = 3",
               (b'{"pressure_bar": 0.1}', "0x" + to_bytes32("valve-2").hex()))
    db.commit()
    (after,) = query_events(db, EventFilters())
    assert after.payload == {"pressure_bar": 0.1} and after.node == "valve-2"
    assert after.time == "2025-12-05T02:00:00+00:00"
