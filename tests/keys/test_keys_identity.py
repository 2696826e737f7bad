"""HybridIdentity: key sizes, derived values, rotation and what it refuses."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak

from keys import HybridIdentity, InvalidKey, pq_key_hash, verify_pq


def test_generate_gives_both_keys(identity: HybridIdentity) -> None:
    assert is_checksum_address(identity.address)
    assert len(identity.pq_public_key) == 1952
    assert identity.pq_key_hash == keccak(identity.pq_public_key) == pq_key_hash(identity.pq_public_key)
    assert len(identity.pq_key_hash) == 32
    assert identity.key_epoch == 1
    assert len(identity.mldsa_seed) == 32 and len(identity.secp256k1_private_key) == 32


def test_sign_pq_verifies_under_its_context(identity: HybridIdentity) -> None:
    signature = identity.sign_pq(b"hello", b"ctx-a")
    assert verify_pq(identity.pq_public_key, signature, b"hello", b"ctx-a")
    assert not verify_pq(identity.pq_public_key, signature, b"hello", b"ctx-b")
    assert not verify_pq(identity.pq_public_key, signature, b"hellO", b"ctx-a")


def test_context_longer_than_fips204_allows_is_refused(identity: HybridIdentity) -> None:
    with pytest.raises(InvalidKey, match="at most 255 bytes"):
        identity.sign_pq(b"m", b"c" * 256)


def test_from_secrets_rebuilds_the_same_identity(identity: HybridIdentity) -> None:
    copy = HybridIdentity.from_secrets(
        private_key=identity.secp256k1_private_key, mldsa_seed=identity.mldsa_seed, key_epoch=1
    )
    assert copy == identity and hash(copy) == hash(identity)
    assert copy.pq_public_key == identity.pq_public_key


@pytest.mark.parametrize(
    ("private_key", "seed", "words"),
    [
        (bytes(31), bytes(32), "secp256k1 private key is 32 bytes, got 31"),
        (bytes(32), bytes(32), "out of range"),
        (b"\xff" * 32, bytes(32), "out of range"),
        (b"\x01" * 32, bytes(33), "ML-DSA-65 seed is 32 bytes, got 33"),
    ],
)
def test_from_secrets_refuses_bad_material(private_key: bytes, seed: bytes, words: str) -> None:
    with pytest.raises(InvalidKey, match=words):
        HybridIdentity.from_secrets(private_key=private_key, mldsa_seed=seed, key_epoch=1)


def test_rotation_keeps_account_and_bumps_epoch(identity: HybridIdentity) -> None:
    rotated = identity.with_rotated_key(MLDSA65PrivateKey.generate())
    assert rotated.address == identity.address
    assert rotated.key_epoch == 2
    assert rotated.pq_public_key != identity.pq_public_key
    assert identity.key_epoch == 1  # the original is untouched
    assert rotated != identity


@pytest.mark.parametrize("epoch", [0, -1, 2**32, True])
def test_epoch_outside_uint32_is_refused(identity: HybridIdentity, epoch: int) -> None:
    with pytest.raises(InvalidKey, match="key epoch must be an integer from 1 to 4294967295"):
        HybridIdentity(identity.account, identity.mldsa_key, epoch)


def test_last_epoch_cannot_rotate(identity: HybridIdentity) -> None:
    last = HybridIdentity(identity.account, identity.mldsa_key, 2**32 - 1)
    with pytest.raises(InvalidKey, match="cannot rotate again"):
        last.with_rotated_key(MLDSA65PrivateKey.generate())


def test_repr_hides_key_material(identity: HybridIdentity) -> None:
    text = repr(identity)
    assert identity.secp256k1_private_key.hex() not in text
    assert identity.mldsa_seed.hex() not in text
    assert text == "HybridIdentity(key_epoch=1)"


def test_pq_key_hash_refuses_wrong_length() -> None:
    with pytest.raises(InvalidKey, match="public key is 1952 bytes, got 10"):
        pq_key_hash(bytes(10))
