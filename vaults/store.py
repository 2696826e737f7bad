"""A sector vault's files: sealed records, their wrapped keys, the readers' wraps, the access log.

Layout under ``<root>/<vault>/`` (directories 0700, files 0600, every file written by
write-fsync-rename, `keys.files.atomic_write`)::

    records/<record>/v<version>.json   the sealed record (ciphertext, nonce, salt)
    keys/<record>/v<version>.json      its record key, wrapped under the sector key of an epoch
    readers.json                       the sector key's epoch and its wrap for each reader
    access.jsonl                       every read, granted or refused: an append-only hash chain
    pending/<record>.v<version>.json   writes that arrived while the vault was sealed
    state.json                         sealed or not, why and since when

Why the keys live apart from the records: crypto-shredding deletes ``keys/<record>/`` and nothing
else, so the ciphertext and the chain's commitment to it stay as proof that the record existed,
while nobody, the vault's operator included, can read it again.

Why a hash chain for the access log: the log is what the auditor compares with the chain's read
events. Each entry carries the hash of the one before it, so an entry removed, edited or reordered
on disk breaks the chain at that point (:meth:`VaultStore.access_log` says where), and an entry
appended without its on-chain event shows as an unrecorded read.

Writes are idempotent by (record, version): writing the same sealed record again (a retry after a
crash) changes nothing; writing a *different* one under a version that exists is refused, so no
version is ever overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keys.files import atomic_write, ensure_private_dir
from vaults.envelope import SealedRecord, WrappedKey

__all__ = ["AccessEntry", "Shredded", "VaultConflict", "VaultCorrupt", "VaultError", "VaultStore", "check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
GENESIS = "0" * 64


class VaultError(Exception):
    """A vault operation that cannot be done; the message says why in plain words."""


class VaultConflict(VaultError):
    """A different record under a (record, version) that exists: versions are never overwritten."""


class VaultCorrupt(VaultError):
    """A vault file does not parse or the access log's chain is broken."""


class Shredded(VaultError):
    """The record's key was deleted (crypto-shredding): it exists, and can never be read again."""


def check_name(value: str, what: str) -> str:
    """Vault, record and reader names: 1–64 of ``[A-Za-z0-9_.:-]``, starting alphanumeric (never a path)."""
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise VaultError(f"{what} {value!r} is not a valid name: 1-64 letters, digits or _.:- starting with a "
                         "letter or digit")
    return value


def _hex(data: bytes) -> str:
    return data.hex()


