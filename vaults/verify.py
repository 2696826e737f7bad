"""`qeaims vault verify`: a vault's files against the chain, by someone who holds none of its keys.

From the chain (a fresh index, `chain.indexer`), the vault's events count only when they verify as
the audit verifies any event (`chain.audit.batch_verifies`: ML-DSA-65 signature, key epoch,
sequence) *and* their recorder was, at that position, registered in this vault's own sector under its own
operator (both ``vault-<sector>``, `chain.consortium.vault_sector`); anything else is listed as ignored.

Then, both ways:
- every stored record version has an on-chain commitment equal to the commitment recomputed from the
  file (`vaults.envelope.commitment`: ciphertext hash and salted content hash): a file edited on
  disk is *tampered*, a stored version nobody committed is *uncommitted*; every on-chain commitment
  has its record (a deleted one is *missing*);
- every on-chain shredding left the record without keys (a key file restored from a backup is
  *unshredded*);
- every entry of the access log (its hash chain checked) has an on-chain ``vault-read`` with its seq
  and digest (else it is an *unrecorded read*), and every on-chain read has its log entry with that
  digest (else the log was *rolled back* or rewritten).

And the vault's seal history (``seals``), decided as `vaults.onchain.SealWatch` decides it live
(`vaults.council_unseal.decide`): ``vault-seal`` events that verify and whose recorder held the
quorum's REPAIR_ROLE there, and council unseals executed by the council whose ML-DSA-65 approvals
also recount to the threshold (`chain.council_audit.recount_council`; one that does not is listed
in ``problems`` and lifts nothing). A read recorded as granted while the vault was sealed goes to
``reads_while_sealed``: the service checks the seal again after recording and releases nothing then,
so each one is a seal racing a read, or a service that broke the seal (listed, not a failure).
"""

from __future__ import annotations

import json
import re
import sqlite3
from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from typing import Any

from chain.audit import batch_verifies
from chain.consortium import vault_sector
from chain.council_audit import recount_council
from chain.registry_history import REPAIR_ROLE, RegistryHistory, sector_key
from keys.ids import to_bytes32
from vaults.council_unseal import SealFact, UnsealProposal, decide, parse_unseal
from vaults.envelope import commitment
from vaults.onchain import KEY_ROTATION, VAULT_READ, VAULT_SEAL, VAULT_SHRED, VAULT_WRITE
from vaults.store import TOMBSTONE, AccessEntry, VaultError, VaultStore, check_name

__all__ = ["VaultReport", "verify_vault"]


@dataclass
class VaultReport:
    vault: str
    records: int = 0  # record versions stored and checked
    commitments: int = 0  # on-chain vault-write events that count
    shredded: int = 0
    reads_logged: int = 0
    reads_on_chain: int = 0
    tampered: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    uncommitted: list[dict[str, Any]] = field(default_factory=list)
    unshredded: list[dict[str, Any]] = field(default_factory=list)
    keys_missing: list[dict[str, Any]] = field(default_factory=list)  # keys gone without an on-chain shredding
    unrecorded_reads: list[dict[str, Any]] = field(default_factory=list)
    rolled_back_reads: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    seals: list[dict[str, Any]] = field(default_factory=list)  # the seal history that counts, in chain order
    reads_while_sealed: list[dict[str, Any]] = field(default_factory=list)
    revocations: int = 0  # on-chain revocations (key-rotation events) that count
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.tampered or self.missing or self.uncommitted or self.unshredded or self.keys_missing
                    or self.unrecorded_reads or self.rolled_back_reads or self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def lines(self) -> list[str]:
        out = [f"tampered: {t['record']} v{t['version']}: {t['why']}" for t in self.tampered]
        out += [f"missing: {m['record']} v{m['version']} is committed on-chain (block {m['block']}) but not stored"
                for m in self.missing]
        out += [f"uncommitted: {u['record']} v{u['version']} is stored without an on-chain commitment"
                for u in self.uncommitted]
        out += [f"unshredded: {u['record']} was shredded on-chain (block {u['block']}) but has keys on disk"
                for u in self.unshredded]
        out += [f"keys missing: {k['record']} v{k['version']} has no key and no on-chain shredding: it was destroyed "
                "behind the custodian's back" for k in self.keys_missing]
        out += [f"unrecorded read: log entry {r['log_seq']} ({r['reader']} as {r['role']}, {r['record']} "
                f"v{r['version']}, {'granted' if r['granted'] else 'refused'}) has no on-chain vault-read"
                for r in self.unrecorded_reads]
        out += [f"rolled back: the on-chain read of block {r['block']} (log entry {r['log_seq']}) {r['why']}"
                for r in self.rolled_back_reads]
        out += [f"read while sealed: the on-chain read of block {r['block']} (log entry {r['log_seq']}) was recorded as "
                f"granted while the seal of block {r['sealed_at']} was in force" for r in self.reads_while_sealed]
        out += [f"problem: {p}" for p in self.problems]
        return out


