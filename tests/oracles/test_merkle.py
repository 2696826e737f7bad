"""oracles.merkle: OpenZeppelin-compatible trees, proofs and reading leaves (no chain needed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from eth_hash.auto import keccak

from core.messages import Reading, Sector
from keys.ids import to_bytes32
from oracles import merkle
from oracles.merkle import (
    MerkleTree,
    encode_leaf,
    keccak_many,
    leaf_hash,
    node_hash,
    process_proof,
    reading_body,
    reading_from_body,
    reading_leaf,
    reading_leaf_from_body,
    reading_leaves,
    timestamp_ms,
    verify,
)

T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)


def reading(i: int, *, asset: str = "pump-1", value: float | None = None) -> Reading:
    return Reading(sector=Sector.WATER, asset_id=asset, sensor_id=f"p{i % 5}", quantity="pressure_m", unit="m",
                   value=41.5 + i if value is None else value, timestamp=T0 + timedelta(milliseconds=250 * i))


def reference_root(leaves: list[bytes]) -> bytes:
    """OZ merkle-tree's makeMerkleTree, written out plainly: sorted leaves, array layout, one node at a time."""
    ordered = sorted(leaves)
    tree: list[bytes] = [b""] * (2 * len(ordered) - 1)
    for k, leaf in enumerate(ordered):
        tree[len(tree) - 1 - k] = leaf
    for i in range(len(tree) - 1 - len(ordered), -1, -1):
        tree[i] = node_hash(tree[2 * i + 1], tree[2 * i + 2])
    return tree[0]


def test_fast_keccak_equals_eth_hash() -> None:
    rng = random.Random(7)
    data = [rng.randbytes(rng.randrange(0, 400)) for _ in range(300)]  # across the 136-byte block size
    assert keccak_many(data) == [keccak(d) for d in data]
    assert merkle._MAKE_SPONGE is not None, "pycryptodome's keccak is expected to be available"
    assert merkle._slow_many(data[:5]) == keccak_many(data[:5])


def test_one_leaf_is_its_own_root_with_an_empty_proof() -> None:
    leaf = reading_leaf(reading(0))
    tree = MerkleTree([leaf])
    assert tree.root == leaf and tree.proof(0) == [] and verify([], tree.root, leaf)


def test_two_leaves_hash_as_a_sorted_pair() -> None:
    a, b = reading_leaf(reading(0)), reading_leaf(reading(1))
    assert MerkleTree([a, b]).root == MerkleTree([b, a]).root == keccak(min(a, b) + max(a, b))


@pytest.mark.parametrize("n", [*range(1, 34), 64, 65, 100, 255, 1000])
def test_every_proof_verifies_and_the_root_matches_the_reference(n: int) -> None:
    leaves = [keccak(i.to_bytes(8, "big")) for i in range(n)]
    tree = MerkleTree(leaves)
    assert tree.root == reference_root(leaves) and len(tree) == n
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert tree.leaf(i) == leaf
        assert verify(proof, tree.root, leaf) and process_proof(proof, leaf) == tree.root
        assert len(proof) <= n.bit_length()


def test_randomized_trees_with_duplicates_and_wrong_leaves() -> None:
    rng = random.Random(20261126)
    for _ in range(60):
        n = rng.randrange(1, 300)
        pool = [rng.randbytes(32) for _ in range(max(1, n // 3))]
        leaves = [rng.choice(pool) if rng.random() < 0.2 else rng.randbytes(32) for _ in range(n)]
        tree = MerkleTree(leaves)
        assert tree.root == reference_root(leaves)
        for i in rng.sample(range(n), min(n, 10)):
            proof = tree.proof(i)
            assert verify(proof, tree.root, leaves[i])
            stranger = rng.randbytes(32)
            assert not verify(proof, tree.root, stranger)
            if proof:
                bent = list(proof)
                bent[rng.randrange(len(bent))] = rng.randbytes(32)
                assert not verify(bent, tree.root, leaves[i])


def test_bad_trees_and_indexes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        MerkleTree([])
    with pytest.raises(ValueError, match="32-byte"):
        MerkleTree([b"short"])
    with pytest.raises(IndexError):
        MerkleTree([bytes(32)]).proof(1)


def test_reading_leaf_encoding_is_the_documented_one() -> None:
    r = reading(3)
    body = reading_body(r)
    assert body == (b'{"asset_id":"pump-1","quantity":"pressure_m","sector":"water","sensor_id":"p3",'
                    b'"timestamp":"2026-11-26T05:00:00.750000Z","unit":"m","value":44.5}')
    preimage = to_bytes32("pump-1") + (1795669200750).to_bytes(32, "big") + keccak(body)
    assert encode_leaf(to_bytes32("pump-1"), timestamp_ms(r.timestamp), keccak(body)) == preimage
    assert reading_leaf(r) == leaf_hash(preimage) == keccak(keccak(preimage))
    assert reading_from_body(body) == r and reading_leaf_from_body(body) == reading_leaf(r)
    assert reading_leaves([r, reading(4)]) == [reading_leaf(r), reading_leaf(reading(4))]


def test_naive_timestamps_count_as_utc_and_are_exact_to_the_millisecond() -> None:
    assert timestamp_ms(datetime(2026, 1, 1, 0, 0, 0, 999_999)) == timestamp_ms(
        datetime(2026, 1, 1, 0, 0, 0, 999_000, tzinfo=UTC)) == 1767225600999
    with pytest.raises(ValueError, match="uint64"):
        timestamp_ms(datetime(1969, 12, 31, tzinfo=UTC))


def test_a_tampered_reading_no_longer_proves() -> None:
    readings = [reading(i, asset=("pump-1", "tank-2")[i % 2]) for i in range(9)]
    leaves = reading_leaves(readings)
    tree = MerkleTree(leaves)
    proof = tree.proof(4)
    assert verify(proof, tree.root, reading_leaf(readings[4]))
    for changed in (readings[4].model_copy(update={"value": 45.6}),
                    readings[4].model_copy(update={"timestamp": readings[4].timestamp + timedelta(milliseconds=1)}),
                    readings[4].model_copy(update={"asset_id": "pump-2"}),
                    readings[4].model_copy(update={"unit": "bar"})):
        assert not verify(proof, tree.root, reading_leaf(changed))
    body = reading_body(readings[4]).replace(b'"value":45.5', b'"value":45.50')  # same number, other bytes
    assert reading_from_body(body) == readings[4]
    assert not verify(proof, tree.root, reading_leaf_from_body(body))


@pytest.mark.parametrize("name", ["oracles.merkle", "oracles.telemetry", "qeaims.commands.proof_cmd"])
def test_module_all_lists_its_public_definitions(name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(name)
    assert all(hasattr(module, item) for item in module.__all__)
    defined = {item for item, value in vars(module).items() if not item.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name}
    assert defined <= set(module.__all__), f"{name} does not export {sorted(defined - set(module.__all__))}"
