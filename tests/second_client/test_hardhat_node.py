"""The client's transaction path on a node that mines on a timer (Hardhat, osaka): what Anvil's instant
mining hid. Needs only the node and a funded development account, not the consortium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from chain.client import TX_GAS_CAP, ChainClient
from chain.hardhat_node import SECOND_CLIENT_CHAIN_ID, HardhatNode
from chain.node import DEV_MNEMONIC
from chain.rpc import RpcClient, RpcError
from core.config import project_root
from core.errors import TransactionFailed

pytestmark = pytest.mark.chain

# A contract that reads one word of memory at the offset the call gives, paying for memory up to it
# (3 w + w^2/512 gas for w words): a transaction of any gas we like, at the cost of one allocation.
# Runtime: PUSH1 0 CALLDATALOAD MLOAD POP STOP. Init code: CODECOPY the 6-byte runtime and RETURN it.
_BURNER_RUNTIME = bytes.fromhex("6000355150" "00")
_BURNER_INIT = bytes.fromhex("6006600c60003960066000f3") + _BURNER_RUNTIME


def _account(index: int) -> LocalAccount:
    """A funded development account the consortium does not use (the deployer is index 0)."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def _client(node: HardhatNode) -> ChainClient:
    return ChainClient(RpcClient(node.url), chain_id=SECOND_CLIENT_CHAIN_ID, contracts={}, receipt_timeout_s=30)


@pytest.fixture(scope="module")
def burner(hardhat: HardhatNode) -> str:
    client = _client(hardhat)
    receipt = client.wait(client.send_raw(_account(9), to=None, data=_BURNER_INIT, label="burner"))
    return to_checksum_address(receipt["contractAddress"])


def _memory(words: int) -> bytes:
    """Calldata that makes the burner pay for `words` words of memory."""
    return ((words - 1) * 32).to_bytes(32, "big")


def test_blocks_come_on_the_timer_not_on_a_transaction(hardhat: HardhatNode) -> None:
    """The premise of the suite: a sent transaction waits for the next block; blocks come without any."""
    client = _client(hardhat)
    head = int(client.rpc.call("eth_blockNumber"), 16)
    while int(client.rpc.call("eth_blockNumber"), 16) == head:  # just after a block: the next is a period away
        time.sleep(0.005)
    sent = client.send_raw(_account(8), to=_account(7).address, value=1, gas=21_000, label="transfer")
    assert client.rpc.call("eth_getTransactionReceipt", [sent.tx_hash]) is None  # not mined on arrival
    receipt = client.wait(sent)
    assert int(receipt["status"], 16) == 1
    head = int(client.rpc.call("eth_blockNumber"), 16)
    time.sleep(2.5 * hardhat.config.block_time_ms / 1000)
    assert int(client.rpc.call("eth_blockNumber"), 16) >= head + 2  # empty blocks on the timer
    block = client.rpc.call("eth_getBlockByNumber", ["latest", False])
    assert int(block["baseFeePerGas"], 16) == 0  # the zero-base-fee private chain the fee code must handle


def test_a_restarted_sender_takes_the_pending_nonce(hardhat: HardhatNode) -> None:
    """A process restarted while its last transaction waits in the pool (as an oracle after a crash)
    must not reuse that nonce: `eth_getTransactionCount(..., "latest")` would give it again, the node
    would refuse the second transaction as a replacement, and the oracle would stall or lose an event."""
    account, to = _account(6), _account(5).address
    first = _client(hardhat).send_raw(account, to=to, value=1, gas=21_000, label="before the restart")
    restarted = _client(hardhat)  # a new process: no nonce kept
    second = restarted.send_raw(account, to=to, value=2, gas=21_000, label="after the restart")
    assert second.nonce == first.nonce + 1
    receipts = [restarted.wait(second), _client(hardhat).rpc.call("eth_getTransactionReceipt", [first.tx_hash])]
    assert all(r is not None and int(r["status"], 16) == 1 for r in receipts)


def test_an_estimate_close_to_the_cap_is_sent_at_the_cap_not_above(hardhat: HardhatNode, burner: str) -> None:
    """A margin on a 14.4M estimate would ask 17.3M gas, refused by a node past Osaka (EIP-7825)."""
    client = _client(hardhat)
    estimate = int(client.rpc.call("eth_estimateGas", [{"from": _account(4).address, "to": burner,
                                                        "data": "0x" + _memory(85_000).hex()}]), 16)
    assert 14_000_000 < estimate < TX_GAS_CAP < estimate + estimate // 5
    receipt = client.wait(client.send_raw(_account(4), to=burner, data=_memory(85_000), label="near the cap"))
    tx = client.rpc.call("eth_getTransactionByHash", [receipt["transactionHash"]])
    assert int(tx["gas"], 16) == TX_GAS_CAP
    assert estimate <= int(receipt["gasUsed"], 16) <= TX_GAS_CAP


def test_a_transaction_above_the_cap_is_refused_in_plain_words(hardhat: HardhatNode, burner: str) -> None:
    client = _client(hardhat)
    account = _account(3)
    nonce = int(client.rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16)
    with pytest.raises(TransactionFailed, match="EIP-7825"):
        client.send_raw(account, to=burner, data=_memory(10), gas=TX_GAS_CAP + 1, label="explicit gas")
    with pytest.raises(TransactionFailed, match="EIP-7825"):
        client.send_raw(account, to=burner, data=_memory(100_000), label="needs 20M")
    assert int(client.rpc.call("eth_getTransactionCount", [account.address, "pending"]), 16) == nonce  # none sent
    # and the node agrees: it refuses such a transaction itself (hardfork osaka)
    signed = account.sign_transaction({"chainId": SECOND_CLIENT_CHAIN_ID, "nonce": nonce, "to": burner,
                                       "data": "0x" + _memory(10).hex(), "gas": TX_GAS_CAP + 1,
                                       "gasPrice": 10**9, "value": 0})
    with pytest.raises(RpcError, match="cap"):
        client.rpc.call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs unshare -n (root)")
def test_the_node_starts_and_serves_without_any_network(tmp_path: Path) -> None:
    """No compiler download, telemetry or banner fetch at start: in a network namespace with only a
    loopback interface, the node starts and answers."""
    script = (
        "import sys; from pathlib import Path; from chain.hardhat_node import HardhatNode\n"
        f"with HardhatNode(Path({str(tmp_path)!r}), 18999) as node:\n"
        "    print(node.url, flush=True)\n"
    )
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up 2>/dev/null || true; exec \"$0\" -c \"$1\"",
                            sys.executable, script], capture_output=True, text=True, timeout=90, check=False,
                           cwd=project_root(), env=dict(os.environ, PYTHONPATH=str(project_root())))
    if probe.returncode != 0 and "Operation not permitted" in probe.stderr:
        pytest.skip("unshare -n is not permitted here")
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip() == "http://127.0.0.1:18999"
