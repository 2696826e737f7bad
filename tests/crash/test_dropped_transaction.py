"""A transaction the node forgot (it restarted, or emptied its pool) fails in seconds, not at the receipt
timeout: found by the crash campaign (docs/crash-campaign.md), where every recorder of a city whose chain
was killed and restarted sat 60 s waiting for receipts of transactions the restarted chain never had."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from chain.rpc import RpcClient
from core.errors import TransactionFailed

ANVIL_ACCOUNT_8 = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"  # the dev mnemonic's 9th


def test_a_transaction_the_node_dropped_fails_fast(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    client = fresh_chain.client
    client.receipt_timeout_s = 60.0
    rpc = RpcClient(fresh_chain.settings.rpc_url)
    account = Account.from_key(ANVIL_ACCOUNT_8)
    rpc.call("evm_setAutomine", [False])  # test-side only: hold the transaction in the pool ...
    try:
        sent = client.send_raw(account, to=account.address, data=b"", value=1, gas=21_000)
        assert rpc.call("eth_getTransactionByHash", [sent.tx_hash]) is not None
        rpc.call("anvil_dropAllTransactions", [])  # ... and forget it, as a restarted node does
        started = time.monotonic()
        with pytest.raises(TransactionFailed, match="dropped by the node"):
            client.wait(sent)
        assert time.monotonic() - started < 10.0
    finally:
        rpc.call("evm_setAutomine", [True])
    # the next send re-reads the nonce from the chain and is mined
    receipt = client.wait(client.send_raw(account, to=account.address, data=b"", value=1, gas=21_000))
    assert int(receipt["status"], 16) == 1
