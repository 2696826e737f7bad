"""Clients are never served by a half-replayed chain: the public port opens only once the journal is
replayed, and closes the moment Anvil dies.

Found by the crash campaign (docs/crash-campaign.md, "Clients on a half-replayed chain"): the journal
was replayed on the chain's own port, so right after a restart oracles read a chain still at an old
block ("no funds for gas": their funding not replayed yet; "key epoch 1 but the registry holds epoch
0": their rotation not replayed yet) and one ended. Anvil now listens on a private port; the keeper's
gate (`chain/gate.py`) opens the public one after the replay.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from chain.journal import ChainJournal
from chain.node import _read_pid, chain_status, start_anvil, stop_anvil
from chain.node_proc import listening_port
from chain.rpc import RpcClient, RpcError
from core.config import load_settings
from core.errors import ChainError
from tests.conftest import free_port
from tests.support import wait_journaled, wait_until

ANVIL_ACCOUNT_8 = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"  # the dev mnemonic's 9th


def _reader(url: str, seen: list[int], done: threading.Event) -> None:
    """Ask for the head every millisecond; stop once `done` is set and at least one answer came."""
    live = RpcClient(url, timeout_s=1.0, retries=0)
    while not (done.is_set() and seen):
        try:
            seen.append(int(live.call("eth_blockNumber"), 16))
        except (ChainError, RpcError):
            pass
        time.sleep(0.001)


def test_a_reader_polling_across_a_restart_never_sees_a_block_below_the_journaled_head(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings = fresh_chain.settings
    RpcClient(settings.rpc_url).call("anvil_mine", [hex(200)])
    head = wait_journaled(settings)
    stop_anvil(settings, hard=True)
    seen: list[int] = []
    done = threading.Event()
    thread = threading.Thread(target=_reader, args=(settings.rpc_url, seen, done), daemon=True)
    thread.start()
    try:
        start_anvil(settings)  # replays `head` blocks; before the gate, every block number below it
    finally:
        done.set()
        thread.join(30)
    assert seen and min(seen) >= head, f"a client saw block {min(seen)} of a chain journaled to {head}"


def _transfer(account, nonce: int, chain_id: int) -> str:  # type: ignore[no-untyped-def]
    signed = account.sign_transaction({"to": account.address, "value": 1, "gas": 21_000, "gasPrice": 10**10,
                                       "nonce": nonce, "chainId": chain_id})
    return "0x" + bytes(signed.raw_transaction).hex().removeprefix("0x")


def test_a_client_sending_during_the_replay_is_refused_until_the_gate_opens_then_lands_after_it(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings = fresh_chain.settings
    rpc = RpcClient(settings.rpc_url)
    account = Account.from_key(ANVIL_ACCOUNT_8)
    chain_id = int(rpc.call("eth_chainId"), 16)
    nonce = int(rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16)
    rpc.call("anvil_mine", [hex(150)])  # a replay long enough to send into
    head = wait_journaled(settings)
    stop_anvil(settings, hard=True)
    refused, sent_at = [0], [-1]
    stop = threading.Event()

    def client() -> None:
        live = RpcClient(settings.rpc_url, timeout_s=1.0, retries=0)
        while not stop.is_set():
            try:
                at = int(live.call("eth_blockNumber"), 16)  # the chain as this client sees it when it sends
                live.call("eth_sendRawTransaction", [_transfer(account, nonce, chain_id)])
                sent_at[0] = at
                return
            except (ChainError, RpcError):
                refused[0] += 1
                stop.wait(0.002)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        start_anvil(settings)
        wait_until(lambda: sent_at[0] >= 0, 10, what="the client's transaction sent")
    finally:
        stop.set()
        thread.join(10)
    assert refused[0] > 0  # it tried while the chain was down and replaying
    assert sent_at[0] == head  # the first chain it reached was the whole journaled one
    wait_until(lambda: int(rpc.call("eth_blockNumber"), 16) > head, 10, what="the client's transaction mined")
    assert len(rpc.call("eth_getBlockByNumber", [hex(head + 1), False])["transactions"]) == 1
    assert int(rpc.call("eth_getTransactionCount", [account.address, "latest"]), 16) == nonce + 1


def _post(conn: http.client.HTTPConnection) -> int:
    conn.request("POST", "/", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}),
                 {"Content-Type": "application/json"})
    return int(json.loads(conn.getresponse().read())["result"], 16)


def _refused(host: str, port: int) -> bool:
    try:
        http.client.HTTPConnection(host, port, timeout=5).connect()
    except ConnectionRefusedError:
        return True
    return False


def test_the_gate_closes_the_moment_anvil_dies_and_a_stopped_anvil_looks_frozen(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        anvil, keeper = _read_pid(settings), _read_pid(settings, "keeper")
        assert anvil is not None and keeper is not None
        conn = http.client.HTTPConnection(settings.rpc_host, settings.rpc_port, timeout=5)
        assert _post(conn) == 0 and _post(conn) == 0  # keep-alive: two requests on one connection
        os.kill(anvil, signal.SIGSTOP)  # the chain-down campaign's outage: alive, answering nothing
        while Path(f"/proc/{anvil}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "T":
            time.sleep(0.01)  # every thread of it stopped
        try:
            frozen = http.client.HTTPConnection(settings.rpc_host, settings.rpc_port, timeout=0.5)
            with pytest.raises(TimeoutError):
                _post(frozen)  # connected through the gate, then no answer: as frozen as Anvil is
        finally:
            os.kill(anvil, signal.SIGCONT)
        assert _post(conn) == 0
        os.kill(anvil, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _post(conn)  # the open connection is closed, not left hanging
        wait_until(lambda: _refused(settings.rpc_host, settings.rpc_port), 3, what="the gate's port refusing connections")
        assert time.monotonic() - started < 3.0
        wait_until(lambda: _read_pid(settings, "keeper") is None, 5, what="the keeper ended with its Anvil")
    finally:
        stop_anvil(settings)


def test_a_dead_keeper_is_replaced_alone_without_a_new_anvil_or_a_replay(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        anvil, keeper = _read_pid(settings), _read_pid(settings, "keeper")
        rpc = RpcClient(settings.rpc_url)
        rpc.call("anvil_mine", [hex(5)])
        assert wait_journaled(settings) == 5
        assert keeper is not None
        os.kill(keeper, signal.SIGKILL)  # the keeper, and with it the gate: nobody is served unjournaled blocks
        wait_until(lambda: not chain_status(settings).running, 5, what="the public port closed with the keeper")
        status = start_anvil(settings)
        assert status.pid == anvil and _read_pid(settings, "keeper") not in (None, keeper)  # same Anvil, new keeper
        assert status.block_number == 5  # not replayed: the same chain, served again
        rpc.call("anvil_mine", [hex(2)])
        assert wait_journaled(settings) == 7
        keeper = _read_pid(settings, "keeper")
        assert keeper is not None and anvil is not None
        os.kill(keeper, signal.SIGKILL)  # dead again, and blocks mined that it never journaled
        private = listening_port(anvil)
        RpcClient(f"http://127.0.0.1:{private}").call("anvil_mine", [hex(3)])
        stop_anvil(settings)  # a clean stop journals them before Anvil goes
        assert ChainJournal(settings.chain_dir / "journal.jsonl").last_block() == 10
    finally:
        stop_anvil(settings)


_KILLED_MID_REPLAY = """
import os, sys
from pathlib import Path
from chain import node
from core.config import load_settings

