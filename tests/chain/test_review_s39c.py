"""Review s39c (adversarial): the gate's control methods at a4704be (`chain.gate._controlled`, `_Turns`).
Each finding is a test that fails on the reviewed code, against a real Anvil through the gate.

(1) Any client can freeze every other client for as long as it likes, with a harmless call. `_Turns` prefers
the node's exclusive turn (``alone``): while one is waiting, no ordinary request starts. A client that
pipelines control calls on one keep-alive connection (here ``evm_revert`` to a snapshot nobody took, which
the gate answers ``false`` and which changes nothing) has its next call waiting for ``alone`` before its
task ever yields: the gate reads the next pipelined request from its buffer, with no await that gives the
loop away, the moment it has handed back the previous one. So ``_waiting`` never drops to 0, and every other
client's ``eth_blockNumber`` waits until the flood ends (here 4 s; it could be for ever). Before the turns
(b459c70) a client's calls held up only itself; the s39b fix made ``evm_snapshot``, ``evm_setAutomine`` and
``evm_setIntervalMining`` controls too, so there are more ways to do it, and none needs a snapshot.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from chain.rpc import RpcClient
from tests.chain.gate_support import bare_chain

pytestmark = pytest.mark.chain


def _post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body


def _flood(address: tuple[str, int], request: bytes, stop: threading.Event) -> threading.Thread:
    """A client that pipelines `request` on one keep-alive connection until `stop`, reading every answer."""
    sock = socket.create_connection(address, timeout=5)
    sock.settimeout(None)  # sendall blocks while the gate is busy (a timeout would end the flood)

    def drain() -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([sock], [], [], 0.2)
                if ready and not sock.recv(1 << 20):
                    return
            except OSError:
                return

    def send() -> None:
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            while not stop.is_set():
                sock.sendall(request * 50)
        except OSError:
            pass
        finally:
            stop.set()
            reader.join(3)
            sock.close()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.xfail(strict=True, reason="review s39c finding 1: pipelined control calls (a revert to an unknown "
                   "snapshot, answered false) keep _Turns' exclusive turn waiting, and every other client waits "
                   "until they end")
def test_pipelined_control_calls_do_not_freeze_other_clients(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        address = (settings.rpc_host, settings.rpc_port)
        victim = RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=8.0, retries=0)
        victim.call("eth_blockNumber")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_revert", "params": ["0xdead"]}).encode()
        stop = threading.Event()
        flood = _flood(address, _post(body), stop)
        try:
            time.sleep(0.5)  # the flood is under way
            timer = threading.Timer(4.0, stop.set)  # the flood ends after 4 s, whatever happens
            timer.start()
            started = time.monotonic()
            victim.call("eth_blockNumber")
            waited = time.monotonic() - started
            flooding = not stop.is_set()
        finally:
            stop.set()
            flood.join(5)
        # wanted: another client's read is answered at once, flood or not; main: it waits until the flood
        # ends (about 4 s), the exclusive turn always having a revert waiting
        assert waited < 1.0, f"eth_blockNumber waited {waited:.1f} s (flood still on: {flooding}) behind another client's evm_revert calls"