@dataclass(frozen=True)
class _Event:
    kind: int
    payload: dict[str, Any]
    block: int
    log_index: int
    oracle: str
    seq: int


def _vault_events(db: sqlite3.Connection, history: RegistryHistory, vault: str, *, chain_id: int, ledger: str,
                  registry: str, report: VaultReport) -> list[_Event]:
    """The vault's events that count (module docstring), in chain order; the others go to ``ignored``."""
    want_sector = want_operator = sector_key(to_bytes32(vault_sector(vault)))
    node = "0x" + to_bytes32(vault).hex()
    rows = db.execute(
        "SELECT oracle, seq, kind, node, batch_id, payload, block, log_index FROM events "
        "WHERE kind IN (?, ?, ?, ?) ORDER BY block, log_index",
        (VAULT_WRITE, VAULT_READ, VAULT_SHRED, KEY_ROTATION)).fetchall()
    out: list[_Event] = []
    for oracle, seq, kind, raw_node, batch_id, raw, block, log_index in rows:
        try:
            payload = json.loads(bytes(raw))
        except (ValueError, UnicodeDecodeError):
            payload = None
        about_this = str(raw_node).lower() == node or (isinstance(payload, dict) and payload.get("vault") == vault)
        if not about_this:
            continue
        where = {"oracle": oracle, "seq": int(seq), "block": int(block)}
        state = history.oracle_at(oracle, (int(block), int(log_index)))
        if state is None or state.sector != want_sector or state.operator != want_operator:
            report.ignored.append({**where, "why": f"not recorded by vault {vault}'s recorder"})
        elif not isinstance(payload, dict) or payload.get("vault") != vault or str(raw_node).lower() != node:
            report.ignored.append({**where, "why": "the payload does not name this vault"})
        elif not batch_verifies(db, int(batch_id), chain_id=chain_id, ledger=ledger, registry=registry):
            report.ignored.append({**where, "why": "its batch does not verify (signature, key epoch or sequence)"})
        else:
            out.append(_Event(int(kind), payload, int(block), int(log_index), str(oracle), int(seq)))
    return out


def verify_vault(db: sqlite3.Connection, store: VaultStore, *, chain_id: int, ledger: str,
                 registry: str, council: str = "") -> VaultReport:
    """The vault in ``store`` against the chain in ``db`` (an index synced by the caller). Without the
    ``council``'s address no council unseal counts (its approvals cannot be recounted)."""
    report = VaultReport(store.vault)
    history = RegistryHistory.from_db(db)
    events = _vault_events(db, history, store.vault, chain_id=chain_id, ledger=ledger, registry=registry,
                           report=report)
    facts = _seal_facts(db, history, store.vault, chain_id=chain_id, ledger=ledger, registry=registry,
                        council=council, report=report)
    shreds = [e for e in events if e.kind == VAULT_SHRED]
    _check_records(store, [e for e in events if e.kind == VAULT_WRITE], {str(e.payload.get("record")) for e in shreds},
                   report)
    _check_shreds(store, shreds, report)
    _check_strays(store, report)
    _check_reads(store, [e for e in events if e.kind == VAULT_READ], report)
    _check_sealed_reads([e for e in events if e.kind == VAULT_READ], facts, report)
    _check_rotations(store, [e for e in events if e.kind == KEY_ROTATION], report)
    return report


def _check_rotations(store: VaultStore, rotations: list[_Event], report: VaultReport) -> None:
    """The readers file is at least at the newest on-chain rotation's epoch: an older one (a backup restored)
    hands the sector key back to the identities revoked since."""
    report.revocations = len(rotations)
    newest = max(rotations, key=lambda e: int(e.payload.get("epoch", 0)), default=None)
    if newest is None:
        return
    try:
        epoch, _ = store.readers()
        previous = store.previous_readers()
    except _BROKEN as exc:
        report.problems.append(f"the readers file does not read: {exc}")
        return
    if epoch < int(newest.payload.get("epoch", 0)):
        report.problems.append(f"the readers file is at sector-key epoch {epoch}, but the chain records a rotation to "
                               f"epoch {newest.payload.get('epoch')} (block {newest.block}): it was rolled back, and the "
                               "identities revoked since may hold the key again")
    for event in rotations:
        name = str(event.payload.get("revoked", ""))
        if previous is not None and int(event.payload.get("epoch", 0)) == epoch and name in previous[1]:
            report.problems.append(f"{name}, revoked on-chain (block {event.block}), still holds a wrap of the "
                                   "previous sector key")


