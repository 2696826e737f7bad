"""The hand-packed encodings equal ``eth_abi.encode`` (what Solidity's ``abi.encode`` produces)."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from keys import (
    InvalidInput,
    batch_message,
    event_hash,
    registration_message,
    rotation_message,
)
from keys.messages import BATCH_DOMAIN, REGISTRATION_DOMAIN, ROTATION_DOMAIN

ROUNDS = 200


def _address(rng: random.Random) -> str:
    return str(to_checksum_address(rng.randbytes(20)))


def _uint(rng: random.Random, bits: int) -> int:
    return rng.choice([0, 1, (1 << bits) - 1, rng.getrandbits(bits)])


@pytest.fixture()
def rng() -> random.Random:
    return random.Random(20240601)


def test_event_hash_matches_eth_abi(rng: random.Random) -> None:
    for _ in range(ROUNDS):
        seq = max(1, _uint(rng, 64))
        kind = rng.randrange(16)
        node = rng.randbytes(32)
        payload = rng.randbytes(rng.randrange(0, 300))
        expected = keccak(
            encode(["uint64", "uint8", "bytes32", "bytes32"], [seq, kind, node, keccak(payload)])
        )
        assert event_hash(seq, kind, node, payload) == expected


def test_batch_message_matches_eth_abi(rng: random.Random) -> None:
    types = ["uint256", "address", "address", "uint32", "uint64", "uint64", "uint32", "bytes32"]
    for _ in range(ROUNDS):
        hashes = [rng.randbytes(32) for _ in range(rng.randrange(0, 8))]
        chain_id, ledger, oracle, epoch = _uint(rng, 256), _address(rng), _address(rng), _uint(rng, 32)
        first = _uint(rng, 64)
        last = rng.randrange(first, 1 << 64)
        message = batch_message(
            chain_id=chain_id, ledger=ledger, oracle=oracle, key_epoch=epoch,
            first_seq=first, last_seq=last, count=len(hashes), event_hashes=hashes,
        )  # fmt: skip
        values = [chain_id, ledger, oracle, epoch, first, last, len(hashes), keccak(b"".join(hashes))]
        assert message == BATCH_DOMAIN + encode(types, values)


def test_registration_message_matches_eth_abi(rng: random.Random) -> None:
    types = ["uint256", "address", "address", "bytes32", "bytes32", "bytes32"]
    for _ in range(ROUNDS):
        chain_id, registry, account = _uint(rng, 256), _address(rng), _address(rng)
        sector, operator, key_hash = rng.randbytes(32), rng.randbytes(32), rng.randbytes(32)
        message = registration_message(
            chain_id=chain_id, registry=registry, account=account, sector=sector,
            operator=operator, pq_key_hash=key_hash,
        )  # fmt: skip
        values = [chain_id, registry, account, sector, operator, key_hash]
        assert message == REGISTRATION_DOMAIN + encode(types, values)


def test_rotation_message_matches_eth_abi(rng: random.Random) -> None:
    types = ["uint256", "address", "address", "uint32", "uint32", "bytes32"]
    for _ in range(ROUNDS):
        chain_id, registry, account = _uint(rng, 256), _address(rng), _address(rng)
        old, key_hash = rng.randrange(0, (1 << 32) - 1), rng.randbytes(32)
        message = rotation_message(
            chain_id=chain_id, registry=registry, account=account, old_epoch=old, new_epoch=old + 1,
            new_key_hash=key_hash,
        )  # fmt: skip
        values = [chain_id, registry, account, old, old + 1, key_hash]
        assert message == ROTATION_DOMAIN + encode(types, values)


def test_lowercase_addresses_encode_like_checksummed() -> None:
    addr = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    common = {"chain_id": 1, "registry": addr, "old_epoch": 1, "new_epoch": 2, "new_key_hash": bytes(32)}
    assert rotation_message(account=addr.lower(), **common) == rotation_message(account=addr, **common)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"chain_id": -1}, "chain id must be between 0 and"),
        ({"chain_id": 2**256}, "chain id must be between 0 and"),
        ({"chain_id": True}, "chain id must be an integer"),
        ({"ledger": "0x5fbdb2315678afecb367f032d93F642f64180aa3"}, "wrong EIP-55 checksum"),
        ({"ledger": "0x1234"}, "ledger address must be a 0x-prefixed"),
        ({"key_epoch": 2**32}, "key epoch must be between 0 and 4294967295"),
        ({"count": 2}, "batch count 2 does not match the 1 event hashes"),
        ({"first_seq": 9}, "first sequence number 9 is above the last one 3"),
        ({"event_hashes": [bytes(31)]}, "event hash must be exactly 32 bytes, got 31"),
    ],
)
def test_out_of_range_values_are_refused(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {
        "chain_id": 1, "ledger": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "oracle": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "key_epoch": 1, "first_seq": 1,
        "last_seq": 3, "count": 1, "event_hashes": [bytes(32)],
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(InvalidInput, match=words):
        batch_message(**args)  # type: ignore[arg-type]


def test_rotation_must_step_one_epoch() -> None:
    with pytest.raises(InvalidInput, match="from epoch N to N\\+1, got 1 to 3"):
        rotation_message(
            chain_id=1, registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
            account="0x70997970C51812dc3A010C7d01b50e0d17dc79C8", old_epoch=1, new_epoch=3,
            new_key_hash=bytes(32),
        )  # fmt: skip
