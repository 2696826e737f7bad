"""An oracle's telemetry store: readings kept locally, batched into Merkle trees, roots anchored on-chain.

Telemetry is anchored, not stored, on-chain (DESIGN.md). Each oracle keeps one SQLite file
(`<home>/telemetry/<address>.sqlite`, WAL, ``synchronous=FULL``: a commit is on disk) with:

- ``chunks``: readings in arrival order, numbered from 1, one row per accepted chunk (`add_many`,
  `add_encoded`): canonical JSON bodies and per-reading leaf (`oracles.merkle`), time and asset
  (`oracles.telemetry_chunks`; a row per reading cost several µs in SQLite, a row per chunk costs
  well under one). A chunk commits before `add_many` returns: an accepted reading survives a crash.
- ``seen``: the (sensor, field time) of every reading stored, written with its chunk
  (`oracles.telemetry_once`). A reading that arrives again (a twin restarted between publishing a
  period and saving its clock, an MQTT QoS 1 redelivery) is dropped before it gets an arrival
  number, so it is never sealed, anchored or judged twice; `repeats` and `conflicts` count them,
  and a repeat with another value is logged on ``qeaims.telemetry`` as a ``reading-conflict`` line.
- ``batches``: `seal` closes the next ``batch_size`` waiting readings (a contiguous range of arrival
  numbers, which may span chunks) into batch ``b`` (numbered from 1), each reading's index ``i``
  being its place in the range (the reading's id is ``"b:i"``), and stores the batch's root and the
  exact ledger payload.

`anchor` hands each sealed batch to the oracle's `chain.outbox.EventOutbox` as one ``telemetry-root``
event (kind 0; node = the asset id when the whole batch is about one asset, else zero; payload =
canonical JSON ``{"batch", "count", "first", "last", "root", "scheme"}``) and then flushes the
oracle's `chain.recorder.EventRecorder`. The outbox sequence number each batch got is stored with
the batch; it is the ledger's sequence number, so the event id is (oracle, seq).

Crash safety. A batch commits before its event is written to the outbox, and the outbox commits
before the batch learns its sequence number. The two files cannot share a transaction, so after a
crash between those commits `anchor` first adopts the telemetry-root events of its batches found in
the outbox after the last sequence it knows, instead of appending again: every batch becomes
exactly one ledger event, however the process dies.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chain.outbox import EventOutbox
from chain.recorder import EventRecorder, canonical_payload
from core.errors import AuditFailed, ConfigError
from core.kinds import kind_by_name
from core.messages import Reading
from keys.ids import to_bytes32
from oracles import telemetry_chunks as chunks
from oracles import telemetry_once as once
from oracles.hashing import merkle_root
from oracles.merkle import LEAF_SCHEME, MerkleTree, reading_from_body, reading_leaf_from_body, verify
from oracles.telemetry_codec import EncodedReadings, SensorCatalogue, encode_readings, iso_ms

__all__ = [
    "LOGGER_NAME",
    "TELEMETRY_ROOT",
    "BatchInfo",
    "EncodedReadings",
    "SensorCatalogue",
    "TelemetryProof",
    "TelemetryStore",
    "decode_root_payload",
    "parse_reading_ref",
    "telemetry_path",
]

TELEMETRY_ROOT = kind_by_name("telemetry-root")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch      INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    count      INTEGER NOT NULL,
    first_id   INTEGER NOT NULL UNIQUE,
    node       BLOB NOT NULL,
    payload    BLOB NOT NULL,
    outbox_seq INTEGER UNIQUE
);
""" + chunks.CHUNK_SCHEMA + once.SEEN_SCHEMA

LOGGER_NAME = "qeaims.telemetry"
_log = logging.getLogger(LOGGER_NAME)
_BACKFILL = 65_536

def telemetry_path(home: Path, oracle: str) -> Path:
    """Where an oracle's store lives under the data directory."""
    return home / "telemetry" / f"{oracle.lower()}.sqlite"


