"""Encrypted keystore files holding an oracle's two private keys.

Layout (JSON, version 1)::

    {"version": 1, "address": "0x…", "label": "…", "key_epoch": 1, "pq_key_hash": "0x…",
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "…"},
     "cipher": {"name": "aes-256-gcm", "nonce": "…"},
     "passphrase_check": "…", "ciphertext": "…"}

The plaintext is the 32-byte secp256k1 key followed by the 32-byte ML-DSA-65 seed (the seed, not
the 4 KB expanded key: FIPS 204 expands it deterministically). Every field except ``ciphertext`` is
the AES-GCM associated data, so changing the address, epoch or label makes decryption fail.
scrypt derives 64 bytes: the first half is the AES key, a hash of the second half is
``passphrase_check``. That check costs an attacker nothing extra (the GCM tag already confirms a
guess) but lets us tell "wrong passphrase" apart from "file altered", which need different fixes.

Rotation keeps the retired key: ``name.json`` → ``name.epoch<N>.json`` before the new key is
written, so an operator can still prove what epoch N signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys._abi import checksum
from keys.errors import (
    InvalidInput,
    InvalidKey,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreNotFound,
    WrongPassphrase,
)
from keys.files import atomic_write
from keys.identity import HybridIdentity

__all__ = [
    "DEFAULT_SCRYPT_N",
    "KEYSTORE_VERSION",
    "MAX_SCRYPT_N",
    "MIN_SCRYPT_N",
    "KeystoreHeader",
    "archive_path",
    "load_keystore",
    "read_keystore_header",
    "rotate_keystore",
    "save_keystore",
]

KEYSTORE_VERSION = 1
DEFAULT_SCRYPT_N = 2**15  # ~0.1 s and 32 MiB per attempt on the reference machines
MIN_SCRYPT_N = 2**4  # tests and throw-away development consortia only
MAX_SCRYPT_N = 2**18  # refuse files that would make us allocate more than 256 MiB
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_SIZE = 16
_NONCE_SIZE = 12
_MAX_LABEL = 128
_FIELDS = {"version", "address", "label", "key_epoch", "pq_key_hash", "kdf", "cipher",
           "passphrase_check", "ciphertext"}  # fmt: skip


@dataclass(frozen=True)
class KeystoreHeader:
    """The public part of a keystore, readable without the passphrase."""

    path: Path
    version: int
    address: str
    label: str
    key_epoch: int
    pq_key_hash: bytes
    scrypt_n: int
    scrypt_r: int
    scrypt_p: int
    salt: bytes
    nonce: bytes
    passphrase_check: bytes


@dataclass(frozen=True)
class _Document:
    header: KeystoreHeader
    aad: bytes
    ciphertext: bytes


def archive_path(path: Path | str, epoch: int) -> Path:
    """Where the keystore of retired epoch ``epoch`` is kept: ``name.epoch<N>.json`` beside ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.epoch{epoch}{path.suffix or '.json'}")


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    data = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    if not data:
        raise InvalidInput("the keystore passphrase must not be empty")
    return data


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    derived = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase)
    return derived[:32], hashlib.sha256(b"qeaims-keystore-check\x00" + derived[32:]).digest()


