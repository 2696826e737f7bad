"""A chain restarted under live clients: their transactions must not slip into the replayed blocks.

Found by the crash campaign (`qeaims campaign crash`, docs/crash-campaign.md): Anvil killed -9 under
a running city, restarted by `start_anvil`, refused to come back ("the chain journal does not match
the chain it replays at block 166 of 169: ... transactionsRoot ..."). The oracles and the controller
kept sending while the journal replayed on the chain's own port: a transaction whose nonce was ahead
of the replayed state waited in the pool and was mined into the replayed block that filled the gap,
and that block was no longer the journal's. The replay now runs on Anvil's private port, and the
public one opens (the keeper's gate) only once it is done: the client's transaction waits, and is
mined after the replay.
"""

from __future__ import annotations

import threading

from eth_account import Account

from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient, RpcError
from core.errors import ChainError
from tests.support import wait_journaled, wait_until

ANVIL_ACCOUNT_9 = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"  # the dev mnemonic's 10th


def _transfer(account, nonce: int, chain_id: int) -> str:  # type: ignore[no-untyped-def]
    signed = account.sign_transaction({"to": account.address, "value": 1, "gas": 21_000, "gasPrice": 10**10,
                                       "nonce": nonce, "chainId": chain_id})
    return "0x" + bytes(signed.raw_transaction).hex().removeprefix("0x")


def test_a_client_sending_during_the_replay_does_not_break_the_restart(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings = fresh_chain.settings
    rpc = RpcClient(settings.rpc_url)
    account = Account.from_key(ANVIL_ACCOUNT_9)
    assert int(rpc.call("eth_getBalance", [account.address, "latest"]), 16) > 0
    chain_id = int(rpc.call("eth_chainId"), 16)
    for nonce in range(3):  # its last transaction sits in the journal's last block
        last = rpc.call("eth_sendRawTransaction", [_transfer(account, nonce, chain_id)])
    wait_until(lambda: rpc.call("eth_getTransactionReceipt", [last]) is not None, 10, what="the last transfer mined")
    head = int(rpc.call("eth_getTransactionReceipt", [last])["blockNumber"], 16)
    assert wait_journaled(settings) == head
    stop_anvil(settings, hard=True)

    sent = threading.Event()
    stop = threading.Event()

    def client() -> None:
        """What a live recorder does: as soon as the chain answers, send its next transaction."""
        live = RpcClient(settings.rpc_url, timeout_s=1.0, retries=0)
        while not stop.is_set() and not sent.is_set():
            try:
                live.call("eth_sendRawTransaction", [_transfer(account, 3, chain_id)])
                sent.set()
            except (ChainError, RpcError):
                stop.wait(0.005)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        start_anvil(settings)  # replays the journal while the client sends
    finally:
        stop.set()
        thread.join(10)
    assert sent.is_set(), "the client never reached the restarted chain"
    rpc = RpcClient(settings.rpc_url)
    block = rpc.call("eth_getBlockByNumber", [hex(head), False])
    assert len(block["transactions"]) == 1  # the journaled block as it was: the client's transaction not in it
    # the client reached the chain only after the replay: its transaction is mined after the journaled head
    wait_until(lambda: int(rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16) == 4, 10,
               what="the client's transaction mined after the replay")
    assert int(rpc.call("eth_blockNumber"), 16) == head + 1
