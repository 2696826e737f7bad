"""Merkle trees over telemetry readings, verifiable on-chain with OpenZeppelin 5 `MerkleProof.verify`.

The tree is OpenZeppelin's `StandardMerkleTree` (the `@openzeppelin/merkle-tree` JS library), so
the same values give the same root there, here and in Solidity:

- **Leaves are double-hashed**: ``leaf = keccak256(bytes.concat(keccak256(abi.encode(values...))))``.
  The second hash keeps a leaf from ever being a 64-byte internal node (the second-preimage hazard
  that `MerkleProof.sol`'s header warns about).
- **Pairs are sorted before hashing** (OZ `Hashes.commutativeKeccak256`): a node is
  ``keccak256(min(a, b) ‖ max(a, b))``, so a proof is just the list of siblings, bottom up.
- **Layout**: the leaf hashes are sorted ascending and laid out as a complete binary tree in one
  array of ``2n − 1`` nodes: node ``i`` has children ``2i+1`` and ``2i+2``; the sorted leaves fill
  the array from the end (``tree[2n−2−k] = sorted[k]``); the root is ``tree[0]``. One leaf is its own
  root with an empty proof; odd counts need no padding or duplication.

**Reading leaves** (scheme ``qeaims-telemetry-leaf-v1``). A `core.messages.Reading` is stored as
its canonical JSON ``body``: ``json.dumps(reading.model_dump(mode="json"), sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8. Its leaf is::

    readingDigest = keccak256(body)
    leaf = keccak256(bytes.concat(keccak256(abi.encode(
        bytes32 assetId,       // bytes32("pump-1"): ASCII, left-aligned, zero-padded (keys.ids.to_bytes32)
        uint64  timestampMs,   // the reading's time in whole milliseconds since the Unix epoch (naive = UTC)
        bytes32 readingDigest  // commits to every field of the reading, exactly as stored
    ))))

so a contract can check which asset and when without parsing JSON, and anyone holding the body can
prove every field. The digest is over the stored bytes, not a re-serialisation, so any change to a
stored reading changes its leaf.

**Speed.** `eth_hash`'s keccak costs about 12 µs a call here, almost all of it object set-up, so the
bulk paths (`keccak_many`, `MerkleTree`) drive pycryptodome's keccak sponge directly through its
cffi functions (`oracles.keccak_sponge`, about 3 µs a hash) and fall back to `eth_hash` if that is
not available. Both give the same bytes (tested). Faster still, when a C compiler is at hand,
`MerkleTree` builds the whole tree in one call of `oracles.hashing`'s kernel, and
`oracles.telemetry_codec` computes leaves there in bulk.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from eth_hash.auto import keccak

from core.messages import Reading
from keys.ids import to_bytes32
from oracles.hashing import tree_nodes
from oracles.keccak_sponge import MAKE_SPONGE as _MAKE_SPONGE  # noqa: F401 - tests check the fast path is in use
from oracles.keccak_sponge import hasher, keccak_many, sorted_tree_nodes
from oracles.keccak_sponge import slow_many as _slow_many  # noqa: F401 - tests compare it with the fast path

__all__ = [
    "LEAF_SCHEME",
    "LEAF_TYPES",
    "MerkleTree",
    "encode_leaf",
    "keccak",
    "keccak_many",
    "leaf_hash",
    "node_hash",
    "process_proof",
    "reading_body",
    "reading_from_body",
    "reading_leaf",
    "reading_leaf_from_body",
    "reading_leaves",
    "timestamp_ms",
    "verify",
]

LEAF_SCHEME = "qeaims-telemetry-leaf-v1"
LEAF_TYPES: tuple[str, ...] = ("bytes32", "uint64", "bytes32")
"""Solidity types of a reading leaf's values: assetId, timestampMs, readingDigest."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_UINT64 = 2**64


# --- leaves, nodes, proofs ---------------------------------------------------------------------


def encode_leaf(asset_id: bytes, timestamp_ms_value: int, digest: bytes) -> bytes:
    """``abi.encode(bytes32 assetId, uint64 timestampMs, bytes32 readingDigest)`` (96 bytes)."""
    if len(asset_id) != 32 or len(digest) != 32:
        raise ValueError("assetId and readingDigest must be 32 bytes each")
    if not 0 <= timestamp_ms_value < _UINT64:
        raise ValueError(f"timestampMs {timestamp_ms_value} does not fit a uint64")
    return asset_id + timestamp_ms_value.to_bytes(32, "big") + digest


