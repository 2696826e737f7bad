"""An SAE's long-term keys, their public halves, and the directory every site shares.

Each SAE (a field gateway, an oracle, the controller, the operations desk) holds:

- an **ML-KEM-768** decapsulation key: masters encapsulate a fresh secret to it in each handshake;
- a static **X25519** key: masters combine it with an ephemeral key of theirs (classical secrecy
  that holds even if ML-KEM falls, as in TLS's X25519MLKEM768);
- a hybrid signing pair, **ML-DSA-65 + Ed25519**: a handshake is authentic only if both signatures
  verify, so neither a quantum attack on Ed25519 nor a flaw in ML-DSA alone lets anyone start a
  session in a master's name.

The private halves live in one file per SAE (JSON, hex, 0600, written atomically); the public
halves in the directory (`Directory`), which every SAE and the KME's operator share. A real site
would keep the private keys in an HSM; the file format is the development city's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import ConfigError

__all__ = ["Directory", "EndpointKeys", "EndpointPublic", "ensure_endpoints"]

_FORMAT = "qeaims-link-endpoint-v1"


class EndpointPublic(BaseModel):
    """An SAE's public keys (hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sae_id: str
    mlkem768: str
    x25519: str
    mldsa65: str
    ed25519: str

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class EndpointKeys:
    sae_id: str
    mlkem: MLKEM768PrivateKey
    x25519: X25519PrivateKey
    mldsa: MLDSA65PrivateKey
    ed25519: Ed25519PrivateKey

    @classmethod
    def generate(cls, sae_id: str) -> EndpointKeys:
        return cls(sae_id, MLKEM768PrivateKey.generate(), X25519PrivateKey.generate(), MLDSA65PrivateKey.generate(),
                   Ed25519PrivateKey.generate())

    def public(self) -> EndpointPublic:
        return EndpointPublic(sae_id=self.sae_id, mlkem768=self.mlkem.public_key().public_bytes_raw().hex(),
                              x25519=self.x25519.public_key().public_bytes_raw().hex(),
                              mldsa65=self.mldsa.public_key().public_bytes_raw().hex(),
                              ed25519=self.ed25519.public_key().public_bytes_raw().hex())

    def save(self, path: Path) -> None:
        _write_private(path, json.dumps({
            "format": _FORMAT, "sae_id": self.sae_id, "mlkem768_seed": self.mlkem.private_bytes_raw().hex(),
            "x25519": self.x25519.private_bytes_raw().hex(), "mldsa65_seed": self.mldsa.private_bytes_raw().hex(),
            "ed25519": self.ed25519.private_bytes_raw().hex()}, indent=2))

    @classmethod
    def load(cls, path: Path) -> EndpointKeys:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} file")
            return cls(str(data["sae_id"]), MLKEM768PrivateKey.from_seed_bytes(bytes.fromhex(data["mlkem768_seed"])),
                       X25519PrivateKey.from_private_bytes(bytes.fromhex(data["x25519"])),
                       MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(data["mldsa65_seed"])),
                       Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["ed25519"])))
        except FileNotFoundError:
            raise ConfigError(f"no link keys at {path}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"link keys {path} are damaged ({exc}): restore them from a backup") from None


class Directory:
    """Every SAE's public keys: one JSON object ``{sae_id: EndpointPublic}``."""

    def __init__(self, entries: Iterable[EndpointPublic] = ()) -> None:
        self._entries = {e.sae_id: e for e in entries}

    def get(self, sae_id: str) -> EndpointPublic:
        try:
            return self._entries[sae_id]
        except KeyError:
            raise ConfigError(f"the link directory has no public keys for {sae_id!r}") from None

    def add(self, public: EndpointPublic) -> None:
        self._entries[public.sae_id] = public

    def __contains__(self, sae_id: object) -> bool:
        return sae_id in self._entries

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({k: v.model_dump() for k, v in sorted(self._entries.items())}, indent=2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Directory:
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError("not an object")
            entries = [EndpointPublic.model_validate(v) for v in data.values()]
        except FileNotFoundError:
            raise ConfigError(f"no link directory at {path}: `qeaims up` makes one") from None
        except (OSError, ValueError, TypeError, ValidationError) as exc:
            raise ConfigError(f"link directory {path} is damaged: {str(exc).splitlines()[0]}") from None
        for key, entry in zip(data, entries, strict=True):
            if key != entry.sae_id:
                raise ConfigError(f"link directory {path}: entry {key!r} holds {entry.sae_id!r}'s keys")
        return cls(entries)


def ensure_endpoints(directory_path: Path, keys_dir: Path, sae_ids: Iterable[str]) -> Directory:
    """Make the keys of every SAE that has none (never replacing one) and list their public halves."""
    directory = Directory.load(directory_path) if directory_path.is_file() else Directory()
    for sae_id in sae_ids:
        path = keys_dir / f"{sae_id}.json"
        if path.is_file():
            keys = EndpointKeys.load(path)
        else:
            keys = EndpointKeys.generate(sae_id)
            keys.save(path)
        directory.add(keys.public())
    directory.save(directory_path)
    return directory
