"""Merkle vectors in ``tests/vectors/merkle.json``, shared with ``tests/contracts/MerkleVectors.t.sol``.

Forge checks every proof with OpenZeppelin's ``MerkleProof.verify`` and recomputes every leaf from
the reading's stored bytes, so Python and Solidity agree on the leaf encoding and the tree. This test
recomputes the file from its inputs; after a deliberate change of the scheme (and its version)::

    .venv/bin/python tests/oracles/test_merkle_vectors.py --write
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from core.messages import Reading, Sector
from keys.ids import to_bytes32
from oracles.merkle import LEAF_SCHEME, LEAF_TYPES, MerkleTree, reading_body, reading_leaf, timestamp_ms

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle.json"
SIZES = (1, 2, 3, 7)
START = datetime(2026, 11, 26, 5, 0, 0, 123000, tzinfo=UTC)


def _readings(n: int) -> list[Reading]:
    assets = ["pump-1", "feeder-7", "hospital-2"]
    return [
        Reading(sector=Sector.WATER, asset_id=assets[i % 3], sensor_id=f"s{i}", quantity="pressure_m", unit="m",
                value=40.0 + i / 8, timestamp=START + timedelta(seconds=n * 100 + i))
        for i in range(n)
    ]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def build() -> dict[str, Any]:
    trees = []
    for n in SIZES:
        readings = _readings(n)
        leaves = [reading_leaf(r) for r in readings]
        tree = MerkleTree(leaves)
        trees.append({
            "size": n,
            "root": _hex(tree.root),
            "leaves": [
                {
                    "body": _hex(reading_body(r)),
                    "body_text": reading_body(r).decode(),
                    "asset_id": _hex(to_bytes32(r.asset_id)),
                    "timestamp_ms": timestamp_ms(r.timestamp),
                    "digest": _hex(keccak(reading_body(r))),
                    "leaf": _hex(leaf),
                    "proof": [_hex(p) for p in tree.proof(i)],
                }
                for i, (r, leaf) in enumerate(zip(readings, leaves, strict=True))
            ],
        })
    return {"scheme": LEAF_SCHEME, "leaf_types": list(LEAF_TYPES), "trees": trees}


def test_vectors_file_matches_the_implementation() -> None:
    assert json.loads(VECTORS.read_text()) == build(), "regenerate with --write after a deliberate change"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        VECTORS.write_text(json.dumps(build(), indent=2) + "\n")
        print(f"wrote {VECTORS}")
    else:
        raise SystemExit("usage: test_merkle_vectors.py --write")
