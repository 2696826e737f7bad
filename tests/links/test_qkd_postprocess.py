"""Cascade corrects every error and counts what it leaks; Toeplitz hashing is the GF(2) product."""

from __future__ import annotations

import numpy as np
import pytest

from links.qkd.amplify import TAG_BITS, pack_bits, toeplitz_hash, verification_tag
from links.qkd.cascade import ParityChannel, cascade_correct, initial_block_size


def _noisy_pair(rng: np.random.Generator, n: int, qber: float) -> tuple[np.ndarray, np.ndarray]:
    alice = rng.integers(0, 2, n, dtype=np.uint8)
    return alice, alice ^ (rng.random(n) < qber).astype(np.uint8)


@pytest.mark.parametrize("qber", [0.01, 0.02, 0.04, 0.06, 0.08])
def test_cascade_corrects_every_error(qber: float) -> None:
    rng = np.random.default_rng(int(qber * 1000))
    for _ in range(3):
        alice, bob = _noisy_pair(rng, 20_000, qber)
        errors = int(np.count_nonzero(alice != bob))
        channel = ParityChannel(alice)
        result = cascade_correct(channel, bob, qber, rng)
        assert np.array_equal(result.corrected, alice)
        assert result.errors_corrected == errors
        assert result.leaked_bits == channel.leaked_bits > 0
        assert 1.0 < result.efficiency < 1.35  # Cascade: typically 1.1-1.3
        assert result.block_sizes[0] == initial_block_size(qber, 20_000)
        assert len(result.block_sizes) == 4


def test_cascade_with_no_errors_leaks_only_block_parities() -> None:
    rng = np.random.default_rng(1)
    alice = rng.integers(0, 2, 1000, dtype=np.uint8)
    result = cascade_correct(ParityChannel(alice), alice.copy(), 0.02, rng)
    assert result.errors_corrected == 0 and result.efficiency == 0.0
    assert result.leaked_bits == sum(-(-1000 // k) for k in result.block_sizes)


def test_toeplitz_is_the_matrix_product() -> None:
    rng = np.random.default_rng(2)
    n, out = 257, 100
    x = rng.integers(0, 2, n, dtype=np.uint8)
    seed = rng.integers(0, 2, n + out - 1, dtype=np.uint8)
    matrix = np.array([[seed[i - j + n - 1] for j in range(n)] for i in range(out)], dtype=np.int64)
    assert np.array_equal(toeplitz_hash(x, seed, out), (matrix @ x) % 2)


def test_toeplitz_length_linearity_and_speed() -> None:
    rng = np.random.default_rng(3)
    n, out = 100_000, 40_000
    seed = rng.integers(0, 2, n + out - 1, dtype=np.uint8)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    y = rng.integers(0, 2, n, dtype=np.uint8)
    hx, hy, hxy = toeplitz_hash(x, seed, out), toeplitz_hash(y, seed, out), toeplitz_hash(x ^ y, seed, out)
    assert len(hx) == out
    assert np.array_equal(hxy, hx ^ hy)
    assert 0.45 < hx.mean() < 0.55
    with pytest.raises(ValueError):
        toeplitz_hash(x, seed[:-1], out)


def test_verification_tag_tells_keys_apart() -> None:
    rng = np.random.default_rng(4)
    key = rng.integers(0, 2, 5000, dtype=np.uint8)
    seed = rng.integers(0, 2, 5000 + TAG_BITS - 1, dtype=np.uint8)
    other = key.copy()
    other[1234] ^= 1
    assert np.array_equal(verification_tag(key, seed), verification_tag(key.copy(), seed))
    assert not np.array_equal(verification_tag(key, seed), verification_tag(other, seed))
    assert pack_bits(np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=np.uint8)) == b"\x81"
