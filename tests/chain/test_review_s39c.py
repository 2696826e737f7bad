"""Review s39c (adversarial): the gate's control methods at a4704be (`chain.gate._controlled`, `_Turns`).
Each finding is a test that failed on the reviewed code, against a real Anvil through the gate; all six are
fixed (at the end of this docstring).

(1) Any client can freeze every other client for as long as it likes, with a harmless call. `_Turns` prefers
the node's exclusive turn (``alone``): while one is waiting, no ordinary request starts. A client that
pipelines control calls on one keep-alive connection (here ``evm_revert`` to a snapshot nobody took, which
the gate answers ``false`` and which changes nothing) has its next call waiting for ``alone`` before its
task ever yields: the gate reads the next pipelined request from its buffer, with no await that gives the
loop away, the moment it has handed back the previous one. So ``_waiting`` never drops to 0, and every other
client's ``eth_blockNumber`` waits until the flood ends (here 4 s; it could be for ever). A flood of
ordinary calls (``eth_blockNumber``) the same way holds up nobody (2 ms). The exclusive turn came with
81be28f; a4704be made ``evm_snapshot``, ``evm_setAutomine`` and ``evm_setIntervalMining`` controls too, so
there are more ways to do it, and none needs a snapshot.

(2) An HTTP/1.0 request (no keep-alive) for an ordinary method is answered but its connection is never
closed. HTTP/1.0 ends a connection after its answer; Anvil answers ``HTTP/1.0 200`` without a
``Connection: close`` field (none is needed in 1.0), and the gate decides whether to go on from the node's
``Connection`` field alone (`_relay_response`) and checks the client's HTTP version only
for refusals and control methods (`_closes`). So it waits for a next request that never comes, and a client
that reads its answer to the end of the connection (as HTTP/1.0 allows) hangs until its own timeout.
Older than a4704be (68ec1df does the same); the goal lists HTTP/1.0 as a use that must keep working.

(3) A request with ``Expect: 100-continue`` gets no interim ``100 Continue`` until its body has come: the gate
reads the whole body before it forwards anything, and a client that asked waits for the 100 before it sends
the body (curl waits 1 s, then sends anyway), so every such request stalls for the client's wait. curl adds
the field itself to a large enough body (a contract deployment). Also older than a4704be.

(4) One allowed call kills the chain: ``evm_setIntervalMining`` with the largest u64 (18446744073709551615 s)
makes Anvil 1.7.1 panic and exit (the interval timer overflows); the gate forwards it as it forwards any
interval. Every client then gets "connection refused" until someone starts the chain again, and whatever
the keeper had not yet journaled is lost with it. The gate checks the method's name, never its value.

(5) One allowed call makes the chain unreplayable for good: ``evm_mine`` with ``{"timestamp": 2**64 - 1}``
mines a block at the largest u64 timestamp, which the gate serves and the keeper journals. The next start
replays it, then sets the next block's timestamp to one past the last (`chain.node._replay`:
``evm_setNextBlockTimestamp`` 2**64), which Anvil refuses ("invalid type: integer 18446744073709551616 as
u128"): the start fails, and every start after it, until the journal is edited by hand. The same with
``evm_setNextBlockTimestamp`` ``0xfffffffffffffffe`` then ``evm_mine`` (the start then fails with "The
timestamp is too big"): the gate checks no timestamp's value, and the replay's step past the last block
assumes there is room.

(6) One allowed call keeps every control method out for hours: ``anvil_mine`` with ``0xffffffff`` blocks
is an ordinary request (a shared turn) that Anvil works on for as long as it takes to mine four billion
blocks (3,588 in its first 10.6 s here), answering nothing to it, and it goes on even once its client has
gone. While it is in flight, every other client's ``evm_snapshot``, ``evm_revert`` and ``evm_setAutomine``
waits the gate's 10 s and is refused, and every ordinary request waits behind each of those 10 s; the
journal grows by hundreds of blocks a second meanwhile. The gate bounds no count.

Fixed (`chain.gate`): turns are granted first come, first served (`_Turns`), so a pipelined flood of control
calls interleaves with everyone else's requests (1); a client's HTTP/1.0 or `Connection: close` ends its
connection after any answer (2); `Expect: 100-continue` is answered before the body is read (3); and the time
and mining methods' parameters are bounded (`_bad_params`: an interval up to a day, timestamps up to 2**37 s,
a clock step up to 2**32 s, at most 256 blocks a call, as review s39d set them), refused with -32602 and one plain message (4-6).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from chain.node import chain_status, start_anvil, stop_anvil
from chain.rpc import RpcClient
from core.errors import ChainError
from tests.chain.gate_support import bare_chain, gate_rpc

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


def _exchange_until_closed(settings_host: str, port: int, raw: bytes, wait_s: float) -> tuple[bytes, float | None]:
    """Send `raw`, read what comes back; (the bytes, the seconds until the gate closed, None if it did not)."""
    with socket.create_connection((settings_host, port), timeout=3) as sock:
        started = time.monotonic()
        sock.sendall(raw)
        out = b""
        while time.monotonic() - started < wait_s:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            data = sock.recv(65536)
            if not data:
                return out, time.monotonic() - started
            out += data
        return out, None


def test_an_http10_request_is_answered_and_its_connection_closed(tmp_path: Path) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = (b"POST / HTTP/1.0\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
               % len(body) + body)
    with bare_chain(tmp_path / "home") as settings:
        out, closed_after = _exchange_until_closed(settings.rpc_host, settings.rpc_port, request, 2.0)
    assert b" 200 " in out.split(b"\r\n", 1)[0] and out.endswith(b"}"), out  # answered, on main too
    # wanted: the connection ends with the answer, as HTTP/1.0 has it; main: still open 2 s later
    assert closed_after is not None and closed_after < 1.0, "the gate kept an HTTP/1.0 connection open after its answer"


def test_expect_100_continue_is_answered_before_the_body(tmp_path: Path) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    head = (b"POST / HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\nexpect: 100-continue\r\n"
            b"content-length: %d\r\n\r\n" % len(body))
    with bare_chain(tmp_path / "home") as settings, \
            socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=3) as sock:
        sock.sendall(head)
        ready, _, _ = select.select([sock], [], [], 1.0)  # what curl waits before it sends the body anyway
        interim = sock.recv(4096) if ready else b""
        sock.sendall(body)
        answer = interim
        deadline = time.monotonic() + 3.0
        while not answer.endswith(b"}") and time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], 0.1)
            if ready:
                answer += sock.recv(4096)
    assert answer.endswith(b"}"), answer  # the request is answered in the end, on main too
    # wanted: "100 Continue" within the second the client waits for it; main: nothing until the body is sent
    assert interim.startswith(b"HTTP/1.1 100"), f"no interim answer within 1 s; then: {answer[:40]!r}"


def test_an_interval_too_large_does_not_kill_the_chain(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        rpc.call("evm_mine")
        try:
            rpc.call("evm_setIntervalMining", [2**64 - 1])
        except ChainError:
            pass  # refused (the fix) or cut by Anvil's end (main)
        time.sleep(1.0)
        running = chain_status(settings).running
        # wanted: the chain still answers; main: Anvil has panicked, the gate is closed with it
        assert running, "one evm_setIntervalMining call through the gate killed the chain"
        assert int(rpc.call("eth_blockNumber"), 16) == 1


def test_a_block_at_the_largest_timestamp_still_replays(tmp_path: Path) -> None:
    with bare_chain(tmp_path / "home") as settings:
        rpc = gate_rpc(settings)
        rpc.call("evm_mine")
        try:
            rpc.call("evm_mine", [{"timestamp": 2**64 - 1}])
        except ChainError:
            pass  # refused (a fix): then the chain is as it was
        head = int(rpc.call("eth_blockNumber"), 16)
        served = [b["hash"] for b in rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(head + 1)])]
    try:
        start_anvil(settings)
        replayed = [b["hash"] for b in gate_rpc(settings).batch([("eth_getBlockByNumber", [hex(n), False])
                                                                for n in range(head + 1)])]
        started = None
    except ChainError as exc:  # main: evm_setNextBlockTimestamp 2**64 refused
        replayed, started = [], f"{type(exc).__name__}: {exc}"
    finally:
        stop_anvil(settings)
    # wanted: the chain clients were served starts again; main: the start fails after the replay, every time
    assert started is None and replayed == served, f"the chain does not start again: {started}"


def test_a_huge_anvil_mine_does_not_shut_out_snapshots(tmp_path: Path) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0xffffffff"]}).encode()
    with bare_chain(tmp_path / "home") as settings:
        with socket.create_connection((settings.rpc_host, settings.rpc_port), timeout=3) as sock:
            sock.sendall(_post(body))
            time.sleep(0.5)  # the gate has forwarded it; Anvil mines
            victim = RpcClient(f"http://{settings.rpc_host}:{settings.rpc_port}", timeout_s=3.0, retries=0)
            started = time.monotonic()
            try:
                victim.call("evm_snapshot")
                problem = None
            except ChainError as exc:  # main: no answer within 3 s (the gate answers a refusal at 10 s)
                problem = f"{exc} (after {time.monotonic() - started:.1f} s)"
        # wanted: the call is refused or bounded, and another client's snapshot answered; main: shut out
        assert problem is None, f"another client's evm_snapshot: {problem}"
