"""`qeaims audit verify`: re-check every recorded event from chain data alone.

What is checked, all from the logs in the index (which `Indexer.sync` reads with eth_getLogs):
- each oracle's key history: the registration's proof of possession, then every rotation signed
  by the previous key and by the new one; key hashes match the published keys;
- each batch: its events are exactly `firstSeq..lastSeq`, contiguous, in order; its key epoch was
  the oracle's current epoch when it was recorded; its ML-DSA-65 signature verifies over the
  domain-separated batch message with the key of that epoch;
- per oracle, sequence numbers increase by one from batch to batch, with no gap and no repeat.
An event is valid only if its batch, its key and its sequence all check out.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from keys.hybrid import RotationProof, verify_batch, verify_registration, verify_rotation
from keys.messages import EventToSign

__all__ = ["AuditReport", "verify_chain_history"]


@dataclass
class AuditReport:
    events: int = 0
    valid: int = 0
    batches: int = 0
    oracles: int = 0
    key_epochs: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.invalid

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "valid": self.valid,
            "invalid": self.invalid,
            "batches": self.batches,
            "oracles": self.oracles,
            "key_epochs": self.key_epochs,
        }


@dataclass(frozen=True)
class _Key:
    public_key: bytes
    position: tuple[int, int]  # (block, log_index) where this epoch began
    valid: bool
    reason: str


@functools.lru_cache(maxsize=4096)
def _registration_ok(public_key: bytes, signature: bytes, chain_id: int, registry: str, account: str,
                     sector: bytes, operator: bytes) -> bool:
    """Memoised: an oracle watching its peers re-reads the key history every peer interval, and
    verifying every oracle's ML-DSA proof of possession each time was most of that check. The
    answer is a pure function of the arguments, so a cached one is the same answer."""
    return verify_registration(public_key, signature, chain_id=chain_id, registry=registry, account=account,
                               sector=sector, operator=operator)


@functools.lru_cache(maxsize=4096)
def _rotation_ok(previous_key: bytes, new_key: bytes, old_signature: bytes, new_signature: bytes, epoch: int,
                 chain_id: int, registry: str, account: str) -> bool:
    """Memoised for the same reason as `_registration_ok`."""
    proof = RotationProof(new_public_key=new_key, old_signature=old_signature, new_signature=new_signature,
                          new_epoch=epoch)
    return verify_rotation(previous_key, proof, chain_id=chain_id, registry=registry, account=account)


def _key_history(db: sqlite3.Connection, chain_id: int, registry: str, report: AuditReport) -> dict[str, dict[int, _Key]]:
    history: dict[str, dict[int, _Key]] = defaultdict(dict)
    rows = db.execute(
        "SELECT oracle, epoch, public_key, key_hash, sector, operator, sig_a, sig_b, block, log_index "
        "FROM oracle_keys ORDER BY oracle, epoch"
    ).fetchall()
    for oracle, epoch, public_key, key_hash, sector, operator, sig_a, sig_b, block, log_index in rows:
        account = to_checksum_address(oracle)
        public_key = bytes(public_key)
        ok, reason = True, ""
        if "0x" + keccak(public_key).hex() != key_hash:
            ok, reason = False, "published key does not match its hash"
        elif epoch == 1:
            if not _registration_ok(public_key, bytes(sig_a), chain_id, registry, account,
                                    bytes.fromhex(sector[2:]), bytes.fromhex(operator[2:])):
                ok, reason = False, "registration proof of possession does not verify"
        else:
            previous = history[oracle].get(epoch - 1)
            if previous is None:
                ok, reason = False, f"rotation to epoch {epoch} without a key for epoch {epoch - 1}"
            elif not _rotation_ok(previous.public_key, public_key, bytes(sig_a), bytes(sig_b or b""), int(epoch),
                                  chain_id, registry, account):
                ok, reason = False, f"rotation to epoch {epoch} is not signed by both the old and new key"
            elif not previous.valid:
                ok, reason = False, f"rotation chain broken before epoch {epoch}"
        history[oracle][epoch] = _Key(public_key, (int(block), int(log_index)), ok, reason)
        report.key_epochs += 1
    return history


def verify_chain_history(
    db: sqlite3.Connection,
    *,
    chain_id: int,
    ledger: str,
    registry: str,
    progress: Callable[[int, int], None] | None = None,
    from_batch: int = 1,
) -> AuditReport:
    """Verify every batch from `from_batch` on (batch ids follow chain order); an oracle watching its
    peers passes the first batch it has not checked yet, an auditor checks everything."""
    report = AuditReport()
    history = _key_history(db, chain_id, registry, report)
    report.oracles = len(history)
    batches = db.execute(
        "SELECT batch_id, oracle, key_epoch, first_seq, last_seq, count, signature, block, log_index "
        "FROM batches WHERE batch_id >= ? ORDER BY block, log_index", (from_batch,)
    ).fetchall()
    report.events = int(db.execute("SELECT COUNT(*) FROM events WHERE batch_id >= ?", (from_batch,)).fetchone()[0])
    last_seq: dict[str, int] = defaultdict(int)
    for oracle, seq in db.execute("SELECT oracle, MAX(last_seq) FROM batches WHERE batch_id < ? GROUP BY oracle",
                                  (from_batch,)):
        last_seq[oracle] = int(seq)
    for done, (batch_id, oracle, epoch, first_seq, last, count, signature, block, log_index) in enumerate(batches, 1):
        report.batches += 1
        rows = db.execute(
            "SELECT seq, kind, node, payload FROM events WHERE batch_id = ? ORDER BY block, log_index", (batch_id,)
        ).fetchall()
        events = [EventToSign(seq=int(s), kind=int(k), node=bytes.fromhex(n[2:]), payload=bytes(p))
                  for s, k, n, p in rows]
        reason = _check_batch(history, oracle, int(epoch), (int(block), int(log_index)), events,
                              int(first_seq), int(last), int(count), last_seq[oracle])
        if reason is None and not verify_batch(
            history[oracle][int(epoch)].public_key, chain_id=chain_id, ledger=ledger,
            oracle=to_checksum_address(oracle), key_epoch=int(epoch), events=events, signature=bytes(signature),
        ):
            reason = "ML-DSA-65 signature does not verify"
        if events:
            last_seq[oracle] = max(last_seq[oracle], events[-1].seq)
        if reason is None:
            report.valid += len(events)
        else:
            for event in events or [EventToSign(seq=int(first_seq), kind=0, node=b"\0" * 32, payload=b"")]:
                report.invalid.append({"oracle": to_checksum_address(oracle), "seq": event.seq,
                                       "batch": int(batch_id), "block": int(block), "reason": reason})
        if progress is not None:
            progress(done, len(batches))
    if from_batch == 1:  # a full audit; an oracle checking its peers incrementally skips it
        report.invalid += _check_quarantines(db)
    orphans = report.events - sum(int(c) for (c,) in db.execute("SELECT count FROM batches WHERE batch_id >= ?",
                                                                   (from_batch,)))
    if orphans > 0:
        report.invalid.append({"oracle": None, "seq": None, "batch": None, "block": None,
                               "reason": f"{orphans} events have no signed batch"})
    return report


def _check_batch(
    history: dict[str, dict[int, _Key]],
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


def _check_quarantines(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Recount each sensor quarantine from chain data (`chain.quarantines`): every cited verdict must
    be an intrusion event naming that sensor first, from distinct oracles, at least as many as the
    event says the sector's quorum required."""
    from chain.quarantines import quarantine_records

    problems: list[dict[str, Any]] = []
    for record in quarantine_records(db):
        if record.state == "lifted" or record.recounts:
            continue
        reason = ("sensor quarantine without readable evidence" if record.state == "unreadable" else
                  f"sensor quarantine of {record.sensor} cites {record.matching} matching intrusion verdicts, "
                  f"needs {record.required}")
        problems.append({"oracle": to_checksum_address(record.oracle), "seq": record.seq, "batch": None,
                         "block": record.block, "reason": reason})
    return problems
