"""The only path to a sector vault's records: writes committed on-chain, reads recorded before release.

**Identities and roles** (`VaultRoles`). Every identity of a vault is a name, a role and an ML-KEM-768
key pair (`vaults.reader_keys`), registered by a custodian (`grant`; never replaced silently).
Custodians create the vault, grant, shred and read; readers read; writers write; auditors verify
(`vaults.verify`) and never see content. Only the roles that may read get the sector key (wrapped
for their key, their role bound into the wrap): a writer wraps a new record's key with the sector
KEM key's *public* half, an auditor holds nothing, so neither can decrypt a record from the files.
An identity proves itself by decapsulating a fresh challenge to its registered public key
(`_prove`): a key that is not the registered one is refused.

**Writes.** Sealed under a fresh record key, stored, and committed on-chain as a salted commitment
(``vault-write``) through the vault recorder's write-ahead outbox. While the vault is sealed, writes
are encrypted and queued (`apply_pending` stores and commits them after the unseal).

**Reads.** A read without a reason is refused and changes nothing. Any other read asked for is
logged in the vault's hash-chained access log *and* recorded on-chain (``vault-read``: who, role,
record, a keyed hash of the reason, granted or not, the log entry's seq and digest) before anything
leaves; a refused one (an unknown identity, a role that may not read, a key that is not the
registered one, a sealed vault, a shredded record) is recorded the same way and then refused. The
content is released only when the chain holds *this* read's event (looked up on-chain by seq and
payload after the flush, so an outbox restored from a backup cannot pass a reused seq off as sent)
and the vault is still not sealed at that moment. No chain, no read (fail closed); the event stays
in the outbox and lands on the next flush.

**Crashes** (`vaults.intents`). Before each change of the files the service writes an intent, MAC'd
with a key only the vault's recorder derives; `recover` (run by `vaults.local.open_vault` before
any command) appends the events of intents a crash left unrecorded and acts on nothing else, so a
record, a log line or a tombstone planted on disk is never signed into the chain: the audit reports
it instead.

**Seal.** Read from the chain (`vaults.onchain.SealWatch`): only a holder of the isolation quorum's
REPAIR_ROLE (the controller) seals or unseals, and the governors' council unseals by an executed
proposal (`vaults.council_unseal`). A sealed vault refuses reads, queues writes, and refuses the
changes that cannot be undone (shredding, granting, revoking).

**Revocation** (`revoke`). An identity that held the sector key is revoked by rotating it: a new
sector key for the key holders that remain, every live record key re-wrapped, the previous epoch's
wraps (without the revoked one's) kept only until the re-wrap is done, so a crash at any step leaves
every remaining reader able to read everything; `recover` and `converge` finish it. The rotation is
recorded on-chain (``key-rotation``), and the service refuses a readers file older than the newest
rotation its recorder recorded (a backup restored to bring a revoked reader back).
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
from typing import Any

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey

from chain.client import _normalise_log
from chain.logs import DEFAULT_MAX_LOGS_RANGE, LogReader
from chain.recorder import EventRecorder
from core.errors import ChainError
from vaults.envelope import (
    SealedRecord,
    VaultCryptoError,
    WrappedKey,
    commitment,
    content_matches,
    new_key,
    open_record,
    seal_record,
    sector_kem,
    unwrap_for_reader,
    unwrap_record_key,
    wrap_for_reader,
    wrap_record_key,
    wrap_record_key_for_sector,
)
from vaults.intents import Intent, IntentJournal, intent_key
from vaults.onchain import (
    KEY_ROTATION,
    VAULT_READ,
    VAULT_SHRED,
    VAULT_WRITE,
    SealState,
    read_payload,
    revoke_payload,
    shred_payload,
    vault_node,
    write_payload,
)
from vaults.reader_keys import ReaderKey
from vaults.store import GENESIS, AccessEntry, VaultCorrupt, VaultError, VaultStore, check_name

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

    def holds_key(self, role: str) -> bool:
        """Whether an identity of ``role`` gets the sector key (only the roles that may read need it)."""
        return role in self.read or role in self.grant


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
    """One sector's vault: its store, its recorder (the one member of its own on-chain sector,
    ``vault-<sector>``) and the chain's word on whether it is sealed."""

    def __init__(self, store: VaultStore, recorder: EventRecorder, seal_state: Callable[[], SealState], *,
                 roles: VaultRoles | None = None, clock: Callable[[], str] = _now,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        self.store, self.recorder, self.seal_state = store, recorder, seal_state
        self._logs = LogReader(recorder.client.rpc, max_logs_range)  # pages the node accepts (`chain.logs`)
        self.roles = roles or VaultRoles()
        self.vault = store.vault
        self._clock = clock
        self._node = vault_node(self.vault)
        self._anchor, self._anchor_block = 0, 0  # the newest rotation epoch seen on-chain, and where to look on
        self.intents = IntentJournal(store.path / "intents.jsonl",
                                     intent_key(bytes(recorder.identity.account.key), self.vault))

    # -- locking, recording, the chain's word ---------------------------------------------------
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

    def _head(self) -> int:
        try:
            return int(self.recorder.client.rpc.call("eth_blockNumber"), 16)
        except ChainError as exc:
            raise VaultUnavailable(f"the chain cannot be reached, so nothing was released: {exc}") from None

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

    def _on_chain(self, seq: int, kind: int, payload: bytes, since_block: int) -> bool:
        """Whether the chain holds this recorder's event ``seq`` with exactly ``payload`` (from ``since_block``)."""
        ledger = self.recorder.client.abi("EventLedger")
        oracle = "0x" + bytes.fromhex(self.recorder.identity.address[2:]).rjust(32, b"\0").hex()
        try:
            logs = self._logs.get({"address": self.recorder.client.address("EventLedger"),
                                   "topics": ["0x" + ledger.topic("EventRecorded").hex(), oracle,
                                              "0x" + self._node.hex(), "0x" + kind.to_bytes(32, "big").hex()]},
                                  since_block, int(self.recorder.client.rpc.call("eth_blockNumber"), 16))
        except ChainError:
            return False
        for log in logs:
            decoded = ledger.decode_log(_normalise_log(log))
            if decoded is not None and int(decoded.args["seq"]) == seq and bytes(decoded.args["payload"]) == payload:
                return True
        return False

    # -- identities -----------------------------------------------------------------------------
    def _prove(self, who: ReaderKey, allowed: frozenset[str], action: str) -> None:
        """``who`` is a registered identity of this vault, in a role that may ``action``, holding the private
        half of its registered key (it decapsulates a fresh challenge to that key)."""
        if who.vault != self.vault:
            raise VaultDenied(f"{who.reader}'s key is for vault {who.vault}, not {self.vault}")
        registered = self.store.members().get(who.reader)
        if registered is None or registered[0] != who.role or who.role not in allowed:
            raise VaultDenied(self._why_not(who, registered[0] if registered else None, allowed, action))
        try:
            shared, challenge = MLKEM768PublicKey.from_public_bytes(registered[1]).encapsulate()
        except ValueError:
            raise VaultCorrupt(f"{who.reader}'s registered public key is not an ML-KEM-768 key") from None
        if not hmac.compare_digest(shared, who.private_key.decapsulate(challenge)):
            raise VaultDenied(f"{who.reader}'s key is not the one registered in vault {self.vault}")

    def _sector_key(self, who: ReaderKey, allowed: frozenset[str], action: str) -> tuple[int, bytes]:
        """The current sector key, unwrapped by ``who`` if it is a registered identity that may ``action``."""
        self._prove(who, allowed, action)
        epoch, readers = self.store.readers()
        self._check_anchor(epoch)
        return epoch, self._unwrap(who, epoch, readers)

    def _check_anchor(self, epoch: int) -> None:
        """The readers file is not older than the newest rotation this vault's recorder put on the chain: a
        backup restored after a revocation (readers, members and key files together, so the files agree
        with each other) would hand the sector key back to the revoked identity. Fail closed."""
        head = self._head()
        ledger = self.recorder.client.abi("EventLedger")
        oracle = "0x" + bytes.fromhex(self.recorder.identity.address[2:]).rjust(32, b"\0").hex()
        try:
            rotations = {"address": self.recorder.client.address("EventLedger"),
                         "topics": ["0x" + ledger.topic("EventRecorded").hex(), oracle, "0x" + self._node.hex(),
                                    "0x" + KEY_ROTATION.to_bytes(32, "big").hex()]}
            for log in self._logs.get(rotations, self._anchor_block, head):
                decoded = ledger.decode_log(_normalise_log(log))
                try:
                    payload = json.loads(bytes(decoded.args["payload"])) if decoded is not None else None
                    if isinstance(payload, dict) and payload.get("vault") == self.vault:
                        self._anchor = max(self._anchor, int(payload["epoch"]))
                except (ValueError, KeyError, TypeError):
                    continue
        except ChainError as exc:
            raise VaultUnavailable(f"the chain cannot say which sector key of vault {self.vault} is current: "
                                   f"{exc}") from None
        self._anchor_block = head + 1
        if epoch < self._anchor:
            raise VaultCorrupt(f"the readers file of vault {self.vault} is at sector-key epoch {epoch}, but the chain "
                               f"records a rotation to epoch {self._anchor}: it was restored from before a "
                               "revocation; nothing is released")

    def _unwrap(self, who: ReaderKey, epoch: int, readers: dict[str, tuple[str, WrappedKey]]) -> bytes:
        wrap = readers.get(who.reader)
        if wrap is None or wrap[0] != who.role:
            raise VaultDenied(f"{who.reader} holds no sector key of vault {self.vault} (epoch {epoch})")
        try:
            return unwrap_for_reader(self.vault, who.reader, who.role, epoch, wrap[1], who.private_key)
        except VaultCryptoError:
            raise VaultDenied(f"{who.reader}'s key does not open its wrap of vault {self.vault}'s sector key") from None

    def _sector_keys(self, who: ReaderKey, allowed: frozenset[str], action: str) -> dict[int, bytes]:
        """The sector keys ``who`` may use, by epoch: the current one, and while a rotation is unfinished the
        previous one too (from the previous epoch's wraps, which name only the readers that remain)."""
        epoch, key = self._sector_key(who, allowed, action)
        keys = {epoch: key}
        previous = self.store.previous_readers()
        if previous is not None and who.reader in previous[1]:
            keys[previous[0]] = self._unwrap(who, *previous)
        return keys

    def _why_not(self, who: ReaderKey, registered: str | None, allowed: frozenset[str], action: str) -> str:
        if registered is None:
            return f"{who.reader} is not an identity of vault {self.vault}"
        if registered != who.role:
            return f"{who.reader} holds the role {registered} in vault {self.vault}, not {who.role}"
        return f"the role {who.role} may not {action} vault {self.vault} (roles that may: {', '.join(sorted(allowed))})"

    # -- custody --------------------------------------------------------------------------------
    def create(self, custodian: ReaderKey) -> None:
        """A new vault's sector key (epoch 1), wrapped for its first custodian."""
        if custodian.role not in self.roles.grant:
            raise VaultDenied(f"the first identity of a vault is its custodian, not a {custodian.role}")
        if self.store.readers()[0] or self.store.members():
            raise VaultError(f"vault {self.vault} has a sector key already")
        sector_key = new_key()
        self.store.set_member(custodian.reader, custodian.role, custodian.public_bytes())
        self.store.set_readers(1, {custodian.reader: (custodian.role, wrap_for_reader(
            self.vault, custodian.reader, custodian.role, 1, sector_key, custodian.public_key))},
            sector_kem(sector_key).public_key().public_bytes_raw())

    def grant(self, custodian: ReaderKey, reader: ReaderKey | tuple[str, str, bytes]) -> None:
        """Register ``reader`` (a key, or (name, role, ML-KEM public key bytes)); the roles that may read
        get the current sector key wrapped for them. Never replaces an identity; refused while sealed."""
        name, role, public = ((reader.reader, reader.role, reader.public_bytes()) if isinstance(reader, ReaderKey)
                              else reader)
        check_name(name, "reader")
        if role not in self.roles.known:
            raise VaultError(f"unknown role {role!r}: choose one of {', '.join(sorted(self.roles.known))}")
        try:
            key = MLKEM768PublicKey.from_public_bytes(public)
        except ValueError:
            raise VaultError(f"{name}'s public key is not an ML-KEM-768 key") from None
        if name in self.store.members():
            raise VaultError(f"{name} is an identity of vault {self.vault} already: a key is never replaced")
        seal = self._sealed()
        if seal.sealed:
            raise VaultError(f"vault {self.vault} is sealed ({seal.reason or 'no reason given'}): no reader is "
                             "granted until it is unsealed")
        self.converge(custodian)  # a reader granted mid-rotation would miss the records not yet re-wrapped
        epoch, sector_key = self._sector_key(custodian, self.roles.grant, "grant identities of")
        with self._serial():
            self.store.set_member(name, role, public)
            if self.roles.holds_key(role):
                _, readers = self.store.readers()
                readers[name] = (role, wrap_for_reader(self.vault, name, role, epoch, sector_key, key))
                self.store.set_readers(epoch, readers, self.store.sector_public_key())

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
        self._prove(writer, self.roles.write, "write to")
        sealed_now = self._sealed().sealed
        receipts: list[WriteReceipt] = []
        with self._serial():
            # the sector key's epoch and public half under the lock a revocation holds: a write that read
            # them before a rotation would wrap its record key for the key the revoked reader holds
            epoch, _ = self.store.readers()
            try:
                sector_public = MLKEM768PublicKey.from_public_bytes(self.store.sector_public_key())
            except ValueError:
                raise VaultCorrupt(f"vault {self.vault} has no usable sector public key") from None
            planned: list[tuple[str, SealedRecord, WrappedKey]] = []
            for record, content in items:
                if self.store.shredded(record):
                    raise VaultError(f"record {record} was shredded: it cannot be written again")
                version = self._next_version(record) + sum(1 for r, _, _ in planned if r == record)
                record_key = new_key()
                sealed = seal_record(self.vault, record, version, content, record_key)
                wrapped = wrap_record_key_for_sector(self.vault, record, record_key, sector_public, epoch,
                                                     version=version)
                planned.append((record, sealed, wrapped))
            if not sealed_now:
                self.intents.add(*(Intent("write", {"record": r, "version": s.version,
                                                    "commitment": commitment(s).hex()}) for r, s, _ in planned))
            for record, sealed, wrapped in planned:
                proof = commitment(sealed)
                if sealed_now:
                    self.store.queue(sealed, wrapped, epoch)
                    receipts.append(WriteReceipt(record, sealed.version, proof.hex(), "queued"))
                    continue
                self.store.put(sealed, wrapped, epoch)
                seq = self.recorder.outbox.append(VAULT_WRITE, self._node,
                                                  write_payload(self.vault, record, sealed.version, proof))
                receipts.append(WriteReceipt(record, sealed.version, proof.hex(), "committed", self._event(seq)))
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
            pending = self.store.pending()
            self.intents.add(*(Intent("write", {"record": s.record_id, "version": s.version,
                                                "commitment": commitment(s).hex()}) for _, s, _, _ in pending))
            for path, sealed, epoch, wrapped in pending:
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
        if not refusal and self.store.previous_readers() is not None:
            try:  # a rotation a crash interrupted is finished by the next key holder that comes by
                self.converge(reader)
            except VaultError:
                pass  # the read goes on with both epochs' keys; the next key holder finishes it
        since = self._head()
        with self._serial():
            entries = self.store.access_log()
            seq = self.recorder.outbox.last_seq() + 1
            planned = AccessEntry(seq=len(entries) + 1, reader=reader.reader, role=reader.role, record_id=record,
                                  version=version, reason_hash=self.reason_hash(reason), at=self._clock(),
                                  granted=refusal == "", event=self._event(seq),
                                  prev=entries[-1].digest() if entries else GENESIS)
            self.intents.add(Intent("read", {"log_seq": planned.seq, "log_digest": planned.digest(),
                                             "refusal": refusal}))
            entry = self.store.log_access(reader=planned.reader, role=planned.role, record_id=record, version=version,
                                          reason_hash=planned.reason_hash, at=planned.at, granted=planned.granted,
                                          event=planned.event)
            if entry != planned:
                raise VaultCorrupt("the access log changed under the service: nothing was released")
            payload = read_payload(self.vault, entry, refusal)
            got = self.recorder.outbox.append(VAULT_READ, self._node, payload)
            if got != seq:  # another writer of this recorder's outbox got between: never expected
                raise VaultCorrupt(f"the read was logged as event {seq} but recorded as {got}")
        self._flush(f"the read of {record} v{version}")
        if refusal:
            raise VaultDenied(f"{refusal}; the attempt is recorded on-chain ({self._event(seq)})", self._event(seq))
        if not self._on_chain(seq, VAULT_READ, payload, since):
            raise VaultUnavailable(f"the chain does not hold this read's event ({self._event(seq)}): nothing was "
                                   "released (is the recorder's outbox a restored copy?)")
        seal = self._sealed()
        if seal.sealed:
            raise VaultDenied(f"vault {self.vault} was sealed while the read was recorded ({seal.reason}): nothing "
                              "was released", self._event(seq))
        assert granted_key is not None
        if self.store.record_key(record, version)[0] not in granted_key:  # a rotation ran meanwhile
            granted_key = self._sector_keys(reader, self.roles.read, "read")  # a reader revoked meanwhile: refused
        return ReadResult(record, version, self._open(record, version, granted_key), self._event(seq))

    def _open(self, record: str, version: int, keys: dict[int, bytes]) -> bytes:
        key_epoch, wrapped = self.store.record_key(record, version)
        if key_epoch not in keys:
            raise VaultCorrupt(f"record {record} v{version}'s key is wrapped under sector key epoch {key_epoch}, "
                               f"not the current {max(keys)}")
        try:
            record_key = unwrap_record_key(self.vault, record, wrapped, keys[key_epoch], key_epoch, version=version)
            sealed = self.store.get(record, version)
            content = open_record(sealed, record_key)
        except VaultCryptoError as exc:
            raise VaultCorrupt(f"record {record} v{version} was tampered with: {exc}") from None
        if not content_matches(sealed, content):
            raise VaultCorrupt(f"record {record} v{version} does not match its commitment's content hash")
        return content

    def _may_read(self, reader: ReaderKey, record: str) -> tuple[str, dict[int, bytes] | None]:
        """Why the read is refused ('' if it is not) and, if it is not, the sector keys (by epoch)."""
        seal = self._sealed()
        if seal.sealed:
            return f"vault {self.vault} is sealed ({seal.reason or 'no reason given'})", None
        if self.store.shredded(record):
            return f"record {record} was shredded", None
        try:
            return "", self._sector_keys(reader, self.roles.read, "read")
        except VaultDenied as exc:
            return str(exc), None

    # -- shredding ------------------------------------------------------------------------------
    def shred(self, custodian: ReaderKey, record: str) -> str:
        """Destroy ``record``'s keys (every version) and record it on-chain; returns the event. Refused while
        sealed: it cannot be undone."""
        check_name(record, "record")
        self._prove(custodian, self.roles.grant, "shred records of")
        seal = self._sealed()
        if seal.sealed:
            raise VaultError(f"vault {self.vault} is sealed ({seal.reason or 'no reason given'}): nothing is shredded "
                             "until it is unsealed")
        with self._serial():
            versions = self.store.versions(record)
            if not versions:
                raise VaultError(f"no record {record} in vault {self.vault}")
            self.intents.add(Intent("shred", {"record": record, "versions": [versions[0], versions[-1]]}))
            self.store.shred(record)
            seq = self.recorder.outbox.append(VAULT_SHRED, self._node,
                                              shred_payload(self.vault, record, versions[0], versions[-1]))
        self._flush(f"the shredding of {record}")
        return self._event(seq)

    # -- revocation -----------------------------------------------------------------------------
    def revoke(self, custodian: ReaderKey, name: str, reason: str) -> str:
        """Take ``name`` out of the vault and record it on-chain (``key-rotation``); returns the event.

        An identity that held the sector key (a reader, a custodian) is revoked by a rotation: a new
        sector key (a new ML-KEM-768 key pair, the next epoch) wrapped for the key holders that remain
        only, and every live record key re-wrapped under it, so the revoked identity's key opens
        nothing on disk any more (what it read or copied before stays read). Crash-safe in this order:

        1. an intent (`vaults.intents`), then ``readers.json`` at the new epoch *with* the previous
           epoch's wraps for the remaining readers (the revoked one's wrap is gone from both at once):
           from here every remaining reader reads every record, whichever epoch wraps its key;
        2. the identity leaves ``members.json``; the event goes to the outbox;
        3. each record key is re-wrapped (one atomic file each); then the previous epoch is dropped.

        A crash in 1-2 is finished by `recover` (the event, the membership); a crash in 3 by `converge`,
        which the next command of any remaining key holder runs (a read, a grant, a revocation). Writers
        and auditors hold no key: revoking one only removes it. Refused while sealed, for an unknown
        identity, and where no custodian holding the key would remain."""
        check_name(name, "reader")
        reason = reason.strip() if isinstance(reason, str) else ""
        if not reason:
            raise VaultError("a revocation needs a reason (--reason): it goes on-chain")
        self._prove(custodian, self.roles.grant, "revoke identities of")
        members = self.store.members()
        if name not in members:
            raise VaultError(f"{name} is not an identity of vault {self.vault}")
        seal = self._sealed()
        if seal.sealed:
            raise VaultError(f"vault {self.vault} is sealed ({seal.reason or 'no reason given'}): no identity is "
                             "revoked until it is unsealed")
        if self.store.pending():
            self.apply_pending()  # queued record keys are wrapped under the old epoch: land them first
        self.converge(custodian)
        with self._serial():
            epoch, readers = self.store.readers()
            self._check_anchor(epoch)
            if self.store.pending():  # sealed between the check and the landing: its keys are the old epoch's
                raise VaultError(f"vault {self.vault} has queued writes that did not land (was it sealed meanwhile?): "
                                 "no identity is revoked until they have")
            if self.store.previous_readers() is not None:  # a second rotation would drop the first's old wraps
                raise VaultError(f"vault {self.vault} has an unfinished rotation that {custodian.reader}'s key cannot "
                                 "finish: a key holder that remains must read once first")
            role = members[name][0]
            keepers = [r for r, (rrole, _) in readers.items() if r != name and rrole in self.roles.grant]
            if not keepers:
                raise VaultError(f"revoking {name} would leave vault {self.vault} without a custodian holding its key: "
                                 "grant another custodian first")
            rotated = name in readers
            new_epoch = epoch + 1 if rotated else epoch
            remaining = {r: w for r, w in readers.items() if r != name}
            self.intents.add(Intent("revoke", {"reader": name, "role": role, "epoch": new_epoch, "rotated": rotated,
                                               "holders": len(remaining), "reason": reason[:300]}))
            if rotated:
                old_key = self._unwrap(custodian, epoch, readers)
                new_key_ = new_key()
                wraps = {}
                for reader, (rrole, _) in remaining.items():
                    try:
                        public = MLKEM768PublicKey.from_public_bytes(members[reader][1])
                    except (KeyError, ValueError):
                        raise VaultCorrupt(f"key holder {reader} of vault {self.vault} has no registered ML-KEM-768 "
                                           "key: nothing was changed") from None
                    wraps[reader] = (rrole, wrap_for_reader(self.vault, reader, rrole, new_epoch, new_key_, public))
                self.store.set_readers(new_epoch, wraps, sector_kem(new_key_).public_key().public_bytes_raw(),
                                       previous=(epoch, remaining))
            self.store.remove_member(name)
            seq = self.recorder.outbox.append(KEY_ROTATION, self._node, revoke_payload(
                self.vault, name, role, new_epoch, rotated, len(remaining), reason))
            if rotated:
                self._rewrap(epoch, old_key, new_epoch, new_key_)
        self._flush(f"the revocation of {name}")
        return self._event(seq)

    def converge(self, who: ReaderKey) -> int:
        """Finish a rotation a crash interrupted (`revoke`, step 3), with the keys of ``who``, a key holder
        that remains; returns how many record keys were re-wrapped (0: none was unfinished)."""
        if self.store.previous_readers() is None:
            return 0
        with self._serial():
            previous = self.store.previous_readers()
            if previous is None:
                return 0
            old_epoch, old_readers = previous
            epoch, readers = self.store.readers()
            self._prove(who, self.roles.read | self.roles.grant, "finish a rotation of")
            return self._rewrap(old_epoch, self._unwrap(who, old_epoch, old_readers), epoch,
                                self._unwrap(who, epoch, readers))

    def _rewrap(self, old_epoch: int, old_key: bytes, epoch: int, key: bytes) -> int:
        """Every live record key from ``old_epoch`` to ``epoch``, then the previous epoch dropped (under `_serial`)."""
        done = 0
        for record, version in self.store.live_keys(old_epoch):
            key_epoch, wrapped = self.store.record_key(record, version)
            try:
                record_key = unwrap_record_key(self.vault, record, wrapped, old_key, key_epoch, version=version)
            except VaultCryptoError:
                raise VaultCorrupt(f"the key of record {record} v{version} does not unwrap under epoch {old_epoch}: "
                                   "the rotation stops here, every record stays readable") from None
            self.store.rewrap(record, version, wrap_record_key(self.vault, record, record_key, key, epoch,
                                                               version=version), epoch)
            done += 1
        _, readers = self.store.readers()
        self.store.set_readers(epoch, readers, self.store.sector_public_key(), end_rotation=True)
        return done

    # -- recovery -------------------------------------------------------------------------------
    def _rows(self, kind: int) -> list[dict[str, Any]]:
        out = []
        for row in self.recorder.outbox.rows_of_kinds([kind]):
            try:
                payload = json.loads(row.payload)
            except ValueError:
                continue
            if isinstance(payload, dict) and payload.get("vault") == self.vault:
                out.append({**payload, "_seq": row.seq})
        return out

    def _committed(self) -> set[tuple[str, int]]:
        return {(str(p.get("record")), int(p.get("version", 0))) for p in self._rows(VAULT_WRITE)}

    def recover(self) -> int:
        """Append the events of the intents a crash left unrecorded, and flush; returns how many were added.

        Only intents count (`vaults.intents`): what is on disk without one (a planted record, log line
        or tombstone) is left for the audit to report. An intent whose file change never happened (the
        crash came first) is dropped: nothing was done, nothing is recorded."""
        added = 0
        with self._serial():
            committed = self._committed()
            reads = {(int(p.get("log_seq", 0)), str(p.get("log_digest"))) for p in self._rows(VAULT_READ)}
            shreds = {str(p.get("record")) for p in self._rows(VAULT_SHRED)}
            try:
                log = {e.seq: e for e in self.store.access_log()}
            except VaultCorrupt:
                log = {}
            for intent in self.intents.entries():
                f = intent.fields
                if intent.op == "write" and (str(f["record"]), int(f["version"])) not in committed:
                    if self._stored_as(str(f["record"]), int(f["version"]), str(f["commitment"])):
                        self.recorder.outbox.append(VAULT_WRITE, self._node, write_payload(
                            self.vault, str(f["record"]), int(f["version"]), bytes.fromhex(str(f["commitment"]))))
                        committed.add((str(f["record"]), int(f["version"])))
                        added += 1
                elif intent.op == "read" and (int(f["log_seq"]), str(f["log_digest"])) not in reads:
                    entry = log.get(int(f["log_seq"]))
                    if entry is not None and entry.digest() == f["log_digest"]:
                        refusal = str(f.get("refusal") or "") or ("" if entry.granted else "refused")
                        self.recorder.outbox.append(VAULT_READ, self._node, read_payload(self.vault, entry, refusal))
                        reads.add((entry.seq, entry.digest()))
                        added += 1
                elif intent.op == "shred" and str(f["record"]) not in shreds and self.store.shredded(str(f["record"])):
                    first, last = (int(v) for v in f["versions"])
                    self.recorder.outbox.append(VAULT_SHRED, self._node,
                                                shred_payload(self.vault, str(f["record"]), first, last))
                    shreds.add(str(f["record"]))
                    added += 1
                elif intent.op == "revoke":
                    added += self._recover_revoke(f)
            self.intents.prune([])  # every intent is now on the outbox or was never acted on
        if added or self.recorder.outbox.pending_count():
            self._flush("what a crash left unrecorded")
        return added

    def _recover_revoke(self, f: dict[str, Any]) -> int:
        """A revocation a crash interrupted: done once ``readers.json`` reached its epoch without the revoked
        identity (or, for one that held no key, once nothing else was needed); then the identity leaves
        the members and the event is recorded (once). Before that nothing was done: nothing is recorded.
        The re-wrap itself is `converge`'s (it needs a key holder's key)."""
        name, epoch = str(f["reader"]), int(f["epoch"])
        current, readers = self.store.readers()
        previous = self.store.previous_readers()
        payload = revoke_payload(self.vault, name, str(f["role"]), epoch, bool(f["rotated"]), int(f["holders"]),
                                 str(f["reason"]))
        if any(row.payload == payload for row in self.recorder.outbox.rows_of_kinds([KEY_ROTATION])):
            return 0  # done in full (the event follows the membership): an identity granted again since stays
        if current < epoch or name in readers or (previous is not None and name in previous[1]):
            return 0
        self.store.remove_member(name)
        self.recorder.outbox.append(KEY_ROTATION, self._node, payload)
        return 1

    def _stored_as(self, record: str, version: int, proof: str) -> bool:
        try:
            return commitment(self.store.get(record, version)).hex() == proof
        except VaultError:
            return False
