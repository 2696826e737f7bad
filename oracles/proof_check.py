"""One stored reading proven against the telemetry root its oracle recorded ON-CHAIN.

`qeaims audit proof` and the API's `GET /proofs/{oracle}/{ref}` both run this. The oracle's local
store supplies the reading, its index and its siblings; the chain supplies the root (the
`telemetry-root` event the store's batch was anchored as, read from a log index). The leaf is
recomputed from the stored reading's bytes, so a reading altered after it was anchored fails, and so
does a batch whose root was never recorded.

Two steps, so that the command keeps its order (the local store is read, and its errors reported,
before the chain is asked anything): `local_proof`, then `check_against_chain` with an index synced
by the caller; `check_reading` runs both for a caller whose index is already current.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import AuditFailed, ConfigError
from oracles.merkle import LEAF_SCHEME
from oracles.telemetry import TELEMETRY_ROOT, TelemetryProof, TelemetryStore, decode_root_payload

__all__ = ["ReadingCheck", "check_against_chain", "check_reading", "local_proof"]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


@dataclass(frozen=True)
class ReadingCheck:
    """The proof of one reading and its verdict against the on-chain root."""

    evidence: TelemetryProof
    oracle: str  # the address
    block: int
    tx: str
    chain_root: bytes
    ok: bool
    reason: str  # why not ("" when ok)

    def as_dict(self) -> dict[str, Any]:
        """What `qeaims audit proof --json` prints (unchanged by the move)."""
        e = self.evidence
        result: dict[str, Any] = {
            "ok": self.ok, "reading": e.ref, "oracle": self.oracle, "seq": e.seq, "block": self.block, "tx": self.tx,
            "scheme": LEAF_SCHEME, "leaf": _hex(e.leaf), "proof": [_hex(p) for p in e.proof],
            "root": _hex(self.chain_root), "local_root": _hex(e.root),
            "asset": e.reading.asset_id, "sensor": e.reading.sensor_id,
            "quantity": e.reading.quantity, "value": e.reading.value, "unit": e.reading.unit,
            "timestamp": e.reading.timestamp.isoformat(),
        }
        if not self.ok:
            result["reason"] = self.reason
        return result


def local_proof(path: Path, address: str, ref: str, *, label: str) -> TelemetryProof:
    """The reading's proof from the oracle's store at `path` (`label` names the oracle in errors):
    ConfigError for a missing store or reading, AuditFailed for a store altered or never anchored."""
    if not path.is_file():
        raise ConfigError(f"no telemetry store for {label} at {path}")
    local = TelemetryStore(path, address)
    try:
        evidence = local.proof(ref)
    finally:
        local.close()
    if evidence.seq is None:
        raise AuditFailed(f"batch {evidence.batch} of {label} was never handed to the ledger: nothing to prove against")
    return evidence


def check_against_chain(evidence: TelemetryProof, address: str, db: sqlite3.Connection) -> ReadingCheck:
    """The proof checked against the root of the `telemetry-root` event it was anchored as (AuditFailed
    when that event is missing or is not that batch's root)."""
    row = db.execute(
        "SELECT kind, payload, block, tx_hash FROM events WHERE oracle = ? AND seq = ?",
        (address.lower(), evidence.seq),
    ).fetchone()
    if row is None:
        raise AuditFailed(f"event #{evidence.seq} of {address} (batch {evidence.batch}) is not on the chain yet")
    kind, payload, block, tx_hash = int(row[0]), bytes(row[1]), int(row[2]), str(row[3])
    if kind != TELEMETRY_ROOT:
        raise AuditFailed(f"event #{evidence.seq} of {address} is not a telemetry-root event")
    batch, chain_root = decode_root_payload(payload)
    if batch != evidence.batch:
        raise AuditFailed(f"event #{evidence.seq} of {address} anchors batch {batch}, not batch {evidence.batch}")
    ok = evidence.verify(chain_root)
    reason = "" if ok else (
        "the stored reading differs from the one that was anchored" if evidence.leaf != evidence.stored_leaf
        else "the local batch differs from the one that was anchored")
    return ReadingCheck(evidence=evidence, oracle=address, block=block, tx=tx_hash, chain_root=chain_root, ok=ok,
                        reason=reason)


def check_reading(path: Path, address: str, ref: str, db: sqlite3.Connection, *, label: str | None = None) -> ReadingCheck:
    """`local_proof` then `check_against_chain`, over an index the caller keeps current."""
    return check_against_chain(local_proof(path, address, ref, label=label or address), address, db)
