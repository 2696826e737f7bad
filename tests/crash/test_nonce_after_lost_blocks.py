"""A chain that lost its last blocks in a hard kill: a live sender's next transaction fails in seconds.

Found by the crash campaign (docs/crash-campaign.md, "One chain recovery of 63 s"): Anvil killed -9
loses the blocks mined since its journal keeper's last catch-up. A recorder that had seen those
blocks' receipts keeps a nonce ahead of the restarted chain; its next transaction is taken into the
pool (so the dropped-transaction check sees it as known) but is queued behind the missing nonces and
is never mined. The client waited the whole receipt timeout (60 s) before it re-read the nonce.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account import Account

from chain.node import start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.errors import TransactionFailed
from tests.support import stop_journaling, wait_journaled

ANVIL_ACCOUNT_7 = "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"  # the dev mnemonic's 8th


def test_a_sender_ahead_of_a_restarted_chain_resyncs_in_seconds(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings = fresh_chain.settings
    client = fresh_chain.client
    client.receipt_timeout_s = 60.0
    account = Account.from_key(ANVIL_ACCOUNT_7)

    def transfer() -> dict[str, Any]:
        receipt: dict[str, Any] = client.wait(client.send_raw(account, to=account.address, data=b"", value=1,
                                                              gas=21_000))
        return receipt

    transfer()
    wait_journaled(settings)
    journaled_nonce = int(RpcClient(settings.rpc_url).call("eth_getTransactionCount", [account.address, "latest"]), 16)
    # the next two blocks are mined (the client sees their receipts) but never journaled:
    # what a kill -9 of Anvil within the keeper's interval after a block loses
    stop_journaling(settings)
    transfer()
    transfer()
    stop_anvil(settings, hard=True)
    start_anvil(settings)  # the journal replays without those two blocks; the client lives on
    rpc = RpcClient(settings.rpc_url)
    assert int(rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16) == journaled_nonce

    sent = client.send_raw(account, to=account.address, data=b"", value=1, gas=21_000)
    assert sent.nonce == journaled_nonce + 2  # the client's nonce is ahead of the chain's
    started = time.monotonic()
    with pytest.raises(TransactionFailed, match="behind a nonce the node does not have"):
        client.wait(sent)
    assert time.monotonic() - started < 10.0
    # the next send re-reads the nonce from the chain and is mined
    receipt = transfer()
    assert int(receipt["status"], 16) == 1
    assert int(rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16) == journaled_nonce + 1
