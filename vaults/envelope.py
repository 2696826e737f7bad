"""Envelope encryption for a sector's vault: per-record keys, a sector key, ML-KEM-768 per reader.

Three levels of key, each with one job::

    record   AES-256-GCM under a fresh 256-bit record key (RK), one per record version;
             AAD = vault id ‖ record id ‖ version, so a ciphertext cannot be moved to another record
    RK       wrapped (AES-256-GCM) under the sector key (SK); AAD = vault id ‖ record id ‖ version ‖ SK epoch
    SK       wrapped for each authorised reader: ML-KEM-768 encapsulation to the reader's public key,
             HKDF-SHA256 of the shared secret into a key-encryption key, AES-256-GCM of SK under it;
             AAD and HKDF info = vault id ‖ reader id ‖ role ‖ SK epoch (a role edited on disk does
             not unwrap)

Why three and not two: a record key per record is what makes crypto-shredding exact (delete one
wrapped RK and that record, and only it, is unreadable, while its ciphertext and the chain's hash of
it remain as proof it existed); a sector key between records and readers is what makes a reader
cheap to add or revoke (one encapsulation, or a new SK and a re-wrap of the 32-byte record keys,
never a re-encryption of the records). ML-KEM-768 (FIPS 203) because records such as patients'
admissions must stay confidential for decades: an attacker who stores today's ciphertexts must not
read them with a quantum computer later ("harvest now, decrypt later").

Commitments. What goes on-chain for a write is :func:`commitment`: SHA-256 over the vault id, the
record id, the version, the ciphertext's SHA-256 and the record's ``content_hash``, a *salted* hash
of the plaintext. The ciphertext hash lets anyone check the stored record is the one written; the
content hash lets a reader who decrypts it check the content (:func:`content_matches`), which also
answers AES-GCM not being key-committing (a writer holding two keys could craft one ciphertext that
opens two ways; only one of them matches the content hash). The salt (random, 32 bytes) stops a
dictionary attack on short plaintexts ("admitted: ward 3"): it is kept beside the record's key, not
the record, so crypto-shredding destroys it too and leaves nothing to test a guess against.

Every ``open``/``unwrap`` raises :class:`VaultCryptoError` on any tampering (GCM's tag), never
returns wrong bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "SealedRecord",
    "VaultCryptoError",
    "WrappedKey",
    "commitment",
    "content_matches",
    "new_key",
    "open_record",
    "seal_record",
    "sector_kem",
    "unwrap_for_reader",
    "unwrap_record_key",
    "wrap_for_reader",
    "wrap_record_key",
    "wrap_record_key_for_sector",
]

KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 32
MLKEM768_CIPHERTEXT_BYTES = 1088
_RECORD = b"qeaims-vault-record-v1"
_RECORD_KEY = b"qeaims-vault-record-key-v1"
_SECTOR_KEY = b"qeaims-vault-sector-key-v1"
_COMMIT = b"qeaims-vault-commit-v1"
_CONTENT = b"qeaims-vault-content-v1"
_SECTOR_KEM = b"qeaims-vault-sector-kem-v1"


class VaultCryptoError(Exception):
    """A ciphertext, a wrapped key or a key did not authenticate: tampered, or the wrong key."""


def _framed(*parts: bytes) -> bytes:
    """Length-prefixed concatenation: no two different tuples of parts give the same bytes."""
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def new_key() -> bytes:
    """A fresh 256-bit key from the operating system's CSPRNG."""
    return os.urandom(KEY_BYTES)


@dataclass(frozen=True)
class SealedRecord:
    """A record as stored: its ciphertext (with GCM's tag), nonce and salted content hash; ``salt`` is
    the content hash's salt where it is known (at sealing, and read beside the record's key)."""

    vault: str
    record_id: str
    version: int
    nonce: bytes
    ciphertext: bytes
    content_hash: bytes
    salt: bytes = b""

    def aad(self) -> bytes:
        return _framed(_RECORD, self.vault.encode(), self.record_id.encode(), str(self.version).encode())


