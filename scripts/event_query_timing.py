"""Times `chain.event_query` on a synthetic storm-day index: is every page of `GET /events` a few index
seeks, whatever the filter? (The closing note's p95 at 200 req/s is `qeaims bench api`'s; this checks
the query alone, without HTTP.)

    PYTHONPATH=. .venv/bin/python scripts/event_query_timing.py [EVENTS] [INDEX_FILE]

The index has the indexer's own schema (`chain.indexer._SCHEMA`): 24 oracles over six sectors and the
controller, 2,000 nodes, 23 kinds, 20 events a block (one in 25 the controller's, about a random
sector), one block a second; it is built once (seeded) and reused.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from chain.event_query import EventFilters, count_events, query_events
from chain.indexer import _SCHEMA
from keys.ids import to_bytes32

SECTORS = ("electricity", "water", "sewage", "healthcare", "transportation", "banking")
T0 = 1_764_900_000


def build(path: Path, events: int) -> None:
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    oracles = [f"0x{i:040x}" for i in range(25)]  # the last one is the controller's
    for i, oracle in enumerate(oracles):
        sector = SECTORS[i % 6] if i < 24 else "control"
        db.execute("INSERT INTO oracle_keys VALUES (?, 1, x'00', '0x00', ?, '0x00', x'00', NULL, 1, ?)",
                   (oracle, "0x" + to_bytes32(sector).hex(), i))
    nodes = ["0x" + to_bytes32(f"node-{i}").hex() for i in range(2000)]
    rng = random.Random(1)
    rows = []
    for k in range(events):
        block = 10 + k // 20
        oracle = oracles[rng.randrange(25)]
        payload = b'{"a":1}' if oracle != oracles[24] else f'{{"sector":"{SECTORS[rng.randrange(6)]}"}}'.encode()
        rows.append((oracle, k, rng.randrange(23), nodes[rng.randrange(2000)], k // 10, payload, block, k % 20,
                     "0x" + "ab" * 32, T0 + block))
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def timed(name: str, run: Callable[[], object], n: int = 200) -> None:
    run()
    took = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    print(f"{name:40s} median {statistics.median(took):7.2f} ms   p95 {took[int(0.95 * len(took))]:7.2f} ms")


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"/tmp/qeaims-storm-index-{events}.sqlite")
    if not path.exists():
        build(path, events)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    middle = (10 + events // 40, 3)
    page = 101  # the router asks one more than it shows, to know whether there is a next page
    timed("first page", lambda: query_events(db, EventFilters(), limit=page))
    timed("newest first, from a cursor", lambda: query_events(db, EventFilters(), after=middle, limit=page,
                                                               newest_first=True))
    timed("sector (an operator's default)", lambda: query_events(db, EventFilters(sector="water"), limit=page))
    timed("sector + the controller's steps in it", lambda: query_events(
        db, EventFilters(sector="water", controller_about=True), limit=page))
    timed("sector, from a cursor", lambda: query_events(db, EventFilters(sector="water"), after=middle, limit=page))
    timed("node", lambda: query_events(db, EventFilters(node="node-7"), limit=page))
    timed("kind", lambda: query_events(db, EventFilters(kind=2), limit=page))
    timed("oracle", lambda: query_events(db, EventFilters(oracle="0x" + "0" * 39 + "5"), limit=page))
    timed("one hour", lambda: query_events(db, EventFilters(since=T0 + 5000, until=T0 + 8600), limit=page))
    timed("sector + kind + node", lambda: query_events(db, EventFilters(sector="water", kind=2, node="node-7"),
                                                       limit=page))
    timed("sector + kind", lambda: query_events(db, EventFilters(sector="water", kind=22),
                                                                    limit=page))
    timed("one event by position", lambda: db.execute("SELECT * FROM events WHERE block = ? AND log_index = ?",
                                                      middle).fetchone())
    timed("export's count (a sector)", lambda: count_events(db, EventFilters(sector="water")), n=20)


if __name__ == "__main__":
    main()
