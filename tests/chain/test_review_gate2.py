"""Review s38c: attacks on the gate's JSON-RPC filter and the journal's reorg following. Findings 1-5 are
fixed (a strict request head, an unparsable body refused, `evm_revert` alone, the base fee set again only
after a revert that reverted, and from the genesis's own); 6 and 7 (a revert was not recorded as one, so a
restart could bring reverted blocks back) are fixed by the gate reporting each revert to the keeper, which
cuts the journal before the client is answered (`chain.keeper.follow_revert`)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.journal import ChainJournal
from chain.node import start_anvil, stop_anvil
from chain.node_proc import journal_path, read_pid
from chain.rpc import RpcError
from core.config import Settings, load_settings
from tests.chain.gate_support import bare_chain, gate_rpc, raw_exchange
from tests.conftest import free_port
from tests.support import wait_journaled

pytestmark = pytest.mark.chain

VICTIM = "0x00000000000000000000000000000000000000aa"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with bare_chain(Path(tmp_path_factory.mktemp("gate2")) / "home") as settings:
        yield settings


def _exchange(settings: Settings, raw: bytes, wait_s: float = 0.5) -> bytes:
    return raw_exchange(settings, raw, wait_s)


def test_bare_lf_head_does_not_smuggle_a_refused_method(chain: Settings) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_setBalance", "params": [VICTIM, "0x1234"]}).encode()
    # the gate sees one header (Host, value running to the final CRLF CRLF) and no body; Anvil sees
    # Content-Type, Content-Length and the body after the bare blank line
    raw = (b"POST / HTTP/1.1\r\nHost: x\nContent-Type: application/json\nContent-Length: %d\n\n" % len(body)
           + body + b"\r\n\r\n")
    _exchange(chain, raw)
    assert int(gate_rpc(chain).call("eth_getBalance", [VICTIM, "latest"]), 16) == 0


def test_a_revert_then_down_does_not_resurrect_reverted_blocks(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        sender = rpc.call("eth_accounts")[0]
        snapshot = rpc.call("evm_snapshot")
        rpc.call("eth_sendTransaction", [{"from": sender, "to": VICTIM, "value": "0x1"}])
        assert int(rpc.call("eth_getBalance", [VICTIM, "latest"]), 16) == 1
        time.sleep(1.0)  # the keeper journals block 1
        assert rpc.call("evm_revert", [snapshot]) is True
        assert int(rpc.call("eth_getBalance", [VICTIM, "latest"]), 16) == 0  # what every client now sees
        time.sleep(1.0)  # the keeper polls every 0.25 s: it has looked at the reverted chain
    finally:
        stop_anvil(settings)
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        assert int(rpc.call("eth_getBalance", [VICTIM, "latest"]), 16) == 0
    finally:
        stop_anvil(settings)



def test_an_unparsable_to_python_body_does_not_smuggle_a_refused_method(chain: Settings) -> None:
    sender = gate_rpc(chain).call("eth_accounts")[1]
    victim = "0x00000000000000000000000000000000000000bb"  # not finding 1's: the module's chain is shared
    huge = b"1" + b"0" * 5000  # valid JSON; Python's json.loads raises ValueError, serde_json ignores the field
    body = (b'{"jsonrpc":"2.0","id":1,"method":"eth_sendUnsignedTransaction","params":[{"from":"%s","to":"%s",'
            b'"value":"0x5","padding":%s}]}' % (sender.encode(), victim.encode(), huge))
    _exchange(chain, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    assert int(gate_rpc(chain).call("eth_getBalance", [victim, "latest"]), 16) == 0


def test_a_block_mined_in_the_reverting_batch_replays(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        rpc.call("evm_mine")  # the snapshot at block 1, not the genesis: that is finding 5
        snapshot = rpc.call("evm_snapshot")
        rpc.call("evm_mine")
        # block 2 again, in the reverting call: refused (the gate sets the base fee again only after a revert's
        # answer), so nothing is reverted; sent one by one, the chain replays
        with pytest.raises(RpcError, match="evm_revert must be sent alone"):
            rpc.batch([("evm_revert", [snapshot]), ("evm_mine", [])])
        assert rpc.call("evm_revert", [snapshot]) is True
        rpc.call("evm_mine")
        served = rpc.call("eth_getBlockByNumber", ["0x2", False])["hash"]
        time.sleep(1.0)  # the keeper journals the new block 2
    finally:
        stop_anvil(settings)
    try:
        start_anvil(settings)  # the replay re-mines block 2 at the base fee EIP-1559 gives after block 1
        assert gate_rpc(settings).call("eth_getBlockByNumber", ["0x2", False])["hash"] == served
    finally:
        stop_anvil(settings)


def test_a_revert_to_a_genesis_snapshot_replays(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        snapshot = rpc.call("evm_snapshot")  # at block 0
        rpc.call("evm_mine")
        assert rpc.call("evm_revert", [snapshot]) is True
        rpc.call("evm_mine")  # block 1 again
        served = rpc.call("eth_getBlockByNumber", ["0x1", False])["hash"]
        time.sleep(1.0)  # the keeper journals the new block 1
    finally:
        stop_anvil(settings)
    try:
        start_anvil(settings)
        assert gate_rpc(settings).call("eth_getBlockByNumber", ["0x1", False])["hash"] == served
    finally:
        stop_anvil(settings)


def test_a_failed_revert_at_the_genesis_leaves_a_chain_that_replays(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        assert rpc.call("evm_revert", ["0x63"]) is False  # no such snapshot: nothing was reverted
        rpc.call("evm_mine")
        served = rpc.call("eth_getBlockByNumber", ["0x1", False])["hash"]
        time.sleep(1.0)  # the keeper journals block 1
    finally:
        stop_anvil(settings)
    try:
        start_anvil(settings)
        assert gate_rpc(settings).call("eth_getBlockByNumber", ["0x1", False])["hash"] == served
    finally:
        stop_anvil(settings)


def test_resuming_after_a_revert_does_not_resurrect_reverted_blocks(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        rpc = gate_rpc(settings)
        sender = rpc.call("eth_accounts")[0]
        snapshot = rpc.call("evm_snapshot")
        rpc.call("eth_sendTransaction", [{"from": sender, "to": VICTIM, "value": "0x1"}])
        time.sleep(1.0)  # the keeper journals block 1
        assert rpc.call("evm_revert", [snapshot]) is True
        time.sleep(1.0)  # the keeper has looked at the reverted chain
        keeper = read_pid(settings, "keeper")
        assert keeper is not None
        os.kill(keeper, signal.SIGKILL)  # a crashed keeper; Anvil lives on
        start_anvil(settings)  # resumes the live Anvil, or replaces it
        assert int(gate_rpc(settings).call("eth_getBalance", [VICTIM, "latest"]), 16) == 0
    finally:
        stop_anvil(settings)


def test_a_revert_is_journaled_before_its_answer_and_the_connection_serves_on(tmp_path: Path) -> None:
    """The gate holds a revert's answer until the keeper has cut the journal, then keeps serving the same
    keep-alive connection (a first version lost the connection after every revert: its next request was
    reset, and the keeper's log had a traceback)."""
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        snapshot = rpc.call("evm_snapshot")
        rpc.call("evm_mine")
        rpc.call("evm_mine")
        wait_journaled(settings)
        journal = ChainJournal(journal_path(settings))
        assert journal.last_block() == 2

        def call(method: str, params: list[object]) -> bytes:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
            return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                len(body)) + body

        # one connection: the revert, then a read; both answered, in order
        answers = _exchange(settings, call("evm_revert", [snapshot]) + call("eth_blockNumber", []), wait_s=2.0)
        assert answers.count(b"HTTP/1.1 200") == 2, answers
        assert b'"result":true' in answers and b'"result":"0x0"' in answers
        assert journal.last_block() == 0  # cut before the answer: no wait here
        log = (settings.chain_dir / "keeper.log").read_text()
        assert "Traceback" not in log and '"event": "journal-revert"' in log
