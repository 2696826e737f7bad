#!/usr/bin/env python3
"""Re-check a reading's proof downloaded from the API (`GET /api/v1/proofs/{oracle}/{batch}:{index}`),
offline, without the project: `python3 scripts/check_proof.py proof.json`.

What it checks (the scheme `qeaims-telemetry-leaf-v1`, oracles/merkle.py; OpenZeppelin's
StandardMerkleTree, so Solidity's `MerkleProof.verify` agrees):

    readingDigest = keccak256(body)                       # the reading exactly as stored
    leaf = keccak256(keccak256(abi.encode(bytes32 assetId, uint64 timestampMs, bytes32 readingDigest)))
    node = keccak256(min(a, b) ++ max(a, b))              # each sibling, bottom up
    the last node must equal `root`

`assetId` is the body's `asset_id` as Solidity's `bytes32("pump-1")`; `timestampMs` is the body's
`timestamp` in whole milliseconds since 1970 (a time without an offset is UTC). It also checks that
the file's `leaf` is the one recomputed from the body (so the body is the reading that was proven).

It trusts only `root`: compare it with the `telemetry-root` event at `block`/`tx` on any node of the
chain (the event's payload carries the batch number and the root).

Keccak-256 is not in Python's standard library (hashlib's sha3_256 pads differently), so it uses
`eth_hash` (with its pycryptodome backend, as the project does) or pycryptodome's `Crypto.Hash.keccak`
directly, whichever is installed; everything else is the standard library. Exit 0: the proof holds;
1: it does not; 2: the file is not a proof this script understands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEME = "qeaims-telemetry-leaf-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _keccak_function() -> Callable[[bytes], bytes]:
    try:
        from eth_hash.auto import keccak as eth_keccak

        return lambda data: bytes(eth_keccak(data))
    except ImportError:
        pass
    try:
        from Crypto.Hash import keccak as crypto_keccak  # pycryptodome
    except ImportError:
        raise SystemExit("error: needs keccak-256: pip install eth-hash[pycryptodome] (or pycryptodome)") from None
    return lambda data: crypto_keccak.new(digest_bits=256, data=data).digest()


def _bytes32_name(name: str) -> bytes:
    raw = name.encode("ascii")
    if not 1 <= len(raw) <= 32:
        raise ValueError(f"asset id {name!r} is not 1..32 ASCII characters")
    return raw.ljust(32, b"\0")


def _timestamp_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _hex32(value: Any, what: str) -> bytes:
    raw = bytes.fromhex(str(value).removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"{what} is not 32 bytes")
    return raw


def check(proof: dict[str, Any], keccak: Callable[[bytes], bytes]) -> tuple[bool, str]:
    """(holds, what was found)."""
    if proof.get("scheme") != SCHEME:
        raise ValueError(f"scheme {proof.get('scheme')!r} is not {SCHEME}")
    if proof.get("body") is None or proof.get("root") is None or proof.get("proof") is None:
        return False, f"the file carries no proof (the server said: {proof.get('reason')})"
    body = str(proof["body"]).encode()
    reading = json.loads(body)
    encoded = _bytes32_name(str(reading["asset_id"])) + _timestamp_ms(str(reading["timestamp"])).to_bytes(32, "big") \
        + keccak(body)
    leaf = keccak(keccak(encoded))
    if proof.get("leaf") is not None and _hex32(proof["leaf"], "leaf") != leaf:
        return False, "the leaf in the file is not the one its body gives"
    node = leaf
    for sibling in proof["proof"]:
        other = _hex32(sibling, "a sibling")
        node = keccak(node + other if node < other else other + node)
    root = _hex32(proof["root"], "root")
    if node != root:
        return False, f"the proof leads to 0x{node.hex()}, not to the root 0x{root.hex()}"
    return True, (f"reading {proof.get('reading')} ({reading['asset_id']} {reading.get('sensor_id')} "
                  f"{reading.get('quantity')}={reading.get('value')} at {reading['timestamp']}) is in root 0x{root.hex()} "
                  f"(event #{proof.get('seq')} of {proof.get('oracle')}, block {proof.get('block')}, tx {proof.get('tx')})")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_proof.py PROOF.json", file=sys.stderr)
        return 2
    try:
        proof = json.loads(Path(argv[0]).read_text())
        holds, what = check(proof, _keccak_function())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"error: {argv[0]} is not a proof this script understands: {exc}", file=sys.stderr)
        return 2
    print(("OK " if holds else "FAILED ") + what)
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
