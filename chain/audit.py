"""`qeaims audit verify`: re-check every recorded event from chain data alone.

What is checked, all from the logs in the index (which `Indexer.sync` reads with eth_getLogs):
- each oracle's key history: the registration's proof of possession, then every rotation signed
  by the previous key and by the new one; key hashes match the published keys;
- each batch: its events are exactly `firstSeq..lastSeq`, contiguous, in order; its key epoch was
  the oracle's current epoch when it was recorded; its ML-DSA-65 signature verifies over the
  domain-separated batch message with the key of that epoch;
- per oracle, sequence numbers increase by one from batch to batch, with no gap and no repeat.
An event is valid only if its batch, its key and its sequence all check out. A full audit (from
batch 1) also recounts every sensor quarantine (`chain.quarantines`).

`verify_everything` is what `qeaims audit verify` runs on an index it built itself: the above, plus
- the index against the chain at the audited head (`check_index_against_chain`): the ledger's
  `batchCount` and every oracle's `lastSeq`, the registry's key epoch, key hash and status of every
  oracle and status of every node, the quorum's `proposalCount`, and the hash of every block the
  index checkpointed — so an index that lost or gained a row, or describes another chain, is caught;
- every role change, governance override, repair and status change (`check_governance`);
- the decisions' recounts (`recount_decisions`: the quorum's and the council's, where they exist).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from chain.artifacts import load_artifact
from chain.client import ChainClient
from chain.manifest import Deployment
from chain.registry_history import NODE_STATUS, ORACLE_STATUS, REPAIR_ROLE, RegistryHistory
from keys.hybrid import RotationProof, verify_batch, verify_registration, verify_rotation
from keys.messages import EventToSign

__all__ = [
    "RECOUNTS",
    "AuditReport",
    "KeyEpoch",
    "batch_verifies",
    "check_governance",
    "check_index_against_chain",
    "key_history",
    "problem",
    "recount_decisions",
    "verify_chain_history",
    "verify_everything",
]


@dataclass
class AuditReport:
    events: int = 0
    valid: int = 0
    batches: int = 0
    oracles: int = 0
    key_epochs: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)  # events and quarantines that do not verify
    problems: list[dict[str, Any]] = field(default_factory=list)  # everything else: {check, message, block, tx}
    skipped: list[str] = field(default_factory=list)  # recounts not available in this build
    head: int | None = None

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.problems

    def lines(self) -> list[str]:
        """One readable line per finding."""
        out = [f"invalid: oracle {i['oracle']} seq {i['seq']} (batch {i['batch']}, block {i['block']}): {i['reason']}"
               for i in self.invalid]
        for p in self.problems:
            where = "".join([f" (block {p['block']}" if p.get("block") is not None else "",
                             f", tx {str(p['tx'])[:12]}…" if p.get("tx") and p.get("block") is not None else "",
                             ")" if p.get("block") is not None else ""])
            out.append(f"{p['check']}: {p['message']}{where}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "valid": self.valid,
            "invalid": self.invalid,
            "batches": self.batches,
            "oracles": self.oracles,
            "key_epochs": self.key_epochs,
            "problems": self.problems,
            "skipped": self.skipped,
            "head": self.head,
        }


@dataclass(frozen=True)
class KeyEpoch:
    """One published ML-DSA key of an oracle, and whether its chain of trust holds."""

    public_key: bytes
    position: tuple[int, int]  # (block, log_index) where this epoch began
    valid: bool
    reason: str


@functools.lru_cache(maxsize=4096)
def _registration_ok(public_key: bytes, signature: bytes, chain_id: int, registry: str, account: str,
                     sector: bytes, operator: bytes) -> bool:
    """Memoised: an oracle watching its peers re-reads the key history every peer interval, and
    verifying every oracle's ML-DSA proof of possession each time was most of that check. The
    answer is a pure function of the arguments, so a cached one is the same answer."""
    return verify_registration(public_key, signature, chain_id=chain_id, registry=registry, account=account,
                               sector=sector, operator=operator)


@functools.lru_cache(maxsize=4096)
def _rotation_ok(previous_key: bytes, new_key: bytes, old_signature: bytes, new_signature: bytes, epoch: int,
                 chain_id: int, registry: str, account: str) -> bool:
    """Memoised for the same reason as `_registration_ok`."""
    proof = RotationProof(new_public_key=new_key, old_signature=old_signature, new_signature=new_signature,
                          new_epoch=epoch)
    return verify_rotation(previous_key, proof, chain_id=chain_id, registry=registry, account=account)


def key_history(db: sqlite3.Connection, chain_id: int, registry: str) -> dict[str, dict[int, KeyEpoch]]:
    """Every oracle's published keys by epoch (oracle lower-case): the registration's proof of
    possession, then each rotation signed by the previous key and the new one; an epoch after a
    broken link is not trustworthy either."""
    history: dict[str, dict[int, KeyEpoch]] = defaultdict(dict)
    rows = db.execute(
        "SELECT oracle, epoch, public_key, key_hash, sector, operator, sig_a, sig_b, block, log_index "
        "FROM oracle_keys ORDER BY oracle, epoch"
    ).fetchall()
    for oracle, epoch, public_key, key_hash, sector, operator, sig_a, sig_b, block, log_index in rows:
        account = to_checksum_address(oracle)
        public_key = bytes(public_key)
        ok, reason = True, ""
        if "0x" + keccak(public_key).hex() != key_hash:
            ok, reason = False, "published key does not match its hash"
        elif epoch == 1:
            if not _registration_ok(public_key, bytes(sig_a), chain_id, registry, account,
                                    bytes.fromhex(sector[2:]), bytes.fromhex(operator[2:])):
                ok, reason = False, "registration proof of possession does not verify"
        else:
            previous = history[oracle].get(epoch - 1)
            if previous is None:
                ok, reason = False, f"rotation to epoch {epoch} without a key for epoch {epoch - 1}"
            elif not _rotation_ok(previous.public_key, public_key, bytes(sig_a), bytes(sig_b or b""), int(epoch),
                                  chain_id, registry, account):
                ok, reason = False, f"rotation to epoch {epoch} is not signed by both the old and new key"
            elif not previous.valid:
                ok, reason = False, f"rotation chain broken before epoch {epoch}"
        history[oracle][epoch] = KeyEpoch(public_key, (int(block), int(log_index)), ok, reason)
    return history


_BATCH_COLUMNS = "batch_id, oracle, key_epoch, first_seq, last_seq, count, signature, block, log_index"


def _judge_batch(db: sqlite3.Connection, keys: dict[str, dict[int, KeyEpoch]], row: tuple[Any, ...],
                 previous_seq: int, *, chain_id: int, ledger: str) -> tuple[list[EventToSign], str | None]:
    """One batch row (`_BATCH_COLUMNS`) checked: its events, and why it does not verify (or None)."""
    batch_id, oracle, epoch, first_seq, last, count, signature, block, log_index = row
    events = [EventToSign(seq=int(s), kind=int(k), node=bytes.fromhex(n[2:]), payload=bytes(p))
              for s, k, n, p in db.execute("SELECT seq, kind, node, payload FROM events WHERE batch_id = ? "
                                           "ORDER BY block, log_index", (batch_id,))]
    reason = _check_batch(keys, oracle, int(epoch), (int(block), int(log_index)), events,
                          int(first_seq), int(last), int(count), previous_seq)
    if reason is None and not verify_batch(
        keys[oracle][int(epoch)].public_key, chain_id=chain_id, ledger=ledger,
        oracle=to_checksum_address(oracle), key_epoch=int(epoch), events=events, signature=bytes(signature),
    ):
        reason = "ML-DSA-65 signature does not verify"
    return events, reason


def verify_chain_history(
    db: sqlite3.Connection,
    *,
    chain_id: int,
    ledger: str,
    registry: str,
    progress: Callable[[int, int], None] | None = None,
    from_batch: int = 1,
) -> AuditReport:
    """Verify every batch from `from_batch` on (batch ids follow chain order); an oracle watching its
    peers passes the first batch it has not checked yet, an auditor checks everything."""
    report = AuditReport()
    history = key_history(db, chain_id, registry)
    report.oracles = len(history)
    report.key_epochs = sum(len(epochs) for epochs in history.values())
    batches = db.execute(
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id >= ? ORDER BY block, log_index", (from_batch,)
    ).fetchall()
    report.events = int(db.execute("SELECT COUNT(*) FROM events WHERE batch_id >= ?", (from_batch,)).fetchone()[0])
    last_seq: dict[str, int] = defaultdict(int)
    bad_events: set[tuple[str, int]] = set()
    for oracle, seq in db.execute("SELECT oracle, MAX(last_seq) FROM batches WHERE batch_id < ? GROUP BY oracle",
                                  (from_batch,)):
        last_seq[oracle] = int(seq)
    for done, row in enumerate(batches, 1):
        batch_id, oracle, first_seq, block = row[0], row[1], row[3], row[7]
        report.batches += 1
        events, reason = _judge_batch(db, history, row, last_seq[oracle], chain_id=chain_id, ledger=ledger)
        if events:
            last_seq[oracle] = max(last_seq[oracle], events[-1].seq)
        if reason is None:
            report.valid += len(events)
        else:
            bad_events.update((str(oracle).lower(), e.seq) for e in events)
            for event in events or [EventToSign(seq=int(first_seq), kind=0, node=b"\0" * 32, payload=b"")]:
                report.invalid.append({"oracle": to_checksum_address(oracle), "seq": event.seq,
                                       "batch": int(batch_id), "block": int(block), "reason": reason})
        if progress is not None:
            progress(done, len(batches))
    if from_batch == 1:  # a full audit; an oracle checking its peers incrementally skips it
        report.invalid += _check_quarantines(db, RegistryHistory.from_db(db), bad_events)
    orphans = report.events - sum(int(c) for (c,) in db.execute("SELECT count FROM batches WHERE batch_id >= ?",
                                                                   (from_batch,)))
    if orphans > 0:
        report.invalid.append({"oracle": None, "seq": None, "batch": None, "block": None,
                               "reason": f"{orphans} events have no signed batch"})
    return report


_VERIFIED: dict[tuple[int, str, int, int, int, bytes], bool] = {}


def batch_verifies(db: sqlite3.Connection, batch_id: int, *, chain_id: int, ledger: str, registry: str) -> bool:
    """One batch checked as the audit checks it (key epoch, sequence, ML-DSA-65 signature); memoised by
    the batch's identity and signature, so an oracle asking on every vote pays for each batch once."""
    row = db.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
    if row is None:
        return False
    oracle, signature, block, log_index = row[1], row[6], row[7], row[8]
    key = (chain_id, ledger.lower(), int(batch_id), int(block), int(log_index), bytes(signature))
    if key in _VERIFIED:
        return _VERIFIED[key]
    previous = db.execute("SELECT MAX(last_seq) FROM batches WHERE oracle = ? AND batch_id < ?",
                          (oracle, batch_id)).fetchone()[0]
    _, reason = _judge_batch(db, key_history(db, chain_id, registry), row, int(previous or 0), chain_id=chain_id,
                             ledger=ledger)
    ok = reason is None
    if len(_VERIFIED) > 100_000:
        _VERIFIED.clear()
    _VERIFIED[key] = ok
    return ok