def _aad(fields: dict[str, Any]) -> bytes:
    header = {key: value for key, value in fields.items() if key != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def save_keystore(
    identity: HybridIdentity,
    path: Path | str,
    passphrase: str | bytes,
    *,
    label: str,
    scrypt_n: int = DEFAULT_SCRYPT_N,
    overwrite: bool = False,
) -> KeystoreHeader:
    """Encrypt ``identity`` under ``passphrase`` and write it atomically to ``path`` (mode 0600).

    Refuses to replace an existing file unless ``overwrite`` is set, because that would destroy a
    key; use :func:`rotate_keystore` to change keys. Missing parent directories are created 0700.
    """
    path = Path(path)
    secret = _passphrase_bytes(passphrase)
    if not isinstance(label, str) or len(label) > _MAX_LABEL or not label.isprintable():
        raise InvalidInput(f"keystore label must be printable text of at most {_MAX_LABEL} characters")
    if isinstance(scrypt_n, bool) or not isinstance(scrypt_n, int) or not _valid_n(scrypt_n):
        raise InvalidInput(
            f"scrypt n must be a power of two from {MIN_SCRYPT_N} to {MAX_SCRYPT_N}, got {scrypt_n!r}"
        )
    salt = os.urandom(_SALT_SIZE)
    nonce = os.urandom(_NONCE_SIZE)
    key, check = _derive(secret, salt, scrypt_n, _SCRYPT_R, _SCRYPT_P)
    fields: dict[str, Any] = {
        "version": KEYSTORE_VERSION,
        "address": identity.address,
        "label": label,
        "key_epoch": identity.key_epoch,
        "pq_key_hash": "0x" + identity.pq_key_hash.hex(),
        "kdf": {"name": "scrypt", "n": scrypt_n, "r": _SCRYPT_R, "p": _SCRYPT_P, "salt": salt.hex()},
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()},
        "passphrase_check": check.hex(),
    }
    plaintext = identity.secp256k1_private_key + identity.mldsa_seed
    fields["ciphertext"] = AESGCM(key).encrypt(nonce, plaintext, _aad(fields)).hex()
    data = (json.dumps(fields, indent=2) + "\n").encode("ascii")
    try:
        placed = atomic_write(path, data, overwrite=overwrite)
    except OSError as exc:
        raise KeystoreError(f"cannot write keystore {path}: {exc.strerror or exc}", path=path) from exc
    if not placed:
        raise KeystoreExists(path)
    return _parse(data, path).header


def _valid_n(n: int) -> bool:
    return MIN_SCRYPT_N <= n <= MAX_SCRYPT_N and n & (n - 1) == 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeystoreNotFound(path) from exc
    except IsADirectoryError as exc:
        raise KeystoreCorrupt(path, "it is a directory, not a keystore file") from exc
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore {path}: {exc.strerror or exc}", path=path) from exc


def _hex(value: Any, size: int, what: str, path: Path, *, prefixed: bool = False) -> bytes:
    if not isinstance(value, str) or (prefixed and not value.startswith("0x")):
        raise KeystoreCorrupt(path, f"{what} is not a hex string")
    try:
        data = bytes.fromhex(value[2:] if prefixed else value)
    except ValueError as exc:
        raise KeystoreCorrupt(path, f"{what} is not a hex string") from exc
    if size and len(data) != size:
        raise KeystoreCorrupt(path, f"{what} should be {size} bytes, found {len(data)}")
    return data


