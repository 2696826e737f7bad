"""Shared digest vectors in ``tests/vectors/hybrid_signature.json``, recomputed from their inputs.

Solidity tests (and any other implementation) read the same file, so a change to the message format
shows up on both sides. To regenerate after a deliberate format change (and a ``v`` bump)::

    .venv/bin/python tests/keys/test_keys_vectors.py --write

ML-DSA signing is randomised, so the stored signature is kept while it still verifies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from eth_account import Account
from eth_utils.crypto import keccak

from keys import (
    EVENT_BATCH_CONTEXT,
    REGISTRATION_CONTEXT,
    ROTATION_CONTEXT,
    EventToSign,
    HybridIdentity,
    batch_message_for,
    event_id,
    pq_key_hash,
    registration_message,
    rotation_message,
    to_bytes32,
    verify_batch,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "hybrid_signature.json"

CHAIN_ID = 31337
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
SECP256K1_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
MLDSA_SEED = bytes(range(32))
NEW_MLDSA_SEED = bytes(range(32, 64))
EVENTS = [
    EventToSign(seq=1, kind=0, node=to_bytes32("substation-7"), payload=b"\xab" * 32),
    EventToSign(seq=2, kind=3, node=bytes(32), payload=b""),
    EventToSign(seq=7, kind=15, node=to_bytes32("pump-3"), payload=b'{"reason":"pressure"}'),
]
EXTRA_EVENTS = [EventToSign(seq=2**64 - 1, kind=9, node=b"\xff" * 32, payload=bytes(range(256)))]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _identity() -> HybridIdentity:
    return HybridIdentity(Account.from_key(SECP256K1_KEY), MLDSA65PrivateKey.from_seed_bytes(MLDSA_SEED), 1)


def _event_vector(event: EventToSign) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "node": _hex(event.node),
        "payload": _hex(event.payload),
        "payload_hash": _hex(keccak(event.payload)),
        "event_hash": _hex(event.hash()),
    }


def _computed(identity: HybridIdentity) -> dict[str, Any]:
    """Every value in the file that follows deterministically from the fixed inputs."""
    oracle = identity.address
    batch = batch_message_for(EVENTS, chain_id=CHAIN_ID, ledger=LEDGER, oracle=oracle, key_epoch=1)
    sector, operator = to_bytes32("water"), to_bytes32("city-water")
    registration = registration_message(
        chain_id=CHAIN_ID, registry=REGISTRY, account=oracle, sector=sector, operator=operator,
        pq_key_hash=identity.pq_key_hash,
    )  # fmt: skip
    new_public = MLDSA65PrivateKey.from_seed_bytes(NEW_MLDSA_SEED).public_key().public_bytes_raw()
    rotation = rotation_message(
        chain_id=CHAIN_ID, registry=REGISTRY, account=oracle, old_epoch=1, new_epoch=2,
        new_key_hash=pq_key_hash(new_public),
    )  # fmt: skip
    return {
        "inputs": {
            "chain_id": CHAIN_ID,
            "ledger": LEDGER,
            "registry": REGISTRY,
            "oracle": oracle,
            "secp256k1_private_key": _hex(SECP256K1_KEY),
            "mldsa_seed": _hex(MLDSA_SEED),
            "new_mldsa_seed": _hex(NEW_MLDSA_SEED),
        },
        "keys": {
            "pq_public_key": _hex(identity.pq_public_key),
            "pq_key_hash": _hex(identity.pq_key_hash),
            "new_pq_key_hash": _hex(pq_key_hash(new_public)),
        },
        "events": [_event_vector(event) for event in EVENTS + EXTRA_EVENTS],
        "batch": {
            "events": [0, 1, 2],
            "key_epoch": 1,
            "first_seq": 1,
            "last_seq": 7,
            "count": 3,
            "event_hashes_hash": _hex(keccak(b"".join(event.hash() for event in EVENTS))),
            "context": EVENT_BATCH_CONTEXT.decode(),
            "message": _hex(batch),
            "message_hash": _hex(keccak(batch)),
        },
        "registration": {
            "sector": _hex(sector),
            "operator": _hex(operator),
            "context": REGISTRATION_CONTEXT.decode(),
            "message": _hex(registration),
            "message_hash": _hex(keccak(registration)),
        },
        "rotation": {
            "old_epoch": 1,
            "new_epoch": 2,
            "context": ROTATION_CONTEXT.decode(),
            "message": _hex(rotation),
            "message_hash": _hex(keccak(rotation)),
        },
        "event_ids": [
            {"oracle": oracle, "seq": seq, "event_id": _hex(event_id(oracle, seq))}
            for seq in (1, 7, 2**64 - 1)
        ],
        "names": {name: _hex(to_bytes32(name)) for name in ("water", "electricity", "substation-7")},
    }


def _signature_verifies(identity: HybridIdentity, signature_hex: str) -> bool:
    return verify_batch(
        identity.pq_public_key, chain_id=CHAIN_ID, ledger=LEDGER, oracle=identity.address, key_epoch=1,
        events=EVENTS, signature=bytes.fromhex(signature_hex.removeprefix("0x")),
    )  # fmt: skip


def build(previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full vector document; keeps ``previous``'s batch signature if it still verifies."""
    identity = _identity()
    document: dict[str, Any] = {
        "description": (
            "QEAIMS hybrid-signature digests. event_hash = keccak256(abi.encode(uint64 seq, uint8 kind, "
            "bytes32 node, bytes32 keccak256(payload))); batch message = 'QEAIMS/v1/event-batch\\0' || "
            "abi.encode(uint256 chainId, address ledger, address oracle, uint32 keyEpoch, uint64 firstSeq, "
            "uint64 lastSeq, uint32 count, bytes32 keccak256(concat(eventHashes))); registration = "
            "'QEAIMS/v1/registration\\0' || abi.encode(uint256, address registry, address account, bytes32 "
            "sector, bytes32 operator, bytes32 pqKeyHash); rotation = 'QEAIMS/v1/key-rotation\\0' || "
            "abi.encode(uint256, address registry, address account, uint32 oldEpoch, uint32 newEpoch, "
            "bytes32 newKeyHash). ML-DSA-65 (FIPS 204, pure, with context) signs the message bytes. "
            "event_id = bytes32(uint256(uint160(oracle)) << 64 | seq). Names are left-aligned ASCII bytes32."
        ),
        **_computed(identity),
    }
    old = (previous or {}).get("batch", {}).get("pq_signature")
    if isinstance(old, str) and _signature_verifies(identity, old):
        document["batch"]["pq_signature"] = old
    else:
        signature = identity.sign_pq(bytes.fromhex(document["batch"]["message"][2:]), EVENT_BATCH_CONTEXT)
        document["batch"]["pq_signature"] = _hex(signature)
    return document


def _stored() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTORS.read_text())
    return loaded


def test_vectors_file_matches_the_implementation() -> None:
    stored = _stored()
    assert stored == build(stored)


def test_stored_batch_signature_verifies() -> None:
    assert _signature_verifies(_identity(), _stored()["batch"]["pq_signature"])


def test_stored_public_key_comes_from_the_seed() -> None:
    stored = _stored()
    seed = bytes.fromhex(stored["inputs"]["mldsa_seed"][2:])
    public = MLDSA65PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
    assert _hex(public) == stored["keys"]["pq_public_key"]
    assert _hex(keccak(public)) == stored["keys"]["pq_key_hash"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/keys/test_keys_vectors.py --write")
    existing = _stored() if VECTORS.exists() else None
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(json.dumps(build(existing), indent=2) + "\n")
    print(f"wrote {VECTORS}")
