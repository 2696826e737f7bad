"""Cascade error correction (Brassard and Salvail, EUROCRYPT '93) over a counted classical channel.

Bob holds a noisy copy of Alice's sifted key. They agree on public random permutations, one a
pass; in pass i the (permuted) key is cut into blocks of k_i bits and Alice announces each block's
parity. A block whose parities differ holds an odd number of errors: a binary search (BINARY)
finds one of them, asking Alice the parity of half a block at each step. Flipping it changes the
parity of the block that holds that bit in every EARLIER pass, which then holds an odd number of
errors again: Bob searches those too, and so on (the cascade). k_1 = ceil(0.73 / QBER), k_(i+1) =
2 k_i, four passes: after pass 1 the residual errors are sparse enough that the doubled blocks
catch almost all of them (Brassard-Salvail's analysis; Martinez-Mateo et al., QIC 15, 453 (2015)
measure f ~ 1.1-1.25 for QBERs of 1-10 % with these settings).

Every parity Alice reveals is counted: it is what Eve learns and privacy amplification removes.
A parity Alice has already revealed is remembered, not asked again. The inefficiency is
f = leaked / (n H2(e)), with e the error rate found (H2(e) bits a bit is the Shannon limit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from links.qkd.params import binary_entropy

__all__ = ["CascadeResult", "ParityChannel", "cascade_correct", "initial_block_size"]

Bits = NDArray[np.uint8]
Indices = NDArray[np.intp]
PASSES = 4


def _block_parities(bits: Bits, order: Indices, block: int) -> NDArray[np.uint8]:
    permuted = bits[order]
    padded = np.zeros(-(-len(permuted) // block) * block, dtype=np.uint8)
    padded[: len(permuted)] = permuted
    parities: NDArray[np.uint8] = (padded.reshape(-1, block).sum(axis=1, dtype=np.int64) & 1).astype(np.uint8)
    return parities


class ParityChannel:
    """Alice's end of the public channel: she answers parity questions and counts what she reveals."""

    def __init__(self, alice_bits: Bits) -> None:
        self._bits = alice_bits
        self.leaked_bits = 0
        self.messages = 0

    def block_parities(self, order: Indices, block: int) -> NDArray[np.uint8]:
        parities = _block_parities(self._bits, order, block)
        self.leaked_bits += len(parities)
        self.messages += 1
        return parities

    def parity(self, positions: Indices) -> int:
        self.leaked_bits += 1
        self.messages += 1
        return int(self._bits[positions].sum()) & 1


@dataclass(frozen=True)
class CascadeResult:
    corrected: Bits  # Bob's key after correction
    errors_corrected: int
    leaked_bits: int
    messages: int
    block_sizes: tuple[int, ...]

    @property
    def qber(self) -> float:
        return self.errors_corrected / len(self.corrected) if len(self.corrected) else 0.0

    @property
    def efficiency(self) -> float:
        """f = leaked / (n H2(e)); 0 when there was nothing to correct (H2 = 0)."""
        shannon = len(self.corrected) * binary_entropy(self.qber)
        return self.leaked_bits / shannon if shannon > 0 else 0.0


def initial_block_size(qber_estimate: float, n: int) -> int:
    """k_1 = ceil(0.73 / e) (Brassard-Salvail), at least 4 bits and at most the key."""
    e = min(max(qber_estimate, 1e-3), 0.25)
    return max(4, min(n, math.ceil(0.73 / e)))


def cascade_correct(channel: ParityChannel, bob_bits: Bits, qber_estimate: float, rng: np.random.Generator,
                    passes: int = PASSES) -> CascadeResult:
    """Correct Bob's bits towards Alice's by Cascade; the permutations come from `rng` (public)."""
    bob = bob_bits.copy()
    n = len(bob)
    if n == 0:
        return CascadeResult(bob, 0, 0, 0, ())
    orders: list[Indices] = []
    where: list[Indices] = []  # where[p][bit] = the bit's place in pass p's order
    sizes: list[int] = []
    alice_parity: list[NDArray[np.uint8]] = []
    bob_parity: list[NDArray[np.uint8]] = []
    known: dict[tuple[int, int, int, int], int] = {}  # Alice's sub-block parities already revealed
    flips = 0

    def binary_search(p: int, block: int) -> int:
        size = sizes[p]
        positions = orders[p][block * size: (block + 1) * size]
        lo, hi = 0, len(positions)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            key = (p, block, lo, mid)
            if key not in known:
                known[key] = channel.parity(positions[lo:mid])
            if known[key] != (int(bob[positions[lo:mid]].sum()) & 1):
                hi = mid
            else:
                lo = mid
        return int(positions[lo])

    k = initial_block_size(qber_estimate, n)
    for p in range(passes):
        order = np.arange(n, dtype=np.intp) if p == 0 else rng.permutation(n).astype(np.intp)
        inverse = np.empty(n, dtype=np.intp)
        inverse[order] = np.arange(n, dtype=np.intp)
        orders.append(order)
        where.append(inverse)
        sizes.append(k)
        alice_parity.append(channel.block_parities(order, k))
        bob_parity.append(_block_parities(bob, order, k))
        pending = {(p, int(b)) for b in np.flatnonzero(alice_parity[p] != bob_parity[p])}
        while pending:
            q, block = min(pending)  # smallest blocks (earliest passes) first: the cheapest searches
            pending.discard((q, block))
            if alice_parity[q][block] == bob_parity[q][block]:
                continue
            bit = binary_search(q, block)
            bob[bit] ^= 1
            flips += 1
            for r in range(p + 1):
                b = int(where[r][bit]) // sizes[r]
                bob_parity[r][b] ^= 1
                if bob_parity[r][b] != alice_parity[r][b]:
                    pending.add((r, b))
                else:
                    pending.discard((r, b))
        k = min(2 * k, n)
    return CascadeResult(bob, flips, channel.leaked_bits, channel.messages, tuple(sizes))
