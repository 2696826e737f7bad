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
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from core.errors import ConfigError
from links.plan import SAE_ID

__all__ = ["Directory", "EndpointKeys", "EndpointPublic", "ensure_endpoints"]

_FORMAT = "qeaims-link-endpoint-v1"
_PUBLIC_SIZES = {"mlkem768": 1184, "x25519": 32, "mldsa65": 1952, "ed25519": 32}  # raw public key bytes


def _check_sae(sae_id: str) -> str:
    if not SAE_ID.match(sae_id):
        raise ValueError(f"an SAE id is 1-64 characters of a-z, 0-9 and '-', starting alphanumeric: {sae_id!r}")
    return sae_id


class EndpointPublic(BaseModel):
    """An SAE's public keys (lower-case hex of the raw encodings), checked for size on load so that a
    damaged directory fails at start-up rather than in the middle of a handshake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sae_id: str
    mlkem768: str
    x25519: str
    mldsa65: str
    ed25519: str

    @field_validator("sae_id")
    @classmethod
    def _sae(cls, value: str) -> str:
        return _check_sae(value)

    @field_validator("mlkem768", "x25519", "mldsa65", "ed25519")
    @classmethod
    def _key(cls, value: str, info: ValidationInfo) -> str:
        name = str(info.field_name)
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{name} is not hex") from None
        if len(raw) != _PUBLIC_SIZES[name]:
            raise ValueError(f"{name} is {len(raw)} bytes, expected {_PUBLIC_SIZES[name]}")
        return raw.hex()

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the canonical JSON (sorted keys, no spaces): what two operators compare
        out of band to know they hold the same public keys."""
        canonical = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _write_atomic(path: Path, text: str, mode: int) -> None:
    """Write `text` to a fresh temporary file with `mode`, flush it to disk, and rename it over
    `path`: a crash leaves the old file or the new one, never half of one, and a secret is never
    readable by others even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class EndpointKeys:
    """An SAE's private keys. `repr` shows only the SAE id; the file holds the 32/64-byte seeds."""

    sae_id: str
    mlkem: MLKEM768PrivateKey = field(repr=False)
    x25519: X25519PrivateKey = field(repr=False)
    mldsa: MLDSA65PrivateKey = field(repr=False)
    ed25519: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, sae_id: str) -> EndpointKeys:
        return cls(_check_sae(sae_id), MLKEM768PrivateKey.generate(), X25519PrivateKey.generate(), MLDSA65PrivateKey.generate(),
                   Ed25519PrivateKey.generate())

    def public(self) -> EndpointPublic:
        return EndpointPublic(sae_id=self.sae_id, mlkem768=self.mlkem.public_key().public_bytes_raw().hex(),
                              x25519=self.x25519.public_key().public_bytes_raw().hex(),
                              mldsa65=self.mldsa.public_key().public_bytes_raw().hex(),
                              ed25519=self.ed25519.public_key().public_bytes_raw().hex())

    def save(self, path: Path) -> None:
        """JSON of hex seeds, mode 0600, written atomically. SECRET: whoever reads it is this SAE."""
        _write_atomic(path, json.dumps({
            "format": _FORMAT, "sae_id": self.sae_id, "mlkem768_seed": self.mlkem.private_bytes_raw().hex(),
            "x25519": self.x25519.private_bytes_raw().hex(), "mldsa65_seed": self.mldsa.private_bytes_raw().hex(),
            "ed25519": self.ed25519.private_bytes_raw().hex()}, indent=2), 0o600)

    @classmethod
    def load(cls, path: Path) -> EndpointKeys:
        try:
            data = json.loads(path.read_text())
            if data.get("format") != _FORMAT:
                raise ValueError(f"not a {_FORMAT} file")
            return cls(_check_sae(str(data["sae_id"])), MLKEM768PrivateKey.from_seed_bytes(bytes.fromhex(data["mlkem768_seed"])),
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

    def __iter__(self) -> Iterator[EndpointPublic]:
        return iter([self._entries[k] for k in sorted(self._entries)])

    def save(self, path: Path) -> None:
        """Written atomically; public material, so 0644."""
        _write_atomic(path, json.dumps({k: v.model_dump() for k, v in sorted(self._entries.items())}, indent=2),
                      0o644)

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
    """Make the keys of every SAE that has none and list their public halves in the directory file.

    Idempotent, and it never replaces a key file: a damaged one raises `ConfigError` instead, because
    silently regenerating an SAE's keys would cut it off from every peer holding the old directory."""
    directory = Directory.load(directory_path) if directory_path.is_file() else Directory()
    for sae_id in sae_ids:
        path = keys_dir / f"{sae_id}.json"
        if path.is_file():
            keys = EndpointKeys.load(path)
            if keys.sae_id != sae_id:
                raise ConfigError(f"link keys {path} belong to {keys.sae_id!r}, not {sae_id!r}")
        else:
            keys = EndpointKeys.generate(sae_id)
            keys.save(path)
        directory.add(keys.public())
    directory.save(directory_path)
    return directory
