"""Key rotation for an oracle, crash-safe: the new key is on disk before the chain hears of it.

Order: archive the keystore and write the new key (keys.keystore.rotate_keystore), then send
`Registry.rotateKey` signed by the old key with proof of possession of the new one. If the
process dies between the two, running the rotation again finds the keystore one epoch ahead of
the chain and resends the same rotation instead of generating yet another key.

An oracle rotates on two grounds: governance reinstated it after a quarantine (`rotation_owed`), or an
indicator of compromise a quorum published names its current key (`named_key`): a sector's quorum saw that key
where it should not be, so whatever signed with it may not have been the oracle. The key an indicator
names is the oracle's ML-DSA-65 key (`key_fingerprint`: SHA-256 of its raw public key, the
``key-fingerprint`` kind's value), the half the registry rotates; the secp256k1 account is the oracle's
identity in the registry and does not rotate (an indicator naming it would need governance to register a
new oracle). Each rotation is the registry's ``KeyRotated`` log, and `rotations_on_indicators` reads back,
from chain data alone, which of them answered an indicator.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.client import ChainClient
from chain.indicators import IndicatorRecord, indicator_records
from chain.registry_history import Position
from core.errors import IdentityError
from core.indicator_values import indicator_id
from keys.hybrid import sign_rotation
from keys.identity import HybridIdentity
from keys.keystore import archive_path, load_keystore, read_keystore_header, rotate_keystore

__all__ = ["KeyAnswer", "RotationResult", "key_fingerprint", "named_in", "named_key", "rotate_oracle_key", "rotation_owed",
           "rotations_on_indicators"]


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


def key_fingerprint(pq_public_key: bytes) -> str:
    """An oracle key's fingerprint as a ``key-fingerprint`` indicator names it: SHA-256 (hex) of the raw
    ML-DSA-65 public key, as the registry's logs publish it."""
    return hashlib.sha256(bytes(pq_public_key)).hexdigest()


def named_key(db: sqlite3.Connection, fingerprint: str, records: list[IndicatorRecord] | None = None) -> IndicatorRecord | None:
    """The counting publication that names the key ``fingerprint`` (a quorum's, recounted by `chain.indicators`)
    and was not withdrawn since, or None. Expired ones too, on purpose: an indicator expires so that a
    reassigned address is not blocked for good, but a key is never reassigned; an oracle that was down
    for the indicator's whole day must still not sign with a key its peers saw misused. A withdrawal (a
    false alarm, on the control room's word) is what clears it."""
    return named_in(records if records is not None else indicator_records(db), fingerprint)


def named_in(records: list[IndicatorRecord], fingerprint: str) -> IndicatorRecord | None:
    """`named_key` over recounted records in chain order."""
    ident = indicator_id("key-fingerprint", fingerprint)
    latest: IndicatorRecord | None = None
    for record in records:
        if record.id != ident or not record.counts:
            continue
        latest = record if record.state == "published" else None
    return latest


@dataclass(frozen=True)
class KeyAnswer:
    """An oracle key a counting publication named, and the rotation that retired it (if any yet)."""

    oracle: str
    epoch: int
    fingerprint: str
    indicator: str  # the indicator's id
    published: Position
    rotated: Position | None  # the ``KeyRotated`` that replaced this key after the publication


def rotations_on_indicators(db: sqlite3.Connection, records: list[IndicatorRecord] | None = None) -> list[KeyAnswer]:
    """Every oracle key a counting ``key-fingerprint`` publication named while it was that oracle's key, with
    the registry's rotation that followed (from the index's ``oracle_keys``: every key each oracle ever
    registered, with its position)."""
    named: dict[str, IndicatorRecord] = {}
    for r in records if records is not None else indicator_records(db):
        if r.counts and r.state == "published" and r.body.get("kind") == "key-fingerprint":
            named.setdefault(str(r.body["value"]), r)
    if not named:
        return []
    keys: dict[str, list[tuple[int, str, Position]]] = {}
    for oracle, epoch, public_key, block, log_index in db.execute(
            "SELECT oracle, epoch, public_key, block, log_index FROM oracle_keys ORDER BY oracle, epoch"):
        keys.setdefault(str(oracle), []).append((int(epoch), key_fingerprint(bytes(public_key)),
                                                 (int(block), int(log_index))))
    out: list[KeyAnswer] = []
    for oracle, history in sorted(keys.items()):
        for i, (epoch, fingerprint, _) in enumerate(history):
            record = named.get(fingerprint)
            if record is None:
                continue
            later = [at for _, _, at in history[i + 1:]]
            if later and later[0] < record.position:
                continue  # named after it was retired: nothing for its oracle to do
            out.append(KeyAnswer(oracle, epoch, fingerprint, record.id, record.position, later[0] if later else None))
    return out
