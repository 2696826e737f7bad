"""Transactions to our contracts: nonces, a bounded in-flight window per sender, retries, and
reverts turned into plain errors.

Why our own nonce manager: an oracle sends many batches back to back; asking the node for the
nonce each time would serialise on round trips, and a node restart must not wedge a sender. We
keep the next nonce locally, bound how many transactions a sender has in flight (Anvil stalls
when ~1000 from one sender are pending), and resynchronise from `eth_getTransactionCount` after
any failure.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount

from chain.abi import ContractAbi, DecodedLog
from chain.rpc import RpcClient, RpcError
from core.errors import ChainError, ContractRejected, TransactionFailed, TransactionLost

__all__ = ["TX_GAS_CAP", "ChainClient", "SentTx"]

TX_GAS_CAP = 2**24
"""EIP-7825 (Osaka): no transaction may carry a gas limit above 16,777,216. A node past Osaka refuses
one at the door (mainnet; Hardhat at hardfork osaka; Besu once its genesis schedules Osaka, which the one
`qeaims network generate` writes does not yet). The client keeps to the cap on every chain: it refuses
first, in plain words, and keeps its estimate's safety margin under the cap (:meth:`ChainClient._estimate`)."""


@dataclass
class _Sender:
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_nonce: int | None = None
    window: threading.BoundedSemaphore | None = None


@dataclass(frozen=True)
class SentTx:
    tx_hash: str
    sender: str
    nonce: int
    contract: str
    function: str
    sent_at: float


DROPPED_AFTER_S = 2.0
"""How long a transaction may go unmined before the client asks whether the node still knows it."""


