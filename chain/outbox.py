"""The oracle's write-ahead outbox: an event gets its sequence number on disk before any
transaction carries it, so a crash of the oracle or an outage of the chain loses nothing.

After a restart `EventRecorder.sync` compares the outbox with the ledger's `lastSeq`: rows the
chain has are confirmed, rows it lacks (never sent, or lost when the chain rolled back) are sent
again. The ledger accepts each sequence number exactly once, so resubmission is idempotent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidEvent
from keys.messages import MAX_EVENT_KIND, EventToSign

__all__ = [
    "BATCH_OVERHEAD_BYTES", "EVENT_HEAD_BYTES", "MAX_BATCHES_PER_BLOCK", "MAX_BATCH_BYTES", "MAX_BATCH_EVENTS",
    "MAX_BYTES_PER_BLOCK", "MAX_PAYLOAD", "EventOutbox", "OutboxRow", "encoded_size",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY,
    kind       INTEGER NOT NULL,
    node       BLOB NOT NULL,
    payload    BLOB NOT NULL,
    tx_hash    TEXT,
    confirmed  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


MAX_KIND = MAX_EVENT_KIND  # IEventLedger.EventKind's last value (keys.messages keeps the one copy)
MAX_PAYLOAD = 4096  # EventLedger.MAX_PAYLOAD
# EventLedger's bounds (tests/chain/test_ledger_bounds.py checks these copies against the contract). A
# batch's size is the ABI encoding of its events: EVENT_HEAD_BYTES per event plus its payload padded
# to 32 bytes; the recordBatch calldata is that plus BATCH_OVERHEAD_BYTES.
MAX_BATCH_EVENTS = 512  # EventLedger.MAX_BATCH
EVENT_HEAD_BYTES = 192
BATCH_OVERHEAD_BYTES = 3492
MAX_BATCH_BYTES = 131_072
MAX_BATCHES_PER_BLOCK = 8  # per oracle
MAX_BYTES_PER_BLOCK = 262_144  # per oracle


def encoded_size(payload_length: int) -> int:
    """One event's share of a batch's size, as EventLedger counts it."""
    return EVENT_HEAD_BYTES + (payload_length + 31) // 32 * 32


# every event the outbox accepts fits a batch of its own, so none can block the events behind it
assert encoded_size(MAX_PAYLOAD) <= MAX_BATCH_BYTES


def _checked(kind: int, node: bytes, payload: bytes) -> tuple[int, bytes, bytes]:
    if not 0 <= kind <= MAX_KIND:
        raise InvalidEvent(f"event kind {kind} is unknown (0..{MAX_KIND})")
    if len(node) != 32:
        raise InvalidEvent(f"an event's node id is 32 bytes, got {len(node)}")
    if len(payload) > MAX_PAYLOAD:
        raise InvalidEvent(f"event payload is {len(payload)} bytes; the ledger takes at most {MAX_PAYLOAD}")
    return kind, bytes(node), bytes(payload)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    kind: int
    node: bytes
    payload: bytes

    @property
    def size(self) -> int:
        """This event's share of a batch's size (`encoded_size`)."""
        return encoded_size(len(self.payload))

    def to_sign(self) -> EventToSign:
        return EventToSign(seq=self.seq, kind=self.kind, node=self.node, payload=self.payload)


class EventOutbox:
    """One SQLite file per oracle account (WAL journal, synchronous=FULL: a commit is on disk)."""

    def __init__(self, path: Path, oracle: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.oracle = oracle
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        owner = self._meta("oracle")
        if owner is None:
            self._set_meta("oracle", oracle)
        elif owner.lower() != oracle.lower():
            raise ValueError(f"outbox {path} belongs to oracle {owner}, not {oracle}")

    @classmethod
    def for_oracle(cls, directory: Path, oracle: str, deployment_id: str) -> EventOutbox:
        """The outbox of `oracle` for one deployment: a redeployed ledger starts from an empty outbox
        instead of re-recording the old contracts' events on the new ones."""
        return cls(directory / deployment_id / f"{oracle.lower()}.sqlite", oracle)

    def close(self) -> None:
        self._db.close()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def last_seq(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
        floor = int(self._meta("seq_floor") or 0)
        return max(int(row[0] or 0), floor)

    def append(self, kind: int, node: bytes, payload: bytes) -> int:
        return self.append_many([(kind, node, payload)])[0]

    def append_many(self, items: Iterable[tuple[int, bytes, bytes]]) -> list[int]:
        """Check, then assign the next sequence numbers and commit them durably in one transaction.

        Events the ledger would always refuse are refused here, before they get a sequence number:
        one such row would otherwise sit at the head of the outbox and block every later event.
        """
        checked = [_checked(kind, node, payload) for kind, node, payload in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the next seq is read inside the write lock
            try:
                next_seq = self.last_seq() + 1
                rows = [(next_seq + i, kind, node, payload) for i, (kind, node, payload) in enumerate(checked)]
                self._db.executemany("INSERT INTO events(seq, kind, node, payload) VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [r[0] for r in rows]

    def reconcile(self, chain_last_seq: int) -> int:
        """Align with the ledger; returns how many events must be (re)sent."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE events SET confirmed = 1 WHERE seq <= ? AND confirmed = 0", (chain_last_seq,))
            self._db.execute("UPDATE events SET confirmed = 0, tx_hash = NULL WHERE seq > ?", (chain_last_seq,))
            if chain_last_seq > int(self._meta("seq_floor") or 0):
                self._set_meta("seq_floor", str(chain_last_seq))
            self._db.execute("COMMIT")
            row = self._db.execute("SELECT COUNT(*) FROM events WHERE confirmed = 0").fetchone()
        return int(row[0])

    def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRow]:
        rows = self._db.execute(
            "SELECT seq, kind, node, payload FROM events WHERE confirmed = 0 AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [OutboxRow(int(s), int(k), bytes(n), bytes(p)) for s, k, n, p in rows]

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events WHERE confirmed = 0").fetchone()[0])

    def mark_confirmed(self, seqs: Sequence[int], tx_hash: str) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE events SET confirmed = 1, tx_hash = ? WHERE seq BETWEEN ? AND ?",
                (tx_hash, min(seqs), max(seqs)),
            )
            self._db.execute("COMMIT")

    def rows_of_kinds(self, kinds: Sequence[int], after_seq: int = 0) -> list[OutboxRow]:
        """Every event of these kinds after `after_seq`, sent or not (what a restarted writer checks)."""
        if not kinds:
            return []
        marks = ", ".join("?" for _ in kinds)
        rows = self._db.execute(
            f"SELECT seq, kind, node, payload FROM events WHERE seq > ? AND kind IN ({marks}) ORDER BY seq",
            (after_seq, *kinds),
        ).fetchall()
        return [OutboxRow(int(s), int(k), bytes(n), bytes(p)) for s, k, n, p in rows]

    def get(self, seq: int) -> OutboxRow | None:
        row = self._db.execute("SELECT seq, kind, node, payload FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else OutboxRow(int(row[0]), int(row[1]), bytes(row[2]), bytes(row[3]))