def _unhex(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VaultCorrupt(f"{what} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise VaultCorrupt(f"{what} is not hex") from None


def _sealed_json(sealed: SealedRecord) -> bytes:
    return json.dumps({"vault": sealed.vault, "record": sealed.record_id, "version": sealed.version,
                       "nonce": _hex(sealed.nonce), "ciphertext": _hex(sealed.ciphertext),
                       "salt": _hex(sealed.salt)}, sort_keys=True).encode()


def _wrapped_json(wrapped: WrappedKey, epoch: int) -> dict[str, object]:
    return {"epoch": epoch, "nonce": _hex(wrapped.nonce), "ciphertext": _hex(wrapped.ciphertext),
            "kem_ciphertext": _hex(wrapped.kem_ciphertext)}


def _wrapped_from(data: dict[str, Any], what: str) -> tuple[int, WrappedKey]:
    try:
        epoch = int(data["epoch"])
        return epoch, WrappedKey(_unhex(data["nonce"], what), _unhex(data["ciphertext"], what),
                                 _unhex(data.get("kem_ciphertext", ""), what))
    except (KeyError, TypeError, ValueError):
        raise VaultCorrupt(f"{what} is not a wrapped key") from None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError:
        raise VaultCorrupt(f"{what} ({path}) is not JSON") from None


@dataclass(frozen=True)
class AccessEntry:
    """One read of a record, granted or refused, as the vault logged it.

    ``event`` is the on-chain event that recorded it (``oracle:seq``); a granted read without one is
    an unrecorded read. ``reason_hash`` is the SHA-256 of the stated reason (the reason stays off the
    chain and out of the log: it may name a patient)."""

    seq: int
    reader: str
    role: str
    record_id: str
    version: int
    reason_hash: str
    at: str
    granted: bool
    event: str
    prev: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class VaultStore:
    """The files of one sector's vault (the module docstring gives the layout and why)."""

    def __init__(self, root: Path, vault: str) -> None:
        self.vault = check_name(vault, "vault")
        self.path = root / vault
        ensure_private_dir(self.path)

    # -- records --------------------------------------------------------------------------------
    def _record_path(self, record_id: str, version: int) -> Path:
        return self.path / "records" / check_name(record_id, "record") / f"v{int(version)}.json"

    def _key_path(self, record_id: str, version: int) -> Path:
        return self.path / "keys" / check_name(record_id, "record") / f"v{int(version)}.json"

    def put(self, sealed: SealedRecord, wrapped_key: WrappedKey, epoch: int) -> bool:
        """Store a sealed record and its wrapped key; False if exactly this record was stored already.

        The key goes first: a crash between the two leaves a key without a record (harmless, and
        overwritten by the retry), never a record that nobody can read."""
        if sealed.vault != self.vault:
            raise VaultError(f"record {sealed.record_id} was sealed for vault {sealed.vault}, not {self.vault}")
        if sealed.version < 1:
            raise VaultError(f"record versions start at 1, got {sealed.version}")
        path = self._record_path(sealed.record_id, sealed.version)
        data = _sealed_json(sealed)
        if path.exists():
            if path.read_bytes() == data:
                return False
            raise VaultConflict(f"record {sealed.record_id} v{sealed.version} exists with other content: "
                                "write a new version")
        if self.shredded(sealed.record_id):
            raise Shredded(f"record {sealed.record_id} was shredded: it cannot be written again")
        key_path = self._key_path(sealed.record_id, sealed.version)
        atomic_write(key_path, json.dumps(_wrapped_json(wrapped_key, epoch), sort_keys=True).encode(), overwrite=True)
        if not atomic_write(path, data, overwrite=False):
            raise VaultConflict(f"record {sealed.record_id} v{sealed.version} was written concurrently")
        return True

    def get(self, record_id: str, version: int | None = None) -> SealedRecord:
        """A stored record (the newest version when ``version`` is None)."""
        version = self.latest(record_id) if version is None else version
        path = self._record_path(record_id, version)
        if not path.exists():
            raise VaultError(f"no record {record_id} v{version} in vault {self.vault}")
        data = _read_json(path, f"record {record_id} v{version}")
        try:
            sealed = SealedRecord(str(data["vault"]), str(data["record"]), int(data["version"]),
                                  _unhex(data["nonce"], "nonce"), _unhex(data["ciphertext"], "ciphertext"),
                                  _unhex(data["salt"], "salt"))
        except (KeyError, TypeError, ValueError):
            raise VaultCorrupt(f"record {record_id} v{version} is missing a field") from None
        if (sealed.vault, sealed.record_id, sealed.version) != (self.vault, record_id, version):
            raise VaultCorrupt(f"the file of record {record_id} v{version} holds {sealed.record_id} v{sealed.version}")
        return sealed

    def versions(self, record_id: str) -> list[int]:
        folder = self.path / "records" / check_name(record_id, "record")
        found = []
        for p in folder.glob("v*.json") if folder.exists() else ():
            if p.stem[1:].isdigit():
                found.append(int(p.stem[1:]))
        return sorted(found)

    def latest(self, record_id: str) -> int:
        versions = self.versions(record_id)
        if not versions:
            raise VaultError(f"no record {record_id} in vault {self.vault}")
        return versions[-1]

    def records(self) -> Iterator[tuple[str, int]]:
        """Every stored (record, version), in name order."""
        folder = self.path / "records"
        for record in sorted(p.name for p in folder.iterdir()) if folder.exists() else ():
            for version in self.versions(record):
                yield record, version

    def record_key(self, record_id: str, version: int) -> tuple[int, WrappedKey]:
        """The wrapped key of a record version and the sector-key epoch it is wrapped under."""
        path = self._key_path(record_id, version)
        if not path.exists():
            if self._record_path(record_id, version).exists():
                raise Shredded(f"record {record_id} v{version} was shredded: its key no longer exists")
            raise VaultError(f"no record {record_id} v{version} in vault {self.vault}")
        return _wrapped_from(_read_json(path, f"the key of {record_id} v{version}"), f"the key of {record_id}")

    def rewrap(self, record_id: str, version: int, wrapped: WrappedKey, epoch: int) -> None:
        """Replace a record key's wrap (a new sector-key epoch); never brings back a shredded key."""
        path = self._key_path(record_id, version)
        if not path.exists():
            raise Shredded(f"record {record_id} v{version} has no key to re-wrap")
        atomic_write(path, json.dumps(_wrapped_json(wrapped, epoch), sort_keys=True).encode(), overwrite=True)

    def shred(self, record_id: str) -> int:
        """Delete every version's key of ``record_id`` (overwritten first); returns how many were deleted."""
        folder = self.path / "keys" / check_name(record_id, "record")
        if not self.versions(record_id):
            raise VaultError(f"no record {record_id} in vault {self.vault}")
        count = 0
        for path in sorted(folder.glob("v*.json")) if folder.exists() else ():
            size = path.stat().st_size
            with open(path, "r+b") as handle:  # overwrite in place before unlinking (best effort on SSDs)
                handle.write(os.urandom(size))
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()
            count += 1
        return count

    def shredded(self, record_id: str) -> bool:
        return bool(self.versions(record_id)) and not any((self.path / "keys" / record_id).glob("v*.json"))

    # -- readers --------------------------------------------------------------------------------
    def set_readers(self, epoch: int, wraps: dict[str, tuple[str, WrappedKey]]) -> None:
        """The sector key of ``epoch`` wrapped for each reader: ``{reader: (role, wrap)}``."""
        for reader in wraps:
            check_name(reader, "reader")
        body = {"epoch": epoch, "readers": {r: {"role": role, **_wrapped_json(w, epoch)}
                                            for r, (role, w) in sorted(wraps.items())}}
        atomic_write(self.path / "readers.json", json.dumps(body, sort_keys=True).encode(), overwrite=True)

    def readers(self) -> tuple[int, dict[str, tuple[str, WrappedKey]]]:
        """The current sector-key epoch and each reader's (role, wrap); epoch 0: no reader yet."""
        path = self.path / "readers.json"
        if not path.exists():
            return 0, {}
        data = _read_json(path, "the readers file")
        try:
            epoch = int(data["epoch"])
            return epoch, {str(r): (str(v["role"]), _wrapped_from(v, f"reader {r}'s wrap")[1])
                           for r, v in data["readers"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise VaultCorrupt("the readers file is not a readers file") from None

    # -- the access log -------------------------------------------------------------------------
    def log_access(self, *, reader: str, role: str, record_id: str, version: int, reason_hash: str, at: str,
                   granted: bool, event: str) -> AccessEntry:
        """Append one read to the log, chained to the last entry, fsynced before returning."""
        entries = self.access_log()
        entry = AccessEntry(seq=len(entries) + 1, reader=reader, role=role, record_id=record_id, version=version,
                            reason_hash=reason_hash, at=at, granted=granted, event=event,
                            prev=entries[-1].digest() if entries else GENESIS)
        path = self.path / "access.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(asdict(entry), sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def access_log(self) -> list[AccessEntry]:
        """The log's entries, checked: each carries its predecessor's hash and the next seq.

        A last line cut short by a crash mid-append is not an entry (it was never acknowledged) and is
        dropped; anything else that does not parse or chain raises :class:`VaultCorrupt` naming the line."""
        path = self.path / "access.jsonl"
        if not path.exists():
            return []
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        if tail:  # no final newline: a torn append; cut it off so the next append starts clean
            with open(path, "r+b") as handle:
                handle.truncate(len(raw) - len(tail))
                os.fsync(handle.fileno())
        entries: list[AccessEntry] = []
        for number, line in enumerate(complete, start=1):
            try:
                entry = AccessEntry(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                raise VaultCorrupt(f"access log line {number} is not an entry") from None
            want = entries[-1].digest() if entries else GENESIS
            if entry.prev != want or entry.seq != number:
                raise VaultCorrupt(f"access log line {number} does not follow line {number - 1}: "
                                   "an entry was removed, edited or reordered")
            entries.append(entry)
        return entries

    # -- sealing and the writes queued meanwhile ------------------------------------------------
    def state(self) -> dict[str, Any]:
        path = self.path / "state.json"
        return dict(_read_json(path, "the state file")) if path.exists() else {"sealed": False}

    @property
    def sealed(self) -> bool:
        return bool(self.state().get("sealed"))

    def set_sealed(self, sealed: bool, *, reason: str, at: str) -> None:
        body = {"sealed": sealed, "reason": reason, "since": at}
        atomic_write(self.path / "state.json", json.dumps(body, sort_keys=True).encode(), overwrite=True)

    def queue(self, sealed: SealedRecord, wrapped_key: WrappedKey, epoch: int) -> bool:
        """Hold a write that arrived while sealed (already encrypted); False if it is queued already."""
        name = f"{check_name(sealed.record_id, 'record')}.v{int(sealed.version)}.json"
        body = {"record": json.loads(_sealed_json(sealed)), "key": _wrapped_json(wrapped_key, epoch)}
        return atomic_write(self.path / "pending" / name, json.dumps(body, sort_keys=True).encode(), overwrite=False)

    def pending(self) -> list[tuple[Path, SealedRecord, int, WrappedKey]]:
        """The queued writes by record and version (records are independent of each other, and a
        record's versions apply in order), each with its file (removed once applied)."""
        folder = self.path / "pending"
        out = []
        for path in sorted(folder.glob("*.json")) if folder.exists() else ():
            body = _read_json(path, f"queued write {path.name}")
            try:
                r = body["record"]
                sealed = SealedRecord(str(r["vault"]), str(r["record"]), int(r["version"]), _unhex(r["nonce"], "nonce"),
                                      _unhex(r["ciphertext"], "ciphertext"), _unhex(r["salt"], "salt"))
            except (KeyError, TypeError, ValueError):
                raise VaultCorrupt(f"queued write {path.name} is missing a field") from None
            epoch, wrapped = _wrapped_from(body["key"], f"queued write {path.name}'s key")
            out.append((path, sealed, epoch, wrapped))
        return sorted(out, key=lambda item: (item[1].record_id, item[1].version))