class ChainClient:
    """Calls and transactions against a set of named contracts on one chain."""

    def __init__(
        self,
        rpc: RpcClient,
        *,
        chain_id: int,
        contracts: dict[str, tuple[str, ContractAbi]],
        inflight_per_sender: int = 8,
        receipt_timeout_s: float = 60.0,
    ) -> None:
        self.rpc = rpc
        self.chain_id = chain_id
        self.contracts = contracts
        self.inflight_per_sender = inflight_per_sender
        self.receipt_timeout_s = receipt_timeout_s
        self._senders: dict[str, _Sender] = {}
        self._senders_lock = threading.Lock()
        self._gas_price: tuple[float, int] = (0.0, 0)

    # ---- reads ------------------------------------------------------------------------------
    def address(self, contract: str) -> str:
        return self.contracts[contract][0]

    def abi(self, contract: str) -> ContractAbi:
        return self.contracts[contract][1]

    def call(self, contract: str, function: str, *args: Any, block: str | int = "latest") -> tuple[Any, ...]:
        address, abi = self.contracts[contract]
        data = abi.encode_call(function, args)
        tag = block if isinstance(block, str) else hex(block)
        try:
            raw = self.rpc.call("eth_call", [{"to": address, "data": "0x" + data.hex()}, tag])
        except RpcError as exc:
            raise self._translate(exc, contract) from exc
        return abi.decode_result(function, bytes.fromhex(raw[2:]))

    def call1(self, contract: str, function: str, *args: Any) -> Any:
        return self.call(contract, function, *args)[0]

    def decode_logs(self, receipt: dict[str, Any]) -> list[DecodedLog]:
        by_address = {addr.lower(): abi for addr, abi in self.contracts.values()}
        decoded = []
        for log in receipt.get("logs", []):
            abi = by_address.get(str(log["address"]).lower())
            if abi is None:
                continue
            item = abi.decode_log(_normalise_log(log))
            if item is not None:
                decoded.append(item)
        return decoded

    # ---- writes -----------------------------------------------------------------------------
    def transact(
        self, account: LocalAccount, contract: str, function: str, *args: Any, gas: int | None = None
    ) -> dict[str, Any]:
        """Send and wait for the receipt; a revert raises ContractRejected with the decoded error."""
        return self.wait(self.send(account, contract, function, *args, gas=gas))

    def send(
        self, account: LocalAccount, contract: str, function: str, *args: Any, gas: int | None = None
    ) -> SentTx:
        """Sign and submit a call; blocks while the sender already has its window in flight."""
        address, abi = self.contracts[contract]
        data = abi.encode_call(function, args)
        return self.send_raw(account, to=address, data=data, gas=gas, contract=contract, label=function)

    def send_raw(
        self,
        account: LocalAccount,
        *,
        to: str | None,
        data: bytes = b"",
        value: int = 0,
        gas: int | None = None,
        contract: str = "transaction",
        label: str = "send",
    ) -> SentTx:
        """Any transaction (`to=None` creates a contract); the nonce comes from the local manager."""
        sender = self._sender(account.address)
        assert sender.window is not None
        if not sender.window.acquire(timeout=self.receipt_timeout_s):
            raise TransactionFailed(
                f"{account.address} already has {self.inflight_per_sender} transactions in flight that are not mined"
            )
        try:
            hex_data = "0x" + data.hex()
            if gas is None:
                gas = self._estimate(account.address, to, hex_data, value, contract)
            if gas > TX_GAS_CAP:
                raise TransactionFailed(
                    f"{contract}.{label} needs {gas:,} gas, above the {TX_GAS_CAP:,} a transaction may carry "
                    "(EIP-7825): split the work into smaller transactions")
            with sender.lock:
                if sender.next_nonce is None:
                    sender.next_nonce = int(
                        self.rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16
                    )
                nonce = sender.next_nonce
                tx: dict[str, Any] = {
                    "chainId": self.chain_id,
                    "nonce": nonce,
                    "data": hex_data,
                    "gas": gas,
                    "gasPrice": self._current_gas_price(),
                    "value": value,
                }
                if to is not None:
                    tx["to"] = to
                signed = account.sign_transaction(tx)
                tx_hash = "0x" + signed.hash.hex()
                try:
                    self.rpc.call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
                except RpcError as exc:
                    # A transport retry may resend a transaction the node already took ("already
                    # known", "nonce too low"): if the node knows our hash, it was sent.
                    if self.rpc.call("eth_getTransactionByHash", [tx_hash]) is None:
                        sender.next_nonce = None  # resynchronise on the next send
                        raise self._translate(exc, contract) from exc
                sender.next_nonce = nonce + 1
        except BaseException:
            sender.window.release()
            raise
        return SentTx(str(tx_hash), account.address, nonce, contract, label, time.monotonic())

    def send_all(self, senders: Iterable[Callable[[], SentTx]]) -> list[dict[str, Any]]:
        """Run many sends pipelined within each sender's window; receipts come back in order."""
        pending: deque[SentTx] = deque()
        receipts: list[dict[str, Any]] = []
        try:
            for send in senders:
                if len(pending) >= self.inflight_per_sender:
                    receipts.append(self.wait(pending.popleft()))
                pending.append(send())
            while pending:
                receipts.append(self.wait(pending.popleft()))
        finally:
            for sent in pending:  # after an error: give every window slot back
                try:
                    self.wait(sent, timeout_s=5.0)
                except ChainError:
                    pass
        return receipts

    def wait(self, sent: SentTx, timeout_s: float | None = None) -> dict[str, Any]:
        """Poll for the receipt; frees the sender's window slot whatever happens."""
        sender = self._sender(sent.sender)
        deadline = time.monotonic() + (timeout_s or self.receipt_timeout_s)
        try:
            delay = 0.005
            known_at = time.monotonic()  # when the node last knew the transaction (it took it at send)
            while True:
                receipt = self.rpc.call("eth_getTransactionReceipt", [sent.tx_hash])
                if receipt is not None:
                    break
                if time.monotonic() - known_at > DROPPED_AFTER_S:
                    # a node that restarted (or emptied its pool) forgot it: it will never be mined, so the
                    # caller re-syncs now, not after the whole timeout (found by the crash campaign: a chain
                    # killed and restarted left every recorder waiting 60 s)
                    if self.rpc.call("eth_getTransactionByHash", [sent.tx_hash]) is None:
                        with sender.lock:
                            sender.next_nonce = None
                        raise TransactionLost(f"{sent.contract}.{sent.function} was dropped by the node "
                                                f"(tx {sent.tx_hash} is no longer known to it)")
                    if self._behind_a_gap(sent):
                        with sender.lock:
                            sender.next_nonce = None
                        raise TransactionLost(
                            f"{sent.contract}.{sent.function} waits behind a nonce the node does not have "
                            f"(tx {sent.tx_hash}, nonce {sent.nonce}): the node lost the sender's earlier "
                            "transactions")
                    known_at = time.monotonic()
                if time.monotonic() > deadline:
                    with sender.lock:
                        sender.next_nonce = None
                    raise TransactionFailed(
                        f"{sent.contract}.{sent.function} was not mined within the timeout (tx {sent.tx_hash})"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        finally:
            assert sender.window is not None
            sender.window.release()
        if int(receipt["status"], 16) != 1:
            with sender.lock:
                sender.next_nonce = None
            raise self._explain_failure(sent, receipt)
        return dict(receipt)

    # ---- internals --------------------------------------------------------------------------
    def _behind_a_gap(self, sent: SentTx) -> bool:
        """Whether a transaction the node holds can never be mined: its nonce is past every nonce the node
        can mine for the sender (the 'pending' count counts the chain's nonce and the ready transactions
        in the pool, not those queued behind a gap).

        Found by the crash campaign: a hard-killed chain loses the blocks mined since its journal's last
        catch-up, so a recorder that saw those receipts keeps a nonce ahead of the restarted chain; its
        next transaction is taken into the pool but queued behind the missing nonces, and waited the
        whole receipt timeout (60 s). Our sends are serialised per sender and each lower nonce reaches
        the node before the next is signed, so a gap means the node lost them, not that they are coming.
        """
        ready = int(self.rpc.call("eth_getTransactionCount", [sent.sender, "pending"]), 16)
        if ready > sent.nonce:
            return False
        # mined between the receipt poll and the count: not stuck
        return self.rpc.call("eth_getTransactionReceipt", [sent.tx_hash]) is None

    def _sender(self, address: str) -> _Sender:
        with self._senders_lock:
            state = self._senders.get(address)
            if state is None:
                state = _Sender(window=threading.BoundedSemaphore(self.inflight_per_sender))
                self._senders[address] = state
            return state

    def _current_gas_price(self) -> int:
        """Twice the latest base fee plus a fixed 1 gwei tip, refreshed every 2 s.

        Not a multiple of `eth_gasPrice`: that suggestion follows the prices recently paid, so
        paying a multiple of it feeds back and doubles the price every few blocks. On a chain
        without a base fee (a permissioned Besu with free gas) `eth_gasPrice` is used as is.
        """
        fetched_at, price = self._gas_price
        if time.monotonic() - fetched_at > 2.0:
            latest = self.rpc.call("eth_getBlockByNumber", ["latest", False])
            base_fee = latest.get("baseFeePerGas") if latest else None
            if base_fee is None:
                price = int(self.rpc.call("eth_gasPrice"), 16)
            else:
                price = 2 * int(base_fee, 16) + 10**9
            self._gas_price = (time.monotonic(), price)
        return price

    def _estimate(self, sender: str, to: str | None, data: str, value: int, contract: str) -> int:
        """The node's estimate plus a margin (a fifth and 20,000) for state that moves before mining,
        the margin cut at EIP-7825's cap: an estimate of 14M would otherwise be sent as 16.8M and
        refused by every node past Osaka although the transaction fits. An estimate above the cap is
        returned as it is, for `send_raw` to refuse."""
        request: dict[str, Any] = {"from": sender, "data": data, "value": hex(value)}
        if to is not None:
            request["to"] = to
        try:
            estimate = int(self.rpc.call("eth_estimateGas", [request]), 16)
        except RpcError as exc:
            if not exc.data and "out of gas" in exc.rpc_message.lower():
                # a node past Osaka searches no higher than the cap: no revert, just out of gas
                raise TransactionFailed(
                    f"{contract} call runs out of gas at every limit up to {TX_GAS_CAP:,}, the most a transaction "
                    f"may carry (EIP-7825): split the work into smaller transactions ({exc.rpc_message})") from exc
            raise self._translate(exc, contract) from exc
        if estimate > TX_GAS_CAP:
            return estimate
        return min(estimate + estimate // 5 + 20_000, TX_GAS_CAP)

    def translate(self, exc: RpcError, contract: str) -> ChainError:
        """A node's error reply as our error: the decoded custom error if any contract of ours knows it."""
        return self._translate(exc, contract)

    def _translate(self, exc: RpcError, contract: str) -> ChainError:
        if exc.data:
            own = [self.contracts[contract]] if contract in self.contracts else []
            for _, abi in [*own, *self.contracts.values()]:
                decoded = abi.decode_error(exc.data)
                if decoded is not None:
                    return ContractRejected(contract, decoded.name, decoded.args)
        message = exc.rpc_message
        if "insufficient funds" in message.lower():
            return TransactionFailed(
                "the sending account has no funds for gas; on the development chain run `qeaims chain fund ADDRESS`"
            )
        return TransactionFailed(f"{contract} call failed: {message}")

    def _explain_failure(self, sent: SentTx, receipt: dict[str, Any]) -> ChainError:
        """Replay a reverted transaction with eth_call at its block to recover the revert data."""
        tx = self.rpc.call("eth_getTransactionByHash", [sent.tx_hash])
        request = {"from": tx["from"], "data": tx["input"], "gas": tx["gas"]}
        if tx.get("to"):
            request["to"] = tx["to"]
        block = int(receipt["blockNumber"], 16)
        # before its block first; if it would have passed there, a transaction earlier in the same block
        # changed the state it ran on (another oracle's proposal for the same node, mined with it):
        # replayed after the block it fails as it did, with the error the caller knows how to handle
        for at in (block - 1, block):
            try:
                self.rpc.call("eth_call", [request, hex(at)])
            except RpcError as exc:
                return self._translate(exc, sent.contract)
        return TransactionFailed(f"{sent.contract}.{sent.function} reverted (tx {sent.tx_hash}), likely out of gas")


def _normalise_log(log: dict[str, Any]) -> dict[str, Any]:
    return {
        "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
        "data": bytes.fromhex(log["data"][2:]),
        "blockNumber": int(log["blockNumber"], 16),
        "blockHash": bytes.fromhex(log["blockHash"][2:]),
        "transactionHash": bytes.fromhex(log["transactionHash"][2:]),
        "logIndex": int(log["logIndex"], 16),
        "address": log["address"],
    }
