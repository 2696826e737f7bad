"""Recorded events read from the log index: filtered, paged, and one event with its evidence.

`qeaims audit events` and the API's `GET /events` ask the same question of the same tables, so the
query lives here once. Pages are keyset pages on `(block, log_index)` (the `events` primary key):
a cursor stays valid while the history grows, and a page costs the same on a storm day as on a quiet
one. A time range becomes a block range first (block timestamps never decrease), so the scan stays on
the primary key whatever the filters.

`event_evidence` is what an auditor needs to trust one event without re-running the whole audit:
its batch (signature, key epoch, sequence range, block, tx) judged exactly as the audit judges it
(`chain.audit_batch.batch_verifies`, memoised), and the key epoch's place in the oracle's key history.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chain.audit_batch import BATCH_COLUMNS, batch_verifies, judge_batch
from chain.audit_keys import KeyEpoch, key_history
from core.errors import ConfigError
from core.kinds import kind_name
from core.sectors import CONTROL_SECTOR, Sector
from keys.errors import KeysError
from keys.ids import from_bytes32, to_bytes32

__all__ = [
    "BatchEvidence",
    "EventEvidence",
    "EventFilters",
    "EventRow",
    "KeyEvidence",
    "count_events",
    "event_evidence",
    "latest_position",
    "node_name",
    "query_events",
]

_ZERO = "0x" + "00" * 32


@functools.lru_cache(maxsize=16_384)
def _name(value_hex: str) -> str:
    """Memoised: a page of 100 events names a few dozen nodes and a handful of sectors, the same ones
    page after page, and decoding each (hex, then the printable-ASCII check) was most of building a row."""
    if value_hex == _ZERO:
        return ""
    try:
        return from_bytes32(bytes.fromhex(value_hex[2:]))
    except KeysError:
        return value_hex


def node_name(node_hex: str) -> str:
    """A node id as its ASCII name, or as hex when it is not one (an oracle address, a hash)."""
    return _name(node_hex)


def _sector_name(sector_hex: str | None) -> str:
    return _name(sector_hex) if sector_hex else ""


@functools.lru_cache(maxsize=16_384)
def _iso(timestamp: int) -> str:
    """A block time as ISO 8601 UTC, memoised: a storm day's events share their blocks' times (many a block)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


@dataclass(frozen=True)
class EventFilters:
    """What to select; every field optional. `sector` and `node` are names, `kind` the ledger's value,
    `oracle` an address (any case), `since`/`until` Unix seconds (inclusive).

    `sector` selects the events its oracles recorded; with `controller_about`, also the self-healing
    controller's (registered in its own `control` sector, acting on every sector) whose payload names
    that sector, as the API's stream assigns them (api/live/messages.py), so an operator reads the
    controller's steps in its own sector and no other's."""

    sector: str | None = None
    node: str | None = None
    kind: int | None = None
    oracle: str | None = None
    since: int | None = None
    until: int | None = None
    controller_about: bool = False  # the controller's events about `sector` count as the sector's (the API's view)


@dataclass(frozen=True)
class EventRow:
    """One recorded event as readers show it."""

    oracle: str
    seq: int
    kind: str
    node: str
    sector: str  # the recording oracle's registered sector
    payload: Any  # the JSON body, or its text when it is not JSON
    block: int
    log_index: int
    tx: str
    batch: int
    timestamp: int | None

    @property
    def cursor(self) -> str:
        return f"{self.block}:{self.log_index}"

    @property
    def about(self) -> str:
        """The sector the event is about: its recorder's, except for the controller's events, which are
        about the sector their payload names."""
        if self.sector != CONTROL_SECTOR or not isinstance(self.payload, dict):
            return self.sector
        named = self.payload.get("sector")
        if not isinstance(named, str):
            return self.sector
        try:
            return Sector(named).value
        except ConfigError:
            return self.sector

    @property
    def time(self) -> str | None:
        return _iso(self.timestamp) if self.timestamp else None

    def as_dict(self) -> dict[str, Any]:
        """The shape `qeaims audit events --json` prints (unchanged by the move)."""
        return {"oracle": self.oracle, "seq": self.seq, "kind": self.kind, "node": self.node, "sector": self.sector,
                "payload": self.payload, "block": self.block, "tx": self.tx, "batch": self.batch, "time": self.time}


_SELECT = (
    "SELECT e.oracle, e.seq, e.kind, e.node, e.payload, e.block, e.log_index, e.tx_hash, e.timestamp, k.sector, "
    "e.batch_id FROM events e LEFT JOIN oracle_keys k ON k.oracle = e.oracle AND k.epoch = 1"
)


