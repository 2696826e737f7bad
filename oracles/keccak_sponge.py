"""keccak256 in bulk from Python, without the C kernel: pycryptodome's sponge driven directly.

`eth_hash`'s keccak costs about 12 µs a call here, almost all of it object set-up, so the bulk
paths drive pycryptodome's keccak sponge directly through its cffi functions (reset → absorb →
digest on one reused state, about 3 µs a hash) and fall back to `eth_hash` if that is not
available. Both give the same bytes (tested).

This is its own module because two others need it and must not need each other: `oracles.merkle`
(its bulk leaves and, with no C kernel, its trees) and `oracles.hashing` (its pure-Python fallback
when the kernel cannot be built). It used to live in `oracles.merkle`, which made `oracles.hashing`
import `oracles.merkle` back (an import cycle).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_hash.auto import keccak

__all__ = ["MAKE_SPONGE", "hasher", "keccak_many", "slow_many", "sorted_tree_nodes"]


def _sponge_factory() -> Callable[[], Callable[[Iterable[bytes]], list[bytes]]] | None:
    """A maker of bulk hashers over one reused pycryptodome keccak state, or None if unavailable."""
    try:
        lib: Any = importlib.import_module("Crypto.Hash.keccak")._raw_keccak_lib
        raw: Any = importlib.import_module("Crypto.Util._raw_api")
    except (ImportError, AttributeError):  # pragma: no cover - pycryptodome is a dependency of eth-account
        return None

    def make() -> Callable[[Iterable[bytes]], list[bytes]]:
        holder = raw.VoidPointer()
        if lib.keccak_init(holder.address_of(), raw.c_size_t(64), raw.c_ubyte(24)):  # capacity 512, 24 rounds
            raise RuntimeError("keccak state could not be created")
        state_ptr = raw.SmartPointer(holder.get(), lib.keccak_destroy)
        out = raw.create_string_buffer(32)
        # view[:] copies the 32 digest bytes out: a live cffi buffer, or the ctypes array's .raw
        view: Any = raw.ffi.buffer(out) if raw.backend == "cffi" else _RawView(out)

        def many(items: Iterable[bytes]) -> list[bytes]:
            state: Any = state_ptr.get()
            reset, absorb, digest = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
            result: list[bytes] = []
            append = result.append
            for data in items:
                reset(state)
                absorb(state, data, len(data))
                digest(state, out, 32, 1)  # padding byte 0x01: Keccak (Ethereum), not SHA-3
                append(view[:])
            return result

        return many

    try:
        probe = make()
        if probe([b"", b"abc"]) != [keccak(b""), keccak(b"abc")]:  # pragma: no cover
            return None
    except (AttributeError, TypeError, RuntimeError):  # pragma: no cover - a changed private API
        return None
    return make


class _RawView:
    def __init__(self, buffer: Any) -> None:
        self._buffer = buffer

    def __getitem__(self, _: slice) -> bytes:
        return bytes(self._buffer.raw)


MAKE_SPONGE = _sponge_factory()


def slow_many(items: Iterable[bytes]) -> list[bytes]:
    return [keccak(data) for data in items]


def hasher() -> Callable[[Iterable[bytes]], list[bytes]]:
    """A bulk hasher for this call (the fast state is per hasher, so threads never share one)."""
    return MAKE_SPONGE() if MAKE_SPONGE is not None else slow_many


def keccak_many(items: Iterable[bytes]) -> list[bytes]:
    """``[keccak256(x) for x in items]``, several times faster than calling `keccak` per item."""
    return hasher()(items)


def sorted_tree_nodes(sorted_leaves: Sequence[bytes]) -> list[bytes]:
    """The 2n−1 nodes of an OZ StandardMerkleTree whose (one or more) leaves are given sorted
    ascending, hashed here (`oracles.hashing.tree_nodes` does the same in one call of the C kernel)."""
    n = len(sorted_leaves)
    nodes: list[bytes] = [b""] * (n - 1)
    nodes.extend(reversed(sorted_leaves))  # tree[size-1-k] = sorted[k]
    hash_many = hasher()
    # Internal nodes from the back: every child of a node in [hi // 2, hi) sits at index >= hi, so
    # that whole range is ready and is hashed in one bulk call (about log2(n) calls in all).
    hi = n - 1
    while hi > 0:
        lo = hi // 2
        pairs = []
        for i in range(lo, hi):
            a, b = nodes[2 * i + 1], nodes[2 * i + 2]
            pairs.append(a + b if a < b else b + a)
        nodes[lo:hi] = hash_many(pairs)
        hi = lo
    return nodes
