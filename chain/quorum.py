"""Isolation proposals and post-quantum votes from Python, with the proposal's state read back from chain.

Every `propose`/`vote` carries the voter's ML-DSA-65 signature over the proposal's *ballot*
(action, target, the target's status epoch, round; docs/TRUST.md). The ballot is read from the chain
just before signing; a ballot that went stale in between (another oracle opened the next round, the
target's status moved) reverts with `QuorumStaleBallot`, and the vote is signed again on the fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from chain.client import ChainClient
from core.errors import ConfigError, ContractRejected, TransactionFailed
from keys.hybrid import Ballot, sign_vote
from keys.identity import HybridIdentity
from keys.ids import from_bytes32

__all__ = ["VOTE_GAS", "Action", "ProposalView", "QuorumClient"]


class Action(IntEnum):
    ISOLATE = 0
    REINTEGRATE = 1
    QUARANTINE = 2


_STATES = ("none", "open", "executed", "expired", "closed")


@dataclass(frozen=True)
class ProposalView:
    proposal_id: int
    action: Action
    sector: str
    target: bytes
    proposer: str
    deadline: int
    state: str
    active_votes: int
    required: int
    voters: tuple[str, ...]
    status_epoch: int = 0
    round: int = 0
    membership: int = 0

    @property
    def ballot(self) -> Ballot:
        return Ballot(int(self.action), self.target, self.status_epoch, self.round)


# A vote that executes an isolation uses about 640k gas (forge's gas report, signature included);
# fixed rather than estimated: see QuorumClient.vote.
VOTE_GAS = 1_200_000
_STALE_RETRIES = 3


class QuorumClient:
    def __init__(self, client: ChainClient) -> None:
        self.client = client

    def ballot(self, action: Action, target: bytes) -> tuple[int, Ballot]:
        """The open proposal's id (0 if none) and the ballot to sign now for (action, target)."""
        proposal_id, status_epoch, round_ = self.client.call("IsolationQuorum", "ballot", int(action), target)
        return int(proposal_id), Ballot(int(action), bytes(target), int(status_epoch), int(round_))

    def _signed(self, identity: HybridIdentity, ballot: Ballot) -> bytes:
        return sign_vote(identity, ballot, chain_id=self.client.chain_id,
                         quorum=self.client.address("IsolationQuorum"))

    def propose(self, identity: HybridIdentity, action: Action, target: bytes, reason: bytes,
                evidence: list[bytes] | None = None) -> int:
        """Open a proposal, or vote on the one open for the same ballot; returns its id.

        Sent with a fixed gas limit for the reason `vote` gives: a propose that lands after another
        oracle opened the same ballot is a vote, and may execute the proposal."""
        for attempt in range(_STALE_RETRIES):
            open_id, ballot = self.ballot(action, target)
            if open_id:
                try:
                    self._vote_on(identity, open_id, ballot)
                except ContractRejected as exc:
                    if exc.error in ("QuorumStaleBallot", "QuorumWrongState") and attempt + 1 < _STALE_RETRIES:
                        continue
                    raise
                return open_id
            signed = (ballot.status_epoch, ballot.round, identity.key_epoch, self._signed(identity, ballot))
            try:
                receipt = self.client.transact(identity.account, "IsolationQuorum", "propose", int(action), target,
                                               reason, evidence or [], signed, gas=VOTE_GAS)
            except ContractRejected as exc:
                if exc.error == "QuorumStaleBallot" and attempt + 1 < _STALE_RETRIES:
                    continue
                raise
            return self._proposal_id(receipt)
        raise TransactionFailed("the ballot kept moving while signing the vote")  # pragma: no cover - loop returns

    def _proposal_id(self, receipt: dict[str, Any]) -> int:
        for log in self.client.decode_logs(receipt):
            if log.contract == "IsolationQuorum" and log.event in ("ProposalCreated", "VoteCast"):
                return int(log.args["proposalId"])
        raise TransactionFailed("the quorum accepted the proposal but logged neither ProposalCreated nor VoteCast")

    def vote(self, identity: HybridIdentity, proposal_id: int) -> None:
        """Sign the proposal's ballot and vote, with a fixed gas limit, not an estimate: the estimate
        is taken on the chain before the other oracles' votes are mined, where this vote does not
        execute the proposal yet; mined after them it does, runs out of gas inside the Registry call
        and reverts with no reason (four oracles in processes of their own lost 0.5 s to that on
        most isolations). A vote that would be refused is mined as reverted and explained by its
        replay (`ChainClient.wait`), as before."""
        self._vote_on(identity, proposal_id, self.view(proposal_id).ballot)

    def _vote_on(self, identity: HybridIdentity, proposal_id: int, ballot: Ballot) -> None:
        self.client.transact(identity.account, "IsolationQuorum", "vote", proposal_id, identity.key_epoch,
                             self._signed(identity, ballot), gas=VOTE_GAS)

    def execute(self, identity: HybridIdentity, proposal_id: int) -> None:
        """Execute an open proposal whose quorum is met (after the cap or rate let it); oracles only."""
        self.client.transact(identity.account, "IsolationQuorum", "execute", proposal_id, gas=VOTE_GAS)

    def view(self, proposal_id: int) -> ProposalView:
        state = int(self.client.call1("IsolationQuorum", "proposalState", proposal_id))
        if state == 0:
            raise ConfigError(f"there is no isolation proposal {proposal_id} "
                              f"(the quorum has {self.client.call1('IsolationQuorum', 'proposalCount')})")
        p = self.client.call1("IsolationQuorum", "proposal", proposal_id)
        votes, required = self.client.call("IsolationQuorum", "tally", proposal_id)
        voters = self.client.call1("IsolationQuorum", "proposalVoters", proposal_id)
        return ProposalView(
            proposal_id=proposal_id, action=Action(int(p[0])), sector=from_bytes32(bytes(p[1])), target=bytes(p[2]),
            proposer=str(p[3]), deadline=int(p[5]), state=_STATES[state], active_votes=int(votes),
            required=int(required), voters=tuple(str(v) for v in voters), status_epoch=int(p[8]), round=int(p[9]),
            membership=int(p[10]),
        )

    def node_status(self, node: bytes) -> str:
        record = self.client.call1("Registry", "node", node)
        return ("none", "active", "isolated", "repairing")[int(record[3])]
