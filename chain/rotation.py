"""Key rotation for an oracle, crash-safe: the new key is on disk before the chain hears of it.

Order: archive the keystore and write the new key (keys.keystore.rotate_keystore), then send
`Registry.rotateKey` signed by the old key with proof of possession of the new one. If the
process dies between the two, running the rotation again finds the keystore one epoch ahead of
the chain and resends the same rotation instead of generating yet another key.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.client import ChainClient
from core.errors import IdentityError
from keys.hybrid import sign_rotation
from keys.identity import HybridIdentity
from keys.keystore import archive_path, load_keystore, read_keystore_header, rotate_keystore

__all__ = ["RotationResult", "rotate_oracle_key", "rotation_owed"]


@dataclass(frozen=True)
class RotationResult:
    address: str
    old_epoch: int
    new_epoch: int
    tx_hash: str
    block: int
    resumed: bool


def rotate_oracle_key(client: ChainClient, keystore: Path, passphrase: str) -> RotationResult:
    header = read_keystore_header(keystore)
    oracle = client.call1("Registry", "oracle", header.address)
    chain_epoch, status = int(oracle[3]), int(oracle[4])
    if status != 1:
        raise IdentityError(f"oracle {header.address} is not active on-chain (status {status}); cannot rotate")
    resumed = False
    if header.key_epoch == chain_epoch:
        new_identity: HybridIdentity = rotate_keystore(keystore, passphrase, MLDSA65PrivateKey.generate())
    elif header.key_epoch == chain_epoch + 1:
        new_identity = load_keystore(keystore, passphrase)
        resumed = True
    else:
        raise IdentityError(
            f"keystore {keystore} is at key epoch {header.key_epoch} but the registry has {chain_epoch}; "
            "restore the matching keystore archive"
        )
    old_identity = load_keystore(archive_path(keystore, chain_epoch), passphrase)
    proof = sign_rotation(old_identity, new_identity.mldsa_key, chain_id=client.chain_id,
                          registry=client.address("Registry"))
    receipt = client.transact(old_identity.account, "Registry", "rotateKey",
                              proof.new_public_key, proof.old_signature, proof.new_signature)
    return RotationResult(header.address, chain_epoch, proof.new_epoch, str(receipt["transactionHash"]),
                          int(receipt["blockNumber"], 16), resumed)


def rotation_owed(db: sqlite3.Connection, address: str) -> bool:
    """Whether `address` was quarantined after its current key was published (from an indexer's
    ``logs``). A quarantine says its signatures could not be trusted: whatever the cause, the key
    it signed with may be in other hands, so after governance reinstates it the oracle signs
    nothing more with that key and rotates first (`oracles.process` does so)."""
    me = address.lower()
    last_quarantine = last_rotation = (-1, -1)
    rows = db.execute("SELECT event, args, block, log_index FROM logs WHERE contract = 'Registry' "
                      "AND event IN ('OracleStatusChanged', 'KeyRotated')").fetchall()
    for event, args, block, log_index in rows:
        body = json.loads(args)
        if str(body.get("account", "")).lower() != me:
            continue
        at = (int(block), int(log_index))
        if event == "KeyRotated":
            last_rotation = max(last_rotation, at)
        elif int(body.get("to", -1)) == 2:  # OracleStatus.Quarantined
            last_quarantine = max(last_quarantine, at)
    return last_quarantine > last_rotation
