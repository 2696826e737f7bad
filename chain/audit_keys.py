"""Each oracle's key history, rebuilt and checked from the index alone (part of `chain.audit`).

The registration's proof of possession, then every rotation signed by the previous key and by the
new one; key hashes match the published keys. A batch is judged against the key of its epoch
(`chain.audit_batch`), and the quorum's recount checks ML-DSA votes with the same keys
(`chain.quorum_audit`), so the history is its own module, read by both.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import defaultdict
from dataclasses import dataclass

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from keys.hybrid import RotationProof, verify_registration, verify_rotation

__all__ = ["KeyEpoch", "key_history"]


@dataclass(frozen=True)
class KeyEpoch:
    """One published ML-DSA key of an oracle, and whether its chain of trust holds."""

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


def key_history(db: sqlite3.Connection, chain_id: int, registry: str) -> dict[str, dict[int, KeyEpoch]]:
    """Every oracle's published keys by epoch (oracle lower-case): the registration's proof of
    possession, then each rotation signed by the previous key and the new one; an epoch after a
    broken link is not trustworthy either."""
    history: dict[str, dict[int, KeyEpoch]] = defaultdict(dict)
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
        history[oracle][epoch] = KeyEpoch(public_key, (int(block), int(log_index)), ok, reason)
    return history
