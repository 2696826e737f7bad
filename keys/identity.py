"""An oracle's hybrid identity: a secp256k1 account plus an ML-DSA-65 key.

The secp256k1 account sends transactions (the EVM checks that half); the ML-DSA-65 key signs
domain-separated messages that peers and auditors check off-chain, so a recorded event stays
attributable even once secp256k1 can be broken. ``key_epoch`` mirrors the registry: 1 at
registration, +1 per rotation, and it is part of every signed batch so old keys cannot be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey
from eth_account import Account
from eth_account.signers.local import LocalAccount

from keys._abi import keccak256
from keys.errors import InvalidKey

__all__ = [
    "MAX_KEY_EPOCH",
    "MLDSA65_PUBLIC_KEY_SIZE",
    "MLDSA65_SEED_SIZE",
    "MLDSA65_SIGNATURE_SIZE",
    "HybridIdentity",
    "mldsa_key_from_seed",
    "pq_key_hash",
    "verify_pq",
]

MLDSA65_PUBLIC_KEY_SIZE = 1952
MLDSA65_SIGNATURE_SIZE = 3309
MLDSA65_SEED_SIZE = 32
MAX_KEY_EPOCH = 2**32 - 1  # the registry stores the epoch as uint32
_MAX_CONTEXT = 255  # FIPS 204 limit on the context string


def pq_key_hash(public_key: bytes) -> bytes:
    """keccak256 of a raw ML-DSA-65 public key: the value the registry stores as ``pqKeyHash``."""
    if len(public_key) != MLDSA65_PUBLIC_KEY_SIZE:
        raise InvalidKey(f"an ML-DSA-65 public key is {MLDSA65_PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    return keccak256(bytes(public_key))


def mldsa_key_from_seed(seed: bytes) -> MLDSA65PrivateKey:
    """Rebuild an ML-DSA-65 key from its 32-byte seed (FIPS 204 key generation is deterministic)."""
    if len(seed) != MLDSA65_SEED_SIZE:
        raise InvalidKey(f"an ML-DSA-65 seed is {MLDSA65_SEED_SIZE} bytes, got {len(seed)}")
    return MLDSA65PrivateKey.from_seed_bytes(bytes(seed))


def _check_context(context: bytes) -> None:
    if len(context) > _MAX_CONTEXT:
        raise InvalidKey(f"an ML-DSA context is at most {_MAX_CONTEXT} bytes, got {len(context)}")


def _check_epoch(epoch: int) -> None:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= MAX_KEY_EPOCH:
        raise InvalidKey(f"key epoch must be an integer from 1 to {MAX_KEY_EPOCH}, got {epoch!r}")


def verify_pq(public_key: bytes, signature: bytes, message: bytes, context: bytes) -> bool:
    """Check an ML-DSA-65 signature against a raw public key.

    Returns ``False`` for a wrong signature and for malformed keys or signatures alike, because
    both arrive from untrusted chain data and a verifier only needs to know "valid or not".
    """
    _check_context(context)
    if len(public_key) != MLDSA65_PUBLIC_KEY_SIZE or len(signature) != MLDSA65_SIGNATURE_SIZE:
        return False
    try:
        key = MLDSA65PublicKey.from_public_bytes(bytes(public_key))
        key.verify(bytes(signature), bytes(message), bytes(context))
    except (_CryptoInvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, eq=False)
class HybridIdentity:
    """Both private keys of one oracle and the registry epoch of its ML-DSA key.

    Equality compares only public parts (address, ML-DSA public key, epoch): two identities that
    agree on those speak for the same oracle. ``repr`` never shows key material.
    """

    account: LocalAccount = field(repr=False)
    mldsa_key: MLDSA65PrivateKey = field(repr=False)
    key_epoch: int = 1

    def __post_init__(self) -> None:
        _check_epoch(self.key_epoch)

    @classmethod
    def generate(cls, *, key_epoch: int = 1) -> HybridIdentity:
        """Create fresh keys from the operating system's randomness."""
        return cls(Account.create(), MLDSA65PrivateKey.generate(), key_epoch)

    @classmethod
    def from_secrets(cls, *, private_key: bytes, mldsa_seed: bytes, key_epoch: int) -> HybridIdentity:
        """Rebuild an identity from the 32-byte secp256k1 key and the 32-byte ML-DSA seed."""
        if len(private_key) != 32:
            raise InvalidKey(f"a secp256k1 private key is 32 bytes, got {len(private_key)}")
        try:
            account: LocalAccount = Account.from_key(bytes(private_key))
        except ValueError as exc:
            raise InvalidKey("the secp256k1 private key is out of range for the curve") from exc
        return cls(account, mldsa_key_from_seed(mldsa_seed), key_epoch)

    @property
    def address(self) -> str:
        """The EIP-55 checksum address of the secp256k1 account."""
        return str(self.account.address)

    @cached_property
    def pq_public_key(self) -> bytes:
        """The raw ML-DSA-65 public key (1952 bytes), as published in the registration event."""
        return self.mldsa_key.public_key().public_bytes_raw()

    @cached_property
    def pq_key_hash(self) -> bytes:
        """keccak256 of :attr:`pq_public_key`, the 32 bytes the registry stores."""
        return pq_key_hash(self.pq_public_key)

    @property
    def secp256k1_private_key(self) -> bytes:
        """The 32-byte secp256k1 private key, for the keystore only."""
        return bytes(self.account.key)

    @property
    def mldsa_seed(self) -> bytes:
        """The 32-byte ML-DSA seed (not the expanded key), for the keystore only."""
        return self.mldsa_key.private_bytes_raw()

    def sign_pq(self, message: bytes, context: bytes) -> bytes:
        """Sign ``message`` with the ML-DSA-65 key under a domain ``context`` (≤ 255 bytes)."""
        _check_context(context)
        return self.mldsa_key.sign(bytes(message), bytes(context))

    def with_rotated_key(self, new_mldsa_key: MLDSA65PrivateKey) -> HybridIdentity:
        """The same account with ``new_mldsa_key`` at the next epoch; the old identity is unchanged."""
        new_public = new_mldsa_key.public_key().public_bytes_raw()
        if new_public == self.pq_public_key:
            raise InvalidKey("the new ML-DSA key equals the current one; generate a fresh key to rotate")
        if self.key_epoch >= MAX_KEY_EPOCH:
            raise InvalidKey(f"key epoch {self.key_epoch} is the last one; this account cannot rotate again")
        return HybridIdentity(self.account, new_mldsa_key, self.key_epoch + 1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HybridIdentity):
            return NotImplemented
        return (
            self.address == other.address
            and self.key_epoch == other.key_epoch
            and self.pq_public_key == other.pq_public_key
        )

    def __hash__(self) -> int:
        return hash((self.address, self.key_epoch, self.pq_key_hash))
