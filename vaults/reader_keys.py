"""A vault reader's ML-KEM-768 key pair, kept in a passphrase-encrypted file of its own.

A reader (a clinician, a bank's fraud desk, the vault's custodian) unwraps the sector key with this
private key (`vaults.envelope.unwrap_for_reader`); nobody else holds it, the vault's operator
included. The file is the 64-byte ML-KEM seed encrypted with AES-256-GCM under a scrypt key of the
passphrase, as the oracles' keystores are (`keys.keystore`), and bound (AAD) to the vault, the reader
and the role, so a file renamed or edited to claim another reader or role does not open.

Layout (JSON, mode 0600)::

    {"vault", "reader", "role", "public_key": hex, "kdf": {"n", "r", "p", "salt"}, "nonce", "ciphertext"}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.files import atomic_write, ensure_private_dir
from vaults.store import VaultError, check_name

__all__ = ["ReaderKey", "load_reader_key", "save_reader_key"]

_R, _P = 8, 1
_AAD = b"qeaims-vault-reader-key-v1"


@dataclass(frozen=True)
class ReaderKey:
    """Who reads (``reader`` in ``role`` of ``vault``) and the private key that proves it."""

    vault: str
    reader: str
    role: str
    private_key: MLKEM768PrivateKey

    @classmethod
    def generate(cls, vault: str, reader: str, role: str) -> ReaderKey:
        return cls(check_name(vault, "vault"), check_name(reader, "reader"), check_name(role, "role"),
                   MLKEM768PrivateKey.generate())

    @property
    def public_key(self) -> MLKEM768PublicKey:
        return self.private_key.public_key()

    def public_bytes(self) -> bytes:
        return self.public_key.public_bytes_raw()


def _aad(vault: str, reader: str, role: str) -> bytes:
    return b"\x00".join([_AAD, vault.encode(), reader.encode(), role.encode()])


def _kek(passphrase: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=_R, p=_P).derive(passphrase.encode())


def save_reader_key(key: ReaderKey, path: Path, passphrase: str, *, scrypt_n: int = 2**15) -> None:
    """Write ``key`` to ``path`` (never over an existing file: a reader's key is not replaced silently)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    seed = key.private_key.private_bytes_raw()
    body = {
        "vault": key.vault, "reader": key.reader, "role": key.role, "public_key": key.public_bytes().hex(),
        "kdf": {"n": scrypt_n, "r": _R, "p": _P, "salt": salt.hex()}, "nonce": nonce.hex(),
        "ciphertext": AESGCM(_kek(passphrase, salt, scrypt_n)).encrypt(
            nonce, seed, _aad(key.vault, key.reader, key.role)).hex(),
    }
    ensure_private_dir(path.parent)
    if not atomic_write(path, json.dumps(body, sort_keys=True).encode(), overwrite=False):
        raise VaultError(f"a reader key exists at {path}: remove it first if you mean to replace it")


def load_reader_key(path: Path, passphrase: str) -> ReaderKey:
    """The reader key in ``path``; one plain `VaultError` for a missing, malformed or wrong-passphrase file."""
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise VaultError(f"no reader key at {path}") from None
    except (OSError, json.JSONDecodeError):
        raise VaultError(f"{path} is not a reader key file") from None
    try:
        vault, reader, role = str(body["vault"]), str(body["reader"]), str(body["role"])
        kdf = body["kdf"]
        kek = _kek(passphrase, bytes.fromhex(kdf["salt"]), int(kdf["n"]))
        seed = AESGCM(kek).decrypt(bytes.fromhex(body["nonce"]), bytes.fromhex(body["ciphertext"]),
                                   _aad(vault, reader, role))
        private_key = MLKEM768PrivateKey.from_seed_bytes(seed)
    except InvalidTag:
        raise VaultError(f"the reader key {path} does not open: wrong passphrase, or the file was edited") from None
    except (KeyError, TypeError, ValueError):
        raise VaultError(f"{path} is not a reader key file") from None
    if private_key.public_key().public_bytes_raw().hex() != body.get("public_key"):
        raise VaultError(f"the reader key {path} does not hold the public key it names")
    return ReaderKey(vault, reader, role, private_key)
