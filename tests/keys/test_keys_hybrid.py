"""Batch, registration and rotation signatures: round trips, and every bound field matters."""

from __future__ import annotations

import dataclasses
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from keys import (
    EVENT_BATCH_CONTEXT,
    REGISTRATION_CONTEXT,
    EventToSign,
    HybridIdentity,
    InvalidBatch,
    InvalidKey,
    RotationProof,
    batch_message_for,
    sign_batch,
    sign_registration,
    sign_rotation,
    to_bytes32,
    verify_batch,
    verify_pq,
    verify_registration,
    verify_rotation,
)

CHAIN_ID = 31337
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SECTOR = to_bytes32("water")
OPERATOR = to_bytes32("city-water")


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _verify(
    identity: HybridIdentity, events: list[EventToSign], signature: bytes, **overrides: object
) -> bool:
    args: dict[str, object] = {
        "chain_id": CHAIN_ID,
        "ledger": LEDGER,
        "oracle": identity.address,
        "key_epoch": identity.key_epoch,
        "events": events,
        "signature": signature,
    }
    args.update(overrides)
    public_key = args.pop("public_key", identity.pq_public_key)
    return verify_batch(public_key, **args)  # type: ignore[arg-type]


def test_batch_round_trip(identity: HybridIdentity, events: list[EventToSign]) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert (batch.first_seq, batch.last_seq, batch.count, batch.key_epoch) == (5, 9, 3, 1)
    assert batch.events == tuple(events)
    assert batch.event_inputs()[2] == (9, 15, to_bytes32("pump-3"), b'{"reason":"pressure"}')
    assert len(batch.pq_signature) == 3309
    assert _verify(identity, events, batch.pq_signature)


@pytest.mark.parametrize("index", [0, 1000, 3308])
def test_flipped_signature_bit_fails(identity: HybridIdentity, events: list[EventToSign], index: int) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert not _verify(identity, events, _flip(batch.pq_signature, index))


@pytest.mark.parametrize(
    "change",
    [
        {"payload": b"\x01" * 31 + b"\x00"},
        {"payload": b"\x01" * 33},
        {"seq": 4},
        {"kind": 1},
        {"node": to_bytes32("substation-8")},
    ],
)
def test_changed_event_fails(
    identity: HybridIdentity, events: list[EventToSign], change: dict[str, object]
) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    tampered = [dataclasses.replace(events[0], **change), *events[1:]]  # type: ignore[arg-type]
    assert not _verify(identity, tampered, batch.pq_signature)


def test_dropped_or_reordered_event_fails(identity: HybridIdentity, events: list[EventToSign]) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert not _verify(identity, events[:2], batch.pq_signature)
    assert not _verify(identity, events[1:], batch.pq_signature)


@pytest.mark.parametrize(
    "override",
    [
        {"chain_id": CHAIN_ID + 1},
        {"ledger": REGISTRY},
        {"oracle": OTHER},
        {"key_epoch": 2},
    ],
)
def test_changed_binding_fails(
    identity: HybridIdentity, events: list[EventToSign], override: dict[str, object]
) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert not _verify(identity, events, batch.pq_signature, **override)


def test_other_key_fails(
    identity: HybridIdentity, other_identity: HybridIdentity, events: list[EventToSign]
) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert not _verify(identity, events, batch.pq_signature, public_key=other_identity.pq_public_key)


def test_epoch_is_signed(identity: HybridIdentity, events: list[EventToSign]) -> None:
    rotated = identity.with_rotated_key(MLDSA65PrivateKey.generate())
    batch = sign_batch(rotated, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    assert batch.key_epoch == 2
    assert _verify(rotated, events, batch.pq_signature)
    assert not _verify(rotated, events, batch.pq_signature, key_epoch=1)


def test_contexts_separate_purposes(identity: HybridIdentity, events: list[EventToSign]) -> None:
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    message = batch_message_for(
        events, chain_id=CHAIN_ID, ledger=LEDGER, oracle=identity.address, key_epoch=1
    )
    assert verify_pq(identity.pq_public_key, batch.pq_signature, message, EVENT_BATCH_CONTEXT)
    assert not verify_pq(identity.pq_public_key, batch.pq_signature, message, REGISTRATION_CONTEXT)


def test_verify_pq_never_raises_on_garbage(identity: HybridIdentity) -> None:
    signature = identity.sign_pq(b"m", b"ctx")
    assert verify_pq(identity.pq_public_key, signature, b"m", b"ctx")
    assert not verify_pq(identity.pq_public_key, signature[:-1], b"m", b"ctx")
    assert not verify_pq(identity.pq_public_key[:-1], signature, b"m", b"ctx")
    assert not verify_pq(b"", b"", b"m", b"ctx")
    assert not verify_pq(bytes(1952), bytes(3309), b"m", b"ctx")


@pytest.mark.parametrize(
    ("bad_events", "words"),
    [
        ([], "at least one event"),
        (
            [EventToSign(2, 0, bytes(32), b""), EventToSign(2, 0, bytes(32), b"")],
            "strictly increase, but 2 follows 2",
        ),
        (
            [EventToSign(3, 0, bytes(32), b""), EventToSign(2, 0, bytes(32), b"")],
            "strictly increase, but 2 follows 3",
        ),
    ],
)
def test_invalid_batches_are_refused(
    identity: HybridIdentity, bad_events: list[EventToSign], words: str
) -> None:
    with pytest.raises(InvalidBatch, match=words) as info:
        sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=bad_events)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"node": bytes(31)}, "node id must be exactly 32 bytes"),
        ({"node": "pump-3"}, "node id must be exactly 32 bytes"),
        ({"kind": 24}, "kind must be 0 to 23, got 24"),
        ({"kind": -1}, "kind must be 0 to 23"),
        ({"seq": 0}, "sequence number must be an integer from 1"),
        ({"seq": 2**64}, "sequence number must be an integer from 1"),
        ({"payload": "text"}, "payload must be bytes"),
    ],
)
def test_invalid_events_are_refused(fields: dict[str, object], words: str) -> None:
    base: dict[str, object] = {"seq": 1, "kind": 0, "node": bytes(32), "payload": b""}
    base.update(fields)
    with pytest.raises(InvalidBatch, match=words):
        EventToSign(**base)  # type: ignore[arg-type]