@functools.lru_cache(maxsize=8_192)
def _row(row: tuple[Any, ...]) -> EventRow:
    """One `_SELECT` row as an `EventRow`. Memoised on the whole row (every column, the payload's bytes
    included, so a position whose content changed after a reorg is a different key): readers ask for the
    newest page over and over, and parsing each payload again was most of a page's time. The payload
    object is shared between readers, as the row is frozen: nothing may change it."""
    oracle, seq, kind_value, node_hex, payload, block, log_index, tx_hash, ts, sector_hex, batch_id = row
    text = bytes(payload).decode(errors="replace")
    try:
        body: Any = json.loads(text)
    except json.JSONDecodeError:
        body = text
    return EventRow(oracle=str(oracle), seq=int(seq), kind=kind_name(int(kind_value)), node=node_name(str(node_hex)),
                    sector=_sector_name(sector_hex), payload=body, block=int(block), log_index=int(log_index),
                    tx=str(tx_hash), batch=int(batch_id), timestamp=None if ts is None else int(ts))


def _block_bounds(db: sqlite3.Connection, filters: EventFilters) -> tuple[int | None, int | None]:
    """A period as blocks: block timestamps never decrease, so `timestamp >= since` is `block >= first`
    where `first` is the lowest block at the lowest timestamp not before `since` (two index seeks on
    events(timestamp, block)); likewise for `until`."""
    first = last = None
    if filters.since is not None:
        row = db.execute("SELECT MIN(block) FROM events WHERE timestamp = "
                         "(SELECT MIN(timestamp) FROM events WHERE timestamp >= ?)", (filters.since,)).fetchone()
        first = 2**62 if row[0] is None else int(row[0])
    if filters.until is not None:
        row = db.execute("SELECT MAX(block) FROM events WHERE timestamp = "
                         "(SELECT MAX(timestamp) FROM events WHERE timestamp <= ?)", (filters.until,)).fetchone()
        last = -1 if row[0] is None else int(row[0])
    return first, last


_ABOUT = ("(CASE WHEN json_valid(CAST(e.payload AS TEXT)) THEN json_extract(CAST(e.payload AS TEXT), '$.sector') "
          "END) = ?")


def _sector_oracles(db: sqlite3.Connection, sector: str) -> list[str]:
    rows = db.execute("SELECT oracle FROM oracle_keys WHERE epoch = 1 AND sector = ? ORDER BY oracle",
                      ("0x" + to_bytes32(sector).hex(),)).fetchall()
    return [str(r[0]) for r in rows]


def _where(filters: EventFilters, oracles: list[str] | None, bounds: tuple[int | None, int | None]) -> tuple[
        list[str], list[Any]]:
    """The clauses for one scan. Unary `+` keeps SQLite from picking an index for that term: the
    timestamp's (the block range already selects the period on the primary key), and the oracle's and
    the kind's when a node is asked (a node's own index is the narrowest; the index has no statistics
    for SQLite to tell)."""
    clauses: list[str] = []
    params: list[Any] = []
    if oracles is not None:
        plus = "+" if filters.node is not None else ""
        clauses.append(f"{plus}e.oracle IN ({', '.join('?' * len(oracles))})")
        params.extend(oracles)
    if filters.node is not None:
        clauses.append("e.node = ?")
        params.append("0x" + to_bytes32(filters.node).hex())
    if filters.kind is not None:
        clauses.append("+e.kind = ?" if filters.node is not None else "e.kind = ?")
        params.append(filters.kind)
    if filters.since is not None:
        clauses.append("+e.timestamp >= ? AND e.block >= ?")
        params.extend((filters.since, bounds[0]))
    if filters.until is not None:
        clauses.append("+e.timestamp <= ? AND e.block <= ?")
        params.extend((filters.until, bounds[1]))
    return clauses, params


def _scans(db: sqlite3.Connection, filters: EventFilters) -> list[tuple[list[str], list[Any]]]:
    """One scan per oracle to read: a sector is its oracles (a handful), each read on the index
    events(oracle, block, log_index) and merged, so a page costs a few seeks whether the sector
    recorded most of a storm day or almost nothing of it."""
    bounds = _block_bounds(db, filters)
    if filters.oracle is not None:
        oracle = filters.oracle.lower()
        if filters.sector is None or oracle in _sector_oracles(db, filters.sector):
            return [_where(filters, [oracle], bounds)]
        if filters.controller_about and oracle in _sector_oracles(db, CONTROL_SECTOR):
            clauses, params = _where(filters, [oracle], bounds)
            return [([*clauses, _ABOUT], [*params, filters.sector])]
        return []
    if filters.sector is not None:
        oracles = _sector_oracles(db, filters.sector)
        scans = []
        if oracles and filters.node is not None:
            scans.append(_where(filters, oracles, bounds))
        elif oracles:
            scans += [_where(filters, [oracle], bounds) for oracle in oracles]
        if filters.controller_about and filters.sector != CONTROL_SECTOR:
            for oracle in _sector_oracles(db, CONTROL_SECTOR):
                clauses, params = _where(filters, [oracle], bounds)
                scans.append(([*clauses, _ABOUT], [*params, filters.sector]))
        return scans
    return [_where(filters, None, bounds)]