def _check_batch(
    history: dict[str, dict[int, KeyEpoch]],
    oracle: str,
    epoch: int,
    position: tuple[int, int],
    events: list[EventToSign],
    first_seq: int,
    last_seq: int,
    count: int,
    previous_seq: int,
) -> str | None:
    keys = history.get(oracle)
    if not keys or epoch not in keys:
        return f"no published key for epoch {epoch}"
    key = keys[epoch]
    if not key.valid:
        return f"key epoch {epoch} is not trustworthy: {key.reason}"
    if key.position > position:
        return f"batch uses key epoch {epoch} before that key was published"
    newer = keys.get(epoch + 1)
    if newer is not None and newer.position < position:
        return f"batch uses key epoch {epoch} after it was rotated out"
    if len(events) != count or not events:
        return f"batch announces {count} events but {len(events)} were logged"
    if events[0].seq != first_seq or events[-1].seq != last_seq:
        return "batch sequence range does not match its events"
    if any(b.seq != a.seq + 1 for a, b in itertools.pairwise(events)):
        return "sequence numbers inside the batch are not contiguous"
    if first_seq != previous_seq + 1:
        return f"sequence jumps from {previous_seq} to {first_seq}"
    return None


def _check_quarantines(db: sqlite3.Connection, history: RegistryHistory,
                       bad_events: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Recount each sensor quarantine from chain data (`chain.quarantines`): its recorder held the
    repair role, and enough distinct Active oracles of that sector cited intrusion verdicts naming the
    sensor, against the quorum over the sector's membership at that block (never the event's claim)."""
    from chain.quarantines import quarantine_records

    problems: list[dict[str, Any]] = []
    for record in quarantine_records(db, history, invalid_events=bad_events):
        if not record.reason:
            continue
        reason = record.reason
        if record.claimed_required is not None and record.claimed_required != record.required:
            reason += f" (the event claims {record.claimed_required} are required)"
        problems.append({"oracle": to_checksum_address(record.oracle), "seq": record.seq, "batch": None,
                         "block": record.block, "reason": reason})
    return problems


# --- the audit that trusts nothing local ---------------------------------------------------------

Problems = list[dict[str, Any]]


def problem(check: str, message: str, block: int | None = None, tx: str | None = None) -> dict[str, Any]:
    """One finding: `check` names what found it (index, roles, status, quorum, council...)."""
    return {"check": check, "message": message, "block": block, "tx": tx}


@dataclass(frozen=True)
class _Log:
    block: int
    log_index: int
    tx: str
    contract: str
    event: str
    args: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        return (self.block, self.log_index)


def _logs(db: sqlite3.Connection, *events: str) -> list[_Log]:
    marks = ",".join("?" * len(events))
    rows = db.execute(f"SELECT block, log_index, tx_hash, contract, event, args FROM logs WHERE event IN ({marks}) "
                      "ORDER BY block, log_index", events).fetchall()
    return [_Log(int(b), int(i), str(tx), str(c), str(e), json.loads(a)) for b, i, tx, c, e, a in rows]


def _hex(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value).lower()


def _struct(client: ChainClient, contract: str, function: str, values: Any) -> dict[str, Any]:
    """A struct returned by a view, by field name (so a field added at the end changes nothing)."""
    outputs = next(e for e in load_artifact(contract).abi
                   if e.get("type") == "function" and e.get("name") == function)["outputs"]
    names = [c["name"] for c in outputs[0].get("components", [])] if len(outputs) == 1 else \
        [o["name"] for o in outputs]
    return dict(zip(names, values, strict=False))


def _name(value: str) -> str:
    """A bytes32 id as its ASCII name when it is one (for readable messages)."""
    raw = bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode()
    text = raw.rstrip(b"\0")
    return text.decode() if text and text.isascii() and text.decode().isprintable() else value


def check_index_against_chain(db: sqlite3.Connection, client: ChainClient, history: RegistryHistory,
                              head: int) -> Problems:
    """Does the index say what the chain's own counters say at block `head`? Every table the audit
    reads is compared with the logs and with on-chain state, and every checkpoint's block hash with
    the chain's: an index that lost a row (a forged batch hidden), gained one, or describes another
    chain, fails here."""
    out: Problems = []

    def count(sql: str, *params: Any) -> int:
        return int(db.execute(sql, params).fetchone()[0] or 0)

    # the ledger: batches and events
    on_chain_batches = int(client.call("EventLedger", "batchCount", block=head)[0])
    logged_batches = count("SELECT COUNT(*) FROM logs WHERE contract = 'EventLedger' AND event = 'BatchSigned'")
    table_batches = count("SELECT COUNT(*) FROM batches")
    if not on_chain_batches == logged_batches == table_batches:
        out.append(problem("index", f"EventLedger.batchCount() is {on_chain_batches} at block {head}, but the index "
                                    f"holds {logged_batches} BatchSigned logs and {table_batches} batches"))
    logged_events = count("SELECT COUNT(*) FROM logs WHERE contract = 'EventLedger' AND event = 'EventRecorded'")
    table_events = count("SELECT COUNT(*) FROM events")
    if logged_events != table_events:
        out.append(problem("index", f"the index holds {logged_events} EventRecorded logs but {table_events} events"))
    last_logged: dict[str, int] = defaultdict(int)
    for log in _logs(db, "EventRecorded"):
        if log.contract == "EventLedger":
            oracle = str(log.args["oracle"]).lower()
            last_logged[oracle] = max(last_logged[oracle], int(log.args["seq"]))
    last_batched = {str(o): int(s) for o, s in db.execute("SELECT oracle, MAX(last_seq) FROM batches GROUP BY oracle")}
    for oracle in sorted(set(history.oracles()) | set(last_logged) | set(last_batched)):
        on_chain = int(client.call("EventLedger", "lastSeq", to_checksum_address(oracle), block=head)[0])
        if not on_chain == last_logged.get(oracle, 0) == last_batched.get(oracle, 0):
            out.append(problem("index", f"EventLedger.lastSeq({oracle}) is {on_chain} at block {head}, but its last "
                                        f"logged seq is {last_logged.get(oracle, 0)} and its last batched seq "
                                        f"{last_batched.get(oracle, 0)}"))
    # the registry: every oracle's key and status, every node's status
    keys = {str(o): (int(e), str(h)) for o, e, h in db.execute(
        "SELECT oracle, epoch, key_hash FROM oracle_keys k WHERE epoch = (SELECT MAX(epoch) FROM oracle_keys "
        "WHERE oracle = k.oracle)")}
    for oracle in history.oracles():
        replayed = history.oracle_now(oracle)
        assert replayed is not None
        record = _struct(client, "Registry", "oracle",
                         client.call("Registry", "oracle", to_checksum_address(oracle), block=head)[0])
        key_epoch, key_hash = int(record["keyEpoch"]), _hex(record["pqKeyHash"])
        if (key_epoch, key_hash) != (replayed.key_epoch, replayed.key_hash) or keys.get(oracle) != (key_epoch, key_hash):
            out.append(problem("index", f"Registry.oracle({oracle}) holds key epoch {key_epoch} ({key_hash[:10]}…) at "
                                        f"block {head}, but the last published key is epoch {replayed.key_epoch} "
                                        f"({replayed.key_hash[:10]}…) in the logs and {keys.get(oracle)} in the index"))
        if int(record["status"]) != replayed.status:
            out.append(problem("index", f"Registry.oracle({oracle}) is {ORACLE_STATUS.get(int(record['status']))} at "
                                        f"block {head}, but its logged status changes make it {replayed.status_name}"))
        if "statusEpoch" in record and int(record["statusEpoch"]) != replayed.status_epoch:
            out.append(problem("index", f"Registry.oracle({oracle}) has status epoch {record['statusEpoch']} at block "
                                        f"{head}, but the logs make it {replayed.status_epoch}"))
    for node in history.nodes():
        replayed_node = history.node_now(node)
        assert replayed_node is not None
        record = _struct(client, "Registry", "node",
                         client.call("Registry", "node", bytes.fromhex(node[2:]), block=head)[0])
        if int(record["status"]) != replayed_node.status:
            out.append(problem("index", f"Registry.node({_name(node)}) is {NODE_STATUS.get(int(record['status']))} at "
                                        f"block {head}, but its logged status changes make it "
                                        f"{replayed_node.status_name}"))
        if "statusEpoch" in record and int(record["statusEpoch"]) != replayed_node.status_epoch:
            out.append(problem("index", f"Registry.node({_name(node)}) has status epoch {record['statusEpoch']} at "
                                        f"block {head}, but the logs make it {replayed_node.status_epoch}"))
    # every sector's counters: an index that forgot an oracle would shrink the membership a recount uses
    registry_functions = client.abi("Registry").functions
    node_sectors: dict[str, list[int]] = defaultdict(list)
    for node in history.nodes():
        state = history.node_now(node)
        if state is not None:
            node_sectors[state.sector].append(state.status)
    sectors = set(history.sectors) | {s.sector for o in history.oracles() if (s := history.oracle_now(o))} | set(node_sectors)
    end = (1 << 62, 0)
    for sector in sorted(sectors):
        raw = bytes.fromhex(sector[2:])
        expected = {"activeOracleCount": len(history.active_at(sector, end)),
                    "oracleSlots": len(history.members_at(sector, end)),
                    "sectorNodeCount": len(node_sectors[sector]),
                    "sectorIsolatedCount": sum(1 for st in node_sectors[sector] if st in (2, 3))}
        for function, replayed_count in expected.items():
            if function not in registry_functions:
                continue
            on_chain = int(client.call("Registry", function, raw, block=head)[0])
            if on_chain != replayed_count:
                out.append(problem("index", f"Registry.{function}({_name(sector)}) is {on_chain} at block {head}, "
                                            f"but the logs make it {replayed_count}"))
    # the quorum's and the council's proposals
    for contract in ("IsolationQuorum", "GovernanceCouncil"):
        if "proposalCount" not in client.abi(contract).functions:
            continue
        on_chain = int(client.call(contract, "proposalCount", block=head)[0])
        logged = count("SELECT COUNT(*) FROM logs WHERE contract = ? AND event = 'ProposalCreated'", contract)
        if on_chain != logged:
            out.append(problem("index", f"{contract}.proposalCount() is {on_chain} at block {head}, but the index "
                                        f"holds {logged} ProposalCreated logs"))
    # the chain the index describes is this chain
    last = db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
    if last is None or int(last[0]) != head:
        out.append(problem("index", f"the index ends at block {last[0] if last else 'none'}, not at the head {head}"))
    checkpoints = db.execute("SELECT number, hash FROM checkpoints ORDER BY number").fetchall()
    for lo in range(0, len(checkpoints), 500):
        chunk = checkpoints[lo:lo + 500]
        blocks = client.rpc.batch([("eth_getBlockByNumber", [hex(int(n)), False]) for n, _ in chunk])
        for (number, stored), block in zip(chunk, blocks, strict=True):
            if block is None or str(block["hash"]).lower() != str(stored).lower():
                out.append(problem("index", f"checkpoint block {number} has hash {str(stored)[:12]}… in the index "
                                            f"but {'none' if block is None else str(block['hash'])[:12] + '…'} "
                                            "on the chain", block=int(number)))
    if int(history.last_position[0]) > head or any(
            int(b) > head for (b,) in db.execute("SELECT MAX(block) FROM logs") if b is not None):
        out.append(problem("index", f"the index holds logs beyond the audited head {head}"))
    return out


_COUNCIL_EXECUTIONS = ("ProposalExecuted", "EmergencyExecuted")


def check_governance(db: sqlite3.Connection, history: RegistryHistory, deployment: Deployment) -> Problems:
    """Every role change, override, repair and status change, explained from the logs alone.

    - RoleGranted/RoleRevoked: the deployer only while deploying (at or before the manifest's block),
      then only the council (a holder may renounce its own role); after the deployment the deployer
      holds no role, and the council holds the admin role of the Registry and the quorum;
    - GovernanceOverride: in a transaction the council executed;
    - RepairStarted: by a holder of REPAIR_ROLE at that position;
    - NodeStatusChanged / OracleStatusChanged: in the same transaction as the decision that explains
      it — the quorum's ProposalExecuted on that target, a GovernanceOverride or RepairStarted of that
      node, or a council execution.
    """
    out: Problems = []
    council, deployer = deployment.governance_council.lower(), deployment.deployer.lower()
    deployed = deployment.deployed_at_block
    for log in _logs(db, "RoleGranted", "RoleRevoked"):
        sender, account = str(log.args["sender"]).lower(), str(log.args["account"]).lower()
        role = _hex(log.args["role"])
        during_deployment = log.block <= deployed and sender == deployer
        renounced = log.event == "RoleRevoked" and sender == account
        if not (sender == council or during_deployment or renounced):
            out.append(problem("roles", f"{log.contract}.{log.event} of role {_role_name(role)} to {account} by {sender}, "
                                        "which is not the council", log.block, log.tx))
    end_of_deployment = (deployed, 1 << 30)
    for contract in ("Registry", "IsolationQuorum"):
        for role in _ROLE_NAMES:
            if history.has_role_at(contract, role, deployer, end_of_deployment):
                out.append(problem("roles", f"the deployer {deployer} still holds {contract}'s {_role_name(role)} after "
                                            f"the deployment (block {deployed})", deployed))
        if not history.has_role_at(contract, _DEFAULT_ADMIN, council, (1 << 62, 0)):
            out.append(problem("roles", f"the council {council} does not hold {contract}'s DEFAULT_ADMIN_ROLE"))

    council_txs = {log.tx for log in _logs(db, *_COUNCIL_EXECUTIONS) if log.contract == "GovernanceCouncil"}
    executed: dict[str, set[str]] = defaultdict(set)  # tx → targets the quorum executed
    for log in _logs(db, "ProposalExecuted"):
        if log.contract == "IsolationQuorum":
            executed[log.tx].add(_hex(log.args["target"]))
    overrides: dict[str, set[str]] = defaultdict(set)
    for log in _logs(db, "GovernanceOverride"):
        overrides[log.tx].add(_hex(log.args["node"]))
        if log.tx not in council_txs:
            out.append(problem("override", f"GovernanceOverride of {_name(_hex(log.args['node']))} was not executed "
                                           "by the council", log.block, log.tx))
    repairs: dict[str, set[str]] = defaultdict(set)
    for log in _logs(db, "RepairStarted"):
        node, by = _hex(log.args["node"]), str(log.args["by"]).lower()
        repairs[log.tx].add(node)
        if not history.has_role_at("IsolationQuorum", REPAIR_ROLE, by, log.position):
            out.append(problem("repair", f"RepairStarted of {_name(node)} by {by}, which does not hold REPAIR_ROLE",
                               log.block, log.tx))
    for log in _logs(db, "NodeStatusChanged", "OracleStatusChanged"):
        if log.contract != "Registry":
            continue
        if log.event == "NodeStatusChanged":
            target = _hex(log.args["node"])
            what = f"node {_name(target)}"
            explained = (target in executed.get(log.tx, ()) or target in overrides.get(log.tx, ())
                         or target in repairs.get(log.tx, ()))
        else:
            account = str(log.args["account"]).lower()
            target = "0x" + account[2:].rjust(64, "0")
            what = f"oracle {account}"
            explained = target in executed.get(log.tx, ())
        if not explained and log.tx not in council_txs:
            frm, to = int(log.args["from"]), int(log.args["to"])
            names = NODE_STATUS if log.event == "NodeStatusChanged" else ORACLE_STATUS
            out.append(problem("status", f"{what} moved {names.get(frm, frm)} → {names.get(to, to)} with no quorum "
                                         "execution, override, repair or council execution in the same transaction",
                               log.block, log.tx))
    out += [problem("registry", p.message, p.position[0], p.tx) for p in history.problems]
    return out


_DEFAULT_ADMIN = "0x" + "00" * 32
_ROLE_NAMES = {_DEFAULT_ADMIN: "DEFAULT_ADMIN_ROLE",
               **{"0x" + keccak(text=n).hex(): n for n in ("GOVERNANCE_ROLE", "STATUS_ROLE", "REPAIR_ROLE")}}


def _role_name(role: str) -> str:
    return _ROLE_NAMES.get(role, role)


# The decisions' recounts. Each entry: (name, module, function, how to call it). A module that does not
# exist yet is skipped (reported in `AuditReport.skipped`), so the audit runs while they are written.
#   chain.quorum_audit.recount_quorum(db, history, chain_id, quorum_address) -> list[problem dict]
#       (the lead: membership captured at ProposalCreated, voters Active at VoteCast, ML-DSA votes)
#   chain.council_audit.recount_council(db, chain_id, council_address) -> list[problem dict]
RecountCall = Callable[[Callable[..., Any], sqlite3.Connection, RegistryHistory, int, Deployment], Any]
RECOUNTS: list[tuple[str, str, str, RecountCall]] = [
    ("quorum", "chain.quorum_audit", "recount_quorum",
     lambda fn, db, history, chain_id, d: fn(db, history, chain_id, d.isolation_quorum)),
    ("council", "chain.council_audit", "recount_council",
     lambda fn, db, history, chain_id, d: [
         {**e, "message": f"{e.get('kind')}: {e.get('detail')}"}
         for e in fn(db, chain_id, d.governance_council) if not e.get("ok", False)]),
]


def recount_decisions(db: sqlite3.Connection, history: RegistryHistory, chain_id: int,
                      deployment: Deployment) -> tuple[Problems, list[str]]:
    """Run every recount in `RECOUNTS`; returns (problems, names of recounts not available)."""
    out: Problems = []
    skipped: list[str] = []
    for name, module_name, function, call in RECOUNTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name != module_name:
                raise  # the module exists but is broken: that must not pass as "skipped"
            skipped.append(f"{name} recount ({module_name}.{function} not available)")
            continue
        fn = getattr(module, function, None)
        if fn is None:
            skipped.append(f"{name} recount ({module_name}.{function} not available)")
            continue
        for found in call(fn, db, history, chain_id, deployment) or []:
            out.append(_as_problem(name, found))
    return out, skipped


def _as_problem(check: str, found: Any) -> dict[str, Any]:
    if not isinstance(found, dict):
        return problem(check, str(found))
    message = found.get("message") or found.get("reason") or json.dumps(found, default=str)
    tx = found.get("tx") or found.get("tx_hash")
    return {**found, **problem(check, str(message), found.get("block"), str(tx) if tx else None)}


def verify_everything(
    db: sqlite3.Connection,
    client: ChainClient,
    deployment: Deployment,
    *,
    head: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> AuditReport:
    """The whole audit on an index synced to `head` (`qeaims audit verify`)."""
    step = progress or (lambda _what, _done, _total: None)
    report = verify_chain_history(db, chain_id=client.chain_id, ledger=deployment.event_ledger,
                                  registry=deployment.registry,
                                  progress=lambda done, total: step("verifying batches", done, total))
    report.head = head
    step("replaying the registry", 0, 1)
    history = RegistryHistory.from_db(db)
    step("checking the index against the chain", 0, 1)
    report.problems += check_index_against_chain(db, client, history, head)
    step("checking roles, overrides and status changes", 0, 1)
    report.problems += check_governance(db, history, deployment)
    step("recounting decisions", 0, 1)
    found, skipped = recount_decisions(db, history, client.chain_id, deployment)
    report.problems += found
    report.skipped += skipped
    return report
