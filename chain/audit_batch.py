"""One signed batch judged as the audit judges it (part of `chain.audit`).

A batch's events are exactly `firstSeq..lastSeq`, contiguous, in order, following the oracle's
previous batch with no gap and no repeat; its key epoch was the oracle's current epoch when it was
recorded; its ML-DSA-65 signature verifies over the domain-separated batch message with the key of
that epoch (`chain.audit_keys`).

Its own module because two readers need it: the history's verification (`chain.audit_history`)
and the quarantine recount (`chain.quarantines`), which verifies the batch of every cited event
(`batch_verifies`, memoised) and is itself run by the history's verification.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import Any

from eth_utils.address import to_checksum_address

from chain.audit_keys import KeyEpoch, key_history
from keys.hybrid import verify_batch
from keys.messages import EventToSign

__all__ = ["BATCH_COLUMNS", "batch_verifies", "judge_batch"]


BATCH_COLUMNS = "batch_id, oracle, key_epoch, first_seq, last_seq, count, signature, block, log_index"


def judge_batch(db: sqlite3.Connection, keys: dict[str, dict[int, KeyEpoch]], row: tuple[Any, ...],
                previous_seq: int, *, chain_id: int, ledger: str) -> tuple[list[EventToSign], str | None]:
    """One batch row (`BATCH_COLUMNS`) checked: its events, and why it does not verify (or None)."""
    batch_id, oracle, epoch, first_seq, last, count, signature, block, log_index = row
    events = [EventToSign(seq=int(s), kind=int(k), node=bytes.fromhex(n[2:]), payload=bytes(p))
              for s, k, n, p in db.execute("SELECT seq, kind, node, payload FROM events WHERE batch_id = ? "
                                           "ORDER BY block, log_index", (batch_id,))]
    reason = _check_batch(keys, oracle, int(epoch), (int(block), int(log_index)), events,
                          int(first_seq), int(last), int(count), previous_seq)
    if reason is None and not verify_batch(
        keys[oracle][int(epoch)].public_key, chain_id=chain_id, ledger=ledger,
        oracle=to_checksum_address(oracle), key_epoch=int(epoch), events=events, signature=bytes(signature),
    ):
        reason = "ML-DSA-65 signature does not verify"
    return events, reason


_VERIFIED: dict[tuple[int, str, int, int, int, bytes], bool] = {}


def batch_verifies(db: sqlite3.Connection, batch_id: int, *, chain_id: int, ledger: str, registry: str,
                   keys: dict[str, dict[int, KeyEpoch]] | None = None) -> bool:
    """One batch checked as the audit checks it (key epoch, sequence, ML-DSA-65 signature); memoised by
    the batch's identity and signature, so an oracle asking on every vote pays for each batch once.
    `keys`: the key history if the caller already holds it (the API keeps one per indexed head)."""
    row = db.execute(f"SELECT {BATCH_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
    if row is None:
        return False
    oracle, signature, block, log_index = row[1], row[6], row[7], row[8]
    key = (chain_id, ledger.lower(), int(batch_id), int(block), int(log_index), bytes(signature))
    if key in _VERIFIED:
        return _VERIFIED[key]
    previous = db.execute("SELECT MAX(last_seq) FROM batches WHERE oracle = ? AND batch_id < ?",
                          (oracle, batch_id)).fetchone()[0]
    history = key_history(db, chain_id, registry) if keys is None else keys
    _, reason = judge_batch(db, history, row, int(previous or 0), chain_id=chain_id,
                            ledger=ledger)
    ok = reason is None
    if len(_VERIFIED) > 100_000:
        _VERIFIED.clear()
    _VERIFIED[key] = ok
    return ok


def _check_batch(
    history: dict[str, dict[int, KeyEpoch]],
    oracle: str,
    epoch: int,
    position: tuple[int, int],
    events: list[EventToSign],
    first_seq: int,
    last_seq: int,
    count: int,
    previous_seq: int,
) -> str | None:
    keys = history.get(oracle)
    if not keys or epoch not in keys:
        return f"no published key for epoch {epoch}"
    key = keys[epoch]
    if not key.valid:
        return f"key epoch {epoch} is not trustworthy: {key.reason}"
    if key.position > position:
        return f"batch uses key epoch {epoch} before that key was published"
    newer = keys.get(epoch + 1)
    if newer is not None and newer.position < position:
        return f"batch uses key epoch {epoch} after it was rotated out"
    if len(events) != count or not events:
        return f"batch announces {count} events but {len(events)} were logged"
    if events[0].seq != first_seq or events[-1].seq != last_seq:
        return "batch sequence range does not match its events"
    if any(b.seq != a.seq + 1 for a, b in itertools.pairwise(events)):
        return "sequence numbers inside the batch are not contiguous"
    if first_seq != previous_seq + 1:
        return f"sequence jumps from {previous_seq} to {first_seq}"
    return None