def parse_reading_ref(ref: str) -> tuple[int, int]:
    """``"3:17"`` → (batch 3, index 17)."""
    match = re.fullmatch(r"([1-9][0-9]{0,17}):([0-9]{1,18})", ref.strip())
    if match is None:
        raise ConfigError(f"reading id {ref!r} is not BATCH:INDEX, e.g. 3:17 (batches count from 1)")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class BatchInfo:
    batch: int
    root: bytes
    count: int
    node: bytes
    payload: bytes
    outbox_seq: int | None

    @property
    def anchored(self) -> bool:
        """Handed to the outbox (and so certain to reach the ledger, exactly once)."""
        return self.outbox_seq is not None


@dataclass(frozen=True)
class TelemetryProof:
    """Everything needed to prove one reading against its batch's root (`verify` with any root)."""

    ref: str
    batch: int
    index: int
    body: bytes
    reading: Reading
    leaf: bytes
    stored_leaf: bytes
    proof: tuple[bytes, ...]
    root: bytes
    oracle: str
    seq: int | None

    def verify(self, root: bytes | None = None) -> bool:
        """Does the leaf recomputed from the stored body lead to `root` (default: the local root)?"""
        return verify(self.proof, self.root if root is None else root, self.leaf)


class TelemetryStore:
    """One oracle's readings and batches. Thread-safe; one writer process per file."""

    def __init__(self, path: Path, oracle: str, *, batch_size: int = 1024, max_age_s: float = 5.0) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.oracle = oracle
        self.batch_size = batch_size
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._seal_lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('oracle', ?)", (oracle,))
        owner = str(self._db.execute("SELECT value FROM meta WHERE key = 'oracle'").fetchone()[0])
        if owner.lower() != oracle.lower():
            raise ConfigError(f"telemetry store {path} belongs to oracle {owner}, not {oracle}")
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'readings'").fetchone() is not None:
            raise ConfigError(f"telemetry store {path} has the old one-row-per-reading layout: move it aside")
        self._next_id = int(self._db.execute("SELECT COALESCE(MAX(first_id + count), 1) FROM chunks "
                                             "WHERE first_id = (SELECT MAX(first_id) FROM chunks)").fetchone()[0])
        self._sealed_to = int(self._db.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM batches "
                                               "WHERE batch = (SELECT MAX(batch) FROM batches)").fetchone()[0])
        self.repeats = 0
        """Readings dropped since this store was opened because one with their (sensor, field time) is stored."""
        self.conflicts = 0
        """Of `repeats`, those whose value differed from the reading kept (each logged)."""
        self._seen = once.SeenIndex(self._db)
        self._index_old_readings()
        self._sealer_db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Readings left waiting by an earlier run are due at once.
        self._open_since: float | None = float("-inf") if self.pending_count() else None
        self._synced_with: int | None = None

    def _index_old_readings(self) -> None:
        """A store written before the ``seen`` index existed: index what it holds, once."""
        if self._next_id == 1 or self._db.execute("SELECT 1 FROM seen LIMIT 1").fetchone() is not None:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for lo in range(1, self._next_id, _BACKFILL):
                hi = min(self._next_id - 1, lo + _BACKFILL - 1)
                self._seen.backfill(list(enumerate(chunks.read_bodies(self._db, lo, hi), start=lo)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @classmethod
    def for_oracle(cls, home: Path, oracle: str, *, batch_size: int = 1024, max_age_s: float = 5.0) -> TelemetryStore:
        """The store of `oracle` (an address) under the data directory `home`."""
        return cls(telemetry_path(home, oracle), oracle, batch_size=batch_size, max_age_s=max_age_s)

    def close(self) -> None:
        self._sealer_db.close()
        self._db.close()

    # --- taking readings in --------------------------------------------------------------------

    def add(self, reading: Reading) -> int:
        return self.add_many([reading])[0]

    def add_many(self, readings: Sequence[Reading]) -> list[int]:
        """Store readings durably (one transaction); returns each one's arrival number (a repeat of a
        stored reading gets the number of the reading kept, and is not stored again)."""
        return self._admit(encode_readings(readings)).ids if readings else []

    def add_encoded(self, readings: EncodedReadings) -> range:
        """Store readings checked and encoded by `oracles.telemetry_codec` (the fast path: hand it a
        whole chunk from `SensorCatalogue.encode`); one transaction, durable when this returns.
        Returns the arrival numbers of the readings newly stored (repeats are dropped: `repeats`)."""
        if not len(readings):
            return range(0)
        admitted = self._admit(readings)
        return range(admitted.first, admitted.first + len(admitted.kept))

    def _admit(self, readings: EncodedReadings) -> once.Admitted:
        """Keep the first reading of each (sensor, field time) (`oracles.telemetry_once`), store it."""
        with self._lock:
            first = self._next_id
            self._db.execute("BEGIN IMMEDIATE")
            try:
                admitted = self._seen.admit(first, readings, lambda arrival: chunks.read_body(self._db, arrival))
                if len(admitted.kept):
                    chunks.write_chunks(self._db, first, admitted.kept)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._next_id = first + len(admitted.kept)
            self.repeats += admitted.repeats
            self.conflicts += len(admitted.conflicts)
            if len(admitted.kept) and self._open_since is None:
                self._open_since = time.monotonic()
        if admitted.repeats:
            self._log_repeats(admitted)
        return admitted

    def _log_repeats(self, admitted: once.Admitted) -> None:
        """One structured line per chunk with repeats; a warning if any repeat changed a value."""
        record: dict[str, object] = {"event": "readings-repeated", "oracle": self.oracle, "count": admitted.repeats}
        if admitted.conflicts:
            c = admitted.conflicts[0]
            kept, dropped = json.loads(c.kept), json.loads(c.dropped)
            record.update(event="reading-conflict", conflicts=len(admitted.conflicts), asset=kept.get("asset_id"),
                          sensor=kept.get("sensor_id"), time=kept.get("timestamp"), kept_id=c.kept_id,
                          kept_value=kept.get("value"), dropped_value=dropped.get("value"))
        _log.log(logging.WARNING if admitted.conflicts else logging.INFO, "%s",
                 json.dumps(record, sort_keys=True, ensure_ascii=True))

    def pending_count(self) -> int:
        """Readings stored but not yet sealed into a batch."""
        return self._next_id - 1 - self._sealed_to

    @property
    def sealed_through(self) -> int:
        """The last arrival number sealed into a batch (0: none yet); batches cover 1..this."""
        return self._sealed_to

    def due(self) -> bool:
        """Is a batch ready: a full one waiting, or the oldest waiting reading older than max_age_s?"""
        waiting = self.pending_count()
        if waiting >= self.batch_size:
            return True
        return waiting > 0 and self._open_since is not None and time.monotonic() - self._open_since >= self.max_age_s

    # --- batches ---------------------------------------------------------------------------------

    def seal(self, *, force: bool = False) -> list[BatchInfo]:
        """Close full batches, and a partial one if old enough (or `force`), of the readings there when called."""
        sealed: list[BatchInfo] = []
        with self._seal_lock:  # one sealer at a time; intake goes on while a tree is built
            limit = self._next_id - 1
            while True:
                with self._lock:
                    lo = self._sealed_to + 1
                    hi = min(limit, self._sealed_to + self.batch_size)
                    if hi < lo:
                        self._open_since = None
                        break
                    full = hi - lo + 1 == self.batch_size
                    old = self._open_since is not None and time.monotonic() - self._open_since >= self.max_age_s
                    if not (full or force or old):
                        break
                try:  # committed rows, read on the sealer's own connection: intake is not held up
                    span = chunks.read_span(self._sealer_db, lo, hi)
                except chunks.ChunkDamaged as exc:
                    raise RuntimeError(f"cannot seal readings {lo}..{hi} of {self.path}: {exc}") from exc
                root = merkle_root(span.leaves)  # the C kernel releases the GIL
                with self._lock:
                    sealed.append(self._seal_range(lo, hi, root, span))
                    if not full:
                        self._open_since = None
                        break
            with self._lock:
                if sealed and self.pending_count():
                    self._open_since = time.monotonic()
        return sealed

    def _seal_range(self, lo: int, hi: int, root: bytes, span: chunks.Span) -> BatchInfo:
        count = hi - lo + 1
        node = to_bytes32(next(iter(span.assets))) if len(span.assets) == 1 else bytes(32)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            batch = int(self._db.execute("SELECT COALESCE(MAX(batch), 0) FROM batches").fetchone()[0]) + 1
            payload = canonical_payload({
                "batch": batch, "count": count, "first": iso_ms(span.first_ms), "last": iso_ms(span.last_ms),
                "root": "0x" + root.hex(), "scheme": LEAF_SCHEME,
            })
            self._db.execute("INSERT INTO batches(batch, root, count, first_id, node, payload) VALUES (?, ?, ?, ?, ?, ?)",
                             (batch, root, count, lo, node, payload))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._sealed_to = hi
        return BatchInfo(batch, root, count, node, payload, None)

    def batch(self, number: int) -> BatchInfo | None:
        row = self._db.execute("SELECT batch, root, count, node, payload, outbox_seq FROM batches WHERE batch = ?",
                               (number,)).fetchone()
        return None if row is None else _batch_info(row)

    def batches(self) -> list[BatchInfo]:
        rows = self._db.execute("SELECT batch, root, count, node, payload, outbox_seq FROM batches ORDER BY batch")
        return [_batch_info(row) for row in rows]

    # --- anchoring -------------------------------------------------------------------------------

    def enqueue(self, outbox: EventOutbox) -> int:
        """Write every sealed, not yet enqueued batch root to the outbox, exactly once; returns how many."""
        if outbox.oracle.lower() != self.oracle.lower():
            raise ConfigError(f"outbox of {outbox.oracle} cannot anchor telemetry of {self.oracle}")
        with self._lock:
            waiting = {int(b): (bytes(n), bytes(p)) for b, n, p in self._db.execute(
                "SELECT batch, node, payload FROM batches WHERE outbox_seq IS NULL ORDER BY batch")}
            if not waiting:
                return 0
            adopted = self._adopt_from_outbox(outbox, waiting)
            for batch in adopted:
                del waiting[batch]
            order = sorted(waiting)
            seqs = outbox.append_many((TELEMETRY_ROOT, *waiting[b]) for b in order)
            # A crash here leaves the events in the outbox without their seqs: _adopt_from_outbox finds them.
            self._set_seqs(list(zip(order, seqs, strict=True)))
        return len(order)

    def _adopt_from_outbox(self, outbox: EventOutbox, waiting: dict[int, tuple[bytes, bytes]]) -> list[int]:
        known = int(self._db.execute("SELECT COALESCE(MAX(outbox_seq), 0) FROM batches").fetchone()[0])
        found: list[tuple[int, int]] = []
        for seq in range(known + 1, outbox.last_seq() + 1):
            row = outbox.get(seq)
            if row is None or row.kind != TELEMETRY_ROOT:
                continue
            for batch, (_, payload) in waiting.items():
                if row.payload == payload:
                    found.append((batch, seq))
                    break
        self._set_seqs(found)
        return [batch for batch, _ in found]

    def _set_seqs(self, pairs: list[tuple[int, int]]) -> None:
        if not pairs:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("UPDATE batches SET outbox_seq = ? WHERE batch = ?", [(s, b) for b, s in pairs])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def anchor(self, recorder: EventRecorder, *, force: bool = False) -> int:
        """Seal what is due, enqueue every unanchored root, and send the outbox; returns roots enqueued.

        Raises the recorder's `ChainError` if the chain refuses or is down; nothing is lost then, and
        the next call sends what is left.
        """
        if self._synced_with != id(recorder):  # like EventRecorder.record: align with the ledger first
            recorder.sync()
            self._synced_with = id(recorder)
        self.seal(force=force)
        count = self.enqueue(recorder.outbox)
        recorder.flush()
        return count

    def ingest(self, readings: Sequence[Reading], recorder: EventRecorder) -> list[int]:
        """Store readings and anchor whatever batch that fills (the oracle's main loop)."""
        ids = self.add_many(readings)
        if self.due():
            self.anchor(recorder)
        return ids

    # --- proofs ----------------------------------------------------------------------------------

    def proof(self, ref: str) -> TelemetryProof:
        """The inclusion proof of reading ``"batch:index"``, rebuilt from the local store."""
        batch_no, index = parse_reading_ref(ref)
        info = self.batch(batch_no)
        if info is None:
            raise ConfigError(f"no batch {batch_no} in {self.path} (it holds {len(self.batches())} batches)")
        if index >= info.count:
            raise ConfigError(f"batch {batch_no} has {info.count} readings: indexes 0..{info.count - 1}")
        first = int(self._db.execute("SELECT first_id FROM batches WHERE batch = ?", (batch_no,)).fetchone()[0])
        with self._lock:
            try:
                leaves = chunks.read_columns(self._db, first, first + info.count - 1).leaves
            except chunks.ChunkDamaged as exc:
                raise AuditFailed(f"batch {batch_no} in {self.path} was altered: its stored leaves are missing "
                                  f"or malformed ({exc})") from exc
            try:
                body = chunks.read_body(self._db, first + index)
            except chunks.ChunkDamaged as exc:
                raise AuditFailed(f"reading {batch_no}:{index} in {self.path} was altered: {exc}") from exc
        try:
            reading = reading_from_body(body)
            leaf = reading_leaf_from_body(body, reading)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError; so is a uint64 overflow
            raise AuditFailed(f"reading {batch_no}:{index} in {self.path} is no longer a valid reading: "
                              "the local copy was altered") from exc
        return TelemetryProof(
            ref=f"{batch_no}:{index}", batch=batch_no, index=index, body=body, reading=reading, leaf=leaf,
            stored_leaf=leaves[index], proof=tuple(MerkleTree(leaves).proof(index)), root=info.root,
            oracle=self.oracle, seq=info.outbox_seq,
        )

    def ref_of(self, arrival: int) -> str | None:
        """A reading's id (``"b:i"``) from the number `add_many` returned; None while it waits for a batch."""
        if not 1 <= arrival < self._next_id:
            raise ConfigError(f"no reading number {arrival} in {self.path}")
        if arrival > self._sealed_to:
            return None
        batch, first = self._db.execute("SELECT batch, first_id FROM batches WHERE first_id <= ? "
                                        "ORDER BY first_id DESC LIMIT 1", (arrival,)).fetchone()
        return f"{int(batch)}:{arrival - int(first)}"



def _batch_info(row: tuple[int, bytes, int, bytes, bytes, int | None]) -> BatchInfo:
    b, root, count, node, payload, seq = row
    return BatchInfo(int(b), bytes(root), int(count), bytes(node), bytes(payload), None if seq is None else int(seq))


def decode_root_payload(payload: bytes) -> tuple[int, bytes]:
    """(batch, root) from a telemetry-root event payload written by this module."""
    try:
        body = json.loads(payload)
        if body.get("scheme") != LEAF_SCHEME:
            raise ValueError(f"scheme {body.get('scheme')!r} is not {LEAF_SCHEME}")
        root = bytes.fromhex(str(body["root"]).removeprefix("0x"))
        if len(root) != 32:
            raise ValueError("root is not 32 bytes")
        return int(body["batch"]), root
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditFailed(f"the on-chain telemetry-root payload is not one this store wrote: {exc}") from exc
