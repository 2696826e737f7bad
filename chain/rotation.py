"""Key rotation for an oracle, crash-safe: the new key is on disk before the chain hears of it.

Order: archive the keystore and write the new key (keys.keystore.rotate_keystore), then send
`Registry.rotateKey` signed by the old key with proof of possession of the new one. If the
process dies between the two, running the rotation again finds the keystore one epoch ahead of
the chain and resends the same rotation instead of generating yet another key. `rotateKey` names the
epoch it rotates from, so a resend racing the original (still pending when the oracle restarted)
is refused by the registry instead of rotating twice, and counts here as the rotation done.

Beside the keystore (`keys.rotating`): a lock, so that two rotations of one oracle at once (its host's and
`qeaims keys rotate`, threads or processes) run one after the other, the second answered by the first
when that one retired the key it was asked to retire; and a pending-rotation record, written before the
rotation is sent and cleared once the chain holds it, so that a retry after "sent but not mined" finds
that rotation done instead of rotating again.

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
from typing import TypeVar

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
from keys.rotating import (
    PendingRotation,
    clear_pending_rotation,
    read_pending_rotation,
    record_pending_rotation,
    rotation_lock,
)

__all__ = ["KeyAnswer", "RotationResult", "key_fingerprint", "named_in", "named_key", "rotate_oracle_key", "rotation_owed",
           "rotations_on_indicators", "settle_pending_rotation"]


@dataclass(frozen=True)
class RotationResult:
    address: str
    old_epoch: int
    new_epoch: int
    tx_hash: str | None  # None: this call sent nothing, it found the same rotation already sent (a resend's,
    # a retry's), or a rotation it waited for that retired the same key
    block: int  # the rotation's block, or (tx_hash None) the first block seen holding it
    resumed: bool


def rotate_oracle_key(client: ChainClient, keystore: Path, passphrase: str) -> RotationResult:
    """Rotate, or finish the rotation the keystore already holds (one epoch ahead of the registry) or sent.

    `Registry.rotateKey` names the epoch it rotates from, so a resend can never rotate twice: when the
    same rotation is already on the chain (or pending, sent before a restart), the registry refuses the
    resend and this returns once the registry holds the keystore's key.

    Two rotations of one keystore at once (the oracle host's own and `qeaims keys rotate`, in one process
    or two) are serialised by the keystore's rotation lock (`keys.rotating`), held from reading the
    keystore and the registry until the chain holds the new key or the wait for it ended. The call that
    waited then reads both again. A call retires the key the registry held when it was made: if, once it
    holds the lock, the registry has moved past that epoch to exactly the keystore's key, the rotation it
    waited for (or the pending one it was made to finish) did the job, and it returns that rotation
    (``tx_hash`` None, ``resumed``) rather than rotating once more. Two requests to retire one key are one
    rotation, and each caller learns the key that replaced it; a call made after a rotation ended
    rotates again, as ever.

    The same goes for a retry: a rotation that timed out waiting for the chain ("sent but not mined")
    leaves its pending-rotation record beside the keystore, and running the rotation again once that
    transaction is mined finds the registry holding exactly the recorded key: it returns that rotation
    and clears the record instead of rotating a second time (review s38b, finding 5). The record is
    cleared whenever the chain is seen holding its rotation, here or when an oracle starts on that key
    (`settle_pending_rotation`).

    A lock held past `_lock_wait_s` is `KeystoreBusy`: the other rotation is still running (a host retries)."""
    retiring = _registry_key(client, read_keystore_header(keystore).address)[0]  # read before any wait
    with rotation_lock(keystore, timeout_s=_lock_wait_s(client)):
        return _rotate_locked(client, keystore, passphrase, retiring)


def _lock_wait_s(client: ChainClient) -> float:
    """How long a rotation waits for another's lock: the holder's longest critical section, a send and an
    `_await` of up to the receipt timeout each, plus a minute for its scrypt runs and calls."""
    return 2 * client.receipt_timeout_s + 60.0


def _rotate_locked(client: ChainClient, keystore: Path, passphrase: str, retiring: int) -> RotationResult:
    """`rotate_oracle_key` under the lock; `retiring` is the registry's key epoch when the call was made."""
    header = read_keystore_header(keystore)
    chain_epoch, status, chain_key_hash = _registry_key(client, header.address)
    if status != 1:
        raise IdentityError(f"oracle {header.address} is not active on-chain (status {status}); cannot rotate")
    resumed = False
    if header.key_epoch == chain_epoch:
        current = _opened(keystore, lambda: load_keystore(keystore, passphrase))
        _same_key(current, chain_key_hash, keystore)
        if chain_epoch > retiring or _pending_on_chain(keystore, current):
            # the key this call was made to retire is retired already, to this keystore's key: by the rotation
            # it waited for, or by an earlier attempt that timed out before the chain mined it (its record)
            _keys_step(lambda: clear_pending_rotation(keystore))
            return RotationResult(current.address, min(retiring, chain_epoch - 1), chain_epoch, None,
                                  int(client.rpc.call("eth_blockNumber"), 16), True)
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
    # before anything is sent (or awaited): a retry after a timeout must know this rotation was sent
    _keys_step(lambda: record_pending_rotation(keystore, PendingRotation(
        new_identity.address, new_identity.key_epoch, new_identity.pq_key_hash)))
    result = _send_or_await(client, old_identity, new_identity, resumed)
    _keys_step(lambda: clear_pending_rotation(keystore))  # the chain holds it: nothing pending
    return result


