"""Council proposals from Python: encode the calls, propose, approve (ML-DSA-signed), execute.

Every membership or configuration change goes through here (or the same contract calls made by
another tool): the council contract is the only admin of the registry and the quorum.

The council stores only the hash of a proposal's calls; the calls are read back from its
`ProposalCreated` log (:meth:`Council.proposal`) and passed to `execute`. Every approval, the
proposer's included, carries the governor's ML-DSA-65 signature over
`keys.council_messages.approval_message`; a governor signs the calls hash it recomputed itself from
the logged calls, so it approves what it read, not what the contract says it stores. A proposal that
reaches the threshold is queued; `execute` works from its eta on (`Settings.council_delay_s`, 1 s in
development), `execute_emergency` earlier with `emergencyThreshold()` approvals and a reason, for
calls on the council's emergency allowlist only (:meth:`Council.emergency_allow`: a delayed proposal
puts a contract function on it; the council never allows its own functions or role changes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from chain.client import ChainClient, SentTx, _normalise_log
from chain.logs import DEFAULT_MAX_LOGS_RANGE, LogReader
from chain.rpc import RpcError
from core.errors import ChainError, ContractRejected, TransactionFailed
from keys.council_messages import calls_hash, description_hash, sign_approval
from keys.identity import HybridIdentity

__all__ = ["STATES", "STORM_OVERRIDES", "Call", "Council", "ProposalCalls"]

Call = tuple[str, str, list[Any]]  # (contract name, function, arguments)

STATES = ("None", "Pending", "Succeeded", "Queued", "Ready", "Executed", "Cancelled", "Expired")

_CONTRACT = "GovernanceCouncil"

# What the development deployment puts on the emergency allowlist: the overrides a storm day needs
# at once, each logged as a GovernanceOverride or a setting change. Nothing that changes who votes in
# a sector's quorum or how many must (registerOracle, removeOracle, setActiveFloor, ...): those wait.
STORM_OVERRIDES: tuple[tuple[str, str], ...] = (
    ("IsolationQuorum", "forceIsolate"),
    ("IsolationQuorum", "forceReintegrate"),
    ("IsolationQuorum", "setIsolationCap"),
)


@dataclass(frozen=True)
class ProposalCalls:
    """A proposal's calls as its `ProposalCreated` log records them."""

    proposal_id: int
    proposer: str
    targets: list[str]
    values: list[int]
    calldatas: list[bytes]
    description: str
    calls_hash: bytes  # as logged; equals :meth:`recomputed_hash` for any genuine proposal
    block: int

    @property
    def description_hash(self) -> bytes:
        return description_hash(self.description)

    def recomputed_hash(self) -> bytes:
        return calls_hash(self.targets, self.values, self.calldatas, self.description_hash)