def _seal_facts(db: sqlite3.Connection, history: RegistryHistory, vault: str, *, chain_id: int, ledger: str,
                registry: str, council: str, report: VaultReport) -> list[SealFact]:
    """What the chain says about the vault's seal (module docstring), with the history that counts in
    ``report.seals``."""
    node = "0x" + to_bytes32(vault).hex()
    facts: list[SealFact] = []
    for oracle, kind, raw, batch_id, block, log_index in db.execute(
            "SELECT oracle, kind, payload, batch_id, block, log_index FROM events WHERE kind = ? AND lower(node) = ? "
            "ORDER BY block, log_index", (VAULT_SEAL, node)):
        try:
            payload = json.loads(bytes(raw))
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(payload, dict) or payload.get("vault") != vault or not isinstance(payload.get("sealed"), bool):
            continue
        position = (int(block), int(log_index))
        counts = history.has_role_at("IsolationQuorum", REPAIR_ROLE, str(oracle), position) and batch_verifies(
            db, int(batch_id), chain_id=chain_id, ledger=ledger, registry=registry)
        facts.append(SealFact(*position, "seal", str(oracle).lower(), counts, payload["sealed"],
                              str(payload.get("reason", ""))))
    proposals: dict[int, tuple[UnsealProposal, tuple[int, int]]] = {}
    executed: list[tuple[int, int, int]] = []
    for block, log_index, event, raw in db.execute(
            "SELECT block, log_index, event, args FROM logs WHERE contract = 'GovernanceCouncil' AND event IN "
            "('ProposalCreated', 'ProposalExecuted') ORDER BY block, log_index"):
        a = json.loads(raw)
        pid = int(a["proposalId"])
        if event == "ProposalCreated" and council:
            unseal = parse_unseal(council, [str(t) for t in a["targets"]], [int(v) for v in a["values"]],
                                  [_hex(c) for c in a["calldatas"]], str(a["description"]), _hex(a["callsHash"]))
            if unseal is not None and unseal.vault == vault:
                proposals[pid] = (unseal, (int(block), int(log_index)))
        elif event == "ProposalExecuted" and pid in proposals:
            executed.append((int(block), int(log_index), pid))
    if executed:
        bad = {int(f["proposal_id"]): str(f["detail"]) for f in recount_council(db, chain_id, council)
               if not f["ok"] and f["kind"] in ("executed-without-quorum", "executed-before-eta")}
        for block, log_index, pid in executed:
            if pid in bad:
                report.problems.append(f"the council unseal of proposal {pid} (block {block}) does not recount: "
                                       f"{bad[pid]}; it lifts nothing")
            unseal, created = proposals[pid]
            facts.append(SealFact(block, log_index, "council", f"council:{pid}", pid not in bad,
                                  reason=unseal.reason, proposal=pid, seal=unseal.seal, created=created))
    _, stale = decide(facts)
    counted = sorted((f for f in facts if f.counts and f not in stale), key=lambda f: (f.block, f.log_index))
    report.seals = [{"block": f.block, "log_index": f.log_index, "sealed": f.kind == "seal" and f.sealed,
                     "by": f.by, "reason": f.reason} for f in counted]
    return facts


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def _check_sealed_reads(reads: list[_Event], facts: list[SealFact], report: VaultReport) -> None:
    # the state after each fact, in chain order (one `decide` per fact, not per read: reads outnumber seals)
    ordered = sorted(facts, key=lambda f: (f.block, f.log_index))
    timeline = [((f.block, f.log_index), decide(ordered[:i + 1])[0]) for i, f in enumerate(ordered)]
    positions = [p for p, _ in timeline]
    for event in reads:
        if event.payload.get("granted") is not True:
            continue
        at = bisect_left(positions, (event.block, event.log_index))
        if at and timeline[at - 1][1].sealed:
            report.reads_while_sealed.append({"block": event.block, "log_seq": event.payload.get("log_seq"),
                                              "reader": event.payload.get("reader"),
                                              "sealed_at": timeline[at - 1][1].block})


_BROKEN = (VaultError, ValueError, KeyError, TypeError, OSError)  # what a planted or damaged file can raise


