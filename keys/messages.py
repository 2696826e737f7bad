"""The exact bytes that ML-DSA-65 signs: domain-separated, ABI-encoded messages.

Each message starts with a NUL-terminated ASCII domain tag ("QEAIMS/v1/...\\0") and then the
``abi.encode`` of its fields, and each is signed under its own ML-DSA context string. Two layers of
separation mean a signature made for one purpose (a batch, a registration, a rotation) never
verifies for another, and binding chain id, contract and account stops replay across deployments
and oracles. Solidity can rebuild every digest here with ``abi.encode``; shared test vectors live in
``tests/vectors/hybrid_signature.json``. Do not change a byte without bumping the ``v1`` tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.kinds import KINDS
from keys._abi import address_word, bytes32_word, keccak256, uint_word
from keys.errors import InvalidBatch, InvalidInput

__all__ = [
    "BATCH_DOMAIN",
    "EVENT_BATCH_CONTEXT",
    "MAX_EVENT_KIND",
    "REGISTRATION_CONTEXT",
    "REGISTRATION_DOMAIN",
    "ROTATION_CONTEXT",
    "ROTATION_DOMAIN",
    "VOTE_CONTEXT",
    "VOTE_DOMAIN",
    "EventToSign",
    "batch_message",
    "event_hash",
    "registration_message",
    "rotation_message",
    "vote_message",
]

EVENT_BATCH_CONTEXT = b"qeaims-event-batch-v1"
REGISTRATION_CONTEXT = b"qeaims-registration-v1"
ROTATION_CONTEXT = b"qeaims-key-rotation-v1"
VOTE_CONTEXT = b"qeaims-quorum-vote-v1"

BATCH_DOMAIN = b"QEAIMS/v1/event-batch\x00"
REGISTRATION_DOMAIN = b"QEAIMS/v1/registration\x00"
ROTATION_DOMAIN = b"QEAIMS/v1/key-rotation\x00"
VOTE_DOMAIN = b"QEAIMS/v1/quorum-vote\x00"

MAX_EVENT_KIND = len(KINDS) - 1  # IEventLedger.EventKind's last value (core.kinds: the same list); the ledger rejects the rest
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class EventToSign:
    """One ledger event as ``IEventLedger.EventInput``: checked on creation so bad input fails early.

    ``node`` is the subject node's bytes32 id (all zeros when there is none); ``payload`` is the
    kind-specific bytes exactly as sent on-chain.
    """

    seq: int
    kind: int
    node: bytes
    payload: bytes

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or not 1 <= self.seq <= _UINT64_MAX:
            raise InvalidBatch(
                f"event sequence number must be an integer from 1 to {_UINT64_MAX}, got {self.seq!r}"
            )
        if (
            isinstance(self.kind, bool)
            or not isinstance(self.kind, int)
            or not 0 <= self.kind <= MAX_EVENT_KIND
        ):
            raise InvalidBatch(f"event {self.seq}: kind must be 0 to {MAX_EVENT_KIND}, got {self.kind!r}")
        if not isinstance(self.node, bytes | bytearray) or len(self.node) != 32:
            raise InvalidBatch(f"event {self.seq}: node id must be exactly 32 bytes (use keys.to_bytes32)")
        if not isinstance(self.payload, bytes | bytearray):
            raise InvalidBatch(f"event {self.seq}: payload must be bytes, got {type(self.payload).__name__}")

    def hash(self) -> bytes:
        """This event's :func:`event_hash`."""
        return _event_hash_unchecked(self.seq, self.kind, bytes(self.node), bytes(self.payload))

    def as_event_input(self) -> tuple[int, int, bytes, bytes]:
        """The ``(seq, kind, node, payload)`` tuple web3 expects for an ``EventInput`` struct."""
        return (self.seq, self.kind, bytes(self.node), bytes(self.payload))


def _event_hash_unchecked(seq: int, kind: int, node: bytes, payload: bytes) -> bytes:
    # abi.encode(uint64, uint8, bytes32, bytes32): four static words, packed by hand for speed.
    return keccak256(seq.to_bytes(32, "big") + kind.to_bytes(32, "big") + node + keccak256(payload))


def event_hash(seq: int, kind: int, node: bytes, payload: bytes) -> bytes:
    """keccak256(abi.encode(uint64 seq, uint8 kind, bytes32 node, bytes32 keccak256(payload)))."""
    return EventToSign(seq, kind, node, payload).hash()


