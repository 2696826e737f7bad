"""Isolation proposals and votes from Python, with the proposal's state read back from chain."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_account.signers.local import LocalAccount

from chain.client import ChainClient
from keys.ids import from_bytes32
from qeaims.errors import ContractRejected, TransactionFailed

__all__ = ["Action", "ProposalView", "QuorumClient"]


class Action(IntEnum):
    ISOLATE = 0
    REINTEGRATE = 1
    QUARANTINE = 2


_STATES = ("none", "open", "executed", "expired")


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


VOTE_GAS = 1_000_000  # forge's gas report: a vote that executes an isolation uses up to ~612k


class QuorumClient:
    def __init__(self, client: ChainClient) -> None:
        self.client = client

    def propose(self, oracle: LocalAccount, action: Action, target: bytes, reason: bytes,
                evidence: list[bytes] | None = None) -> int:
        """Open a proposal, or vote on the one already open for the same action and target."""
        try:
            receipt = self.client.transact(oracle, "IsolationQuorum", "propose", int(action), target, reason,
                                           evidence or [])
        except ContractRejected as exc:
            if exc.error == "QuorumProposalExists":
                existing = int(exc.args_by_name["proposalId"])
                self.vote(oracle, existing)
                return existing
            raise
        for log in self.client.decode_logs(receipt):
            if log.event == "ProposalCreated" and log.contract == "IsolationQuorum":
                return int(log.args["proposalId"])
        raise TransactionFailed("the quorum accepted the proposal but logged no ProposalCreated")

    def vote(self, oracle: LocalAccount, proposal_id: int) -> None:
        """Vote with a fixed gas limit, not an estimate: the estimate is taken on the chain before
        the other oracles' votes are mined, where this vote does not execute the proposal yet; mined
        after them it does, runs out of gas inside the Registry call and reverts with no reason (four
        oracles in processes of their own lost 0.5 s to that on most isolations). A vote that would be
        refused is mined as reverted and explained by its replay (`ChainClient.wait`), as before."""
        self.client.transact(oracle, "IsolationQuorum", "vote", proposal_id, gas=VOTE_GAS)

    def view(self, proposal_id: int) -> ProposalView:
        p = self.client.call1("IsolationQuorum", "proposal", proposal_id)
        votes, required = self.client.call("IsolationQuorum", "tally", proposal_id)
        state = int(self.client.call1("IsolationQuorum", "proposalState", proposal_id))
        voters = self.client.call1("IsolationQuorum", "proposalVoters", proposal_id)
        return ProposalView(
            proposal_id=proposal_id, action=Action(int(p[0])), sector=from_bytes32(bytes(p[1])), target=bytes(p[2]),
            proposer=str(p[3]), deadline=int(p[5]), state=_STATES[state], active_votes=int(votes),
            required=int(required), voters=tuple(str(v) for v in voters),
        )

    def node_status(self, node: bytes) -> str:
        record = self.client.call1("Registry", "node", node)
        return ("none", "active", "isolated", "repairing")[int(record[3])]
