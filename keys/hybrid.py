"""Hybrid signing: the ML-DSA-65 half of every ledger batch, registration and key rotation.

The secp256k1 half is the transaction itself (the EVM checks it); the ML-DSA half is made here over
a message from :mod:`keys.messages` that binds chain id, contract, the sending account, its key
epoch and sequence range, so neither half can be lifted into another context. One ML-DSA signature
covers a whole batch: each event costs two keccak calls, the batch one signature.

This module also re-exports the message builders and id helpers, so callers need one import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from keys.errors import InvalidBatch, InvalidKey
from keys.identity import MAX_KEY_EPOCH, HybridIdentity, pq_key_hash, verify_pq
from keys.ids import event_id, from_bytes32, split_event_id, to_bytes32
from keys.messages import (
    EVENT_BATCH_CONTEXT,
    REGISTRATION_CONTEXT,
    ROTATION_CONTEXT,
    VOTE_CONTEXT,
    EventToSign,
    batch_message,
    event_hash,
    registration_message,
    rotation_message,
    vote_message,
)

__all__ = [
    "EVENT_BATCH_CONTEXT",
    "REGISTRATION_CONTEXT",
    "ROTATION_CONTEXT",
    "VOTE_CONTEXT",
    "Ballot",
    "EventToSign",
    "RotationProof",
    "SignedBatch",
    "batch_message",
    "batch_message_for",
    "event_hash",
    "event_id",
    "from_bytes32",
    "registration_message",
    "rotation_message",
    "sign_batch",
    "sign_registration",
    "sign_rotation",
    "sign_vote",
    "split_event_id",
    "to_bytes32",
    "verify_batch",
    "verify_registration",
    "verify_rotation",
    "verify_vote",
    "vote_message",
]


@dataclass(frozen=True)
class SignedBatch:
    """A batch ready for ``IEventLedger.recordBatch(events, pqSignature)``."""

    events: tuple[EventToSign, ...]
    key_epoch: int
    first_seq: int
    last_seq: int
    pq_signature: bytes

    @property
    def count(self) -> int:
        """Number of events, as the ledger logs it in ``BatchSigned.count``."""
        return len(self.events)

    def event_inputs(self) -> list[tuple[int, int, bytes, bytes]]:
        """The ``EventInput[]`` argument for ``recordBatch``, as web3 expects tuples."""
        return [event.as_event_input() for event in self.events]


@dataclass(frozen=True)
class RotationProof:
    """What ``IRegistry.rotateKey`` needs, and what its ``KeyRotated`` log lets anyone re-check.

    Both signatures cover the same rotation message: ``old_signature`` by the key being retired
    (authorisation), ``new_signature`` by the new key (proof of possession).
    """

    new_public_key: bytes
    old_signature: bytes
    new_signature: bytes
    new_epoch: int

    @property
    def old_epoch(self) -> int:
        """The epoch of the key that authorised this rotation."""
        return self.new_epoch - 1

    @property
    def new_key_hash(self) -> bytes:
        """keccak256 of the new public key, as the registry will store it."""
        return pq_key_hash(self.new_public_key)


def _checked_events(events: Sequence[EventToSign]) -> tuple[EventToSign, ...]:
    """Apply the ledger's batch rules here so a bad batch fails before any signing or gas."""
    batch = tuple(events)
    if not batch:
        raise InvalidBatch("a batch needs at least one event")
    for event in batch:
        if not isinstance(event, EventToSign):
            raise InvalidBatch(f"batch items must be EventToSign, got {type(event).__name__}")
    for previous, current in pairwise(batch):
        if current.seq <= previous.seq:
            raise InvalidBatch(
                f"sequence numbers must strictly increase, but {current.seq} follows {previous.seq}"
            )
    return batch


def batch_message_for(
    events: Sequence[EventToSign], *, chain_id: int, ledger: str, oracle: str, key_epoch: int
) -> bytes:
    """The :func:`batch_message` for ``events``, deriving range, count and event hashes from them."""
    batch = _checked_events(events)
    return batch_message(
        chain_id=chain_id,
        ledger=ledger,
        oracle=oracle,
        key_epoch=key_epoch,
        first_seq=batch[0].seq,
        last_seq=batch[-1].seq,
        count=len(batch),
        event_hashes=[event.hash() for event in batch],
    )


def sign_batch(
    identity: HybridIdentity, *, chain_id: int, ledger: str, events: Sequence[EventToSign]
) -> SignedBatch:
    """Sign ``events`` for ``ledger`` as ``identity`` at its current key epoch.

    The batch is bound to ``identity.address``, so it must be sent from that account.
    """
    batch = _checked_events(events)
    message = batch_message_for(
        batch, chain_id=chain_id, ledger=ledger, oracle=identity.address, key_epoch=identity.key_epoch
    )
    return SignedBatch(
        events=batch,
        key_epoch=identity.key_epoch,
        first_seq=batch[0].seq,
        last_seq=batch[-1].seq,
        pq_signature=identity.sign_pq(message, EVENT_BATCH_CONTEXT),
    )