def _send_or_await(client: ChainClient, old_identity: HybridIdentity, new_identity: HybridIdentity,
                   resumed: bool) -> RotationResult:
    """Send the rotation old -> new (or await the one already pending) until the latest block holds it."""
    done = RotationResult(new_identity.address, old_identity.key_epoch, new_identity.key_epoch, None, 0, True)
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
    return RotationResult(new_identity.address, old_identity.key_epoch, proof.new_epoch,
                          str(receipt["transactionHash"]), int(receipt["blockNumber"], 16), resumed)


def _pending_on_chain(keystore: Path, current: HybridIdentity) -> bool:
    """Whether the keystore's pending-rotation record names exactly its current key (which the caller saw
    the registry hold): the rotation an earlier call sent and gave up waiting for has been mined since."""
    pending = _keys_step(lambda: read_pending_rotation(keystore))
    return pending == PendingRotation(current.address, current.key_epoch, current.pq_key_hash)


_T = TypeVar("_T")


def _keys_step(step: Callable[[], _T]) -> _T:
    """A pending-rotation record or lock file that cannot be used is one plain `IdentityError`, as a
    keystore that cannot be opened is (`_opened`)."""
    try:
        return step()
    except KeystoreError as exc:
        raise IdentityError(f"cannot rotate: {exc}") from exc


def settle_pending_rotation(keystore: Path, identity: HybridIdentity) -> bool:
    """An oracle starts serving with `identity`, which its caller saw the registry hold (`check_key_epoch`):
    a pending-rotation record naming that key is settled, and goes. Else a rotation that timed out and was
    mined later leaves its record behind, and the next rotation asked for, maybe weeks on, would take it
    for its own retry and send nothing. Only under the keystore's lock, without waiting: a rotation
    running now settles the record itself. Returns whether a record was cleared."""
    try:
        with rotation_lock(keystore, timeout_s=0.0):
            if read_pending_rotation(keystore) != PendingRotation(identity.address, identity.key_epoch,
                                                                  identity.pq_key_hash):
                return False
            clear_pending_rotation(keystore)
            return True
    except KeystoreError:
        return False  # busy, or a record that cannot be read: `rotate_oracle_key` reports that one


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
                                    f"sent but not mined within {client.receipt_timeout_s:.0f} s; running the "
                                    "rotation again finishes this one (it does not rotate twice)")
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
