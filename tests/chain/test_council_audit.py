"""recount_council on hand-made histories (an index's `logs` table, no chain): what it counts and
what it reports. The Anvil end-to-end cases are in test_deploy_and_governance.py."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from chain.council_audit import recount_council
from keys.council_messages import calls_hash, description_hash, sign_approval, sign_governor_key
from keys.identity import HybridIdentity

CHAIN_ID = 31337
COUNCIL = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TARGET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


class History:
    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE TABLE logs (block INTEGER, log_index INTEGER, tx_hash TEXT, timestamp INTEGER, "
                        "contract TEXT, event TEXT, args TEXT)")
        self.block = 0
        self.time = 1_000
        self.epochs: dict[str, int] = {}
        self.hashes: dict[int, bytes] = {}

    def log(self, event: str, **args: Any) -> None:
        self.block += 1
        self.time += 1
        jsonable = {k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in args.items()}
        self.db.execute("INSERT INTO logs VALUES (?, 0, ?, ?, 'GovernanceCouncil', ?, ?)",
                        (self.block, f"0x{self.block:064x}", self.time, event, json.dumps(jsonable)))

    def add(self, g: HybridIdentity, *, forged_pop: bool = False) -> None:
        epoch = self.epochs.get(g.address, 0) + 1
        self.epochs[g.address] = epoch
        pop = sign_governor_key(g, chain_id=CHAIN_ID, council=COUNCIL, key_epoch=epoch + (1 if forged_pop else 0))
        self.log("GovernorAdded", account=g.address, keyEpoch=epoch, keyHash=g.pq_key_hash, publicKey=g.pq_public_key,
                 proofOfPossession=pop)

    def propose(self, pid: int, data: bytes = b"\x01") -> None:
        self.hashes[pid] = calls_hash([TARGET], [0], [data], description_hash("d"))
        self.log("ProposalCreated", proposalId=pid, proposer=TARGET, targets=[TARGET], values=[0],
                 calldatas=["0x" + data.hex()], description="d", callsHash=self.hashes[pid], expiresAt=0)

    def approve(self, g: HybridIdentity, pid: int, *, sign_for: int | None = None) -> None:
        epoch = self.epochs[g.address]
        sig = sign_approval(g, chain_id=CHAIN_ID, council=COUNCIL, proposal_id=sign_for or pid,
                            calls_hash=self.hashes[pid], key_epoch=epoch)
        self.log("ProposalApproved", proposalId=pid, governor=g.address, approvals=0, keyEpoch=epoch, signature=sig)

    def queue(self, pid: int, delay: int = 1) -> None:
        self.log("ProposalQueued", proposalId=pid, eta=self.time + 1 + delay)

    def recount(self) -> list[dict[str, Any]]:
        return recount_council(self.db, CHAIN_ID, COUNCIL)


@pytest.fixture(scope="module")
def people() -> list[HybridIdentity]:
    return [HybridIdentity.generate() for _ in range(4)]


def _problems(h: History) -> list[tuple[str, int | None]]:
    return sorted((f["kind"], f.get("proposal_id")) for f in h.recount() if not f["ok"])


def test_genuine_history_is_clean(people: list[HybridIdentity]) -> None:
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=3)
    h.propose(1)
    for g in people[:3]:
        h.approve(g, 1)
    h.queue(1)
    h.time += 5
    h.log("ProposalExecuted", proposalId=1, executor=people[0].address)
    assert _problems(h) == []


def test_removed_governor_approval_does_not_count_even_if_added_back(people: list[HybridIdentity]) -> None:
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=3)
    h.propose(1)
    for g in people[:3]:
        h.approve(g, 1)
    h.log("GovernorRemoved", account=people[2].address)
    h.add(people[2])  # back, new membership and key epoch: its old approval is stale
    h.queue(1)
    h.time += 5
    h.log("ProposalExecuted", proposalId=1, executor=people[0].address)
    findings = [f for f in h.recount() if not f["ok"]]
    assert [(f["kind"], f["approvals"]) for f in findings if f["kind"] == "executed-without-quorum"] == [
        ("executed-without-quorum", 2)]


def test_bad_proof_of_possession_voids_the_governors_approvals(people: list[HybridIdentity]) -> None:
    h = History()
    h.add(people[0])
    h.add(people[1])
    h.add(people[2], forged_pop=True)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=3)
    h.propose(1)
    for g in people[:3]:
        h.approve(g, 1)
    h.queue(1)
    h.time += 5
    h.log("ProposalExecuted", proposalId=1, executor=people[0].address)
    assert _problems(h) == [("bad-approval-signature", 1), ("bad-governor-key", None),
                            ("executed-without-quorum", 1)]


def test_replayed_signature_and_execution_before_eta(people: list[HybridIdentity]) -> None:
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=2)
    h.propose(1)
    h.propose(2)
    h.approve(people[0], 2)
    h.approve(people[1], 2, sign_for=1)  # a signature for proposal 1 replayed on proposal 2
    h.approve(people[2], 2)
    h.queue(2, delay=100)
    h.log("ProposalExecuted", proposalId=2, executor=people[0].address)  # long before the eta
    assert _problems(h) == [("bad-approval-signature", 2), ("executed-before-eta", 2)]


def test_threshold_change_reopens_the_queue(people: list[HybridIdentity]) -> None:
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=2)
    h.propose(1)
    h.approve(people[0], 1)
    h.approve(people[1], 1)
    h.queue(1)
    h.log("ThresholdChanged", oldThreshold=2, newThreshold=2)  # any reconfiguration: the queue is stale
    h.time += 5
    h.log("ProposalExecuted", proposalId=1, executor=people[0].address)
    assert _problems(h) == [("executed-before-eta", 1)]


def test_emergency_recount_is_always_reported(people: list[HybridIdentity]) -> None:
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=2)
    h.propose(1)
    for g in people[:3]:
        h.approve(g, 1)
    h.log("EmergencyExecuted", proposalId=1, executor=people[0].address, approvals=3, required=3, reason="storm")
    h.propose(2)
    for g in people[:2]:
        h.approve(g, 2)
    h.log("EmergencyExecuted", proposalId=2, executor=people[0].address, approvals=2, required=2, reason="lie")
    emergencies = [(f["proposal_id"], f["ok"], f["approvals"], f["required"])
                   for f in h.recount() if f["kind"] == "emergency-execution"]
    assert emergencies == [(1, True, 3, 3), (2, False, 2, 3)]


def test_emergency_call_off_the_allowlist_is_a_problem(people: list[HybridIdentity]) -> None:
    """An EmergencyExecuted whose call was not on the allowlist at that moment (replayed from
    EmergencyCallSet) is a problem, even with enough genuine approvals."""
    h = History()
    for g in people:
        h.add(g)
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=2)
    force = bytes.fromhex("a1b2c3d4") + b"\x00" * 64
    h.log("EmergencyCallSet", target=TARGET, selector=force[:4], allowed=True)

    def emergency(pid: int, data: bytes) -> None:
        h.propose(pid, data)
        for g in people[:3]:
            h.approve(g, pid)
        h.log("EmergencyExecuted", proposalId=pid, executor=people[0].address, approvals=3, required=3, reason="x")

    emergency(1, force)  # allowlisted: fine
    emergency(2, bytes.fromhex("deadbeef") + b"\x00" * 32)  # another selector on the same target
    emergency(3, b"\x01")  # shorter than a selector: never allowlisted
    h.log("EmergencyCallSet", target=TARGET, selector=force[:4], allowed=False)
    emergency(4, force)  # taken off before this one
    assert _problems(h) == [("emergency-call-not-allowlisted", 2), ("emergency-call-not-allowlisted", 3),
                            ("emergency-call-not-allowlisted", 4)]
    [second] = [f for f in h.recount() if f["kind"] == "emergency-call-not-allowlisted" and f["proposal_id"] == 2]
    assert second["selector"] == "0xdeadbeef" and second["target"] == TARGET.lower() and second["index"] == 0


def test_tampered_calls_are_reported(people: list[HybridIdentity]) -> None:
    h = History()
    h.add(people[0])
    h.log("ThresholdChanged", oldThreshold=0, newThreshold=1)
    h.propose(1)
    h.db.execute("UPDATE logs SET args = json_set(args, '$.calldatas[0]', '0x02') WHERE event = 'ProposalCreated'")
    h.approve(people[0], 1)
    assert ("calls-hash-mismatch", 1) in _problems(h)
