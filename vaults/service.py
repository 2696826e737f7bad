"""The only path to a sector vault's records: writes committed on-chain, reads recorded before release.

Who may do what is the reader's role in the vault (`VaultRoles`; a reader's role is bound into its
wrap of the sector key, so it cannot be edited on disk): custodians create the vault and grant
readers; writers and custodians write; readers and custodians read; auditors verify
(`vaults.verify`) and never see content. Every identity proves itself by holding its ML-KEM-768
private key (`vaults.reader_keys`): nothing released opens without it.

**Writes.** Sealed under a fresh record key, stored, and committed on-chain as a salted commitment
(``vault-write``) through the vault recorder's write-ahead outbox. The store comes first: a crash
between the two leaves a record whose commitment `recover` appends on the next start (a commitment
without its record, the other order's failure, would look like a deleted record). While the vault is
sealed, writes are encrypted and queued (`apply_pending` stores and commits them after the unseal).

**Reads.** A read without a reason is refused and changes nothing. Any other read asked for is
logged in the vault's hash-chained access log *and* recorded on-chain (``vault-read``: the reader,
role, record, a keyed hash of the reason, granted or not, the log entry's seq and digest) before
anything leaves; a refused one (unknown reader, a role that may not read, a sealed vault, a shredded
record) is recorded the same way and then refused. The chain must confirm the event first: if it
cannot be reached the read fails and nothing is released (fail closed); the event stays in the
outbox and lands on the next flush, so the log and the chain still agree.

The log entry names its chain event (``recorder:seq``) and the event carries the entry's digest, so
the two are reserved together under the service's own lock (`_serial`); `recover` appends the event
of an entry a crash left without one.

**Seal.** Read from the chain on every read and write (`vaults.onchain.SealWatch`): only the
isolation quorum's REPAIR_ROLE holder (the controller) seals or unseals.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256

from chain.recorder import EventRecorder
from core.errors import ChainError
from vaults.envelope import (
    VaultCryptoError,
    commitment,
    content_matches,
    new_key,
    open_record,
    seal_record,
    unwrap_for_reader,
    unwrap_record_key,
    wrap_for_reader,
    wrap_record_key,
)
from vaults.onchain import (
    VAULT_READ,
    VAULT_SHRED,
    VAULT_WRITE,
    SealState,
    read_payload,
    shred_payload,
    vault_node,
    write_payload,
)
from vaults.reader_keys import ReaderKey
from vaults.store import AccessEntry, VaultCorrupt, VaultError, VaultStore, check_name

__all__ = [
    "MAX_REASON",
    "MAX_RECORD_BYTES",
    "ReadResult",
    "VaultDenied",
    "VaultRoles",
    "VaultService",
    "VaultUnavailable",
    "WriteReceipt",
]

MAX_RECORD_BYTES = 1 << 20
MAX_REASON = 500


class VaultDenied(VaultError):
    """The identity may not do this; for a read, the attempt is on the chain (``event``)."""

    def __init__(self, message: str, event: str = "") -> None:
        super().__init__(message)
        self.event = event


class VaultUnavailable(VaultError):
    """The chain did not confirm what must be recorded first: nothing was released."""


@dataclass(frozen=True)
class VaultRoles:
    read: frozenset[str] = frozenset({"custodian", "reader"})
    write: frozenset[str] = frozenset({"custodian", "writer"})
    grant: frozenset[str] = frozenset({"custodian"})

    @property
    def known(self) -> frozenset[str]:
        return self.read | self.write | self.grant | {"auditor"}


@dataclass(frozen=True)
class WriteReceipt:
    record: str
    version: int
    commitment: str
    status: str  # committed | queued
    event: str = ""  # recorder:seq of the vault-write (committed only)


@dataclass(frozen=True)
class ReadResult:
    record: str
    version: int
    content: bytes
    event: str  # recorder:seq of the vault-read that recorded it


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class VaultService:
    """One sector's vault: its store, its recorder (an identity of the ``vaults`` sector) and the chain's
    word on whether it is sealed."""

    def __init__(self, store: VaultStore, recorder: EventRecorder, seal_state: Callable[[], SealState], *,
                 roles: VaultRoles | None = None, clock: Callable[[], str] = _now) -> None:
        self.store, self.recorder, self.seal_state = store, recorder, seal_state
        self.roles = roles or VaultRoles()
        self.vault = store.vault
        self._clock = clock
        self._node = vault_node(self.vault)

    # -- locking and recording ------------------------------------------------------------------
    @contextmanager
    def _serial(self) -> Iterator[None]:
        """Reserving an event's seq and writing what names it happen under one lock across processes."""
        path = self.store.path / ".service.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _event(self, seq: int) -> str:
        return f"{self.recorder.identity.address}:{seq}"

    def _flush(self, what: str) -> None:
        try:
            self.recorder.flush()
        except ChainError as exc:
            raise VaultUnavailable(f"the chain did not record {what}, so nothing was released: {exc}") from None

    def _sealed(self) -> SealState:
        try:
            return self.seal_state()
        except ChainError as exc:
            raise VaultUnavailable(f"the chain cannot say whether vault {self.vault} is sealed: {exc}") from None

    # -- identities -----------------------------------------------------------------------------
    def _sector_key(self, who: ReaderKey, allowed: frozenset[str], action: str) -> tuple[int, bytes]:
        """The current sector key, unwrapped by ``who`` if its registered role may ``action``."""
        if who.vault != self.vault:
            raise VaultDenied(f"{who.reader}'s key is for vault {who.vault}, not {self.vault}")
        epoch, readers = self.store.readers()
        registered = readers.get(who.reader)
        if registered is None or registered[0] != who.role or who.role not in allowed:
            raise VaultDenied(self._why_not(who, registered[0] if registered else None, allowed, action))
        try:
            return epoch, unwrap_for_reader(self.vault, who.reader, who.role, epoch, registered[1], who.private_key)
        except VaultCryptoError:
            raise VaultDenied(f"{who.reader}'s key does not open its wrap of vault {self.vault}'s sector key") from None

    def _why_not(self, who: ReaderKey, registered: str | None, allowed: frozenset[str], action: str) -> str:
        if registered is None:
            return f"{who.reader} is not a reader of vault {self.vault}"
        if registered != who.role:
            return f"{who.reader} holds the role {registered} in vault {self.vault}, not {who.role}"
        return f"the role {who.role} may not {action} vault {self.vault} (roles that may: {', '.join(sorted(allowed))})"

    # -- custody --------------------------------------------------------------------------------
    def create(self, custodian: ReaderKey) -> None:
        """A new vault's sector key (epoch 1), wrapped for its first custodian."""
        if custodian.role not in self.roles.grant:
            raise VaultDenied(f"the first identity of a vault is its custodian, not a {custodian.role}")
        epoch, _ = self.store.readers()
        if epoch:
            raise VaultError(f"vault {self.vault} has a sector key already (epoch {epoch})")
        sector_key = new_key()
        self.store.set_readers(1, {custodian.reader: (custodian.role, wrap_for_reader(
            self.vault, custodian.reader, custodian.role, 1, sector_key, custodian.public_key))})

    def grant(self, custodian: ReaderKey, reader: ReaderKey | tuple[str, str, bytes]) -> None:
        """Give ``reader`` (a key, or (name, role, ML-KEM public key bytes)) the current sector key."""
        from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey

        epoch, sector_key = self._sector_key(custodian, self.roles.grant, "grant readers of")
        name, role, public = ((reader.reader, reader.role, reader.public_bytes()) if isinstance(reader, ReaderKey)
                              else reader)
        check_name(name, "reader")
        if role not in self.roles.known:
            raise VaultError(f"unknown role {role!r}: choose one of {', '.join(sorted(self.roles.known))}")
        try:
            key = MLKEM768PublicKey.from_public_bytes(public)
        except ValueError:
            raise VaultError(f"{name}'s public key is not an ML-KEM-768 key") from None
        _, readers = self.store.readers()
        readers[name] = (role, wrap_for_reader(self.vault, name, role, epoch, sector_key, key))
        self.store.set_readers(epoch, readers)

    # -- writes ---------------------------------------------------------------------------------
    def _next_version(self, record: str) -> int:
        queued = [s.version for _, s, _, _ in self.store.pending() if s.record_id == record]
        return max([0, *self.store.versions(record), *queued]) + 1

    def write(self, writer: ReaderKey, record: str, content: bytes) -> WriteReceipt:
        return self.write_many(writer, [(record, content)])[0]

    def write_many(self, writer: ReaderKey, items: Sequence[tuple[str, bytes]]) -> list[WriteReceipt]:
        """Seal, store and commit each (record, content); one flush for all (the chain takes them in one
        or a few batches). Queued instead while the vault is sealed."""
        for record, content in items:
            check_name(record, "record")
            if len(content) > MAX_RECORD_BYTES:
                raise VaultError(f"record {record} is {len(content)} bytes; a vault record holds at most "
                                 f"{MAX_RECORD_BYTES}")
        epoch, sector_key = self._sector_key(writer, self.roles.write, "write to")
        sealed_now = self._sealed().sealed
        receipts: list[WriteReceipt] = []
        with self._serial():
            for record, content in items:
                if self.store.shredded(record):
                    raise VaultError(f"record {record} was shredded: it cannot be written again")
                version = self._next_version(record)
                record_key = new_key()
                sealed = seal_record(self.vault, record, version, content, record_key)
                wrapped = wrap_record_key(self.vault, record, record_key, sector_key, epoch, version=version)
                proof = commitment(sealed).hex()
                if sealed_now:
                    self.store.queue(sealed, wrapped, epoch)
                    receipts.append(WriteReceipt(record, version, proof, "queued"))
                    continue
                self.store.put(sealed, wrapped, epoch)
                seq = self.recorder.outbox.append(VAULT_WRITE, self._node,
                                                  write_payload(self.vault, record, version, commitment(sealed)))
                receipts.append(WriteReceipt(record, version, proof, "committed", self._event(seq)))
        if any(r.status == "committed" for r in receipts):
            self._flush("the writes' commitments")
        return receipts

    def apply_pending(self) -> int:
        """Store and commit the writes queued while sealed, in record and version order; returns how many."""
        if self._sealed().sealed:
            raise VaultError(f"vault {self.vault} is sealed: queued writes wait for the unseal")
        applied = 0
        with self._serial():
            committed = self._committed()
            for path, sealed, epoch, wrapped in self.store.pending():
                self.store.put(sealed, wrapped, epoch)
                if (sealed.record_id, sealed.version) not in committed:
                    self.recorder.outbox.append(VAULT_WRITE, self._node, write_payload(
                        self.vault, sealed.record_id, sealed.version, commitment(sealed)))
                path.unlink()
                applied += 1
        self._flush("the queued writes' commitments")
        return applied

    # -- reads ----------------------------------------------------------------------------------
    def reason_hash(self, reason: str) -> str:
        return hmac.new(self.store.reason_key(), reason.encode(), sha256).hexdigest()

    def read(self, reader: ReaderKey, record: str, reason: str, version: int | None = None) -> ReadResult:
        """The content of ``record`` (newest version unless ``version``), once the read is on the chain."""
        reason = reason.strip() if isinstance(reason, str) else ""
        if not reason:
            raise VaultError("a read needs a reason (who asked for it and why); it is kept as a keyed hash")
        if len(reason) > MAX_REASON:
            raise VaultError(f"a read's reason is at most {MAX_REASON} characters, got {len(reason)}")
        check_name(record, "record")
        version = self.store.latest(record) if version is None else version
        if version not in self.store.versions(record):
            raise VaultError(f"no record {record} v{version} in vault {self.vault}")
        refusal, granted_key = self._may_read(reader, record)
        with self._serial():
            seq = self.recorder.outbox.last_seq() + 1
            entry = self.store.log_access(reader=reader.reader, role=reader.role, record_id=record, version=version,
                                          reason_hash=self.reason_hash(reason), at=self._clock(),
                                          granted=refusal == "", event=self._event(seq))
            got = self.recorder.outbox.append(VAULT_READ, self._node, read_payload(self.vault, entry, refusal))
            if got != seq:  # another writer of this recorder's outbox got between: never expected
                raise VaultCorrupt(f"the read was logged as event {seq} but recorded as {got}")
        self._flush(f"the read of {record} v{version}")
        if refusal:
            raise VaultDenied(f"{refusal}; the attempt is recorded on-chain ({self._event(seq)})", self._event(seq))
        assert granted_key is not None
        epoch, sector_key = granted_key
        key_epoch, wrapped = self.store.record_key(record, version)
        if key_epoch != epoch:
            raise VaultCorrupt(f"record {record} v{version}'s key is wrapped under sector key epoch {key_epoch}, "
                               f"not the current {epoch}")
        try:
            record_key = unwrap_record_key(self.vault, record, wrapped, sector_key, epoch, version=version)
            sealed = self.store.get(record, version)
            content = open_record(sealed, record_key)
        except VaultCryptoError as exc:
            raise VaultCorrupt(f"record {record} v{version} was tampered with: {exc}") from None
        if not content_matches(sealed, content):
            raise VaultCorrupt(f"record {record} v{version} does not match its commitment's content hash")
        return ReadResult(record, version, content, self._event(seq))

    def _may_read(self, reader: ReaderKey, record: str) -> tuple[str, tuple[int, bytes] | None]:
        """Why the read is refused ('' if it is not) and, if it is not, the sector key."""
        seal = self._sealed()
        if seal.sealed:
            return f"vault {self.vault} is sealed ({seal.reason or 'no reason given'})", None
        if self.store.shredded(record):
            return f"record {record} was shredded", None
        try:
            return "", self._sector_key(reader, self.roles.read, "read")
        except VaultDenied as exc:
            return str(exc), None

    # -- shredding ------------------------------------------------------------------------------
    def shred(self, custodian: ReaderKey, record: str) -> str:
        """Destroy ``record``'s keys (every version) and record it on-chain; returns the event."""
        self._sector_key(custodian, self.roles.grant, "shred records of")
        check_name(record, "record")
        with self._serial():
            versions = self.store.versions(record)
            self.store.shred(record)
            seq = self.recorder.outbox.append(VAULT_SHRED, self._node, shred_payload(self.vault, record, versions))
        self._flush(f"the shredding of {record}")
        return self._event(seq)

    # -- recovery -------------------------------------------------------------------------------
    def _rows(self, kind: int) -> list[dict[str, object]]:
        out = []
        for row in self.recorder.outbox.rows_of_kinds([kind]):
            payload = json.loads(row.payload)
            if isinstance(payload, dict) and payload.get("vault") == self.vault:
                out.append({**payload, "_seq": row.seq})
        return out

    def _committed(self) -> set[tuple[str, int]]:
        return {(str(p["record"]), int(str(p["version"]))) for p in self._rows(VAULT_WRITE)}

    def recover(self) -> int:
        """Append what a crash left unrecorded (a logged read's event, a stored record's commitment, a
        tombstone's shredding) and flush; returns how many events were added. Reads are matched by their
        log entry (seq and digest), never by the event seq the entry reserved: another process may have
        used that seq since the crash."""
        added = 0
        with self._serial():
            recorded = {(int(str(p["log_seq"])), str(p["log_digest"])) for p in self._rows(VAULT_READ)}
            for entry in self.store.access_log():
                if (entry.seq, entry.digest()) not in recorded:
                    self._append_read(entry)
                    added += 1
            committed = self._committed()
            for record, version in self.store.records():
                if (record, version) not in committed:
                    sealed = self.store.get(record, version)
                    self.recorder.outbox.append(VAULT_WRITE, self._node,
                                                write_payload(self.vault, record, version, commitment(sealed)))
                    added += 1
            shredded = {str(p["record"]) for p in self._rows(VAULT_SHRED)}
            for record in {r for r, _ in self.store.records()} - shredded:
                if self.store.shredded(record):
                    self.recorder.outbox.append(VAULT_SHRED, self._node,
                                                shred_payload(self.vault, record, self.store.versions(record)))
                    added += 1
        if added or self.recorder.outbox.pending_count():
            self._flush("what a crash left unrecorded")
        return added

    def _append_read(self, entry: AccessEntry) -> None:
        refusal = "" if entry.granted else "refused (recovered after a crash)"
        self.recorder.outbox.append(VAULT_READ, self._node, read_payload(self.vault, entry, refusal))