settings = load_settings(home=Path(sys.argv[1]), rpc_port=int(sys.argv[2]))
real, done = node._remine, []

def then_die(rpc, block, total):
    real(rpc, block, total)
    done.append(block.number)
    if len(done) == 10:
        os._exit(9)  # `qeaims chain up` killed -9 in the middle of the replay: nothing cleans up

node._remine = then_die
node.start_anvil(settings)
"""


def test_an_anvil_left_half_replayed_by_a_killed_start_is_never_served(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())
    start_anvil(settings)
    try:
        RpcClient(settings.rpc_url).call("anvil_mine", [hex(40)])
        head = wait_journaled(settings)
        stop_anvil(settings)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        killed = subprocess.run([sys.executable, "-c", _KILLED_MID_REPLAY, str(settings.home), str(settings.rpc_port)],
                                env=env, check=False, capture_output=True, text=True, timeout=120)
        assert killed.returncode == 9, killed.stderr
        half = _read_pid(settings)
        assert half is not None  # its Anvil lives on, ten blocks into the journal...
        assert not chain_status(settings).running  # ...and no client can reach it
        status = start_anvil(settings)
        assert status.block_number == head and status.pid != half  # replaced, the whole journal replayed
    finally:
        stop_anvil(settings)
        for pid in [p for p in [locals().get("half")] if isinstance(p, int)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