@dataclass(frozen=True)
class WrappedKey:
    """A key encrypted under another: ``kem_ciphertext`` is empty under a symmetric key (RK under SK)
    and ML-KEM-768's ciphertext for a reader's wrap of SK."""

    nonce: bytes
    ciphertext: bytes
    kem_ciphertext: bytes = b""


def _check_key(key: bytes, what: str) -> None:
    if len(key) != KEY_BYTES:
        raise VaultCryptoError(f"{what} must be {KEY_BYTES} bytes, got {len(key)}")


def seal_record(vault: str, record_id: str, version: int, plaintext: bytes, record_key: bytes) -> SealedRecord:
    """Encrypt ``plaintext`` under ``record_key``, bound to its vault, id and version."""
    _check_key(record_key, "a record key")
    salt = os.urandom(SALT_BYTES)
    draft = SealedRecord(vault, record_id, version, os.urandom(NONCE_BYTES), b"", b"", salt)
    ciphertext = AESGCM(record_key).encrypt(draft.nonce, plaintext, draft.aad())
    return SealedRecord(vault, record_id, version, draft.nonce, ciphertext, _content_hash(salt, plaintext), salt)


def open_record(sealed: SealedRecord, record_key: bytes) -> bytes:
    """The plaintext of ``sealed``; :class:`VaultCryptoError` if anything in it or its binding changed."""
    _check_key(record_key, "a record key")
    try:
        return AESGCM(record_key).decrypt(sealed.nonce, sealed.ciphertext, sealed.aad())
    except InvalidTag:
        raise VaultCryptoError(f"record {sealed.record_id} v{sealed.version} does not authenticate") from None


def _record_key_aad(vault: str, record_id: str, version: int, epoch: int) -> bytes:
    return _framed(_RECORD_KEY, vault.encode(), record_id.encode(), str(version).encode(), str(epoch).encode())


def wrap_record_key(vault: str, record_id: str, record_key: bytes, sector_key: bytes, epoch: int, *,
                    version: int) -> WrappedKey:
    """``record_key`` of a record version under the sector key of ``epoch``."""
    _check_key(record_key, "a record key")
    _check_key(sector_key, "a sector key")
    nonce = os.urandom(NONCE_BYTES)
    aad = _record_key_aad(vault, record_id, version, epoch)
    return WrappedKey(nonce, AESGCM(sector_key).encrypt(nonce, record_key, aad))


def sector_kem(sector_key: bytes) -> MLKEM768PrivateKey:
    """The sector's ML-KEM-768 key pair, derived from the sector key: its public half lets a writer wrap a
    new record's key without holding the sector key (so a writer cannot read), its private half is
    derived only by those who hold the sector key (custodians and readers)."""
    _check_key(sector_key, "a sector key")
    seed = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_SECTOR_KEM).derive(sector_key)
    return MLKEM768PrivateKey.from_seed_bytes(seed)


def wrap_record_key_for_sector(vault: str, record_id: str, record_key: bytes, sector_public: MLKEM768PublicKey,
                               epoch: int, *, version: int) -> WrappedKey:
    """``record_key`` for the holders of the sector key of ``epoch``, made with its public half only."""
    _check_key(record_key, "a record key")
    shared, kem_ciphertext = sector_public.encapsulate()
    aad = _record_key_aad(vault, record_id, version, epoch)
    nonce = os.urandom(NONCE_BYTES)
    return WrappedKey(nonce, AESGCM(_reader_kek(shared, aad)).encrypt(nonce, record_key, aad), kem_ciphertext)


