"""Toeplitz hashing over GF(2): privacy amplification and the error-verification tag.

Toeplitz matrices with a uniformly random first row and column form a 2-universal family (Krawczyk,
CRYPTO '94; Carter and Wegman 1979), so by the leftover hash lemma (Impagliazzo, Levin and Luby
1989; Bennett, Brassard, Crépeau and Maurer, IEEE T-IT 41, 1915 (1995)) hashing n bits about which
Eve knows at most n - h_min down to l bits leaves her with at most 2^-(h_min - l)/2 advantage.

An l x n Toeplitz matrix T[i, j] = s[i - j + n - 1] is fixed by a seed s of n + l - 1 bits, and
y_i = sum_j s[i - j + n - 1] x_j is entry i + n - 1 of the full convolution s * x. One FFT
convolution of 0/1 vectors (integer sums <= n < 2^53, rounded back) reduces it mod 2 in
O((n + l) log(n + l)): 10^5 bits take milliseconds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["TAG_BITS", "pack_bits", "toeplitz_hash", "verification_tag"]

Bits = NDArray[np.uint8]
TAG_BITS = 64  # the verification tag: two different keys pass with probability 2^-64 (2-universality)


def toeplitz_hash(bits: Bits, seed: Bits, output_bits: int) -> Bits:
    """T x over GF(2) for the output_bits x len(bits) Toeplitz matrix given by `seed` (n + l - 1 bits)."""
    n = len(bits)
    if output_bits <= 0 or n == 0:
        return np.zeros(0, dtype=np.uint8)
    if len(seed) != n + output_bits - 1:
        raise ValueError(f"a {output_bits} x {n} Toeplitz matrix needs {n + output_bits - 1} seed bits, "
                         f"not {len(seed)}")
    size = 1 << (len(seed) + n - 1).bit_length()
    product = np.fft.irfft(np.fft.rfft(seed.astype(np.float64), size) * np.fft.rfft(bits.astype(np.float64), size),
                           size)
    sums = np.rint(product[n - 1: n - 1 + output_bits]).astype(np.int64)
    return (sums & 1).astype(np.uint8)


def verification_tag(bits: Bits, seed: Bits) -> Bits:
    """A TAG_BITS-bit 2-universal hash of the corrected key; `seed` has len(bits) + TAG_BITS - 1 bits."""
    return toeplitz_hash(bits, seed, TAG_BITS)


def pack_bits(bits: Bits) -> bytes:
    """Bits to bytes, most significant bit first; the last byte is zero-padded (callers keep whole bytes)."""
    return np.packbits(bits).tobytes()
