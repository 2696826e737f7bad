"""Recount the governance council from chain data alone.

`recount_council` replays the council's logs from an index's `logs` table (rows of block,
log_index, tx_hash, timestamp, contract, event, args JSON — see `chain/indexer.py`) in chain order:
governors with their ML-DSA-65 keys (`GovernorAdded` carries the full key and its proof of
possession), thresholds, proposals with their calls, approvals with their ML-DSA signatures,
revocations, queues and executions. It trusts none of the contract's counts: it verifies every
signature itself and counts, for each execution, the approvals that

- come from a governor that is a governor at the execution, under the membership it approved in
  (an approval from a removed governor never counts again, even if the account was added back);
- carry a valid ML-DSA-65 signature over `keys.council_messages.approval_message` for the calls
  hash recomputed from the logged calls, by the key registered for the governor at that key epoch,
  whose proof of possession verified.

It returns one entry per finding, each a dict with `kind`, `ok`, `block`, `tx_hash`, `detail` and
kind-specific fields:

- `executed-without-quorum` (ok False): a `ProposalExecuted` whose valid approvals were below the
  threshold at execution;
- `executed-before-eta` (ok False): executed before its queue's eta;
- `emergency-execution` (always reported; ok False when the valid approvals were below
  min(threshold + 1, governors) or the logged requirement differs from the recount);
- `emergency-call-not-allowlisted` (ok False): an emergency execution with a call whose (target,
  selector) was not on the emergency allowlist at that moment, as replayed from `EmergencyCallSet`
  (the contract refuses these; the finding catches a contract or a history that did not);
- `bad-approval-signature` (ok False): an approval whose ML-DSA signature does not verify;
- `bad-governor-key` (ok False): a governor key whose hash or proof of possession does not verify;
- `calls-hash-mismatch` (ok False): a proposal whose logged calls do not hash to its logged hash.

Problems are the entries with `ok` False. A key rotation for governors is a council proposal
(remove, add with a new key): the key epoch rises with every add, so the replay keys by (governor, epoch).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from keys._abi import keccak256
from keys.council_messages import calls_hash, verify_approval, verify_governor_key

__all__ = ["ApprovalCheck", "council_approvals", "recount_council"]

_CONTRACT = "GovernanceCouncil"


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    text = str(value)
    return bytes.fromhex(text.removeprefix("0x"))


@dataclass
class _Approval:
    tag: int
    valid: bool
    governor: str = ""
    key_epoch: int = 0
    signature_ok: bool = False
    block: int = 0
    tx_hash: str = ""


@dataclass(frozen=True)
class ApprovalCheck:
    """One standing approval of a proposal as the recount judges it: whether its ML-DSA-65 signature
    verifies (`signature_ok`, with the key registered for that governor and epoch), and whether it
    counts now (`counts`: it verifies and its governor is still a governor, in the same membership)."""

    governor: str
    key_epoch: int
    signature_ok: bool
    counts: bool
    block: int
    tx_hash: str


@dataclass
class _Proposal:
    calls_hash: bytes
    calls: list[tuple[str, bytes]] = field(default_factory=list)  # (target lower-case, calldata)
    approvals: dict[str, _Approval] = field(default_factory=dict)
    eta: int = 0


@dataclass
class _Replay:
    chain_id: int
    council: str
    threshold: int = 0
    nonce: int = 0
    members: dict[str, int] = field(default_factory=dict)  # governor → membership tag
    keys: dict[tuple[str, int], tuple[bytes, bool]] = field(default_factory=dict)  # (governor, epoch) → key, valid
    epochs: dict[str, int] = field(default_factory=dict)  # governor → current key epoch
    proposals: dict[int, _Proposal] = field(default_factory=dict)
    emergency_calls: set[tuple[str, bytes]] = field(default_factory=set)  # (target lower-case, selector)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def report(self, kind: str, ok: bool, where: tuple[int, str], detail: str, **extra: Any) -> None:
        self.findings.append({"kind": kind, "ok": ok, "block": where[0], "tx_hash": where[1], "detail": detail,
                              **extra})

    def reconfigured(self) -> None:
        """A membership or threshold change re-opens every queue (the contract's `queuedUnder`)."""
        for proposal in self.proposals.values():
            proposal.eta = 0

    def valid_approvals(self, proposal: _Proposal) -> int:
        return sum(1 for governor, a in proposal.approvals.items()
                   if a.valid and self.members.get(governor) == a.tag)


def recount_council(db: sqlite3.Connection, chain_id: int, council_address: str) -> list[dict[str, Any]]:
    """Replay the council's history from `db`'s `logs` table; see the module docstring."""
    return _replay(db, chain_id, council_address).findings


def council_approvals(db: sqlite3.Connection, chain_id: int, council_address: str) -> dict[int, list[ApprovalCheck]]:
    """Every proposal's standing approvals (revoked ones left out), in the order they were given, each
    checked as the recount checks it: what a governance page shows beside the contract's own count."""
    replay = _replay(db, chain_id, council_address)
    return {pid: [ApprovalCheck(governor=a.governor, key_epoch=a.key_epoch, signature_ok=a.signature_ok,
                                counts=a.valid and replay.members.get(account) == a.tag, block=a.block,
                                tx_hash=a.tx_hash)
                  for account, a in proposal.approvals.items()]
            for pid, proposal in replay.proposals.items()}


def _replay(db: sqlite3.Connection, chain_id: int, council_address: str) -> _Replay:
    replay = _Replay(chain_id=chain_id, council=council_address)
    rows = db.execute(
        "SELECT block, tx_hash, timestamp, event, args FROM logs WHERE contract = ? ORDER BY block, log_index",
        (_CONTRACT,),
    )
    for block, tx_hash, timestamp, event, raw in rows:
        handler = _HANDLERS.get(str(event))
        if handler is not None:
            handler(replay, json.loads(raw), (int(block), str(tx_hash)), None if timestamp is None else int(timestamp))
    return replay


def _governor_added(r: _Replay, a: dict[str, Any], where: tuple[int, str], _: int | None) -> None:
    account = str(a["account"]).lower()
    epoch = int(a["keyEpoch"])
    public_key = _bytes(a["publicKey"])
    valid = keccak256(public_key) == _bytes(a["keyHash"]) and verify_governor_key(
        public_key, _bytes(a["proofOfPossession"]), chain_id=r.chain_id, council=r.council,
        account=str(a["account"]), key_epoch=epoch)
    if not valid:
        r.report("bad-governor-key", False, where, f"governor {a['account']} key epoch {epoch}: the key hash or its "
                 "proof of possession does not verify; its approvals do not count", governor=str(a["account"]),
                 key_epoch=epoch)
    r.nonce += 1
    r.members[account] = r.nonce
    r.epochs[account] = epoch
    r.keys[(account, epoch)] = (public_key, valid)
    r.reconfigured()


def _governor_removed(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    r.members.pop(str(a["account"]).lower(), None)
    r.reconfigured()


def _threshold_changed(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    r.threshold = int(a["newThreshold"])
    r.reconfigured()


def _proposal_created(r: _Replay, a: dict[str, Any], where: tuple[int, str], _: int | None) -> None:
    pid = int(a["proposalId"])
    description = str(a["description"])
    recomputed = calls_hash([str(t) for t in a["targets"]], [int(v) for v in a["values"]],
                            [_bytes(c) for c in a["calldatas"]], keccak256(description.encode("utf-8")))
    if recomputed != _bytes(a["callsHash"]):
        r.report("calls-hash-mismatch", False, where, f"proposal {pid}: the logged calls do not hash to the logged "
                 "callsHash", proposal_id=pid)
    calls = [(str(t).lower(), _bytes(c)) for t, c in zip(a["targets"], a["calldatas"], strict=True)]
    r.proposals[pid] = _Proposal(calls_hash=recomputed, calls=calls)


def _proposal_approved(r: _Replay, a: dict[str, Any], where: tuple[int, str], _: int | None) -> None:
    pid = int(a["proposalId"])
    proposal = r.proposals.get(pid)
    if proposal is None:
        return
    governor = str(a["governor"])
    account = governor.lower()
    epoch = int(a["keyEpoch"])
    public_key, key_valid = r.keys.get((account, epoch), (b"", False))
    current = account in r.members and r.epochs.get(account) == epoch
    signature_ok = key_valid and verify_approval(
        public_key, _bytes(a["signature"]), chain_id=r.chain_id, council=r.council, proposal_id=pid,
        calls_hash=proposal.calls_hash, governor=governor, key_epoch=epoch)
    if not signature_ok:
        r.report("bad-approval-signature", False, where, f"proposal {pid}: the ML-DSA approval of {governor} (key "
                 f"epoch {epoch}) does not verify; it is not counted", proposal_id=pid, governor=governor)
    proposal.approvals[account] = _Approval(tag=r.members.get(account, 0), valid=signature_ok and current,
                                            governor=governor, key_epoch=epoch, signature_ok=signature_ok,
                                            block=where[0], tx_hash=where[1])


def _approval_revoked(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    proposal = r.proposals.get(int(a["proposalId"]))
    if proposal is not None:
        proposal.approvals.pop(str(a["governor"]).lower(), None)


def _proposal_queued(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    proposal = r.proposals.get(int(a["proposalId"]))
    if proposal is not None:
        proposal.eta = int(a["eta"])


def _proposal_unqueued(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    proposal = r.proposals.get(int(a["proposalId"]))
    if proposal is not None:
        proposal.eta = 0


def _proposal_executed(r: _Replay, a: dict[str, Any], where: tuple[int, str], timestamp: int | None) -> None:
    pid = int(a["proposalId"])
    proposal = r.proposals.get(pid)
    counted = 0 if proposal is None else r.valid_approvals(proposal)
    if counted < r.threshold:
        r.report("executed-without-quorum", False, where, f"proposal {pid} executed with {counted} valid ML-DSA "
                 f"approvals of current governors, threshold {r.threshold}", proposal_id=pid, approvals=counted,
                 threshold=r.threshold)
    if proposal is not None and timestamp is not None and (proposal.eta == 0 or timestamp < proposal.eta):
        r.report("executed-before-eta", False, where, f"proposal {pid} executed at {timestamp}, queue eta "
                 f"{proposal.eta or 'none'}", proposal_id=pid, eta=proposal.eta, timestamp=timestamp)


def _emergency_executed(r: _Replay, a: dict[str, Any], where: tuple[int, str], _: int | None) -> None:
    pid = int(a["proposalId"])
    proposal = r.proposals.get(pid)
    counted = 0 if proposal is None else r.valid_approvals(proposal)
    n = len(r.members)
    required = r.threshold + 1 if r.threshold < n else n
    ok = counted >= required and int(a["required"]) == required
    r.report("emergency-execution", ok, where,
             f"proposal {pid} executed without the delay by {a['executor']}: {counted} valid ML-DSA approvals, "
             f"{required} required (logged {int(a['approvals'])} of {int(a['required'])}); reason: {a['reason']}",
             proposal_id=pid, approvals=counted, required=required, reason=str(a["reason"]),
             executor=str(a["executor"]))
    for index, (target, data) in enumerate([] if proposal is None else proposal.calls):
        if len(data) < 4 or (target, data[:4]) not in r.emergency_calls:
            r.report("emergency-call-not-allowlisted", False, where,
                     f"proposal {pid} call {index} ({target} selector 0x{data[:4].hex()}) ran without the delay "
                     "but was not on the emergency allowlist", proposal_id=pid, index=index, target=target,
                     selector="0x" + data[:4].hex())


def _emergency_call_set(r: _Replay, a: dict[str, Any], _w: tuple[int, str], _t: int | None) -> None:
    entry = (str(a["target"]).lower(), _bytes(a["selector"]))
    if a["allowed"]:
        r.emergency_calls.add(entry)
    else:
        r.emergency_calls.discard(entry)


_HANDLERS = {
    "GovernorAdded": _governor_added,
    "GovernorRemoved": _governor_removed,
    "ThresholdChanged": _threshold_changed,
    "ProposalCreated": _proposal_created,
    "ProposalApproved": _proposal_approved,
    "ApprovalRevoked": _approval_revoked,
    "ProposalQueued": _proposal_queued,
    "ProposalUnqueued": _proposal_unqueued,
    "ProposalExecuted": _proposal_executed,
    "EmergencyExecuted": _emergency_executed,
    "EmergencyCallSet": _emergency_call_set,
}