def verify_batch(
    public_key: bytes,
    *,
    chain_id: int,
    ledger: str,
    oracle: str,
    key_epoch: int,
    events: Sequence[EventToSign],
    signature: bytes,
) -> bool:
    """True when ``signature`` is ``oracle``'s ML-DSA signature over exactly these events.

    ``public_key`` must be the key registered for ``oracle`` at ``key_epoch`` (from the registry's
    ``OracleRegistered``/``KeyRotated`` logs). A structurally invalid batch raises
    :class:`~keys.errors.InvalidBatch` (the ledger can never have recorded one); a wrong signature
    or key returns ``False``.
    """
    message = batch_message_for(events, chain_id=chain_id, ledger=ledger, oracle=oracle, key_epoch=key_epoch)
    return verify_pq(public_key, signature, message, EVENT_BATCH_CONTEXT)


def sign_registration(
    identity: HybridIdentity, *, chain_id: int, registry: str, sector: bytes, operator: bytes
) -> bytes:
    """The proof-of-possession signature passed to ``IRegistry.registerOracle`` as ``popSignature``."""
    message = registration_message(
        chain_id=chain_id,
        registry=registry,
        account=identity.address,
        sector=sector,
        operator=operator,
        pq_key_hash=identity.pq_key_hash,
    )
    return identity.sign_pq(message, REGISTRATION_CONTEXT)


def verify_registration(
    public_key: bytes,
    signature: bytes,
    *,
    chain_id: int,
    registry: str,
    account: str,
    sector: bytes,
    operator: bytes,
) -> bool:
    """True when ``signature`` proves possession of ``public_key`` for this registration."""
    try:
        key_hash = pq_key_hash(public_key)
    except InvalidKey:
        return False
    message = registration_message(
        chain_id=chain_id,
        registry=registry,
        account=account,
        sector=sector,
        operator=operator,
        pq_key_hash=key_hash,
    )
    return verify_pq(public_key, signature, message, REGISTRATION_CONTEXT)


def sign_rotation(
    old_identity: HybridIdentity, new_mldsa_key: MLDSA65PrivateKey, *, chain_id: int, registry: str
) -> RotationProof:
    """Authorise moving ``old_identity`` to ``new_mldsa_key`` at the next epoch.

    Use ``old_identity.with_rotated_key(new_mldsa_key)`` for the identity after the rotation.
    """
    new_identity = old_identity.with_rotated_key(new_mldsa_key)
    message = rotation_message(
        chain_id=chain_id,
        registry=registry,
        account=old_identity.address,
        old_epoch=old_identity.key_epoch,
        new_epoch=new_identity.key_epoch,
        new_key_hash=new_identity.pq_key_hash,
    )
    return RotationProof(
        new_public_key=new_identity.pq_public_key,
        old_signature=old_identity.sign_pq(message, ROTATION_CONTEXT),
        new_signature=new_identity.sign_pq(message, ROTATION_CONTEXT),
        new_epoch=new_identity.key_epoch,
    )


def verify_rotation(
    old_public_key: bytes, proof: RotationProof, *, chain_id: int, registry: str, account: str
) -> bool:
    """True when the key at ``proof.old_epoch`` authorised ``proof`` and the new key signed it too.

    The caller must also check that ``old_public_key`` is the key the registry held at
    ``proof.old_epoch`` for ``account``; this function checks only the signatures.
    """
    if not 2 <= proof.new_epoch <= MAX_KEY_EPOCH:
        return False
    try:
        new_key_hash = proof.new_key_hash
    except InvalidKey:
        return False
    message = rotation_message(
        chain_id=chain_id,
        registry=registry,
        account=account,
        old_epoch=proof.old_epoch,
        new_epoch=proof.new_epoch,
        new_key_hash=new_key_hash,
    )
    return verify_pq(old_public_key, proof.old_signature, message, ROTATION_CONTEXT) and verify_pq(
        proof.new_public_key, proof.new_signature, message, ROTATION_CONTEXT
    )


@dataclass(frozen=True)
class Ballot:
    """An IsolationQuorum proposal as a voter signs it: ``(action, target, statusEpoch, round)``."""

    action: int
    target: bytes
    status_epoch: int
    round: int


def sign_vote(identity: HybridIdentity, ballot: Ballot, *, chain_id: int, quorum: str) -> bytes:
    """The ML-DSA-65 signature a ``propose``/``vote`` transaction carries (docs/TRUST.md)."""
    message = vote_message(chain_id=chain_id, quorum=quorum, voter=identity.address, key_epoch=identity.key_epoch,
                           action=ballot.action, target=ballot.target, status_epoch=ballot.status_epoch,
                           round_=ballot.round)
    return identity.sign_pq(message, VOTE_CONTEXT)


def verify_vote(public_key: bytes, signature: bytes, ballot: Ballot, *, chain_id: int, quorum: str, voter: str,
                key_epoch: int) -> bool:
    """True when ``signature`` is ``voter``'s vote on ``ballot`` under the key of ``key_epoch``.

    The caller must check that ``public_key`` is the key the registry held at ``key_epoch``.
    """
    try:
        message = vote_message(chain_id=chain_id, quorum=quorum, voter=voter, key_epoch=key_epoch,
                               action=ballot.action, target=ballot.target, status_epoch=ballot.status_epoch,
                               round_=ballot.round)
    except (InvalidBatch, ValueError):
        return False
    return verify_pq(public_key, signature, message, VOTE_CONTEXT)
