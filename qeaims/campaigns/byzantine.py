"""The Byzantine campaign: in every run, random real faults and up to f lying oracles per sector,
decided by the real IsolationQuorum on a dev chain of the campaign's own (docs/campaigns.md).

A run, drawn entirely from its derived seed:
1. per sector: which nodes are really faulty (within the isolation cap, so the cap never explains a
   missed isolation), which oracles lie (up to f = ⌊(n−1)/3⌋, or exactly `liars` when a test forces
   more), and each liar's behaviours (`BEHAVIOURS`, a random non-empty combination). Liars collude:
   one healthy *victim* per sector is the target of all their false votes.
2. every honest oracle votes to isolate exactly the faulty nodes with the oracles' own code
   (`QuorumClient.propose`, as `oracles.node.voting` does); the liars act; all of it in a random order.
   Honest detection is taken as given here: how well faults are detected is what the detection
   benchmarks measure; this campaign tests the trust core that turns votes into decisions.
3. the outcome is read from the Registry: a healthy node isolated is a *wrongful* isolation, a
   faulty node still active once every honest oracle has voted is a *missed* one; an honest oracle
   quarantined (step 4) is a wrongful isolation too.
4. the sector's honest peers check every vote of the run with the production check
   (`chain.quorum_audit.bad_votes`, which `oracles.peer_check` runs: signature over the proposal's
   ballot, key epoch, voter) and put the sender of a bad one to the quarantine quorum.
5. state is restored by the production path: the controller begins the repair of each isolated node
   and the honest oracles vote it back; what they cannot (only when liars exceed f) and every
   quarantined oracle go back through a council proposal (`forceReintegrate`, `reinstateOracle`).
   The chain's clock then moves past the voting window and the quarantine-rate window
   (`devchain.advance_time`), so each run is one window: leftover liar proposals expire instead of
   collecting the votes of later runs' liars, and the quarantine rate refills.
At the end the auditor's recount (`chain.quorum_audit.recount_quorum`, what `qeaims audit verify`
runs) replays every decision from chain data; its findings are attributed to runs and checked
against the peers' findings.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from eth_utils.crypto import keccak

from chain.client import ChainClient
from chain.connect import contract_abis
from chain.consortium import ORACLES_PER_SECTOR, nodes
from chain.deploy import dev_controller, dev_governors, dev_oracle
from chain.governance import Call, Council, ProposalCalls
from chain.indexer import Indexer
from chain.quorum import VOTE_GAS, Action, QuorumClient
from chain.quorum_audit import bad_votes, recount_quorum
from chain.registry_history import RegistryHistory
from core.errors import ChainError, ConfigError, ContractRejected
from keys.hybrid import Ballot, sign_vote
from keys.identity import HybridIdentity
from keys.ids import from_bytes32, to_bytes32
from qeaims.campaigns.common import RunRecord, Tally, run_rng
from qeaims.campaigns.devchain import DevChain, advance_time

__all__ = ["BEHAVIOURS", "ByzantineCampaign", "byzantine_f"]

BEHAVIOURS = (
    "false-isolation",  # a validly signed vote to isolate the healthy victim
    "forged-signature",  # a vote whose ML-DSA-65 signature is random bytes of the right length
    "replayed-vote",  # an old signed vote (an earlier epoch's proposal) submitted again
    "silence",  # no vote on the sector's real fault
    "equivocation",  # two conflicting signed ballots for one decision, both submitted
    "wrong-key-epoch",  # a vote under a key epoch the registry does not hold
    "cross-sector",  # a vote on another sector's node
    "false-quarantine",  # a proposal to quarantine an honest peer
    "vote-own-quarantine",  # once put to the quarantine quorum, a vote on its own quarantine
)
_PICK_P = 0.4  # each behaviour is in a liar's combination with this probability (at least one is)
_FAULT_P = 0.75  # a sector has real faults in this share of runs
_NO_LIAR_P = 0.15  # with liars not forced, a sector has none in this share of runs
_ISOLATED, _ACTIVE = "isolated", "active"
_QUARANTINED = 2  # Registry.OracleStatus
_SIGNATURE_BYTES = 3309
_MOOT = ("QuorumNodeNotInState", "QuorumWrongState", "QuorumAlreadyVoted")


def byzantine_f(n: int) -> int:
    """The oracles of n a Byzantine quorum tolerates: ⌊(n−1)/3⌋ (IsolationQuorum.quorumSize)."""
    return (n - 1) // 3


@dataclass(frozen=True)
class _Step:
    """One thing an oracle does in a run: who, which behaviour (or "honest"), and the call."""

    actor: int
    behaviour: str
    detail: str
    act: Callable[[], str]


@dataclass
class _SectorPlan:
    sector: str
    nodes: list[str]
    faulty: list[str]
    victim: str
    liars: dict[int, list[str]]  # oracle index → behaviours
    steps: list[_Step] = field(default_factory=list)

    @property
    def honest(self) -> list[int]:
        return [i for i in range(ORACLES_PER_SECTOR) if i not in self.liars]

    def drawn(self) -> dict[str, Any]:
        return {"faulty": list(self.faulty), "victim": self.victim,
                "liars": {str(i + 1): list(b) for i, b in sorted(self.liars.items())},
                "order": [f"{s.actor + 1}:{s.behaviour}:{s.detail}" for s in self.steps]}


def _node_target(node: str) -> bytes:
    return to_bytes32(node)


def _oracle_target(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _refusal(exc: ChainError) -> str:
    return f"refused {exc.error}" if isinstance(exc, ContractRejected) else f"failed {type(exc).__name__}"


class ByzantineCampaign:
    """Runs on one dev chain; `setup()` once, then `run()` per derived seed, `finish()` at the end."""

    def __init__(self, chain: DevChain, sectors: Sequence[str], liars: int | None = None) -> None:
        self.chain = chain
        self.client: ChainClient = chain.client
        self.quorum = QuorumClient(chain.client)
        self.sectors = tuple(sectors)
        self.forced_liars = liars
        self.oracles = {s: [dev_oracle(chain.settings, s, i) for i in range(1, ORACLES_PER_SECTOR + 1)]
                        for s in self.sectors}
        self.nodes = {s: [n.node for n in nodes() if n.sector == s] for s in self.sectors}
        self.other_nodes = {s: [n.node for n in nodes() if n.sector != s] for s in self.sectors}
        self.controller = dev_controller(chain.settings)
        self.council = Council(chain.client, dev_governors(chain.settings))
        self.quorum_address = chain.deployment.isolation_quorum
        self.archive: dict[str, list[bytes]] = {}  # sector → old vote signatures (setup's epoch)
        self.run_proposals: dict[int, tuple[int, int]] = {}  # run index → proposal ids (first, last]
        self.peer_flags: dict[int, set[tuple[int, str]]] = {}  # run index → (proposal, voter) peers found bad
        cap = int(self.client.call1("IsolationQuorum", "isolationCapBps"))
        self.max_faults = {s: len(self.nodes[s]) * cap // 10_000 for s in self.sectors}
        window = max(int(self.client.call1("IsolationQuorum", "votingWindow")),
                     int(self.client.call1("IsolationQuorum", "quarantineWindow")))
        self.window_s = window + 1
        # the peers' view of the chain, as a `PeerChecker`'s: synced before each run's check and the recount
        self._index_dir = tempfile.TemporaryDirectory(prefix="qeaims-campaign-index-")
        self.index = Indexer(Path(self._index_dir.name) / "index.sqlite", chain.client.rpc, chain.deployment,
                             contract_abis())

    def close(self) -> None:
        self.index.close()
        self._index_dir.cleanup()

    # ---- setup ---------------------------------------------------------------------------------

    def setup(self) -> None:
        """Check the oracles' keys against the registry, and give the liars an earlier epoch to replay:
        in every sector oracles 1-3 isolate the first node, the controller repairs it, they vote it back."""
        for group in self.oracles.values():
            for o in group:
                record = self.client.call1("Registry", "oracle", o.address)
                if bytes(record[2]) != keccak(o.pq_public_key):
                    raise ConfigError(f"oracle {o.address}'s keystore key is not the one the registry holds")
        first = self.client.rpc.call("eth_blockNumber")
        for sector in self.sectors:
            node = self.nodes[sector][0]
            voters = self.oracles[sector][:3]
            for action in (Action.ISOLATE, Action.REINTEGRATE):
                if action is Action.REINTEGRATE:
                    self.client.transact(self.controller.account, "IsolationQuorum", "beginRepair", _node_target(node))
                for voter in voters:
                    self.quorum.propose(voter, action, _node_target(node), to_bytes32("setup epoch"))
            if self.quorum.node_status(_node_target(node)) != _ACTIVE:
                raise ConfigError(f"setup: {node} did not come back through the quorum")
        for log in self._quorum_logs(int(first, 16)):
            if log.event == "VoteCast":
                sector = self._sector_of_voter(str(log.args["oracle"]))
                self.archive.setdefault(sector, []).append(bytes(log.args["pqSignature"]))
        advance_time(self.client.rpc, self.window_s)

    def _sector_of_voter(self, address: str) -> str:
        for sector, group in self.oracles.items():
            if any(o.address.lower() == address.lower() for o in group):
                return sector
        return ""

    def _quorum_logs(self, from_block: int) -> list[Any]:
        logs = self.client.rpc.call("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": "latest",
                                                     "address": self.quorum_address}])
        return self.client.decode_logs({"logs": logs})

    # ---- one run -------------------------------------------------------------------------------

    def run(self, index: int, seed: int) -> RunRecord:
        rng = run_rng(seed)
        record = RunRecord(index=index, seed=seed)
        shapes = {sector: self._shape(rng, sector) for sector in self.sectors}
        touched = {n for faulty, victim in shapes.values() for n in (*faulty, victim)}
        plans = [self._plan(rng, sector, shapes[sector], touched, record) for sector in self.sectors]
        record.drawn = {p.sector: p.drawn() for p in plans}
        first_block = int(self.client.rpc.call("eth_blockNumber"), 16) + 1
        first_proposal = int(self.client.call1("IsolationQuorum", "proposalCount"))
        # sectors act side by side (their oracles, nodes and proposals are disjoint, so the order
        # between sectors changes nothing a record holds); within a sector, the drawn order
        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            done = list(pool.map(lambda plan: [step.act() for step in plan.steps], plans))
        results = {plan.sector: effects for plan, effects in zip(plans, done, strict=True)}
        for plan in plans:
            for step, effect in zip(plan.steps, results[plan.sector], strict=True):
                record.effects[f"{step.behaviour}: {effect}"] += 1
        outcome: dict[str, Any] = {}
        for plan in plans:
            isolated = [n for n in plan.nodes if self.quorum.node_status(_node_target(n)) == _ISOLATED]
            record.wrongful += [n for n in isolated if n not in plan.faulty]
            record.missed += [n for n in plan.faulty if n not in isolated]
            outcome[plan.sector] = {"isolated": isolated, "steps": results[plan.sector]}
        flagged = self._peer_check(plans, first_block, record, outcome)
        self._restore(plans, record, outcome)
        self.run_proposals[index] = (first_proposal, int(self.client.call1("IsolationQuorum", "proposalCount")))
        self.peer_flags[index] = flagged
        record.outcome = outcome
        return record

    def _shape(self, rng: Random, sector: str) -> tuple[list[str], str]:
        """A sector's real faults (within the isolation cap) and the healthy victim its liars target."""
        node_names = self.nodes[sector]
        faults = 0 if rng.random() >= _FAULT_P else rng.randint(1, max(self.max_faults[sector], 1))
        faulty = sorted(rng.sample(node_names, min(faults, self.max_faults[sector])))
        victim = rng.choice([x for x in node_names if x not in faulty])
        return faulty, victim

    def _plan(self, rng: Random, sector: str, shape: tuple[list[str], str], touched: set[str],
              record: RunRecord) -> _SectorPlan:
        """Every draw of a sector's part of the run, in a fixed order (the record must replay).

        A liar's votes in its own sector go to the real faults or the victim; a cross-sector vote goes
        to a node of another sector that no one votes on in this run, so its answer never depends on
        how far that sector has got."""
        node_names = self.nodes[sector]
        faulty, victim = shape
        n = ORACLES_PER_SECTOR
        f = byzantine_f(n)
        if self.forced_liars is None:
            count = 0 if rng.random() < _NO_LIAR_P else f
        else:
            count = self.forced_liars
        liar_ids = sorted(rng.sample(range(n), count))
        liars: dict[int, list[str]] = {}
        for i in liar_ids:
            chosen = [b for b in BEHAVIOURS if rng.random() < _PICK_P]
            liars[i] = chosen or [rng.choice(BEHAVIOURS)]
        plan = _SectorPlan(sector, node_names, faulty, victim, liars)
        oracles = self.oracles[sector]
        for fault in faulty:
            for i in plan.honest:
                plan.steps.append(self._honest_step(oracles[i], i, fault))
        for i, behaviours in liars.items():
            record.behaviours.update(behaviours)
            plan.steps += self._liar_steps(rng, plan, i, behaviours, touched)
        rng.shuffle(plan.steps)
        return plan

    def _honest_step(self, voter: HybridIdentity, index: int, node: str) -> _Step:
        def act() -> str:
            try:
                self.quorum.propose(voter, Action.ISOLATE, _node_target(node), to_bytes32(f"fault:{node}"[:32]))
            except ContractRejected as exc:
                return "moot" if exc.error in _MOOT else _refusal(exc)
            except ChainError as exc:
                return "moot" if self.quorum.node_status(_node_target(node)) != _ACTIVE else _refusal(exc)
            return "voted"
        return _Step(index, "honest", f"isolate {node}", act)

    def _liar_steps(self, rng: Random, plan: _SectorPlan, index: int, behaviours: list[str],
                    touched: set[str]) -> list[_Step]:
        liar = self.oracles[plan.sector][index]
        steps: list[_Step] = []
        fault_hit = False

        def target() -> str:
            nonlocal fault_hit
            if plan.faulty and rng.random() < 0.5:
                fault_hit = True
                return rng.choice(plan.faulty)
            return plan.victim

        for behaviour in behaviours:
            if behaviour == "false-isolation":
                steps.append(_Step(index, behaviour, f"isolate {plan.victim}",
                                   self._valid_vote(liar, Action.ISOLATE, _node_target(plan.victim))))
            elif behaviour == "forged-signature":
                node, forged = target(), rng.randbytes(_SIGNATURE_BYTES)
                steps.append(_Step(index, behaviour, f"isolate {node}",
                                   self._raw_vote(liar, _node_target(node), forged)))
            elif behaviour == "replayed-vote":
                node, old = target(), rng.choice(self.archive[plan.sector])
                steps.append(_Step(index, behaviour, f"isolate {node}",
                                   self._raw_vote(liar, _node_target(node), old)))
            elif behaviour == "equivocation":
                node, valid_first = target(), rng.random() < 0.5
                steps.append(_Step(index, behaviour, f"isolate {node} {'valid' if valid_first else 'conflicting'}"
                                   " first", self._equivocate(liar, _node_target(node), valid_first)))
            elif behaviour == "wrong-key-epoch":
                node = target()
                steps.append(_Step(index, behaviour, f"isolate {node}", self._wrong_epoch(liar, _node_target(node))))
            elif behaviour == "cross-sector":
                node = rng.choice([x for x in self.other_nodes[plan.sector] if x not in touched])
                steps.append(_Step(index, behaviour, f"isolate {node}",
                                   self._valid_vote(liar, Action.ISOLATE, _node_target(node))))
            elif behaviour == "false-quarantine":
                honest = plan.honest
                if honest:
                    peer = self.oracles[plan.sector][rng.choice(honest)]
                    steps.append(_Step(index, behaviour, f"quarantine oracle {self._label(peer)}",
                                       self._valid_vote(liar, Action.QUARANTINE, _oracle_target(peer.address))))
        if plan.faulty and "silence" not in behaviours and not fault_hit:
            # a liar that is not silent on the real fault votes for it like anyone: lying is a choice
            node = rng.choice(plan.faulty)
            steps.append(_Step(index, "liar-true-vote", f"isolate {node}",
                               self._valid_vote(liar, Action.ISOLATE, _node_target(node))))
        return steps

    def _label(self, identity: HybridIdentity) -> str:
        for sector, group in self.oracles.items():
            for i, o in enumerate(group, 1):
                if o.address == identity.address:
                    return f"{sector}-{i}"
        return identity.address

    # ---- the liars' calls (their own keys; only the signature or the epoch is wrong) --------------

    def _valid_vote(self, voter: HybridIdentity, action: Action, target: bytes) -> Callable[[], str]:
        def act() -> str:
            try:
                self.quorum.propose(voter, action, target, to_bytes32("byzantine"))
            except ChainError as exc:
                return _refusal(exc)
            return "accepted"
        return act

    def _submit(self, voter: HybridIdentity, target: bytes, signature: bytes, key_epoch: int) -> str:
        """One isolate vote with the given signature: on the open proposal, or opening one."""
        open_id, ballot = self.quorum.ballot(Action.ISOLATE, target)
        try:
            if open_id:
                self.client.transact(voter.account, "IsolationQuorum", "vote", open_id, key_epoch, signature,
                                     gas=VOTE_GAS)
            else:
                self.client.transact(voter.account, "IsolationQuorum", "propose", int(Action.ISOLATE), target,
                                     to_bytes32("byzantine"), [],
                                     (ballot.status_epoch, ballot.round, key_epoch, signature), gas=VOTE_GAS)
        except ChainError as exc:
            return _refusal(exc)
        return "accepted"

    def _raw_vote(self, voter: HybridIdentity, target: bytes, signature: bytes) -> Callable[[], str]:
        """A vote carrying `signature` as it is (forged bytes, or an old vote's): the EVM cannot tell."""
        def act() -> str:
            return self._submit(voter, target, signature, voter.key_epoch)
        return act

    def _sign(self, voter: HybridIdentity, ballot: Ballot) -> bytes:
        return sign_vote(voter, ballot, chain_id=self.client.chain_id, quorum=self.quorum_address)

    def _equivocate(self, voter: HybridIdentity, target: bytes, valid_first: bool) -> Callable[[], str]:
        def act() -> str:
            _, ballot = self.quorum.ballot(Action.ISOLATE, target)
            conflicting = Ballot(ballot.action, ballot.target, ballot.status_epoch, ballot.round + 1)
            signatures = [self._sign(voter, ballot), self._sign(voter, conflicting)]
            if not valid_first:
                signatures.reverse()
            return " / ".join(self._submit(voter, target, s, voter.key_epoch) for s in signatures)
        return act

    def _wrong_epoch(self, voter: HybridIdentity, target: bytes) -> Callable[[], str]:
        def act() -> str:
            claimed = HybridIdentity(account=voter.account, mldsa_key=voter.mldsa_key, key_epoch=voter.key_epoch + 1)
            _, ballot = self.quorum.ballot(Action.ISOLATE, target)
            return self._submit(voter, target, self._sign(claimed, ballot), claimed.key_epoch)
        return act

    # ---- peers, restore --------------------------------------------------------------------------

    def _bad_votes(self, first_block: int) -> list[tuple[int, str]]:
        """The run's votes a peer finds bad: the production check itself (`chain.quorum_audit.bad_votes`,
        what `oracles.peer_check.PeerChecker` runs on each new vote: signature over the ballot, key
        epoch, voter), on the campaign's index from the run's first block on. `finish` cross-checks
        it against the full recount, which judges every vote from the start of the chain."""
        self.index.sync()
        found = bad_votes(self.index.db, self.client.chain_id, self.quorum_address, (first_block, -1))
        return [(v.proposal_id, v.voter) for v in found]

    def _peer_check(self, plans: list[_SectorPlan], first_block: int, record: RunRecord,
                    outcome: dict[str, Any]) -> set[tuple[int, str]]:
        bad = self._bad_votes(first_block)
        by_sector = {p.sector: p for p in plans}
        caught: dict[str, set[int]] = {}
        for _, voter in bad:
            sector = self._sector_of_voter(voter)
            index = next(i for i, o in enumerate(self.oracles[sector]) if o.address.lower() == voter)
            caught.setdefault(sector, set()).add(index)
        for sector, indices in sorted(caught.items()):
            plan = by_sector[sector]
            for index in sorted(indices):
                if index not in plan.liars:
                    record.notes.append(f"{sector}-{index + 1} is honest and its vote was found bad")
                    record.effects["honest: vote found bad"] += 1
                    continue
                behaviours = plan.liars[index]
                for b in ("forged-signature", "replayed-vote", "equivocation"):
                    if b in behaviours:
                        record.effects[f"{b}: sender caught by its peers"] += 1
                self._quarantine(plan, index, record)
        quarantined = {}
        for plan in plans:
            quarantined[plan.sector] = [i + 1 for i, o in enumerate(self.oracles[plan.sector])
                                        if int(self.client.call1("Registry", "oracle", o.address)[4]) == _QUARANTINED]
            outcome[plan.sector]["quarantined"] = quarantined[plan.sector]
            for i in plan.honest:
                if i + 1 in quarantined[plan.sector]:
                    record.notes.append(f"{plan.sector}-{i + 1} is honest and was quarantined")
                    # out of every quorum of its sector: as wrongful as a healthy node isolated
                    record.wrongful.append(f"oracle {plan.sector}-{i + 1} quarantined")
        return set(bad)

    def _quarantine(self, plan: _SectorPlan, liar: int, record: RunRecord) -> None:
        """What each honest peer does on a bad vote (`PeerChecker._respond`): propose, or vote on,
        the quarantine of its sender; the liar may try to vote on its own quarantine."""
        oracles = self.oracles[plan.sector]
        target = _oracle_target(oracles[liar].address)
        obstructs = "vote-own-quarantine" in plan.liars[liar]
        for k, peer in enumerate(i for i in plan.honest):
            try:
                self.quorum.propose(oracles[peer], Action.QUARANTINE, target, to_bytes32("bad ML-DSA signature"))
            except ChainError as exc:
                record.effects[f"quarantine vote: {_refusal(exc)}"] += 1
            if k == 0 and obstructs:
                try:
                    self.quorum.propose(oracles[liar], Action.QUARANTINE, target, to_bytes32("not me"))
                    record.effects["vote-own-quarantine: accepted"] += 1
                except ChainError as exc:
                    record.effects[f"vote-own-quarantine: {_refusal(exc)}"] += 1
        status = int(self.client.call1("Registry", "oracle", oracles[liar].address)[4])
        record.effects["liar quarantined" if status == _QUARANTINED else "liar not quarantined"] += 1

    def _restore(self, plans: list[_SectorPlan], record: RunRecord, outcome: dict[str, Any]) -> None:
        """Back to every node active and every oracle active, the way the city would get there: the
        controller begins each isolated node's repair and the sector's honest oracles vote it back
        (sectors side by side); what is left, and every quarantined oracle, goes to the council."""
        with ThreadPoolExecutor(max_workers=len(plans)) as pool:
            left = list(pool.map(lambda plan: self._repair(plan, outcome[plan.sector]["isolated"]), plans))
        calls: list[Call] = []
        for plan, (nodes_left, refusals) in zip(plans, left, strict=True):
            record.effects.update(refusals)
            calls += [("IsolationQuorum", "forceReintegrate", [_node_target(n), to_bytes32("campaign restore")])
                      for n in nodes_left]
            calls += [("Registry", "reinstateOracle", [self.oracles[plan.sector][i - 1].address,
                                                       to_bytes32("operator re-keyed")])
                      for i in outcome[plan.sector]["quarantined"]]
            outcome[plan.sector]["council"] = [f"force-reintegrate {n}" for n in nodes_left] + [
                f"reinstate {plan.sector}-{i}" for i in outcome[plan.sector]["quarantined"]]
        if calls:
            self._pass(calls)
        else:
            advance_time(self.client.rpc, self.window_s)

    def _repair(self, plan: _SectorPlan, isolated: list[str]) -> tuple[list[str], Counter[str]]:
        """One sector's repairs through the controller and the quorum: the nodes still out after, and refusals."""
        refusals: Counter[str] = Counter()
        left: list[str] = []
        oracles = self.oracles[plan.sector]
        for node in isolated:
            target = _node_target(node)
            self.client.transact(self.controller.account, "IsolationQuorum", "beginRepair", target)
            for i in plan.honest:
                try:
                    self.quorum.propose(oracles[i], Action.REINTEGRATE, target, to_bytes32("repaired"))
                except ChainError as exc:
                    refusals[f"reintegration vote: {_refusal(exc)}"] += 1
                if self.quorum.node_status(target) == _ACTIVE:
                    break
            else:
                left.append(node)
        return left, refusals

    def _label_of(self, address: str) -> str:
        for sector, group in self.oracles.items():
            for i, o in enumerate(group, 1):
                if o.address.lower() == address.lower():
                    return f"{sector}-{i}"
        return address

    def _pass(self, calls: list[Call]) -> None:
        """A council proposal: proposed and approved, then executed once the window has passed.

        The calls are taken from the propose receipt's `ProposalCreated` log, not through
        `Council.proposal`, which searches the council's logs from block 0: over a campaign of a
        thousand runs that search, once a run, made Anvil's time per run grow with the chain."""
        threshold = int(self.client.call1("GovernanceCouncil", "threshold"))
        governors = self.council.governors
        proposal_id, receipt = self.council.propose_receipt(governors[0], calls, "campaign restore")
        created = next(log for log in self.client.decode_logs(receipt)
                       if log.contract == "GovernanceCouncil" and log.event == "ProposalCreated")
        a = created.args
        logged = ProposalCalls(proposal_id=int(a["proposalId"]), proposer=str(a["proposer"]),
                               targets=[str(t) for t in a["targets"]], values=[int(v) for v in a["values"]],
                               calldatas=[bytes(c) for c in a["calldatas"]], description=str(a["description"]),
                               calls_hash=bytes(a["callsHash"]), block=created.block_number)
        for g in governors[1:threshold]:
            self.council.approve(g, proposal_id, logged)
        advance_time(self.client.rpc, self.window_s)
        self.council.execute(governors[0], proposal_id, logged, wait_s=10.0)

    # ---- the auditor's recount -------------------------------------------------------------------

    def finish(self, records: list[RunRecord], tally: Tally) -> dict[str, Any]:
        """The full recount from chain data (`recount_quorum`), its findings attributed to runs, and
        whether the peers' per-run check found exactly the votes the recount calls no vote."""
        self.index.sync()
        problems = recount_quorum(self.index.db, RegistryHistory.from_db(self.index.db), self.client.chain_id,
                                  self.quorum_address)
        not_votes: set[tuple[int, str]] = set()
        without_quorum: dict[int, str] = {}
        other: list[str] = []
        for problem in problems:
            message = str(problem["message"])
            vote = re.match(r"vote by (0x[0-9a-fA-F]{40}) on proposal (\d+) is not a vote", message)
            executed = re.match(r"proposal (\d+) executed with (\d+) genuine votes", message)
            if vote:
                not_votes.add((int(vote.group(2)), vote.group(1).lower()))
            elif executed:
                without_quorum[int(executed.group(1))] = message
            else:
                other.append(message)
        for record in records:
            first, last = self.run_proposals.get(record.index, (0, 0))
            in_run = set(range(first + 1, last + 1))
            audit_bad = {v for v in not_votes if v[0] in in_run}
            flagged = sorted(pid for pid in without_quorum if pid in in_run)
            record.outcome["audit"] = {
                "votes_not_votes": len(audit_bad),
                "decisions_without_genuine_quorum": [self._target_of(pid) for pid in flagged],
                "peers_agree": audit_bad == self.peer_flags.get(record.index, set()),
            }
            for pid in flagged:
                tally.effects["audit: decision without a genuine quorum"] += 1
                record.effects["audit: decision without a genuine quorum"] += 1
        disagreeing = [r.index for r in records if not r.outcome["audit"]["peers_agree"]]
        return {"recount_problems": len(problems), "votes_not_votes": len(not_votes),
                "decisions_without_genuine_quorum": len(without_quorum), "other_recount_problems": other[:20],
                "peer_check_disagrees_in_runs": disagreeing}

    def _target_of(self, proposal_id: int) -> str:
        p = self.client.call1("IsolationQuorum", "proposal", proposal_id)
        action = ("isolate", "reintegrate", "quarantine")[int(p[0])]
        target = bytes(p[2])
        name = self._label_of("0x" + target[12:].hex()) if action == "quarantine" else from_bytes32(target)
        return f"{action} {name}"


def behaviour_counts(counter: Counter[str]) -> dict[str, int]:
    """Every behaviour with its count, zeros included (a behaviour never drawn is visible)."""
    return {b: int(counter.get(b, 0)) for b in BEHAVIOURS}