def _int(value: Any, what: str, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KeystoreCorrupt(path, f"{what} is not an integer")
    return value


def _parse(raw: bytes, path: Path) -> _Document:
    """Check every field of a keystore document; anything unexpected is reported as corrupt."""
    try:
        fields = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeystoreCorrupt(path, "it is not valid JSON") from exc
    if not isinstance(fields, dict):
        raise KeystoreCorrupt(path, "it is not a JSON object")
    version = fields.get("version")
    if version != KEYSTORE_VERSION or isinstance(version, bool):
        raise KeystoreCorrupt(path, f"version {version!r} is not supported (expected {KEYSTORE_VERSION})")
    if set(fields) != _FIELDS:
        problems = sorted(_FIELDS ^ set(fields))
        raise KeystoreCorrupt(path, f"missing or unexpected fields: {', '.join(problems)}")
    kdf, cipher = fields["kdf"], fields["cipher"]
    if (
        not isinstance(kdf, dict)
        or kdf.get("name") != "scrypt"
        or set(kdf) != {"name", "n", "r", "p", "salt"}
    ):
        raise KeystoreCorrupt(path, "kdf must be scrypt with n, r, p and salt")
    if (
        not isinstance(cipher, dict)
        or cipher.get("name") != "aes-256-gcm"
        or set(cipher) != {"name", "nonce"}
    ):
        raise KeystoreCorrupt(path, "cipher must be aes-256-gcm with a nonce")
    n, r, p = (
        _int(kdf["n"], "scrypt n", path),
        _int(kdf["r"], "scrypt r", path),
        _int(kdf["p"], "scrypt p", path),
    )
    if not _valid_n(n) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise KeystoreCorrupt(path, f"scrypt parameters n={n}, r={r}, p={p} are outside the accepted range")
    address, label = fields["address"], fields["label"]
    try:
        address = checksum(address, "address")
    except InvalidInput as exc:
        raise KeystoreCorrupt(path, "address is not a valid account address") from exc
    if not isinstance(label, str):
        raise KeystoreCorrupt(path, "label is not text")
    epoch = _int(fields["key_epoch"], "key_epoch", path)
    if not 1 <= epoch < 2**32:
        raise KeystoreCorrupt(path, f"key_epoch {epoch} is outside 1..{2**32 - 1}")
    header = KeystoreHeader(
        path=path,
        version=KEYSTORE_VERSION,
        address=address,
        label=label,
        key_epoch=epoch,
        pq_key_hash=_hex(fields["pq_key_hash"], 32, "pq_key_hash", path, prefixed=True),
        scrypt_n=n,
        scrypt_r=r,
        scrypt_p=p,
        salt=_hex(kdf["salt"], _SALT_SIZE, "salt", path),
        nonce=_hex(cipher["nonce"], _NONCE_SIZE, "nonce", path),
        passphrase_check=_hex(fields["passphrase_check"], 32, "passphrase_check", path),
    )
    ciphertext = _hex(fields["ciphertext"], 64 + 16, "ciphertext", path)
    return _Document(header=header, aad=_aad(fields), ciphertext=ciphertext)


def _decrypt(document: _Document, passphrase: str | bytes) -> HybridIdentity:
    header, path = document.header, document.header.path
    key, check = _derive(
        _passphrase_bytes(passphrase), header.salt, header.scrypt_n, header.scrypt_r, header.scrypt_p
    )
    if not hmac.compare_digest(check, header.passphrase_check):
        raise WrongPassphrase(path)
    try:
        plaintext = AESGCM(key).decrypt(header.nonce, document.ciphertext, document.aad)
    except InvalidTag as exc:
        raise KeystoreCorrupt(path, "its header or ciphertext was altered after it was written") from exc
    try:
        identity = HybridIdentity.from_secrets(
            private_key=plaintext[:32], mldsa_seed=plaintext[32:], key_epoch=header.key_epoch
        )
    except InvalidKey as exc:
        raise KeystoreCorrupt(path, "the decrypted key material is invalid") from exc
    if identity.address != header.address or identity.pq_key_hash != header.pq_key_hash:
        raise KeystoreCorrupt(path, "the decrypted keys do not match its address or pq_key_hash")
    return identity


def read_keystore_header(path: Path | str) -> KeystoreHeader:
    """The public fields of a keystore (address, label, epoch, key hash), without the passphrase.

    The header is authenticated only when the file is decrypted; treat it as a hint until then.
    """
    path = Path(path)
    return _parse(_read(path), path).header


def load_keystore(path: Path | str, passphrase: str | bytes) -> HybridIdentity:
    """Decrypt the keystore at ``path``.

    Raises :class:`KeystoreNotFound`, :class:`WrongPassphrase` or :class:`KeystoreCorrupt`.
    """
    path = Path(path)
    return _decrypt(_parse(_read(path), path), passphrase)


def rotate_keystore(
    path: Path | str,
    passphrase: str | bytes,
    new_mldsa_key: MLDSA65PrivateKey,
    *,
    scrypt_n: int | None = None,
) -> HybridIdentity:
    """Archive the current keystore as ``name.epoch<N>.json`` and store ``new_mldsa_key`` at N+1.

    Same account, passphrase and label; ``scrypt_n`` defaults to the current file's. Call this
    *before* sending the rotation transaction, so the new key is on disk before the chain knows
    it. Re-running after a crash between the two writes is safe: an identical archive is reused.
    """
    path = Path(path)
    raw = _read(path)
    document = _parse(raw, path)
    old_identity = _decrypt(document, passphrase)
    new_identity = old_identity.with_rotated_key(new_mldsa_key)
    archive = archive_path(path, old_identity.key_epoch)
    try:
        archived = atomic_write(archive, raw, overwrite=False)
    except OSError as exc:
        raise KeystoreError(f"cannot write archive {archive}: {exc.strerror or exc}", path=archive) from exc
    if not archived and _read(archive) != raw:
        raise KeystoreExists(archive)
    save_keystore(
        new_identity,
        path,
        passphrase,
        label=document.header.label,
        scrypt_n=scrypt_n if scrypt_n is not None else document.header.scrypt_n,
        overwrite=True,
    )
    return new_identity