def batch_message(
    *,
    chain_id: int,
    ledger: str,
    oracle: str,
    key_epoch: int,
    first_seq: int,
    last_seq: int,
    count: int,
    event_hashes: Sequence[bytes],
) -> bytes:
    """The message an oracle signs for one ``recordBatch`` call.

    ``BATCH_DOMAIN || abi.encode(uint256 chainId, address ledger, address oracle, uint32 keyEpoch,
    uint64 firstSeq, uint64 lastSeq, uint32 count, bytes32 keccak256(concat(eventHashes)))``.
    """
    if count != len(event_hashes):
        raise InvalidBatch(f"batch count {count} does not match the {len(event_hashes)} event hashes given")
    if first_seq > last_seq:
        raise InvalidBatch(f"first sequence number {first_seq} is above the last one {last_seq}")
    hashes = b"".join(bytes32_word(h, "event hash") for h in event_hashes)
    return BATCH_DOMAIN + b"".join(
        (
            uint_word(chain_id, 256, "chain id"),
            address_word(ledger, "ledger address"),
            address_word(oracle, "oracle address"),
            uint_word(key_epoch, 32, "key epoch"),
            uint_word(first_seq, 64, "first sequence number"),
            uint_word(last_seq, 64, "last sequence number"),
            uint_word(count, 32, "event count"),
            keccak256(hashes),
        )
    )


def registration_message(
    *, chain_id: int, registry: str, account: str, sector: bytes, operator: bytes, pq_key_hash: bytes
) -> bytes:
    """Proof of possession signed by a new ML-DSA key when its oracle is registered.

    ``REGISTRATION_DOMAIN || abi.encode(uint256 chainId, address registry, address account,
    bytes32 sector, bytes32 operator, bytes32 pqKeyHash)``.
    """
    return REGISTRATION_DOMAIN + b"".join(
        (
            uint_word(chain_id, 256, "chain id"),
            address_word(registry, "registry address"),
            address_word(account, "oracle account"),
            bytes32_word(sector, "sector id"),
            bytes32_word(operator, "operator id"),
            bytes32_word(pq_key_hash, "ML-DSA key hash"),
        )
    )


def rotation_message(
    *, chain_id: int, registry: str, account: str, old_epoch: int, new_epoch: int, new_key_hash: bytes
) -> bytes:
    """Signed by the old key (authorisation) and the new key (proof of possession) on rotation.

    ``ROTATION_DOMAIN || abi.encode(uint256 chainId, address registry, address account,
    uint32 oldEpoch, uint32 newEpoch, bytes32 newKeyHash)``.
    """
    if new_epoch != old_epoch + 1:
        raise InvalidInput(f"a rotation moves from epoch N to N+1, got {old_epoch} to {new_epoch}")
    return ROTATION_DOMAIN + b"".join(
        (
            uint_word(chain_id, 256, "chain id"),
            address_word(registry, "registry address"),
            address_word(account, "oracle account"),
            uint_word(old_epoch, 32, "old key epoch"),
            uint_word(new_epoch, 32, "new key epoch"),
            bytes32_word(new_key_hash, "new ML-DSA key hash"),
        )
    )


def vote_message(
    *,
    chain_id: int,
    quorum: str,
    voter: str,
    key_epoch: int,
    action: int,
    target: bytes,
    status_epoch: int,
    round_: int,
) -> bytes:
    """What an oracle signs to vote on an IsolationQuorum proposal (docs/TRUST.md).

    ``VOTE_DOMAIN || abi.encode(uint256 chainId, address quorum, address voter, uint32 keyEpoch,
    uint8 action, bytes32 target, uint64 statusEpoch, uint32 round)``. The proposal is named by its
    ballot (action, target, the target's status epoch, round), so a vote cannot be moved to another
    proposal, lifecycle, key, oracle, contract or chain.
    """
    if not 0 <= action <= 2:
        raise InvalidInput(f"a quorum action is 0 (isolate), 1 (reintegrate) or 2 (quarantine), got {action}")
    return VOTE_DOMAIN + b"".join(
        (
            uint_word(chain_id, 256, "chain id"),
            address_word(quorum, "quorum address"),
            address_word(voter, "voter address"),
            uint_word(key_epoch, 32, "key epoch"),
            uint_word(action, 8, "action"),
            bytes32_word(target, "target"),
            uint_word(status_epoch, 64, "status epoch"),
            uint_word(round_, 32, "round"),
        )
    )
