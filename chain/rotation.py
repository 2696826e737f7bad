"""Key rotation for an oracle, crash-safe: the new key is on disk before the chain hears of it.

Order: archive the keystore and write the new key (keys.keystore.rotate_keystore), then send
`Registry.rotateKey` signed by the old key with proof of possession of the new one. If the
process dies between the two, running the rotation again finds the keystore one epoch ahead of
the chain and resends the same rotation instead of generating yet another key. `rotateKey` names the
epoch it rotates from, so a resend racing the original (still pending when the oracle restarted)
is refused by the registry instead of rotating twice, and counts here as the rotation done.

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
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.client import ChainClient
from chain.indicators import IndicatorRecord, indicator_records
from chain.registry_history import Position
from core.errors import ChainError, ContractRejected, IdentityError, TransactionFailed
from core.indicator_values import indicator_id
from keys.errors import KeystoreError, KeystoreNotFound
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
    tx_hash: str | None  # None: this call sent nothing, it found the same rotation already sent (a resend's)
    block: int  # the rotation's block, or (tx_hash None) the first block seen holding it
    resumed: bool


def rotate_oracle_key(client: ChainClient, keystore: Path, passphrase: str) -> RotationResult:
    """Rotate, or finish the rotation the keystore already holds (one epoch ahead of the registry).

    `Registry.rotateKey` names the epoch it rotates from, so a resend can never rotate twice: when the
    same rotation is already on the chain (or pending, sent before a restart), the registry refuses the
    resend and this returns once the registry holds the keystore's key."""
    header = read_keystore_header(keystore)
    chain_epoch, status, chain_key_hash = _registry_key(client, header.address)
    if status != 1:
        raise IdentityError(f"oracle {header.address} is not active on-chain (status {status}); cannot rotate")
    resumed = False
    if header.key_epoch == chain_epoch:
        _same_key(_opened(keystore, lambda: load_keystore(keystore, passphrase)), chain_key_hash, keystore)
        new_identity: HybridIdentity = _opened(keystore, lambda: rotate_keystore(
            keystore, passphrase, MLDSA65PrivateKey.generate()))
    elif header.key_epoch == chain_epoch + 1:
        new_identity = _opened(keystore, lambda: load_keystore(keystore, passphrase))
        resumed = True
    else:
        raise IdentityError(
            f"keystore {keystore} is at key epoch {header.key_epoch} but the registry has {chain_epoch}; "
            "restore the matching keystore archive"
        )
    archive = archive_path(keystore, chain_epoch)
    old_identity = _opened(archive, lambda: load_keystore(archive, passphrase))
    if resumed:
        _same_key(old_identity, chain_key_hash, archive)
    done = RotationResult(header.address, chain_epoch, new_identity.key_epoch, None, 0, True)
    if resumed and _holds(client, new_identity, block="pending"):
        return _await(client, new_identity, done)  # sent before a restart and not mined yet: nothing to resend
    proof = sign_rotation(old_identity, new_identity.mldsa_key, chain_id=client.chain_id,
                          registry=client.address("Registry"))
    try:
        receipt = client.transact(old_identity.account, "Registry", "rotateKey", proof.old_epoch,
                                  proof.new_public_key, proof.old_signature, proof.new_signature)
    except TransactionFailed as exc:
        # the registry refuses a rotation from an epoch it has left: this same rotation got there first
        # (a resend racing the original); anything else is a real failure
        if _holds(client, new_identity, block="latest") or (
                isinstance(exc, ContractRejected) and exc.error == "RegistryKeyEpochMismatch"
                and _holds(client, new_identity, block="pending")):
            return _await(client, new_identity, done)
        raise
    return RotationResult(header.address, chain_epoch, proof.new_epoch, str(receipt["transactionHash"]),
                          int(receipt["blockNumber"], 16), resumed)


def _same_key(identity: HybridIdentity, chain_key_hash: bytes, path: Path) -> None:
    """A rotation is signed only by the key the registry holds: `rotateKey` cannot check ML-DSA, so a proof
    from any other key would be accepted on-chain and flagged by every audit (review s38b, finding 2). The
    registry holding another key at this epoch means someone else rotated this oracle's account."""
    if identity.pq_key_hash != chain_key_hash:
        raise IdentityError(
            f"cannot rotate: the registry holds key epoch {identity.key_epoch} of {identity.address} with another "
            f"key than {path}: the account key may be compromised, or another copy of the keystore was rotated")


def _opened(path: Path, open_it: Callable[[], HybridIdentity]) -> HybridIdentity:
    """A keystore a rotation needs, or one plain `IdentityError` naming it: no retry brings back a missing
    archive or mends a passphrase, so an oracle host must end that oracle rather than restart it."""
    try:
        return open_it()
    except KeystoreNotFound as exc:
        raise IdentityError(f"cannot rotate: keystore {path} is missing (restore it, or the keystore of the "
                            "registry's current key epoch)") from exc
    except KeystoreError as exc:
        raise IdentityError(f"cannot rotate: keystore {path} cannot be opened: {exc}") from exc


def _registry_key(client: ChainClient, address: str, block: str = "latest") -> tuple[int, int, bytes]:
    """(key epoch, status, pqKeyHash) the registry holds for `address`."""
    record = client.call("Registry", "oracle", address, block=block)[0]
    return int(record[3]), int(record[4]), bytes(record[2])


def _holds(client: ChainClient, identity: HybridIdentity, *, block: str) -> bool:
    """Whether the registry (at `block`) holds exactly this identity's key and epoch."""
    try:
        epoch, _, key_hash = _registry_key(client, identity.address, block)
    except ChainError:
        return False  # a node that cannot answer for `block` ("pending"): the contract still refuses a resend
    return epoch == identity.key_epoch and key_hash == identity.pq_key_hash


def _await(client: ChainClient, identity: HybridIdentity, done: RotationResult) -> RotationResult:
    """Wait (up to the client's receipt timeout) until the latest block holds the rotation already sent.
    If it never lands (the node dropped it), a `TransactionFailed`: a retry then sends it again."""
    deadline = time.monotonic() + client.receipt_timeout_s
    while True:
        epoch, _, key_hash = _registry_key(client, identity.address)
        if epoch == identity.key_epoch and key_hash == identity.pq_key_hash:
            return replace(done, block=int(client.rpc.call("eth_blockNumber"), 16))
        if epoch == identity.key_epoch:  # our epoch with another key: not ours, and waiting never mends it
            raise IdentityError(f"oracle {identity.address}: the registry holds key epoch {epoch} with another key "
                                "than this keystore's: the account key may be compromised")
        if epoch > identity.key_epoch:
            raise IdentityError(f"oracle {identity.address}: the registry moved on to key epoch {epoch} while its "
                                f"rotation to {identity.key_epoch} was pending; load the current keystore")
        if time.monotonic() > deadline:
            raise TransactionFailed(f"the rotation of {identity.address} to key epoch {identity.key_epoch} was "
                                    f"sent but not mined within {client.receipt_timeout_s:.0f} s")
        time.sleep(0.2)


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