def test_sign_batch_costs_one_signature(identity: HybridIdentity, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [EventToSign(seq, seq % 16, to_bytes32(f"node-{seq}"), bytes(200)) for seq in range(1, 501)]
    calls: list[bytes] = []
    original = HybridIdentity.sign_pq

    def counting(self: HybridIdentity, message: bytes, context: bytes) -> bytes:
        calls.append(context)
        return original(self, message, context)

    monkeypatch.setattr(HybridIdentity, "sign_pq", counting)
    started = time.perf_counter()
    batch = sign_batch(identity, chain_id=CHAIN_ID, ledger=LEDGER, events=events)
    elapsed = time.perf_counter() - started
    assert calls == [EVENT_BATCH_CONTEXT]
    assert elapsed < 1.0, f"signing 500 events took {elapsed:.3f}s"
    assert _verify(identity, events, batch.pq_signature)


def test_registration_round_trip(identity: HybridIdentity) -> None:
    signature = sign_registration(
        identity, chain_id=CHAIN_ID, registry=REGISTRY, sector=SECTOR, operator=OPERATOR
    )
    args = {"chain_id": CHAIN_ID, "registry": REGISTRY, "account": identity.address, "sector": SECTOR}
    assert verify_registration(identity.pq_public_key, signature, operator=OPERATOR, **args)  # type: ignore[arg-type]
    assert not verify_registration(identity.pq_public_key, signature, operator=SECTOR, **args)  # type: ignore[arg-type]
    assert not verify_registration(identity.pq_public_key[:100], signature, operator=OPERATOR, **args)  # type: ignore[arg-type]
    assert not verify_registration(
        identity.pq_public_key, signature, chain_id=1, registry=REGISTRY, account=identity.address,
        sector=SECTOR, operator=OPERATOR,
    )  # fmt: skip
    assert not verify_registration(
        identity.pq_public_key, signature, chain_id=CHAIN_ID, registry=REGISTRY, account=OTHER,
        sector=SECTOR, operator=OPERATOR,
    )  # fmt: skip


def test_rotation_proof_verifies(identity: HybridIdentity) -> None:
    new_key = MLDSA65PrivateKey.generate()
    proof = sign_rotation(identity, new_key, chain_id=CHAIN_ID, registry=REGISTRY)
    assert proof.new_epoch == 2 and proof.old_epoch == 1
    assert proof.new_public_key == new_key.public_key().public_bytes_raw()
    assert proof.new_key_hash == identity.with_rotated_key(new_key).pq_key_hash
    assert verify_rotation(
        identity.pq_public_key, proof, chain_id=CHAIN_ID, registry=REGISTRY, account=identity.address
    )


def test_rotation_signed_by_wrong_old_key_fails(
    identity: HybridIdentity, other_identity: HybridIdentity
) -> None:
    new_key = MLDSA65PrivateKey.generate()
    impostor = HybridIdentity(identity.account, other_identity.mldsa_key, identity.key_epoch)
    proof = sign_rotation(impostor, new_key, chain_id=CHAIN_ID, registry=REGISTRY)
    assert not verify_rotation(
        identity.pq_public_key, proof, chain_id=CHAIN_ID, registry=REGISTRY, account=identity.address
    )


def test_rotation_tampering_fails(identity: HybridIdentity) -> None:
    new_key = MLDSA65PrivateKey.generate()
    proof = sign_rotation(identity, new_key, chain_id=CHAIN_ID, registry=REGISTRY)
    old_pk = identity.pq_public_key
    kwargs = {"chain_id": CHAIN_ID, "registry": REGISTRY, "account": identity.address}
    assert not verify_rotation(old_pk, dataclasses.replace(proof, new_epoch=3), **kwargs)  # type: ignore[arg-type]
    assert not verify_rotation(old_pk, dataclasses.replace(proof, new_epoch=1), **kwargs)  # type: ignore[arg-type]
    other_pk = MLDSA65PrivateKey.generate().public_key().public_bytes_raw()
    assert not verify_rotation(old_pk, dataclasses.replace(proof, new_public_key=other_pk), **kwargs)  # type: ignore[arg-type]
    assert not verify_rotation(old_pk, dataclasses.replace(proof, new_public_key=b"short"), **kwargs)  # type: ignore[arg-type]
    swapped = RotationProof(proof.new_public_key, proof.new_signature, proof.old_signature, proof.new_epoch)
    assert not verify_rotation(old_pk, swapped, **kwargs)  # type: ignore[arg-type]
    assert not verify_rotation(old_pk, proof, chain_id=CHAIN_ID, registry=REGISTRY, account=OTHER)
    assert not verify_rotation(
        old_pk, proof, chain_id=CHAIN_ID + 1, registry=REGISTRY, account=identity.address
    )


def test_rotation_to_the_same_key_is_refused(identity: HybridIdentity) -> None:
    with pytest.raises(InvalidKey, match="equals the current one"):
        sign_rotation(identity, identity.mldsa_key, chain_id=CHAIN_ID, registry=REGISTRY)
