"""A sector vault's files: sealed records, their wrapped keys, the readers' wraps, the access log.

Layout under ``<root>/<vault>/`` (directories 0700, files 0600, every file written by
write-fsync-rename, `keys.files.atomic_write`)::

    records/<record>/v<version>.json   the sealed record (ciphertext, nonce, salted content hash)
    keys/<record>/v<version>.json      its record key, wrapped under the sector key of an epoch, and
                                       the content hash's salt
    keys/<record>/SHREDDED             the tombstone of a shredded record
    readers.json                       the sector key's epoch and its wrap for each reader (and role);
                                       while a rotation is unfinished also the previous epoch's
                                       wraps for the readers that remain (``previous``)
    access.jsonl                       every read, granted or refused: an append-only hash chain
    pending/<record>.v<version>.json   writes that arrived while the vault was sealed
    state.json                         sealed or not, why and since when
    .lock                              taken (flock) by every change, so concurrent writers take turns

Why the keys live apart from the records: crypto-shredding deletes what is in ``keys/<record>/``
(the wrapped keys and the salts, temporaries a crash left there included, and the record's queued
writes) and leaves a tombstone, so the ciphertext and the chain's commitment to it stay as proof
that the record existed, while nobody, the vault's operator included, can read it or test a guess
of its content against the commitment again.

What the files alone cannot prove, and the chain must (the service's job, docs/cyber.md): a log
cut back to an earlier prefix, or rewritten with every hash recomputed, is a valid chain (the hash
chain has no secret); a key file restored from a backup together with its tombstone's deletion
un-shreds a record; an old ``readers.json`` restored together with old key files brings back a
revoked reader. Each is caught against on-chain events: every read carries its entry's sequence
number and digest, every shredding is an event, the sector key's epoch is anchored. What the files
do catch on their own: an entry edited, removed or reordered without recomputing the chain, a key
file restored without removing the tombstone, a ``readers.json`` older than the record keys,
symlinks planted to make the vault write or delete elsewhere, a deleted state file (the vault then
counts as sealed: it fails closed).

Writes are idempotent by (record, version): writing the same sealed record again (a retry after a
crash) changes nothing; writing a *different* one under a version that exists is refused, so no
version is ever overwritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import QeaimsError
from keys.files import atomic_write, ensure_private_dir
from vaults.envelope import SealedRecord, WrappedKey

__all__ = ["AccessEntry", "Shredded", "VaultConflict", "VaultCorrupt", "VaultError", "VaultStore", "check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DIGITS = re.compile(r"^[0-9]{1,9}$")  # ASCII digits only: "²".isdigit() is true and int("²") fails
GENESIS = "0" * 64
TOMBSTONE = "SHREDDED"


class VaultError(QeaimsError):
    """A vault operation that cannot be done; the message says why in plain words."""


class VaultConflict(VaultError):
    """A different record under a (record, version) that exists: versions are never overwritten."""


class VaultCorrupt(VaultError):
    """A vault file does not parse, the access log's chain is broken, or a file was tampered with."""


class Shredded(VaultError):
    """The record's key was deleted (crypto-shredding): it exists, and can never be read again."""


def check_name(value: str, what: str) -> str:
    """Vault, record and reader names: 1–64 of ``[A-Za-z0-9_.:-]``, starting alphanumeric (never a path)."""
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise VaultError(f"{what} {value!r} is not a valid name: 1-64 letters, digits or _.:- starting with a "
                         "letter or digit")
    return value