def _check_records(store: VaultStore, writes: list[_Event], shredded: set[str], report: VaultReport) -> None:
    committed: dict[tuple[str, int], tuple[str, int]] = {}
    for event in writes:
        try:
            key = (str(event.payload["record"]), int(event.payload["version"]))
            value = str(event.payload["commitment"])
        except (KeyError, TypeError, ValueError):
            report.problems.append(f"the vault-write of block {event.block} is not a commitment")
            continue
        if key in committed and committed[key][0] != value:
            report.problems.append(f"{key[0]} v{key[1]} is committed twice with different commitments "
                                   f"(blocks {committed[key][1]} and {event.block})")
            continue
        committed.setdefault(key, (value, event.block))
    report.commitments = len(committed)
    stored: set[tuple[str, int]] = set()
    try:
        versions = list(store.records())
    except _BROKEN as exc:
        report.problems.append(f"the records cannot be listed: {exc}")
        versions = []
    for record, version in versions:
        stored.add((record, version))
        report.records += 1
        where = {"record": record, "version": version}
        try:
            actual = commitment(store.get(record, version)).hex()
            has_key = (store.path / "keys" / record / f"v{version}.json").is_file()
        except _BROKEN as exc:
            report.tampered.append({**where, "why": f"the file does not read: {exc}"})
            continue
        if not has_key and record not in shredded:
            report.keys_missing.append(where)
        if (record, version) not in committed:
            report.uncommitted.append(where)
        elif committed[(record, version)][0] != actual:
            report.tampered.append({**where, "why": "its ciphertext or content hash differs from the on-chain "
                                                    f"commitment (block {committed[(record, version)][1]})"})
    for (record, version), (_, block) in sorted(committed.items()):
        if (record, version) not in stored:
            report.missing.append({"record": record, "version": version, "block": block})


_RECORD_FILE = re.compile(r"^v[0-9]{1,9}\.json$")


def _check_strays(store: VaultStore, report: VaultReport) -> None:
    """Files in ``records/`` and ``keys/`` that are no record version, key or tombstone: the store ignores
    them, an auditor must hear of them (a planted ``v².json`` is not a version, and not nothing)."""
    for folder, allowed in (("records", ()), ("keys", (TOMBSTONE,))):
        base = store.path / folder
        try:
            found = sorted(base.rglob("*")) if base.is_dir() else []
        except OSError:
            found = []
        for path in found:
            rel = path.relative_to(store.path)
            parts = rel.parts
            expected = (len(parts) == 2 and path.is_dir() and _is_name(parts[1])) or (
                len(parts) == 3 and path.is_file() and not path.is_symlink()
                and (_RECORD_FILE.match(parts[2]) is not None or parts[2] in allowed))
            if not expected:
                report.problems.append(f"{rel.as_posix()!r} is no record, key or tombstone of vault {store.vault}")


def _is_name(name: str) -> bool:
    try:
        check_name(name, "record")
    except VaultError:
        return False
    return True


def _check_shreds(store: VaultStore, shreds: list[_Event], report: VaultReport) -> None:
    for event in shreds:
        record = str(event.payload.get("record", ""))
        report.shredded += 1
        try:
            check_name(record, "record")
        except VaultError:
            report.problems.append(f"the vault-shred of block {event.block} names no record ({record[:40]!r})")
            continue
        try:
            keys = store.path / "keys" / record
            left = [p.name for p in keys.iterdir() if p.name != TOMBSTONE] if keys.is_dir() else []
            gone = store.shredded(record)
        except _BROKEN:
            left, gone = [], False
        if left or not gone:
            report.unshredded.append({"record": record, "block": event.block, "files": left})


def _entry_dict(entry: AccessEntry) -> dict[str, Any]:
    return {"log_seq": entry.seq, "reader": entry.reader, "role": entry.role, "record": entry.record_id,
            "version": entry.version, "granted": entry.granted, "at": entry.at}


def _check_reads(store: VaultStore, reads: list[_Event], report: VaultReport) -> None:
    try:
        entries = store.access_log()
    except _BROKEN as exc:
        report.problems.append(f"the access log does not verify: {exc}")
        entries = []
    report.reads_logged = len(entries)
    report.reads_on_chain = len(reads)
    on_chain: dict[int, list[_Event]] = {}
    for event in reads:
        try:
            on_chain.setdefault(int(event.payload["log_seq"]), []).append(event)
        except (KeyError, TypeError, ValueError):
            report.problems.append(f"the vault-read of block {event.block} names no log entry")
    by_seq = {entry.seq: entry for entry in entries}
    for entry in entries:
        digest = entry.digest()
        if not any(e.payload.get("log_digest") == digest for e in on_chain.get(entry.seq, [])):
            report.unrecorded_reads.append(_entry_dict(entry))
    for log_seq, events in sorted(on_chain.items()):
        logged = by_seq.get(log_seq)
        for event in events:
            if logged is None:
                report.rolled_back_reads.append({"log_seq": log_seq, "block": event.block,
                                                 "why": "has no entry in the access log (it was cut back)"})
            elif event.payload.get("log_digest") != logged.digest():
                report.rolled_back_reads.append({"log_seq": log_seq, "block": event.block,
                                                 "why": "does not match its log entry (the log was rewritten)"})