def query_events(db: sqlite3.Connection, filters: EventFilters, *, after: tuple[int, int] | None = None,
                 limit: int = 100, newest_first: bool = False, up_to: tuple[int, int] | None = None) -> list[EventRow]:
    """At most `limit` events matching `filters`, in chain order (`newest_first`: reversed), strictly past
    the `after` position `(block, log_index)` in that order; `up_to` caps the range (an export's snapshot)."""
    order = "DESC" if newest_first else "ASC"
    found: list[tuple[Any, ...]] = []
    for clauses, params in _scans(db, filters):
        if after is not None:
            clauses.append("(e.block, e.log_index) < (?, ?)" if newest_first else "(e.block, e.log_index) > (?, ?)")
            params.extend(after)
        if up_to is not None:
            clauses.append("(e.block, e.log_index) <= (?, ?)")
            params.extend(up_to)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        found += db.execute(f"{_SELECT}{where} ORDER BY e.block {order}, e.log_index {order} LIMIT ?",
                            (*params, limit)).fetchall()
    found.sort(key=lambda r: (int(r[5]), int(r[6])), reverse=newest_first)
    return [_row(r) for r in found[:limit]]


def count_events(db: sqlite3.Connection, filters: EventFilters, *, up_to: tuple[int, int] | None = None) -> int:
    """How many events match (an export checks its size before it starts streaming)."""
    total = 0
    for clauses, params in _scans(db, filters):
        if up_to is not None:
            clauses.append("(e.block, e.log_index) <= (?, ?)")
            params.extend(up_to)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        total += int(db.execute(f"SELECT COUNT(*) FROM events e{where}", params).fetchone()[0])
    return total


def latest_position(db: sqlite3.Connection) -> tuple[int, int] | None:
    """The newest event's `(block, log_index)`, or None on an empty history."""
    row = db.execute("SELECT block, log_index FROM events ORDER BY block DESC, log_index DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


@dataclass(frozen=True)
class KeyEvidence:
    """The oracle's key of the batch's epoch, as the key history judges it."""

    epoch: int
    key_hash: str
    published_block: int
    valid: bool
    reason: str
    current_epoch: int  # the newest epoch the index knows for this oracle


@dataclass(frozen=True)
class BatchEvidence:
    """The signed batch that carried the event, and whether it verifies as the audit checks it."""

    batch_id: int
    oracle: str
    key_epoch: int
    first_seq: int
    last_seq: int
    count: int
    block: int
    log_index: int
    tx: str
    signature_bytes: int
    verifies: bool
    reason: str  # why it does not verify ("" when it does)


@dataclass(frozen=True)
class EventEvidence:
    event: EventRow
    batch: BatchEvidence | None  # None: the index holds no such batch (itself a finding)
    key: KeyEvidence | None

    @property
    def verified(self) -> bool:
        return self.batch is not None and self.batch.verifies and self.key is not None and self.key.valid


def event_evidence(db: sqlite3.Connection, block: int, log_index: int, *, chain_id: int, ledger: str,
                   registry: str, keys: dict[str, dict[int, KeyEpoch]] | None = None) -> EventEvidence | None:
    """The event at `(block, log_index)` with its batch judged (`batch_verifies`) and its key epoch; None
    when the index holds no event there. `keys`: the key history (`key_history`) if the caller keeps one;
    rebuilding it checksums every oracle's address and hashes every key, most of this call's time."""
    row = db.execute(f"{_SELECT} WHERE e.block = ? AND e.log_index = ?", (block, log_index)).fetchone()
    if row is None:
        return None
    event = _row(row)
    batch_row = db.execute(f"SELECT {BATCH_COLUMNS}, tx_hash FROM batches WHERE batch_id = ?",
                           (event.batch,)).fetchone()
    if batch_row is None:
        return EventEvidence(event=event, batch=None, key=None)
    if keys is None:
        keys = key_history(db, chain_id, registry)
    ok = batch_verifies(db, event.batch, chain_id=chain_id, ledger=ledger, registry=registry, keys=keys)
    reason = ""
    if not ok:  # rare: say why, as the audit would
        previous = db.execute("SELECT MAX(last_seq) FROM batches WHERE oracle = ? AND batch_id < ?",
                              (batch_row[1], event.batch)).fetchone()[0]
        _, why = judge_batch(db, keys, tuple(batch_row[:9]), int(previous or 0), chain_id=chain_id, ledger=ledger)
        reason = why or "the batch does not verify"
    batch_id, oracle, epoch, first_seq, last_seq, count, signature, b_block, b_log, b_tx = batch_row
    batch = BatchEvidence(batch_id=int(batch_id), oracle=str(oracle), key_epoch=int(epoch), first_seq=int(first_seq),
                          last_seq=int(last_seq), count=int(count), block=int(b_block), log_index=int(b_log),
                          tx=str(b_tx), signature_bytes=len(bytes(signature)), verifies=ok, reason=reason)
    epochs = keys.get(str(oracle), {})
    epoch_key = epochs.get(int(epoch))
    key: KeyEvidence | None = None
    if epoch_key is not None:
        (key_hash,) = db.execute("SELECT key_hash FROM oracle_keys WHERE oracle = ? AND epoch = ?",
                                 (oracle, epoch)).fetchone()
        key = KeyEvidence(epoch=int(epoch), key_hash=str(key_hash), published_block=epoch_key.position[0],
                          valid=epoch_key.valid, reason=epoch_key.reason, current_epoch=max(epochs))
    return EventEvidence(event=event, batch=batch, key=key)