def leaf_hash(encoded: bytes) -> bytes:
    """OZ StandardMerkleTree leaf: ``keccak256(bytes.concat(keccak256(encoded)))``."""
    return keccak(keccak(encoded))


def node_hash(a: bytes, b: bytes) -> bytes:
    """OZ `Hashes.commutativeKeccak256`: the pair sorted, then hashed."""
    return keccak(a + b if a < b else b + a)


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    """The root that `proof` leads to from `leaf` (OZ `MerkleProof.processProof`)."""
    computed = leaf
    for sibling in proof:
        computed = node_hash(computed, sibling)
    return computed


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """OZ `MerkleProof.verify`: does `proof` lead from `leaf` to `root`?"""
    return process_proof(proof, leaf) == root


class MerkleTree:
    """OZ `StandardMerkleTree` over leaf hashes given in value order (proofs are asked by that order).

    Build cost is one keccak per internal node (n − 1) plus a sort; no per-node objects are made.
    """

    __slots__ = ("_nodes", "_position")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        n = len(leaves)
        if n == 0:
            raise ValueError("a Merkle tree needs at least one leaf")
        if any(len(leaf) != 32 for leaf in leaves):
            raise ValueError("every leaf must be a 32-byte hash")
        order = sorted(range(n), key=leaves.__getitem__)
        size = 2 * n - 1
        position = [0] * n
        for k, value_index in enumerate(order):
            position[value_index] = size - 1 - k
        self._position = position
        ordered = [leaves[i] for i in order]
        native = tree_nodes(ordered)  # the whole tree in one call of the C kernel
        self._nodes = native if native is not None else sorted_tree_nodes(ordered)

    def __len__(self) -> int:
        return len(self._position)

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def leaf(self, index: int) -> bytes:
        return self._nodes[self._position[index]]

    def proof(self, index: int) -> list[bytes]:
        """Siblings from the leaf of value `index` up to (not including) the root."""
        if not 0 <= index < len(self._position):
            raise IndexError(f"no leaf {index} in a tree of {len(self._position)}")
        at = self._position[index]
        siblings: list[bytes] = []
        while at > 0:
            siblings.append(self._nodes[at + 1 if at % 2 == 1 else at - 1])
            at = (at - 1) // 2
        return siblings


# --- readings ----------------------------------------------------------------------------------


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def reading_body(reading: Reading) -> bytes:
    """The canonical JSON a reading is stored (and hashed) as."""
    return _CANONICAL.encode(reading.model_dump(mode="json")).encode()


def reading_from_body(body: bytes) -> Reading:
    """Parse a stored body back into a Reading (raises pydantic's ValidationError if it is not one)."""
    return Reading.model_validate_json(body)


def timestamp_ms(moment: datetime) -> int:
    """Whole milliseconds since the Unix epoch, exactly (no float rounding); naive times are UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    value = (moment - _EPOCH) // _MS
    if not 0 <= value < _UINT64:
        raise ValueError(f"timestamp {moment.isoformat()} is outside the uint64 millisecond range")
    return value


_asset_word = functools.lru_cache(maxsize=65_536)(to_bytes32)  # a city has many readings per asset


def _leaf_preimage(reading: Reading, digest: bytes) -> bytes:
    return encode_leaf(_asset_word(reading.asset_id), timestamp_ms(reading.timestamp), digest)


def reading_leaf_from_body(body: bytes, reading: Reading | None = None) -> bytes:
    """The leaf of a stored body (its digest is over these exact bytes)."""
    parsed = reading if reading is not None else reading_from_body(body)
    return leaf_hash(_leaf_preimage(parsed, keccak(body)))


def reading_leaf(reading: Reading) -> bytes:
    return reading_leaf_from_body(reading_body(reading), reading)


def reading_leaves(readings: Sequence[Reading], bodies: Sequence[bytes] | None = None) -> list[bytes]:
    """Leaves for many readings at once (three bulk keccak passes instead of 3n calls)."""
    if bodies is None:
        bodies = [reading_body(r) for r in readings]
    if len(bodies) != len(readings):
        raise ValueError("one body per reading")
    hash_many = hasher()
    digests = hash_many(bodies)
    inner = hash_many(_leaf_preimage(r, d) for r, d in zip(readings, digests, strict=True))
    return hash_many(inner)
