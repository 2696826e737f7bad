"""Every quorum decision recounted from chain data alone (`qeaims audit verify`), and each new vote's
ML-DSA-65 signature checked by the sector's peers (`oracles.peer_check`).

The IsolationQuorum contract counts a vote on its secp256k1 transaction: the EVM cannot check ML-DSA-65
cheaply. So a vote *is* a vote only when its logged signature verifies, under the voter's key of the
epoch it names, over the proposal's ballot (docs/TRUST.md). The recount rebuilds, from logs and the
registry's history (`chain.registry_history`), what the contract decided with and checks it again:
- each proposal's captured membership and requirement equal q(n) over the sector's members when it
  opened, its status epoch was the target's and its round the next one on (action, target);
- each vote came from an oracle Active in the sector at that moment, under its current key epoch,
  with a signature that verifies (a key epoch whose rotation the old key did not sign is no key);
- each execution had at least max(captured q, q(members then)) such votes from voters still Active
  in the status epoch they voted in,
  on a target still in the lifecycle the proposal was opened for.
A decision that fails any of these is reported: it executed without a genuine quorum.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils.address import to_checksum_address

from chain.audit_keys import KeyEpoch, key_history
from chain.registry_history import RegistryHistory, quorum_size, sector_key
from keys.hybrid import Ballot, verify_vote

__all__ = ["ACTIONS", "BadVote", "ProposalRecord", "VoteRecord", "bad_votes", "proposals", "recount_quorum"]

Position = tuple[int, int]
_QUARANTINE = 2
ACTIONS = {0: "isolate", 1: "reintegrate", 2: "quarantine"}  # IIsolationQuorum.Action


@functools.lru_cache(maxsize=65536)
def _vote_ok(public_key: bytes, signature: bytes, action: int, target: bytes, status_epoch: int, round_: int,
             chain_id: int, quorum: str, voter: str, key_epoch: int) -> bool:
    """Memoised: peers re-read recent votes each peer interval; the answer is a pure function."""
    return verify_vote(public_key, signature, Ballot(action, target, status_epoch, round_), chain_id=chain_id,
                       quorum=quorum, voter=voter, key_epoch=key_epoch)


@dataclass
class _Proposal:
    proposal_id: int
    action: int
    sector: str
    target: bytes
    opened: Position
    tx: str
    status_epoch: int | None = None
    round: int | None = None
    membership: int | None = None
    required: int | None = None
    genuine: dict[str, int] = field(default_factory=dict)  # voter whose signed vote checks out → its status epoch then


@dataclass(frozen=True)
class BadVote:
    proposal_id: int
    voter: str
    sector: str
    block: int
    log_index: int
    tx: str
    reason: str


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(str(value)[2:]) if isinstance(value, str) else bytes(value)


def _logs(db: sqlite3.Connection, quorum: str | None = None) -> list[tuple[Position, str, str, dict[str, Any]]]:
    rows = db.execute("SELECT block, log_index, tx_hash, event, args FROM logs WHERE contract = 'IsolationQuorum' "
                      "AND event IN ('ProposalCreated', 'ProposalBallot', 'VoteCast', 'ProposalExecuted') "
                      "ORDER BY block, log_index").fetchall()
    return [((int(b), int(i)), str(tx), str(e), json.loads(a)) for b, i, tx, e, a in rows]


def _registry_address(db: sqlite3.Connection) -> str:
    row = db.execute("SELECT value FROM meta WHERE key = 'registry'").fetchone()
    return str(row[0]) if row else ""


def _check_vote(p: _Proposal, voter: str, args: dict[str, Any], position: Position, history: RegistryHistory,
                keys: dict[str, dict[int, KeyEpoch]], chain_id: int, quorum: str) -> str | None:
    """Why this vote is not a genuine vote, or None."""
    state = history.oracle_at(voter, position)
    if state is None or state.status != 1 or state.sector != p.sector:
        return "the voter was not an active oracle of the sector"
    key_epoch = int(args.get("keyEpoch", 0))
    if key_epoch != state.key_epoch:
        return f"signed under key epoch {key_epoch}, the registry held {state.key_epoch}"
    if p.status_epoch is None or p.round is None:
        return "the proposal's ballot was never logged"
    key = keys.get(voter, {}).get(key_epoch)
    if key is None:
        return f"no published key for epoch {key_epoch}"
    if not key.valid:
        return f"key epoch {key_epoch} is not trustworthy ({key.reason})"
    if not _vote_ok(key.public_key, _bytes(args.get("pqSignature", b"")), p.action, p.target, p.status_epoch, p.round,
                    chain_id, to_checksum_address(quorum), to_checksum_address(voter), key_epoch):
        return "its ML-DSA-65 signature does not verify over the ballot"
    return None


def _walk(db: sqlite3.Connection, history: RegistryHistory, chain_id: int, quorum: str,
          on_problem: Any, on_bad_vote: Any, after: Position = (-1, -1),
          on_vote: Any = None) -> dict[int, _Proposal]:
    """Replays the quorum's logs; reports findings through the callbacks (`on_vote(pid, voter, position,
    tx, args, reason-or-None)` sees every vote, genuine or not) and returns the proposals as replayed."""
    keys = key_history(db, chain_id, _registry_address(db))
    proposals: dict[int, _Proposal] = {}
    rounds: dict[tuple[int, bytes], int] = defaultdict(int)
    for position, tx, event, a in _logs(db):
        pid = int(a.get("proposalId", 0))
        if event == "ProposalCreated":
            p = _Proposal(pid, int(a["action"]), sector_key(a["sector"]), _bytes(a["target"]), position, tx)
            proposals[pid] = p
            rounds[(p.action, p.target)] += 1
            p.round = rounds[(p.action, p.target)]
            continue
        p_or_none = proposals.get(pid)
        if p_or_none is None:
            on_problem(position, tx, f"{event} for proposal {pid}, which was never created")
            continue
        p = p_or_none
        if event == "ProposalBallot":
            _check_ballot(p, a, position, tx, history, on_problem)
        elif event == "VoteCast":
            voter = str(a["oracle"]).lower()
            reason = _check_vote(p, voter, a, position, history, keys, chain_id, quorum)
            if on_vote is not None:
                on_vote(pid, voter, position, tx, a, reason)
            if reason is None:
                state = history.oracle_at(voter, position)
                p.genuine[voter] = state.status_epoch if state is not None else -1
            elif position > after:
                on_bad_vote(BadVote(pid, voter, p.sector, position[0], position[1], tx, reason))
        elif event == "ProposalExecuted":
            _check_execution(p, position, tx, history, on_problem)
    return proposals


def _target_epoch(p: _Proposal, history: RegistryHistory, position: Position) -> int | None:
    if p.action == _QUARANTINE:
        oracle = history.oracle_at("0x" + p.target[12:].hex(), position)
        return None if oracle is None else oracle.status_epoch
    node = history.node_at(p.target, position)
    return None if node is None else node.status_epoch


def _check_ballot(p: _Proposal, a: dict[str, Any], position: Position, tx: str, history: RegistryHistory,
                  on_problem: Any) -> None:
    logged_round = int(a["round"])
    p.status_epoch, p.membership, p.required = int(a["statusEpoch"]), int(a["membership"]), int(a["required"])
    members = len(history.members_at(p.sector, position))
    if p.membership != members:
        on_problem(position, tx, f"proposal {p.proposal_id} captured a membership of {p.membership}, "
                                 f"the sector had {members} members")
    if p.required != quorum_size(members):
        on_problem(position, tx, f"proposal {p.proposal_id} requires {p.required} votes, q({members}) is "
                                 f"{quorum_size(members)}")
        p.required = quorum_size(members)
    if logged_round != p.round:
        on_problem(position, tx, f"proposal {p.proposal_id} is round {logged_round}, it was round {p.round}")
    epoch = _target_epoch(p, history, position)
    if epoch != p.status_epoch:
        on_problem(position, tx, f"proposal {p.proposal_id} was opened on status epoch {p.status_epoch}, "
                                 f"the target's was {epoch}")


def _check_execution(p: _Proposal, position: Position, tx: str, history: RegistryHistory, on_problem: Any) -> None:
    counted = set()
    for voter, voted_in in p.genuine.items():  # still Active in the sector, in the status epoch it voted in
        state = history.oracle_at(voter, position)
        if state is not None and state.status == 1 and state.sector == p.sector and state.status_epoch == voted_in:
            counted.add(voter)
    required = max(p.required or 0, quorum_size(len(history.members_at(p.sector, position))))
    if len(counted) < required:
        on_problem(position, tx, f"proposal {p.proposal_id} executed with {len(counted)} genuine votes of active "
                                 f"oracles, it needed {required}")
    epoch = _target_epoch(p, history, position)
    if epoch != p.status_epoch:
        on_problem(position, tx, f"proposal {p.proposal_id} executed on status epoch {epoch}, it was opened on "
                                 f"{p.status_epoch}: votes from an earlier lifecycle")


def recount_quorum(db: sqlite3.Connection, history: RegistryHistory, chain_id: int,
                   quorum_address: str) -> list[dict[str, Any]]:
    """Every proposal, vote and execution of the quorum recounted; one dict per problem."""
    problems: list[dict[str, Any]] = []

    def on_problem(position: Position, tx: str, message: str) -> None:
        problems.append({"message": message, "block": position[0], "tx": tx})

    def on_bad_vote(vote: BadVote) -> None:
        problems.append({"message": f"vote by {to_checksum_address(vote.voter)} on proposal {vote.proposal_id} "
                                    f"is not a vote: {vote.reason}", "block": vote.block, "tx": vote.tx})

    _walk(db, history, chain_id, quorum_address, on_problem, on_bad_vote)
    return problems


def bad_votes(db: sqlite3.Connection, chain_id: int, quorum_address: str, after: Position) -> list[BadVote]:
    """Votes logged after `after` whose signature, key epoch or voter does not check out (what a peer
    treats as an intrusion)."""
    history = RegistryHistory.from_db(db)
    found: list[BadVote] = []
    _walk(db, history, chain_id, quorum_address, lambda *_: None, found.append, after)
    return found


@dataclass(frozen=True)
class VoteRecord:
    """One VoteCast log and whether it is a vote: `reason` says why not (None when it is genuine)."""

    voter: str  # lower-case address
    block: int
    log_index: int
    tx: str
    timestamp: int | None
    key_epoch: int
    reason: str | None
    counts_now: bool = False  # the contract's tally counts it (see `proposals`)

    @property
    def valid(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class ProposalRecord:
    """One quorum proposal as replayed from the logs, with every vote judged as the audit judges it.

    `state` is the contract's own rule (`IsolationQuorum.proposalState`) applied to the replay:
    executed; else closed once the target's status epoch moved on; else expired after the deadline
    (against `now`); else open. The contract has no vote *against*: a voter either signs the ballot
    or does not, so the figures are the genuine votes, the votes that are not, and the requirement."""

    proposal_id: int
    action: str  # ACTIONS
    sector: str  # 0x + 64 hex
    target: bytes
    proposer: str
    reason: bytes
    deadline: int
    opened: Position
    opened_tx: str
    opened_at: int | None
    status_epoch: int | None
    round: int | None
    membership: int | None
    required: int | None
    state: str
    votes: tuple[VoteRecord, ...]
    executed: Position | None
    executed_tx: str | None
    executed_at: int | None
    blocked: str | None  # why a reached quorum did not execute (the isolation cap, the quarantine rate)
    problems: tuple[str, ...]  # what the audit's recount finds wrong with this proposal
    evidence: tuple[bytes, ...] = ()  # the event ids the proposer cited (`keys.ids.event_id`)

    @property
    def votes_valid(self) -> int:
        return sum(1 for v in self.votes if v.valid)

    @property
    def votes_counting(self) -> int:
        """The genuine votes the contract's tally counts (`VoteRecord.counts_now`): what `required` is
        measured against."""
        return sum(1 for v in self.votes if v.counts_now)

    @property
    def votes_invalid(self) -> int:
        return sum(1 for v in self.votes if not v.valid)


def _extras(db: sqlite3.Connection) -> dict[Position, tuple[int | None, dict[str, Any]]]:
    """Timestamps and the arguments `_walk` does not keep, for the quorum's logs, by position."""
    rows = db.execute(
        "SELECT block, log_index, timestamp, event, json_remove(args, '$.pqSignature') FROM logs "
        "WHERE contract = 'IsolationQuorum' AND event IN ('ProposalCreated', 'VoteCast', 'ProposalExecuted', "
        "'IsolationBlockedByCap', 'QuarantineBlockedByRate')").fetchall()
    return {(int(b), int(i)): (None if t is None else int(t), {"event": str(e), **json.loads(a)})
            for b, i, t, e, a in rows}


_NOW: Position = (1 << 62, 0)  # after every log: the registry as it stands


def _counting_now(p: _Proposal, history: RegistryHistory) -> set[str]:
    """The contract's `_counts`: genuine voters still Active in the sector, in the status epoch they voted in
    (a voter quarantined, or quarantined and reinstated, after voting no longer counts)."""
    counted = set()
    for voter, voted_in in p.genuine.items():
        state = history.oracle_at(voter, _NOW)
        if state is not None and state.status == 1 and state.sector == p.sector and state.status_epoch == voted_in:
            counted.add(voter)
    return counted


def _state(p: _Proposal, executed: bool, deadline: int, history: RegistryHistory, now: int) -> str:
    if executed:
        return "executed"
    if _target_epoch(p, history, _NOW) != p.status_epoch:
        return "closed"
    return "expired" if now > deadline else "open"


def proposals(db: sqlite3.Connection, history: RegistryHistory, chain_id: int, quorum: str, *,
              now: int) -> list[ProposalRecord]:
    """Every proposal of the quorum, oldest first, with its votes and each vote's validity; `now` is the
    chain's latest block time (what decides "expired"). The same replay as `recount_quorum`, so the API
    and the audit cannot disagree about which vote was a vote.

    A vote's `valid` is the audit's judgement when it was cast; `counts_now` is whether the contract's
    tally counts it. For a proposal not executed that is the contract's `_tally` now: a genuine vote
    whose voter is still Active in the sector, in the status epoch it voted in, and `required` is
    max(captured requirement, q(current membership)). For an executed proposal the tally was fixed at
    execution (which `recount_quorum` checks): `counts_now` is `valid` and `required` what it captured."""
    votes: dict[int, list[VoteRecord]] = defaultdict(list)
    problems: dict[Position, list[str]] = defaultdict(list)
    extras = _extras(db)

    def on_vote(pid: int, voter: str, position: Position, tx: str, args: dict[str, Any], reason: str | None) -> None:
        votes[pid].append(VoteRecord(voter, position[0], position[1], tx, extras.get(position, (None, {}))[0],
                                     int(args.get("keyEpoch", 0)), reason))

    def on_problem(position: Position, _tx: str, message: str) -> None:
        problems[position].append(message)

    replayed = _walk(db, history, chain_id, quorum, on_problem, lambda _vote: None, on_vote=on_vote)
    executed: dict[int, tuple[Position, str, int | None]] = {}
    blocked: dict[int, str] = {}
    ballots: dict[int, list[Position]] = defaultdict(list)
    for position, tx, event, a in _logs(db):
        pid = int(a.get("proposalId", 0))
        if event == "ProposalExecuted":
            executed.setdefault(pid, (position, tx, extras.get(position, (None, {}))[0]))
        if event in ("ProposalBallot", "ProposalExecuted"):
            ballots[pid].append(position)
    for position, (_, a) in extras.items():
        if a["event"] == "IsolationBlockedByCap":
            blocked[int(a["proposalId"])] = (f"the sector's isolation cap: {a['outOfService']} of {a['nodes']} "
                                             "nodes already out of service")
        elif a["event"] == "QuarantineBlockedByRate":
            blocked[int(a["proposalId"])] = (f"the sector's quarantine rate: {a['recent']} recent quarantines, "
                                             f"limit {a['limit']}")
    out = []
    for pid, p in sorted(replayed.items()):
        opened_at, created = extras.get(p.opened, (None, {}))
        deadline = int(created.get("deadline", 0))
        done = executed.get(pid)
        required = p.required
        judged = tuple(votes.get(pid, ()))
        if done is None:
            counting = _counting_now(p, history)
            judged = tuple(replace(v, counts_now=v.valid and v.voter in counting) for v in judged)
            required = max(p.required or 0, quorum_size(len(history.members_at(p.sector, _NOW))))
        else:
            judged = tuple(replace(v, counts_now=v.valid) for v in judged)
        out.append(ProposalRecord(
            proposal_id=pid, action=ACTIONS.get(p.action, str(p.action)), sector=p.sector, target=p.target,
            proposer=str(created.get("proposer", "")).lower(), reason=_bytes(created.get("reason", "0x")),
            deadline=deadline, opened=p.opened, opened_tx=p.tx, opened_at=opened_at, status_epoch=p.status_epoch,
            round=p.round, membership=p.membership, required=required,
            state=_state(p, done is not None, deadline, history, now), votes=judged,
            executed=None if done is None else done[0], executed_tx=None if done is None else done[1],
            executed_at=None if done is None else done[2], blocked=None if done is not None else blocked.get(pid),
            problems=tuple(m for position in ballots.get(pid, ()) for m in problems.get(position, ())),
            evidence=tuple(_bytes(e) for e in created.get("evidence") or ())))
    return out