def _unhex(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VaultCorrupt(f"{what} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise VaultCorrupt(f"{what} is not hex") from None


def _record_json(sealed: SealedRecord) -> dict[str, object]:
    return {"vault": sealed.vault, "record": sealed.record_id, "version": sealed.version,
            "nonce": sealed.nonce.hex(), "ciphertext": sealed.ciphertext.hex(),
            "content_hash": sealed.content_hash.hex()}


def _record_from(data: Any, what: str) -> SealedRecord:
    try:
        return SealedRecord(str(data["vault"]), str(data["record"]), int(data["version"]),
                            _unhex(data["nonce"], "nonce"), _unhex(data["ciphertext"], "ciphertext"),
                            _unhex(data["content_hash"], "content hash"))
    except (KeyError, TypeError, ValueError):
        raise VaultCorrupt(f"{what} is missing a field") from None


def _key_json(wrapped: WrappedKey, epoch: int, salt: bytes = b"") -> dict[str, object]:
    return {"epoch": epoch, "nonce": wrapped.nonce.hex(), "ciphertext": wrapped.ciphertext.hex(),
            "kem_ciphertext": wrapped.kem_ciphertext.hex(), **({"salt": salt.hex()} if salt else {})}


def _key_from(data: Any, what: str) -> tuple[int, WrappedKey, bytes]:
    try:
        epoch = int(data["epoch"])
        return (epoch, WrappedKey(_unhex(data["nonce"], what), _unhex(data["ciphertext"], what),
                                  _unhex(data.get("kem_ciphertext", ""), what)), _unhex(data.get("salt", ""), what))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise VaultCorrupt(f"{what} is not a wrapped key") from None


def _dump(data: object) -> bytes:
    return json.dumps(data, sort_keys=True).encode()


@dataclass(frozen=True)
class AccessEntry:
    """One read of a record, granted or refused, as the vault logged it.

    ``event`` is the on-chain event that recorded it (``oracle:seq``); a granted read without one is
    an unrecorded read. ``reason_hash`` is a keyed hash of the stated reason, made by the service (the
    reason stays off the chain and out of the log: it may name a patient, and a plain hash of a short
    reason could be reversed by guessing)."""

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
        import hashlib

        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class VaultStore:
    """The files of one sector's vault (the module docstring gives the layout and why)."""

    def __init__(self, root: Path, vault: str) -> None:
        self.vault = check_name(vault, "vault")
        self.path = root / vault
        if self.path.is_symlink():
            raise VaultCorrupt(f"the vault folder {self.path} is a symlink")
        new = not self.path.exists()
        ensure_private_dir(self.path)
        if new:  # a vault starts unsealed; a state file missing later fails closed (`state`)
            self._write(self.path / "state.json", _dump({"sealed": False, "reason": "created", "since": ""}))

    # -- paths, locking, safe file access -------------------------------------------------------
    def _safe(self, path: Path) -> Path:
        """``path`` with no symlink between the vault's folder and it: a planted link must not make the
        vault read, overwrite, truncate or delete a file elsewhere."""
        current = self.path
        for part in path.relative_to(self.path).parts:
            current = current / part
            if current.is_symlink():
                raise VaultCorrupt(f"{current.relative_to(self.path)} in vault {self.vault} is a symlink: refusing")
        return path

    def _write(self, path: Path, data: bytes, *, overwrite: bool = True) -> bool:
        return atomic_write(self._safe(path), data, overwrite=overwrite)

    def _read_json(self, path: Path, what: str) -> Any:
        try:
            return json.loads(self._safe(path).read_bytes())
        except ValueError:  # not JSON, or not UTF-8
            raise VaultCorrupt(f"{what} ({path.name}) is not JSON") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Every change takes the vault's lock: two writers of one version, or two readers logging at once,
        take turns instead of interleaving their check and their write."""
        fd = os.open(self._safe(self.path / ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- records --------------------------------------------------------------------------------
    def _record_path(self, record_id: str, version: int) -> Path:
        return self.path / "records" / check_name(record_id, "record") / f"v{int(version)}.json"

    def _keys_dir(self, record_id: str) -> Path:
        return self.path / "keys" / check_name(record_id, "record")

    def _key_path(self, record_id: str, version: int) -> Path:
        return self._keys_dir(record_id) / f"v{int(version)}.json"

    def put(self, sealed: SealedRecord, wrapped_key: WrappedKey, epoch: int) -> bool:
        """Store a sealed record, its wrapped key and salt; False if exactly this record was stored already.

        The key goes first: a crash between the two leaves a key without a record (harmless, and
        overwritten by the retry), never a record that nobody can read."""
        if sealed.vault != self.vault:
            raise VaultError(f"record {sealed.record_id} was sealed for vault {sealed.vault}, not {self.vault}")
        if sealed.version < 1:
            raise VaultError(f"record versions start at 1, got {sealed.version}")
        path = self._record_path(sealed.record_id, sealed.version)
        data = _dump(_record_json(sealed))
        with self._locked():
            if self._safe(path).exists():
                if path.read_bytes() == data:
                    return False
                raise VaultConflict(f"record {sealed.record_id} v{sealed.version} exists with other content: "
                                    "write a new version")
            if self.shredded(sealed.record_id):
                raise Shredded(f"record {sealed.record_id} was shredded: it cannot be written again")
            self._write(self._key_path(sealed.record_id, sealed.version), _dump(_key_json(wrapped_key, epoch, sealed.salt)))
            self._write(path, data, overwrite=False)
        return True

    def get(self, record_id: str, version: int | None = None) -> SealedRecord:
        """A stored record (the newest version when ``version`` is None), with its salt unless shredded."""
        version = self.latest(record_id) if version is None else version
        path = self._record_path(record_id, version)
        if not self._safe(path).exists():
            raise VaultError(f"no record {record_id} v{version} in vault {self.vault}")
        sealed = _record_from(self._read_json(path, f"record {record_id} v{version}"), f"record {record_id} v{version}")
        if (sealed.vault, sealed.record_id, sealed.version) != (self.vault, record_id, version):
            raise VaultCorrupt(f"the file of record {record_id} v{version} holds {sealed.record_id} v{sealed.version}")
        if self.shredded(record_id) or not self._safe(self._key_path(record_id, version)).exists():
            return sealed
        _, _, salt = self._key_entry(record_id, version)
        return SealedRecord(sealed.vault, sealed.record_id, sealed.version, sealed.nonce, sealed.ciphertext,
                            sealed.content_hash, salt)

    def versions(self, record_id: str) -> list[int]:
        folder = self._safe(self.path / "records" / check_name(record_id, "record"))
        found = [int(p.stem[1:]) for p in folder.glob("v*.json") if _DIGITS.match(p.stem[1:])] if folder.is_dir() else []
        return sorted(found)

    def latest(self, record_id: str) -> int:
        versions = self.versions(record_id)
        if not versions:
            raise VaultError(f"no record {record_id} in vault {self.vault}")
        return versions[-1]

    def records(self) -> Iterator[tuple[str, int]]:
        """Every stored (record, version), in name order (anything else in the folder is not a record)."""
        folder = self._safe(self.path / "records")
        names = sorted(p.name for p in folder.iterdir() if _NAME.match(p.name) and p.is_dir()) if folder.is_dir() else []
        for record in names:
            for version in self.versions(record):
                yield record, version

    def _key_entry(self, record_id: str, version: int) -> tuple[int, WrappedKey, bytes]:
        path = self._key_path(record_id, version)
        return _key_from(self._read_json(path, f"the key of {record_id} v{version}"), f"the key of {record_id}")

    def record_key(self, record_id: str, version: int) -> tuple[int, WrappedKey]:
        """The wrapped key of a record version and the sector-key epoch it is wrapped under."""
        if self.shredded(record_id):
            raise Shredded(f"record {record_id} was shredded: its key no longer exists")
        if not self._safe(self._key_path(record_id, version)).exists():
            if self._safe(self._record_path(record_id, version)).exists():
                raise VaultCorrupt(f"record {record_id} v{version} has no key and no tombstone: a key was deleted")
            raise VaultError(f"no record {record_id} v{version} in vault {self.vault}")
        epoch, wrapped, _ = self._key_entry(record_id, version)
        return epoch, wrapped

    def rewrap(self, record_id: str, version: int, wrapped: WrappedKey, epoch: int) -> None:
        """Replace a record key's wrap (a new sector-key epoch); never brings back a shredded key."""
        with self._locked():
            if self.shredded(record_id):
                raise Shredded(f"record {record_id} was shredded: it has no key to re-wrap")
            if not self._safe(self._key_path(record_id, version)).exists():
                raise VaultError(f"no key of record {record_id} v{version} to re-wrap")
            _, _, salt = self._key_entry(record_id, version)
            self._write(self._key_path(record_id, version), _dump(_key_json(wrapped, epoch, salt)))

    def shred(self, record_id: str) -> int:
        """Crypto-shred ``record_id``: its keys and salts (crash temporaries too) and its queued writes are
        overwritten and deleted, and a tombstone left; returns how many files went."""
        with self._locked():
            queued = [path for path, sealed, _, _ in self._pending() if sealed.record_id == record_id]
            torn = re.compile(rf"^\.{re.escape(record_id)}\.v\d+\.json\..*\.tmp$")  # a crash's temporaries
            pending_dir = self._safe(self.path / "pending")
            queued += [p for p in pending_dir.iterdir() if torn.match(p.name)] if pending_dir.is_dir() else []
            if not self.versions(record_id) and not queued:
                raise VaultError(f"no record {record_id} in vault {self.vault}")
            folder = self._safe(self._keys_dir(record_id))
            doomed = [p for p in folder.iterdir() if p.name != TOMBSTONE] if folder.is_dir() else []
            for path in [*doomed, *queued]:
                if path.is_symlink() or not path.is_file():
                    raise VaultCorrupt(f"{path.relative_to(self.path)} in vault {self.vault} is not a plain file: "
                                       "refusing to shred through it")
            for path in [*doomed, *queued]:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
                try:  # overwrite in place before unlinking (best effort on SSDs and copy-on-write filesystems)
                    os.write(fd, os.urandom(path.stat().st_size))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                path.unlink()
            self._write(folder / TOMBSTONE, b"shredded\n")
            return len(doomed) + len(queued)

    def shredded(self, record_id: str) -> bool:
        return self._safe(self._keys_dir(record_id) / TOMBSTONE).exists()

    # -- readers --------------------------------------------------------------------------------
    def _key_epochs(self) -> int:
        """The newest sector-key epoch any record key is wrapped under (0: none)."""
        folder = self._safe(self.path / "keys")
        newest = 0
        for path in folder.glob("*/v*.json") if folder.is_dir() else ():
            newest = max(newest, self._key_entry(path.parent.name, int(path.stem[1:]))[0]
                         if _DIGITS.match(path.stem[1:]) and _NAME.match(path.parent.name) else 0)
        return newest

    def set_readers(self, epoch: int, wraps: dict[str, tuple[str, WrappedKey]], sector_public_key: bytes = b"",
                    previous: tuple[int, dict[str, tuple[str, WrappedKey]]] | None = None, *,
                    end_rotation: bool = False) -> None:
        """The sector key of ``epoch`` wrapped for each reader: ``{reader: (role, wrap)}``, and the public half
        of the sector's KEM key (writers wrap new record keys with it). The epoch never goes back: a lower
        one would hand new records a key that revoked readers hold.

        ``previous`` is the (epoch, wraps) of the sector key being rotated out, kept while record keys are
        still wrapped under it (a revocation's re-wrap, `VaultService.revoke`), so the readers that remain
        can read every record at every moment of a rotation; ``end_rotation`` drops it; by default the
        file's own is kept (a grant during a rotation must not drop it)."""
        for reader in wraps:
            check_name(reader, "reader")
        with self._locked():
            path = self.path / "readers.json"
            data = self._read_json(path, "the readers file") if self._safe(path).exists() else {}
            written = int(data.get("epoch", 0)) if isinstance(data, dict) else 0
            current = max(written, self._key_epochs())
            if epoch < current:
                raise VaultError(f"the sector key's epoch is {current}; it never goes back (got {epoch})")
            body: dict[str, Any] = {
                "epoch": epoch, "sector_public_key": sector_public_key.hex(),
                "readers": {r: {"role": role, **_key_json(w, epoch)} for r, (role, w) in sorted(wraps.items())}}
            if previous is None and not end_rotation:
                if isinstance(data, dict) and isinstance(data.get("previous"), dict):
                    body["previous"] = data["previous"]
            elif previous is not None:
                old_epoch, old = previous
                if not 0 < old_epoch < epoch:
                    raise VaultError(f"a rotation's previous epoch must be below {epoch} (got {old_epoch})")
                body["previous"] = {"epoch": old_epoch, "readers": {
                    r: {"role": role, **_key_json(w, old_epoch)} for r, (role, w) in sorted(old.items())}}
            self._write(self.path / "readers.json", _dump(body))

    def previous_readers(self) -> tuple[int, dict[str, tuple[str, WrappedKey]]] | None:
        """The sector key being rotated out: its epoch and its wraps for the readers that remain (None when
        no rotation is unfinished)."""
        path = self.path / "readers.json"
        if not self._safe(path).exists():
            return None
        data = self._read_json(path, "the readers file")
        prev = data.get("previous") if isinstance(data, dict) else None
        if prev is None:
            return None
        try:
            epoch = int(prev["epoch"])
            readers = {str(r): (str(v["role"]), _key_from(v, f"reader {r}'s previous wrap")[1])
                       for r, v in prev["readers"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise VaultCorrupt("the readers file's previous epoch is not a readers section") from None
        return epoch, readers

    def live_keys(self, epoch: int) -> list[tuple[str, int]]:
        """Every (record, version) whose key is wrapped under the sector key of ``epoch`` (shredded records have
        no key and are not listed)."""
        out = []
        for record, version in self.records():
            if self.shredded(record) or not self._safe(self._key_path(record, version)).exists():
                continue
            if self._key_entry(record, version)[0] == epoch:
                out.append((record, version))
        return out

    def remove_member(self, name: str) -> bool:
        """Take an identity out of the vault (a revocation); False if it was not one."""
        check_name(name, "reader")
        with self._locked():
            members = self._members()
            if members.pop(name, None) is None:
                return False
            self._write(self.path / "members.json", _dump({n: {"role": r, "public_key": k.hex()}
                                                           for n, (r, k) in sorted(members.items())}))
            return True

    def sector_public_key(self) -> bytes:
        """The public half of the current sector KEM key (empty before the vault has a sector key)."""
        path = self.path / "readers.json"
        if not self._safe(path).exists():
            return b""
        return _unhex(self._read_json(path, "the readers file").get("sector_public_key", ""), "the sector public key")

    def set_member(self, name: str, role: str, public_key: bytes) -> None:
        """Record an identity of the vault (every role, readers or not) and its ML-KEM public key: a writer or
        an auditor proves itself with it, without ever holding the sector key."""
        check_name(name, "reader")
        check_name(role, "role")
        with self._locked():
            members = self._members()
            if name in members:
                raise VaultError(f"{name} is an identity of vault {self.vault} already (as {members[name][0]})")
            members[name] = (role, public_key)
            self._write(self.path / "members.json", _dump({n: {"role": r, "public_key": k.hex()}
                                                           for n, (r, k) in sorted(members.items())}))

    def members(self) -> dict[str, tuple[str, bytes]]:
        """Every identity of the vault: ``{name: (role, ML-KEM public key)}``."""
        return self._members()

    def _members(self) -> dict[str, tuple[str, bytes]]:
        path = self.path / "members.json"
        if not self._safe(path).exists():
            return {}
        data = self._read_json(path, "the members file")
        try:
            return {str(n): (str(v["role"]), _unhex(v["public_key"], f"{n}'s public key")) for n, v in data.items()}
        except (KeyError, TypeError, AttributeError):
            raise VaultCorrupt("the members file is not a members file") from None

    def readers(self) -> tuple[int, dict[str, tuple[str, WrappedKey]]]:
        """The current sector-key epoch and each reader's (role, wrap); epoch 0: no reader yet.

        A file whose epoch is older than a record key's was rolled back (a backup restored after a
        reader was revoked): refused. A role edited on disk is caught when its wrap is opened (the
        role is in the wrap's binding)."""
        path = self.path / "readers.json"
        if not self._safe(path).exists():
            epoch, readers = 0, {}
        else:
            data = self._read_json(path, "the readers file")
            try:
                epoch = int(data["epoch"])
                readers = {str(r): (str(v["role"]), _key_from(v, f"reader {r}'s wrap")[1])
                           for r, v in data["readers"].items()}
            except (KeyError, TypeError, ValueError, AttributeError):
                raise VaultCorrupt("the readers file is not a readers file") from None
        newest = self._key_epochs()
        if newest > epoch:
            raise VaultCorrupt(f"the readers file is at sector-key epoch {epoch} but record keys are wrapped under "
                               f"epoch {newest}: it was rolled back")
        return epoch, readers

    # -- the access log -------------------------------------------------------------------------
    def log_access(self, *, reader: str, role: str, record_id: str, version: int, reason_hash: str, at: str,
                   granted: bool, event: str) -> AccessEntry:
        """Append one read to the log, chained to the last entry, fsynced before returning."""
        with self._locked():
            entries, torn = self._entries()
            entry = AccessEntry(seq=len(entries) + 1, reader=reader, role=role, record_id=record_id,
                                version=version, reason_hash=reason_hash, at=at, granted=granted, event=event,
                                prev=entries[-1].digest() if entries else GENESIS)
            path = self.path / "access.jsonl"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                size = os.fstat(fd).st_size
                if torn:  # a torn append (never acknowledged) is cut off before the next one
                    os.ftruncate(fd, size - torn)
                    size -= torn
                os.lseek(fd, size, os.SEEK_SET)
                os.write(fd, (json.dumps(asdict(entry), sort_keys=True) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def access_log(self) -> list[AccessEntry]:
        """The log's entries, checked: each carries its predecessor's hash and the next seq. Never changes
        the file (a torn last append is left for the next append to cut off)."""
        return self._entries()[0]

    def _entries(self) -> tuple[list[AccessEntry], int]:
        """The entries and the length of a torn tail (bytes after the last newline that are not an entry)."""
        path = self.path / "access.jsonl"
        if not self._safe(path).exists():
            return [], 0
        raw = path.read_bytes()
        *complete, tail = raw.split(b"\n")
        entries: list[AccessEntry] = []
        for number, line in enumerate(complete, start=1):
            entries.append(self._entry(line, number, entries))
        if tail:
            try:
                self._entry(tail, len(complete) + 1, entries)
            except VaultCorrupt:
                return entries, len(tail)  # cut short mid-write: never acknowledged
            raise VaultCorrupt(f"access log line {len(complete) + 1} is a whole entry without its newline: "
                               "the file was edited")
        return entries, 0

    @staticmethod
    def _entry(line: bytes, number: int, before: list[AccessEntry]) -> AccessEntry:
        try:
            entry = AccessEntry(**json.loads(line))
        except (ValueError, TypeError):  # not JSON, not UTF-8, or not an entry's fields
            raise VaultCorrupt(f"access log line {number} is not an entry") from None
        want = before[-1].digest() if before else GENESIS
        if entry.prev != want or entry.seq != number:
            raise VaultCorrupt(f"access log line {number} does not follow line {number - 1}: "
                               "an entry was removed, edited or reordered")
        return entry

    def reason_key(self) -> bytes:
        """The vault's secret for keyed hashes of read reasons (made on first use, 32 random bytes).

        It stays with the vault's files, never on the chain: the chain shows HMAC(key, reason), which
        nobody without the vault's disk can test a guessed reason against."""
        path = self.path / "reason.key"
        with self._locked():
            if not self._safe(path).exists():
                self._write(path, os.urandom(32), overwrite=False)
            key = path.read_bytes()
        if len(key) != 32:
            raise VaultCorrupt(f"the reason key of vault {self.vault} is {len(key)} bytes, not 32")
        return key

    # -- sealing and the writes queued meanwhile ------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Sealed or not. A vault whose state file is gone counts as sealed (it fails closed: unsealing is
        a decision, read from the chain, never the absence of a file)."""
        path = self.path / "state.json"
        if not self._safe(path).exists():
            return {"sealed": True, "reason": "the vault's state file is missing", "since": ""}
        return dict(self._read_json(path, "the state file"))

    @property
    def sealed(self) -> bool:
        return bool(self.state().get("sealed"))

    def set_sealed(self, sealed: bool, *, reason: str, at: str) -> None:
        with self._locked():
            self._write(self.path / "state.json", _dump({"sealed": sealed, "reason": reason, "since": at}))

    def _pending_path(self, record_id: str, version: int) -> Path:
        return self.path / "pending" / f"{check_name(record_id, 'record')}.v{int(version)}.json"

    def queue(self, sealed: SealedRecord, wrapped_key: WrappedKey, epoch: int) -> bool:
        """Hold a write that arrived while sealed (already encrypted); False if it is queued already."""
        if sealed.vault != self.vault:
            raise VaultError(f"record {sealed.record_id} was sealed for vault {sealed.vault}, not {self.vault}")
        body = {"record": _record_json(sealed), "key": _key_json(wrapped_key, epoch, sealed.salt)}
        with self._locked():
            if self.shredded(sealed.record_id):
                raise Shredded(f"record {sealed.record_id} was shredded: it cannot be written again")
            return self._write(self._pending_path(sealed.record_id, sealed.version), _dump(body), overwrite=False)

    def pending(self) -> list[tuple[Path, SealedRecord, int, WrappedKey]]:
        """The queued writes by record and version (records are independent of each other, and a
        record's versions apply in order), each with its file (removed once applied)."""
        return self._pending()

    def _pending(self) -> list[tuple[Path, SealedRecord, int, WrappedKey]]:
        folder = self._safe(self.path / "pending")
        out = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
            body = self._read_json(path, f"queued write {path.name}")
            if not isinstance(body, dict) or "record" not in body or "key" not in body:
                raise VaultCorrupt(f"queued write {path.name} is missing a field")
            record = _record_from(body["record"], f"queued write {path.name}")
            epoch, wrapped, salt = _key_from(body["key"], f"queued write {path.name}'s key")
            if record.vault != self.vault or path.name != self._pending_path(record.record_id, record.version).name:
                raise VaultCorrupt(f"queued write {path.name} holds {record.vault}/{record.record_id} "
                                   f"v{record.version}: moved or forged")
            sealed = SealedRecord(record.vault, record.record_id, record.version, record.nonce, record.ciphertext,
                                  record.content_hash, salt)
            out.append((path, sealed, epoch, wrapped))
        return sorted(out, key=lambda item: (item[1].record_id, item[1].version))
