"""Council proposals from Python: encode the calls, propose, collect approvals, execute.

Every membership or configuration change goes through here (or the same contract calls made by
another tool): the council contract is the only admin of the registry and the quorum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount

from chain.client import ChainClient
from chain.rpc import RpcError
from qeaims.errors import TransactionFailed

__all__ = ["Call", "Council"]

Call = tuple[str, str, list[Any]]  # (contract name, function, arguments)


class Council:
    def __init__(self, client: ChainClient, governors: Sequence[LocalAccount] = ()) -> None:
        self.client = client
        self.governors = list(governors)

    def encode(self, calls: Sequence[Call]) -> tuple[list[str], list[int], list[bytes]]:
        targets = [self.client.address(contract) for contract, _, _ in calls]
        datas = [self.client.abi(contract).encode_call(fn, args) for contract, fn, args in calls]
        return targets, [0] * len(calls), datas

    def simulate(self, calls: Sequence[Call]) -> None:
        """Run each call as the council would (eth_call from its address) and raise the decoded
        error of the first that would fail, so a proposal that can never execute is not created.
        Calls are simulated one by one, so use it for proposals whose calls do not depend on each other."""
        council = self.client.address("GovernanceCouncil")
        for contract, fn, args in calls:
            data = "0x" + self.client.abi(contract).encode_call(fn, args).hex()
            try:
                self.client.rpc.call("eth_call", [{"from": council, "to": self.client.address(contract),
                                                   "data": data}, "latest"])
            except RpcError as exc:
                raise self.client.translate(exc, contract) from exc

    def propose(self, governor: LocalAccount, calls: Sequence[Call], description: str) -> int:
        targets, values, datas = self.encode(calls)
        receipt = self.client.transact(governor, "GovernanceCouncil", "propose", targets, values, datas, description)
        for log in self.client.decode_logs(receipt):
            if log.event == "ProposalCreated" and log.contract == "GovernanceCouncil":
                return int(log.args["proposalId"])
        raise TransactionFailed("the council accepted the proposal but logged no ProposalCreated")

    def approve(self, governor: LocalAccount, proposal_id: int) -> None:
        self.client.transact(governor, "GovernanceCouncil", "approve", proposal_id)

    def execute(self, governor: LocalAccount, proposal_id: int) -> dict[str, Any]:
        return self.client.transact(governor, "GovernanceCouncil", "execute", proposal_id)

    def state(self, proposal_id: int) -> str:
        names = ("None", "Pending", "Ready", "Executed", "Cancelled", "Expired")
        return names[int(self.client.call1("GovernanceCouncil", "proposalState", proposal_id))]

    def pass_proposal(self, calls: Sequence[Call], description: str) -> int:
        """Propose with the first governor, approve with as many more as the threshold needs, execute.

        Only for the development consortium, where one process holds every governor key.
        """
        threshold = int(self.client.call1("GovernanceCouncil", "threshold"))
        if len(self.governors) < threshold:
            raise TransactionFailed(f"need {threshold} governor keys to pass a proposal, have {len(self.governors)}")
        proposal_id = self.propose(self.governors[0], calls, description)
        for governor in self.governors[1:threshold]:
            self.approve(governor, proposal_id)
        self.execute(self.governors[0], proposal_id)
        return proposal_id