class Council:
    def __init__(self, client: ChainClient, governors: Sequence[HybridIdentity] = (), *,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        for g in governors:
            if not isinstance(g, HybridIdentity):
                raise TypeError("Council needs governors' HybridIdentity (their ML-DSA keys sign approvals), "
                                f"not {type(g).__name__}: pass the identity, not identity.account")
        self.client = client
        self.governors = list(governors)
        self.max_logs_range = max_logs_range

    # ---- reading --------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.client.address(_CONTRACT)

    def encode(self, calls: Sequence[Call]) -> tuple[list[str], list[int], list[bytes]]:
        targets = [self.client.address(contract) for contract, _, _ in calls]
        datas = [self.client.abi(contract).encode_call(fn, args) for contract, fn, args in calls]
        return targets, [0] * len(calls), datas

    def simulate(self, calls: Sequence[Call]) -> None:
        """Run each call as the council would (eth_call from its address) and raise the decoded
        error of the first that would fail, so a proposal that can never execute is not created.
        Calls are simulated one by one, so use it for proposals whose calls do not depend on each other."""
        for contract, fn, args in calls:
            data = "0x" + self.client.abi(contract).encode_call(fn, args).hex()
            try:
                self.client.rpc.call("eth_call", [{"from": self.address, "to": self.client.address(contract),
                                                   "data": data}, "latest"])
            except RpcError as exc:
                raise self.client.translate(exc, contract) from exc

    def selector(self, contract: str, function: str) -> bytes:
        """The 4-byte selector of `contract.function` (KeyError for a function not in its ABI)."""
        return self.client.abi(contract).functions[function].selector

    def emergency_allow(self, functions: Sequence[tuple[str, str]], allowed: bool = True) -> list[Call]:
        """The calls that put `(contract, function)` pairs on the emergency allowlist (or take them
        off): a proposal's calls, so the change itself waits out the delay."""
        return [(_CONTRACT, "setEmergencyCall", [self.client.address(contract), self.selector(contract, function),
                                                 allowed]) for contract, function in functions]

    def is_emergency_call(self, contract: str, function: str) -> bool:
        return bool(self.client.call1(_CONTRACT, "isEmergencyCall", self.client.address(contract),
                                      self.selector(contract, function)))

    def key_epoch(self, governor: str) -> int:
        """The council's key epoch for this governor (1 at its first membership, +1 per re-add)."""
        return int(self.client.call(_CONTRACT, "governorKey", governor)[1])

    def state(self, proposal_id: int) -> str:
        return STATES[int(self.client.call1(_CONTRACT, "proposalState", proposal_id))]

    def eta(self, proposal_id: int) -> int:
        """Unix time from which the proposal executes (0 = not queued)."""
        return int(self.client.call1(_CONTRACT, "proposal", proposal_id)[5])

    def stored_hash(self, proposal_id: int) -> bytes:
        return bytes(self.client.call1(_CONTRACT, "proposal", proposal_id)[0])

    def proposal(self, proposal_id: int) -> ProposalCalls:
        """The calls of a proposal, read from its `ProposalCreated` log (the contract keeps only their hash).

        The contract does not say in which block the proposal was made, so the whole chain is searched,
        newest page first (`chain.logs`: the node bounds each request's range), as the proposals looked
        up are mostly recent ones."""
        abi = self.client.abi(_CONTRACT)
        head = int(self.client.rpc.call("eth_blockNumber"), 16)
        wanted = {"address": self.address,
                  "topics": ["0x" + abi.topic("ProposalCreated").hex(), "0x" + proposal_id.to_bytes(32, "big").hex()]}
        for page in LogReader(self.client.rpc, self.max_logs_range).pages(wanted, 0, head, newest_first=True):
            for log in page.logs:
                decoded = abi.decode_log(_normalise_log(log))
                if decoded is not None and decoded.event == "ProposalCreated":
                    a = decoded.args
                    return ProposalCalls(
                        proposal_id=int(a["proposalId"]), proposer=str(a["proposer"]),
                        targets=[str(t) for t in a["targets"]], values=[int(v) for v in a["values"]],
                        calldatas=[bytes(c) for c in a["calldatas"]], description=str(a["description"]),
                        calls_hash=bytes(a["callsHash"]), block=decoded.block_number,
                    )
        raise TransactionFailed(f"no ProposalCreated log for council proposal {proposal_id}")

    # ---- writing --------------------------------------------------------------------------------

    def propose(self, governor: HybridIdentity, calls: Sequence[Call], description: str) -> int:
        """Create a proposal (the proposer's signed approval included) and return its id.

        The proposer signs the id it expects (`proposalCount() + 1`); if another proposal took that
        id first the council refuses (`CouncilStaleProposalId`) and we sign the next one.
        """
        return self.propose_receipt(governor, calls, description)[0]

    def propose_receipt(self, governor: HybridIdentity, calls: Sequence[Call], description: str,
                        *, attempts: int = 5) -> tuple[int, dict[str, Any]]:
        """:meth:`propose`, returning the id and the transaction's receipt."""
        targets, values, datas = self.encode(calls)
        digest = calls_hash(targets, values, datas, description_hash(description))
        epoch = self.key_epoch(governor.address)
        for attempt in range(attempts):
            proposal_id = int(self.client.call1(_CONTRACT, "proposalCount")) + 1
            signature = sign_approval(governor, chain_id=self.client.chain_id, council=self.address,
                                      proposal_id=proposal_id, calls_hash=digest, key_epoch=epoch)
            try:
                receipt = self.client.transact(governor.account, _CONTRACT, "propose", proposal_id, targets, values,
                                               datas, description, epoch, signature)
            except ContractRejected as exc:
                if exc.error == "CouncilStaleProposalId" and attempt + 1 < attempts:
                    continue
                raise
            for log in self.client.decode_logs(receipt):
                if log.event == "ProposalCreated" and log.contract == _CONTRACT:
                    return int(log.args["proposalId"]), receipt
            raise TransactionFailed("the council accepted the proposal but logged no ProposalCreated")
        raise TransactionFailed("unreachable")  # pragma: no cover

    def approve(self, governor: HybridIdentity, proposal_id: int, calls: ProposalCalls | None = None) -> dict[str, Any]:
        """Approve with an ML-DSA signature over the calls hash recomputed from the logged calls."""
        return self.client.wait(self._send_approval(governor, proposal_id, calls))

    def _send_approval(self, governor: HybridIdentity, proposal_id: int,
                       calls: ProposalCalls | None = None) -> SentTx:
        """:meth:`approve` without waiting for the receipt."""
        calls = calls or self.proposal(proposal_id)
        digest = calls.recomputed_hash()
        if digest != self.stored_hash(proposal_id):
            raise TransactionFailed(f"proposal {proposal_id}: the logged calls do not hash to the stored hash; "
                                    "refusing to approve")
        epoch = self.key_epoch(governor.address)
        signature = sign_approval(governor, chain_id=self.client.chain_id, council=self.address,
                                  proposal_id=proposal_id, calls_hash=digest, key_epoch=epoch)
        return self.client.send(governor.account, _CONTRACT, "approve", proposal_id, digest, epoch, signature)

    def revoke(self, governor: HybridIdentity | LocalAccount, proposal_id: int) -> dict[str, Any]:
        return self.client.transact(_account(governor), _CONTRACT, "revokeApproval", proposal_id)

    def queue(self, governor: HybridIdentity | LocalAccount, proposal_id: int) -> dict[str, Any]:
        return self.client.transact(_account(governor), _CONTRACT, "queue", proposal_id)

    def cancel(self, governor: HybridIdentity | LocalAccount, proposal_id: int) -> dict[str, Any]:
        return self.client.transact(_account(governor), _CONTRACT, "cancel", proposal_id)

    def execute(self, governor: HybridIdentity | LocalAccount, proposal_id: int, calls: ProposalCalls | None = None,
                *, wait_s: float = 0.0) -> dict[str, Any]:
        """Execute a Ready proposal, passing its calls back. With `wait_s` > 0 a proposal still
        Queued is retried until its eta has passed on-chain (at most `wait_s` seconds)."""
        calls = calls or self.proposal(proposal_id)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self.client.wait(self._send_execute(governor, proposal_id, calls))
            except ContractRejected as exc:
                if not _is_queued(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _send_execute(self, governor: HybridIdentity | LocalAccount, proposal_id: int,
                      calls: ProposalCalls) -> SentTx:
        return self.client.send(_account(governor), _CONTRACT, "execute", proposal_id, calls.targets,
                                calls.values, calls.calldatas, calls.description_hash)

    def execute_emergency(self, governor: HybridIdentity | LocalAccount, proposal_id: int, reason: str,
                          calls: ProposalCalls | None = None) -> dict[str, Any]:
        """Execute without the delay: needs `emergencyThreshold()` approvals and every call on the
        emergency allowlist (`CouncilEmergencyForbiddenCall` otherwise); logged with the reason."""
        calls = calls or self.proposal(proposal_id)
        return self.client.transact(_account(governor), _CONTRACT, "executeEmergency", proposal_id, calls.targets,
                                    calls.values, calls.calldatas, calls.description_hash, reason)

    def pass_proposal(self, calls: Sequence[Call], description: str, *, max_wait_s: float = 30.0) -> int:
        """Propose with the first governor, approve with as many more as the threshold needs, wait for
        the eta (development delay: 1 s of wall-clock time, never a clock manipulation), execute.

        Only for the development consortium, where one process holds every governor key.
        """
        return int(self.pass_proposals([(calls, description)], max_wait_s=max_wait_s)[0]["proposal_id"])

    def pass_proposals(self, proposals: Sequence[tuple[Sequence[Call], str]],
                       *, max_wait_s: float = 30.0) -> list[dict[str, Any]]:
        """:meth:`pass_proposal` for several proposals, pipelined: all are proposed and approved first, so
        their delays run together, and executed in order (a later one may need an earlier one's effects). Returns, per proposal, its id and every
        receipt (`propose`, `approve` list, `execute`): the figures `gasUsed` of each transaction."""
        threshold = int(self.client.call1(_CONTRACT, "threshold"))
        members = {str(a).lower() for a in self.client.call1(_CONTRACT, "governors")}
        governors = [g for g in self.governors if g.address.lower() in members]
        if len(governors) < threshold:
            raise TransactionFailed(f"need {threshold} governor keys to pass a proposal, have {len(governors)}")
        results: list[dict[str, Any]] = []
        for calls, description in proposals:
            proposal_id, receipt = self.propose_receipt(governors[0], calls, description)
            results.append({"proposal_id": proposal_id, "calls": self.proposal(proposal_id), "propose": receipt})
        # Every governor's approvals are sent before any is awaited, up to the client's in-flight window
        # per governor: on a chain that mines every block period they share blocks, where one approval
        # after another took a block each (9 proposals x 3 approvals were 27 of the development
        # deployment's 63 blocks on a 1 s timer; docs/evm-clients.md).
        approvers = governors[1:threshold]
        window = self.client.inflight_per_sender
        for start in range(0, len(results), window):
            chunk = results[start:start + window]
            approvals: list[SentTx] = []
            try:
                for result in chunk:
                    approvals += [self._send_approval(g, int(result["proposal_id"]), result["calls"]) for g in approvers]
                for result in chunk:
                    result["approve"] = [self.client.wait(approvals.pop(0)) for _ in approvers]
            finally:
                for tx in approvals:  # after an error: every window slot given back
                    try:
                        self.client.wait(tx, timeout_s=5.0)
                    except ChainError:
                        pass
        for result in results:
            proposal_id = int(result["proposal_id"])
            eta = self.eta(proposal_id)
            if eta - _block_time(self.client) > max_wait_s:
                raise TransactionFailed(f"proposal {proposal_id} is queued until {eta} (unix time), beyond the "
                                        f"{max_wait_s:.0f} s this call waits; execute it then (`qeaims gov execute`)")
        # Executed from one account, pipelined once the last eta has passed by our clock or by the
        # latest block's time, whichever comes first: a chain that mines on demand makes no block while
        # we wait, and a chain's clock may run ahead of ours. One that lands too early all the same (a
        # chain clock behind ours) is executed again by `execute`, which retries until its eta has passed.
        last_eta = max((self.eta(int(r["proposal_id"])) for r in results), default=0)
        deadline = time.monotonic() + max_wait_s
        while time.time() < last_eta and _block_time(self.client) < last_eta and time.monotonic() < deadline:
            time.sleep(0.1)
        for start in range(0, len(results), window):
            chunk = results[start:start + window]
            sent: list[tuple[dict[str, Any], SentTx]] = []
            early: list[dict[str, Any]] = []
            try:
                for result in chunk:
                    if early:  # in order: once one execute waits, every later one waits behind it
                        early.append(result)
                        continue
                    try:
                        sent.append((result, self._send_execute(governors[0], int(result["proposal_id"]),
                                                                result["calls"])))
                    except ContractRejected as exc:
                        # Refused at its gas estimate. Queued: its eta has not passed on-chain yet. Anything
                        # else with executes of ours still in the pool: a node that estimates on the latest
                        # mined block (Geth, Besu; Anvil and Hardhat use the pending state) runs it without
                        # the earlier proposals' effects it may need (a node whose dependency an earlier
                        # proposal adds). Either way it is sent again, by `execute`, once those are mined;
                        # a genuine refusal is raised then.
                        if not (_is_queued(exc) or sent):
                            raise
                        early.append(result)
                while sent:
                    result, tx = sent.pop(0)
                    with _queued_is_early(early, result):
                        result["execute"] = self.client.wait(tx)
            finally:
                for _, tx in sent:  # after an error: every window slot given back
                    try:
                        self.client.wait(tx, timeout_s=5.0)
                    except ChainError:
                        pass
            position = {id(result): i for i, result in enumerate(chunk)}
            early.sort(key=lambda result: position[id(result)])  # executed again in the proposals' order
            for result in early:
                result["execute"] = self.execute(governors[0], int(result["proposal_id"]), result["calls"],
                                                 wait_s=max(0.0, deadline - time.monotonic()))
        return results


@contextmanager
def _queued_is_early(early: list[dict[str, Any]], result: dict[str, Any]) -> Iterator[None]:
    """An execute refused because its proposal is still Queued (its eta not yet passed on-chain, when the
    estimate or the block ran at a chain time behind ours) goes on `early`, for `execute` to retry."""
    try:
        yield
    except ContractRejected as exc:
        if not _is_queued(exc):
            raise
        early.append(result)


def _is_queued(exc: ContractRejected) -> bool:
    """The council's refusal of an execute whose proposal is still Queued (3): its eta has not passed."""
    return exc.error == "CouncilWrongState" and int(exc.args_by_name.get("actual", -1)) == 3


def _account(governor: HybridIdentity | LocalAccount) -> LocalAccount:
    return governor.account if isinstance(governor, HybridIdentity) else governor


def _block_time(client: ChainClient) -> int:
    block = client.rpc.call("eth_getBlockByNumber", ["latest", False])
    return int(block["timestamp"], 16)