def unwrap_record_key(vault: str, record_id: str, wrapped: WrappedKey, sector_key: bytes, epoch: int, *,
                      version: int) -> bytes:
    """A record key wrapped under the sector key (`wrap_record_key`) or for it (`wrap_record_key_for_sector`)."""
    _check_key(sector_key, "a sector key")
    aad = _record_key_aad(vault, record_id, version, epoch)
    try:
        if wrapped.kem_ciphertext:
            if len(wrapped.kem_ciphertext) != MLKEM768_CIPHERTEXT_BYTES:
                raise InvalidTag
            shared = sector_kem(sector_key).decapsulate(wrapped.kem_ciphertext)
            return AESGCM(_reader_kek(shared, aad)).decrypt(wrapped.nonce, wrapped.ciphertext, aad)
        return AESGCM(sector_key).decrypt(wrapped.nonce, wrapped.ciphertext, aad)
    except InvalidTag:
        raise VaultCryptoError(f"the key of record {record_id} v{version} does not unwrap under sector key "
                               f"epoch {epoch}") from None


def _reader_kek(shared_secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared_secret)


def _reader_info(vault: str, reader: str, role: str, epoch: int) -> bytes:
    return _framed(_SECTOR_KEY, vault.encode(), reader.encode(), role.encode(), str(epoch).encode())


def wrap_for_reader(vault: str, reader: str, role: str, epoch: int, sector_key: bytes,
                    public_key: MLKEM768PublicKey) -> WrappedKey:
    """The sector key of ``epoch`` for ``reader`` in ``role``: only the holder of the matching ML-KEM-768
    private key can recover it, and only for this vault, reader, role and epoch (HKDF info, GCM's AAD)."""
    _check_key(sector_key, "a sector key")
    shared, kem_ciphertext = public_key.encapsulate()
    info = _reader_info(vault, reader, role, epoch)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(_reader_kek(shared, info)).encrypt(nonce, sector_key, info)
    return WrappedKey(nonce, ciphertext, kem_ciphertext)


def unwrap_for_reader(vault: str, reader: str, role: str, epoch: int, wrapped: WrappedKey,
                      private_key: MLKEM768PrivateKey) -> bytes:
    if len(wrapped.kem_ciphertext) != MLKEM768_CIPHERTEXT_BYTES:
        raise VaultCryptoError(f"a reader's wrap carries {len(wrapped.kem_ciphertext)} bytes of ML-KEM "
                               f"ciphertext, not {MLKEM768_CIPHERTEXT_BYTES}")
    # ML-KEM decapsulation never fails: a wrong key or a changed ciphertext gives a different secret
    # (implicit rejection), which GCM's tag then refuses
    shared = private_key.decapsulate(wrapped.kem_ciphertext)
    info = _reader_info(vault, reader, role, epoch)
    try:
        return AESGCM(_reader_kek(shared, info)).decrypt(wrapped.nonce, wrapped.ciphertext, info)
    except InvalidTag:
        raise VaultCryptoError(f"the sector key (epoch {epoch}) does not unwrap for reader {reader} as {role}") from None


def _content_hash(salt: bytes, plaintext: bytes) -> bytes:
    return hashlib.sha256(_framed(_CONTENT, salt, plaintext)).digest()


def content_matches(sealed: SealedRecord, plaintext: bytes) -> bool:
    """Whether ``plaintext`` is the content the record was sealed with (needs its salt: not after shredding)."""
    if len(sealed.salt) != SALT_BYTES:
        raise VaultCryptoError(f"record {sealed.record_id} v{sealed.version} has no salt (shredded?)")
    return hmac.compare_digest(_content_hash(sealed.salt, plaintext), sealed.content_hash)


def commitment(sealed: SealedRecord) -> bytes:
    """The 32 bytes a write puts on-chain (the module docstring says what they bind and why salted).
    Computable from the stored record alone, so an auditor checks a shredded record's too."""
    return hashlib.sha256(_framed(_COMMIT, sealed.vault.encode(), sealed.record_id.encode(),
                                  str(sealed.version).encode(), hashlib.sha256(sealed.ciphertext).digest(),
                                  sealed.content_hash)).digest()
