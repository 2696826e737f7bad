"""The gate: the development chain's public port, an HTTP JSON-RPC filter in front of Anvil's private one.

Why: Anvil cannot change its port, and while a restarted chain replays its journal it must answer
no client (a client that reads a half-replayed chain sees its funding or its key rotation missing;
one that sends gets its transaction into a replayed block). So Anvil listens on a loopback port of
its own, the replay runs there, and only then does the journal keeper (`chain.keeper`) open this
gate on the port clients know.

The journal replays transactions, so a chain whose state changed any other way cannot be replayed
(review s38, finding 2): the gate reads each HTTP/1.1 request (a Content-Length body; keep-alive and
pipelining work, answered in order), parses its JSON-RPC call or batch and forwards it only if every
method is on the allowlist (`allowed`): reads and transactions (``eth_*``, ``net_*``, ``web3_*``,
``txpool_*``) and the mining and time methods the dev tooling uses. Anything else (``anvil_setBalance``,
``anvil_setCode``, ``anvil_impersonateAccount``, ``anvil_reset``, ...) gets a JSON-RPC error -32601
naming it; a batch with one such method is refused whole. Chunked request bodies and WebSocket
upgrades get an HTTP error and the connection ends.

The chain's control methods (``evm_revert``, ``evm_snapshot``, ``evm_setAutomine``,
``evm_setIntervalMining``) must each be sent alone and run with the node to themselves: every other
request waits and those in flight end first (`_Turns`). A revert's answer is held until the keeper has
cut the reverted blocks from the journal (``on_revert``): a revert a client was told of is in the
journal before anything else happens, so no restart can bring the reverted blocks back (review s38c
finding 2). The gate keeps the snapshots taken through it: a revert to one it does not know is
answered false (as Anvil answers an unknown one) without reaching Anvil, and a revert to one whose
block a revert has dropped since is refused, because Anvil 1.7.1 then breaks its chain (review s39b).
A revert is refused while the node mines on a timer (interval mining, which a set block time
``QEAIMS_BLOCK_TIME`` turns on: on such a chain nothing can be reverted) or while automined
transactions still wait for their blocks. Every answer is read whole from the node under its turn
and written to the client after it, so a client that does not read holds up only itself.

It lives and dies with Anvil: it watches Anvil's pid (`os.pidfd_open`, or /proc where that is
missing) and, the moment Anvil is gone, closes its listener and every connection, so a client sees
"connection refused", as it would from a dead Anvil, never a hang. A stopped Anvil (SIGSTOP) is
still alive: through the gate it looks as frozen as it is. The keeper closes the gate before it
journals for the last time, so a client is only ever served by a chain whose blocks are journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.node_proc import is_zombie

__all__ = ["Gate", "allowed"]

_CHUNK = 65536
_MAX_BODY = 64 << 20  # a request body the gate reads whole to check its methods
_REVERT_WAIT_S = 10.0  # how long an evm_revert waits for the requests in flight to end
_POOL_WAIT_S = 5.0  # how long it waits for automined transactions to get their blocks

# what the gate forwards: every read and transaction (eth_*, net_*, web3_*, the pool's txpool_*), and
# the dev tooling's mining and time methods (the journal records their blocks and replays them);
# never a method that changes state or the chain's rules outside a transaction (anvil_setBalance,
# anvil_setCode, anvil_impersonateAccount, anvil_reset, anvil_loadState, evm_setBlockGasLimit, ...)
_ALLOWED_PREFIXES = ("eth_", "net_", "web3_", "txpool_")
_REFUSED = frozenset({"eth_sendUnsignedTransaction"})  # an unsigned transaction's raw form does not replay
_ALLOWED = frozenset({"evm_snapshot", "evm_revert", "evm_mine", "anvil_mine", "evm_increaseTime",
                      "evm_setNextBlockTimestamp", "evm_setAutomine", "evm_setIntervalMining",
                      "anvil_nodeInfo", "anvil_metadata", "anvil_dropTransaction", "anvil_dropAllTransactions"})
# the methods the gate runs with the node to itself, each sent alone (`_controlled`): the chain's controls,
# and the mining and time methods, so that neither many connections nor one batch can keep the node busy
# for longer than one bounded call (review s39d findings 1, 2)
_CONTROLS = frozenset({"evm_revert", "evm_snapshot", "evm_setAutomine", "evm_setIntervalMining", "evm_mine",
                       "anvil_mine", "evm_increaseTime", "evm_setNextBlockTimestamp"})


class Gate:
    """Listens on ``listen`` and pipes each connection to ``target`` while process ``watched`` lives."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], watched: int,
                 on_gone: Callable[[], None] | None = None,
                 on_revert: Callable[[int, str], None] | None = None) -> None:
        """``on_revert(number, hash)`` is called (on a worker thread) after each `evm_revert` that
        reverted, with the reverted chain's head, before the client is answered; if it raises, the
        client's connection is cut instead of answered."""
        self.listen = listen
        self.on_gone = on_gone
        self.on_revert = on_revert
        self.target = target
        self.watched = watched
        self.target_gone = threading.Event()  # set when the watched process has ended
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._pidfd: int | None = None
        self._pinned = False
        self._stop: asyncio.Future[None] | None = None
        self._control: _Control | None = None  # made on the gate's loop
        self._poller: asyncio.Task[None] | None = None  # the /proc fallback's task, held so it is not collected

    def pin(self) -> None:
        """Pin the watched process (a pidfd): a caller that then checks what that pid is checks the very
        process the gate will follow, even if the number were reused in between. A process already
        gone is a `ProcessLookupError`."""
        try:
            self._pidfd = os.pidfd_open(self.watched)
        except (AttributeError, OSError) as exc:
            if isinstance(exc, ProcessLookupError):
                raise
            self._pidfd = None
            if not _alive(self.watched):
                raise ProcessLookupError(f"process {self.watched} is gone") from None
        self._pinned = True

    def open(self) -> None:
        """Bind now (an `OSError` here says why the port cannot be had), then serve on a thread."""
        if not self._pinned:
            self.pin()
        sock = socket.socket(socket.AF_INET6 if ":" in self.listen[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.listen)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="gate", daemon=True)
        self._thread.start()
        ready.wait()

    @property
    def closed(self) -> bool:
        """Whether the gate stopped serving (closed, its process gone, or its thread failed)."""
        return self._closed.is_set() or self.target_gone.is_set()

    def close(self) -> None:
        """Close the listener and every connection; returns once they are closed."""
        loop = self._loop
        if loop is not None and not self._closed.is_set():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._shut)
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            self._closed.set()
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        self._stop = loop.create_future()
        self._control = _Control(_Turns(), self.on_revert)
        self._server = await asyncio.start_server(self._pipe, sock=self._sock)
        self._watch()
        ready.set()
        try:
            await self._stop
        finally:
            self._shut()
            await asyncio.sleep(0)  # let the aborted connections' tasks see their end

    def _watch(self) -> None:
        """Stop the gate when the watched process ends (a zombie has ended: its sockets are closed)."""
        loop = asyncio.get_running_loop()

        def ended() -> None:
            self.target_gone.set()
            self._shut()
            if self.on_gone is not None:
                self.on_gone()

        pidfd = self._pidfd
        if pidfd is None:  # no pidfd (old kernel, another OS): look every 50 ms
            async def poll() -> None:
                while _alive(self.watched):
                    await asyncio.sleep(0.05)
                ended()
            self._poller = loop.create_task(poll())
            return

        def readable() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            ended()

        loop.add_reader(pidfd, readable)

    def _shut(self) -> None:
        """Runs on the gate's loop: listener first (no new connection), then every open one."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # a connection cut by the gate's end is not an error: its task ends quietly (asyncio would
        # log a traceback for a connection handler whose task was cancelled)
        with contextlib.suppress(asyncio.CancelledError):
            await self._splice(client_r, client_w)

    async def _splice(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            node_r, node_w = await asyncio.open_connection(*self.target)
        except OSError:
            self._writers.discard(client_w)
            client_w.transport.abort()
            return
        if self._stop is None or self._stop.done():  # the gate shut while this connection was being made
            for writer in (client_w, node_w):
                self._writers.discard(writer)
                writer.transport.abort()
            return
        self._writers.add(node_w)
        for writer in (client_w, node_w):  # each answer is one write, each request one: no Nagle wait either
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            assert self._control is not None
            await _serve_http(client_r, client_w, node_r, node_w, self._control)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # a peer that went away or spoke no HTTP: its connection ends
        finally:
            for writer in (client_w, node_w):
                self._writers.discard(writer)
                writer.transport.abort()


async def _serve_http(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                      node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter, control: _Control) -> None:
    """One request at a time, in order (so pipelined requests get their answers in order): read it,
    refuse it or forward it, read Anvil's whole answer, then hand it to the client; until either side
    closes. The answer is read whole under the request's turn and written to the client after it: a
    client that does not read its answers must hold up nobody else (review s39b findings 2 and 3)."""
    while True:
        try:
            head = await client_r.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return  # the client closed between requests
        except asyncio.LimitOverrunError:
            await _http_error(client_w, 431, "request headers too large")
            return
        problem = _malformed(head)
        if problem is not None:
            await _http_error(client_w, 400, f"a malformed request head ({problem}): the QEAIMS dev chain's gate "
                                              "forwards only what it can read exactly as the node will")
            return
        headers = _headers(head)
        if "upgrade" in headers:
            await _http_error(client_w, 501, "the QEAIMS dev chain's gate serves JSON-RPC over HTTP only: "
                                              "no WebSocket or other upgrade")
            return
        if "transfer-encoding" in headers:
            await _http_error(client_w, 411, "the QEAIMS dev chain's gate needs a Content-Length body, "
                                              "not a chunked one")
            return
        length = int(headers.get("content-length", "0") or "0")
        if length < 0 or length > _MAX_BODY:
            await _http_error(client_w, 413, f"a request body of {length} bytes is more than the gate takes")
            return
        if length and "100-continue" in headers.get("expect", "").lower():
            # a client that waits for it before sending its body (curl: 1 s) gets it now, not after the body
            # (review s39c finding 3); the node's own 100 then follows as a second interim answer, which
            # HTTP/1.1 clients must accept
            client_w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await client_w.drain()
        body = await client_r.readexactly(length) if length else b""
        refusal, controls = _refusal(body)
        if refusal is not None:
            client_w.write(_http_reply(refusal, keep_alive=not _closes(head, headers)))
            await client_w.drain()
            if _closes(head, headers):
                return
            continue
        if controls is not None:  # the node alone (`_controlled`), asked with the gate's own head
            answer, keep = await _controlled(controls, body, node_r, node_w, control)
            keep = keep and not _closes(head, headers)
        else:
            async with control.turns.shared():
                node_w.write(head + body)
                await node_w.drain()
                held = _Held()
                keep = await _relay_response(node_r, held)
            answer = bytes(held.data)
            # a client's HTTP/1.0 or `Connection: close` ends the connection whatever the node's answer
            # says (Anvil answers HTTP/1.0 without `Connection: close`; review s39c finding 2)
            keep = keep and not _closes(head, headers)
        client_w.write(answer)
        await client_w.drain()
        if not keep:
            return


@dataclass
class _Control:
    """What the gate keeps of the chain's control methods: whose turn it is at the node, the snapshots
    taken through it (id -> the head they were taken at), and whom to tell of a revert."""

    turns: _Turns
    on_revert: Callable[[int, str], None] | None
    snapshots: dict[int, tuple[int, str]] = field(default_factory=dict)


async def _controlled(method: str, body: bytes, node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter,
                      control: _Control) -> tuple[bytes, bool]:
    """A control method (`_CONTROLS`) with the node to itself; returns (the HTTP answer, whether the node
    keeps the connection).

    Why alone (review s39 findings 1-3, s39b 5): a block another connection mined between Anvil's revert
    and the gate's base-fee fix carried the dropped blocks' fee (the replay then diverged); a revert that
    landed during another's `anvil_mine` left Anvil 1.7.1 with blocks missing below its head (the journal
    stuck for good); a head read after someone else's block hid the revert from the journal; and
    `evm_setAutomine true` mines the pool *after* it answers, so a revert sent next landed mid-mining. So
    every other request waits (`_Turns`) and the in-flight ones end first; a snapshot is taken, and
    automine switched on, only with the pool mined; and a revert is refused while the node mines on its
    own (`_revert`). Sent with the gate's own head: the node must keep this connection open for the gate's
    calls after it (a client's `Connection: close` or HTTP/1.0 closed it) and answer without an interim
    100 Continue (a client's `Expect`) (review s38d findings 2, 3)."""
    try:
        async with control.turns.alone(timeout_s=_REVERT_WAIT_S):
            if method == "evm_revert":
                return await _revert(body, node_r, node_w, control)
            if method == "evm_snapshot":
                await _pool_mined(node_r, node_w)
                answer, keep = await _forward(body, node_r, node_w)
                taken = _result(answer)
                if isinstance(taken, str) and (ident := _snapshot_id(taken)) is not None:
                    tip = await _call(node_r, node_w, "eth_getBlockByNumber", ["latest", False])
                    if isinstance(tip, dict):
                        control.snapshots[ident] = (int(tip["number"], 16), str(tip["hash"]).lower())
                return answer, keep
            answer, keep = await _forward(body, node_r, node_w)
            if method == "evm_setAutomine":  # switched on, Anvil mines the pool after it answers (~0.3 s for
                await _pool_mined(node_r, node_w)  # eight heavy transactions): mined before anyone goes on
            return answer, keep
    except TimeoutError:
        return _http_reply(_error_body(body, -32000, (
            f"{method} waited {_REVERT_WAIT_S:.0f} s for the requests in flight through the QEAIMS dev chain's "
            "gate to end; send it again")), keep_alive=True), True


async def _revert(body: bytes, node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter,
                  control: _Control) -> tuple[bytes, bool]:
    """`evm_revert`, under the node's exclusive turn: refused while the node mines on its own, or to a
    snapshot not taken through this gate or taken on blocks a revert has dropped since (Anvil 1.7.1 then
    moves its head over missing blocks, or drops blocks and answers false: review s39b finding 1); else
    forwarded, and once it reverted the base fee is set again and the journal cut (`on_revert`) before
    the answer is handed back."""
    busy = await _mining_on_its_own(node_r, node_w)
    if busy is not None:
        return _http_reply(_error_body(body, -32000, busy), keep_alive=True), True
    params = _params(body)
    ident = _snapshot_id(params[0] if params else None)
    taken = control.snapshots.get(ident) if ident is not None else None
    if ident is None or taken is None:  # Anvil answers false to a snapshot it does not know, and changes nothing
        return _http_reply(_result_body(body, False), keep_alive=True), True
    on_chain = await _call(node_r, node_w, "eth_getBlockByNumber", [hex(taken[0]), False])
    if not isinstance(on_chain, dict) or str(on_chain.get("hash", "")).lower() != taken[1]:
        del control.snapshots[ident]
        return _http_reply(_error_body(body, -32000, (
            f"snapshot {hex(ident)} was taken on block {taken[0]}, which a revert has dropped since: it can no "
            "longer be reverted to (Anvil would break the chain); take a new one")), keep_alive=True), True
    answer, keep = await _forward(body, node_r, node_w)
    if keep and _reverted(answer):
        # spent by its revert, with every later one, as Anvil forgets them: a revert to one of those was
        # answered false yet dropped blocks above it (review s39b finding 1, where the blocks re-mined after
        # the revert had the very hashes the later snapshot was taken on)
        for later in [taken_id for taken_id in control.snapshots if taken_id >= ident]:
            del control.snapshots[later]
        reverted_to = await _rebase_fee(node_r, node_w)
        if control.on_revert is not None:  # the journal drops the reverted blocks before anyone is told
            if reverted_to is None:
                raise ConnectionError("the node gave no head after a revert: the journal cannot follow it")
            try:
                await asyncio.get_running_loop().run_in_executor(None, control.on_revert, *reverted_to)
            except Exception as exc:  # the client is cut, not told "true"
                print(f"gate: the journal could not follow a revert: {exc}", file=sys.stderr, flush=True)
                raise ConnectionError("the journal could not follow the revert") from exc
    return answer, keep


async def _forward(body: bytes, node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter) -> tuple[bytes, bool]:
    """`body` sent to the node with the gate's own head; (its whole answer, whether the node keeps the
    connection)."""
    node_w.write(_plain_head(len(body)) + body)
    await node_w.drain()
    held = _Held()
    keep = await _relay_response(node_r, held)
    return bytes(held.data), keep


async def _pool_mined(node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter) -> bool:
    """Wait (up to `_POOL_WAIT_S`) until no automined transaction waits for its block; False if one still
    does (with automine off nothing is waited for: a pending transaction then waits for a mining call)."""
    if not await _call(node_r, node_w, "anvil_getAutomine", []):
        return True
    deadline = time.monotonic() + _POOL_WAIT_S
    while True:
        status = await _call(node_r, node_w, "txpool_status", [])
        if not isinstance(status, dict) or int(str(status.get("pending", "0x0")), 16) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)


def _params(body: bytes) -> list[Any]:
    params = _single(body).get("params")
    return params if isinstance(params, list) else []


def _snapshot_id(value: object) -> int | None:
    """A snapshot id as Anvil gives it (a hex quantity), or None."""
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{1,64}", value):
        return None
    return int(value, 16)


def _result(response: bytes) -> Any:
    """The `result` of a held JSON-RPC answer (None for an error or what does not parse)."""
    head, _, payload = response.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1") and payload:  # an interim 1xx answer: the final one follows it
        head, _, payload = payload.partition(b"\r\n\r\n")
    try:
        answer = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return answer.get("result") if isinstance(answer, dict) else None


def _result_body(body: bytes, result: object) -> bytes:
    """A JSON-RPC answer with `result` to the single call in `body`."""
    call = _single(body)
    return json.dumps({"jsonrpc": "2.0", "id": call.get("id"), "result": result}).encode()


def _single(body: bytes) -> dict[str, Any]:
    try:
        call = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return call if isinstance(call, dict) else {}


async def _mining_on_its_own(node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter) -> str | None:
    """Why a revert cannot run now (None: it can): the node mines on a timer, or automined transactions
    are still waiting for their blocks after `_POOL_WAIT_S`."""
    interval = await _call(node_r, node_w, "anvil_getIntervalMining", [])
    if interval:
        return (f"evm_revert is refused while the chain mines a block every {interval} s: a block mined during "
                "the revert could not be journaled exactly; turn interval mining off first "
                "(evm_setIntervalMining 0)")
    if not await _pool_mined(node_r, node_w):
        return "evm_revert is refused while sent transactions wait for their blocks; send it again"
    return None


class _Turns:
    """Who may use the node: any number of ordinary requests at once, or one control method
    (`_CONTROLS`) alone, granted in the order asked (first come, first served): a control method waits
    for the requests asked before it, and requests asked after it wait for it. Not writer-first: a
    client pipelining control calls on one connection had one always waiting, and every other client
    stood still for as long as it kept sending (review s39c finding 1). One that waits longer than its
    timeout gives up and lets those behind it go."""

    def __init__(self) -> None:
        self._queue: deque[tuple[bool, asyncio.Future[None]]] = deque()  # (alone?, granted when set)
        self._active = 0
        self._alone = False

    def _grant(self) -> None:
        while self._queue:
            alone, granted = self._queue[0]
            if granted.done():  # its waiter gave up
                self._queue.popleft()
                continue
            if self._alone or (alone and self._active):
                return
            self._queue.popleft()
            if alone:
                self._alone = True
            else:
                self._active += 1
            granted.set_result(None)
            if alone:
                return

    def _release(self, alone: bool) -> None:
        if alone:
            self._alone = False
        else:
            self._active -= 1
        self._grant()

    async def _acquire(self, alone: bool, timeout_s: float | None) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((alone, granted))
        self._grant()
        try:
            await asyncio.wait_for(asyncio.shield(granted), timeout_s)
        except BaseException:
            if granted.done() and not granted.cancelled():
                self._release(alone)  # granted as it gave up: hand it on
            else:
                granted.cancel()
                self._grant()
            raise

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        await self._acquire(False, None)
        try:
            yield
        finally:
            self._release(False)

    @contextlib.asynccontextmanager
    async def alone(self, *, timeout_s: float) -> AsyncIterator[None]:
        """Raises `TimeoutError` when the requests asked before it do not end within `timeout_s`."""
        await self._acquire(True, timeout_s)
        try:
            yield
        finally:
            self._release(True)


def _error_body(body: bytes, code: int, message: str) -> bytes:
    """A JSON-RPC error answering the single call in `body`."""
    return json.dumps({"jsonrpc": "2.0", "id": _single(body).get("id"), "error": {"code": code, "message": message}}).encode()


class _Sink(Protocol):
    """Where a response goes: the client's writer, or a `_Held` buffer."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class _Held:
    """A response held back (a stand-in for the client's writer)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def _plain_head(length: int) -> bytes:
    """The gate's own request head: HTTP/1.1, keep-alive, no `Expect`."""
    return b"POST / HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % length


async def _call(node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call of the gate's own on the node connection (between two of the client's)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    node_w.write(_plain_head(len(body)) + body)
    await node_w.drain()
    held = _Held()
    if not await _relay_response(node_r, held):
        raise ConnectionError("the node closed the gate's connection")
    head, _, payload = bytes(held.data).partition(b"\r\n\r\n")
    if "chunked" in _headers(head + b"\r\n").get("transfer-encoding", "").lower():
        raise ConnectionError("the node answered the gate's call in chunks")
    return json.loads(payload).get("result")


async def _rebase_fee(node_r: asyncio.StreamReader, node_w: asyncio.StreamWriter) -> tuple[int, str] | None:
    """After an `evm_revert`: set the next block's base fee to the EIP-1559 one of the reverted head;
    returns that head (number, hash), None if the node gave no block.

    Why: Anvil 1.7.1 reverts the state but not its fee manager, so the blocks mined after a revert
    carry the base fee that would have followed the dropped blocks; the replay, which mines them
    after the reverted head, computes another, and so other balances and another state root. With
    the base fee the replay computes, the journal that follows the revert (`chain.keeper.catch_up`)
    replays to the very chain clients saw."""
    head = await _call(node_r, node_w, "eth_getBlockByNumber", ["latest", False])
    if not isinstance(head, dict):
        return None
    reverted_to = int(head["number"], 16), str(head["hash"])
    if head.get("baseFeePerGas") is None:
        return reverted_to
    base_fee = int(head["baseFeePerGas"], 16)
    # Anvil mines block 1 at the genesis's own base fee (its initial one), not at the EIP-1559 step from it
    following = base_fee if int(head["number"], 16) == 0 else next_base_fee(
        base_fee, int(head["gasUsed"], 16), int(head["gasLimit"], 16))
    await _call(node_r, node_w, "anvil_setNextBlockBaseFeePerGas", [hex(following)])
    return reverted_to


def _reverted(response: bytes) -> bool:
    """Whether a held answer to an `evm_revert` says it reverted (a revert to an unknown snapshot answers
    false and changes nothing, so the base fee must stay as it is)."""
    return _result(response) is True


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559: the base fee of the block after one with these fields (elasticity 2, change 1/8)."""
    target = gas_limit // 2
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        return base_fee + max(1, base_fee * (gas_used - target) // target // 8)
    return base_fee - base_fee * (target - gas_used) // target // 8


async def _relay_response(node_r: asyncio.StreamReader, client_w: _Sink) -> bool:
    """Copy one HTTP response (1xx interim answers first); False once the connection is to end. The
    head and body go out in one write: two small segments would meet the client's delayed ACK (40 ms)."""
    out = bytearray()

    async def send(data: bytes, flush: bool = False) -> None:
        out.extend(data)
        if flush or len(out) >= _CHUNK:
            client_w.write(bytes(out))
            out.clear()
            await client_w.drain()

    while True:
        head = await node_r.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if 100 <= status < 200:
            await send(head, flush=True)
            continue
        await send(head)
        headers = _headers(head)
        if status in (204, 304):
            break
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await node_r.readuntil(b"\r\n")
                await send(size_line)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (trailer := await node_r.readuntil(b"\r\n")) != b"\r\n":
                        await send(trailer)
                    await send(trailer)
                    break
                await send(await node_r.readexactly(size + 2))
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while remaining:
                chunk = await node_r.read(min(remaining, _CHUNK))
                if not chunk:
                    raise ConnectionError("the node closed mid-response")
                await send(chunk)
                remaining -= len(chunk)
        else:  # the body ends with the connection
            while chunk := await node_r.read(_CHUNK):
                await send(chunk)
            await send(b"", flush=True)
            return False
        break
    await send(b"", flush=True)
    return "close" not in headers.get("connection", "").lower()


def _headers(head: bytes) -> dict[str, str]:
    """The header fields of a request or response head, names lower-cased (a repeated field: its last value)."""
    fields: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return fields


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _malformed(head: bytes) -> str | None:
    """What makes a request head ambiguous, None for a plain one. The gate checks the body a
    Content-Length names; a head the node would read otherwise (a bare LF ending a line, a folded or
    padded field name, two lengths) could carry a body the gate never saw (review s38c finding 1)."""
    lines = head[:-4].split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        return "a bare CR or LF"
    lengths = 0
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            return "a header line that is not name:value"
        if name.lower() == b"content-length":
            lengths += 1
            if not value.strip().isdigit():
                return "a Content-Length that is not a number"
    if lengths > 1:
        return "more than one Content-Length"
    return None


def _closes(head: bytes, headers: dict[str, str]) -> bool:
    """Whether the client asked for the connection to end after this request (HTTP/1.0 by default)."""
    connection = headers.get("connection", "").lower()
    if head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0"):
        return "keep-alive" not in connection
    return "close" in connection


def allowed(method: str) -> bool:
    """Whether the gate forwards a JSON-RPC method: reads, transactions, and the dev tooling's mining and
    time methods, whose blocks the journal replays; never one that changes state no transaction made."""
    return (method.startswith(_ALLOWED_PREFIXES) and method not in _REFUSED) or method in _ALLOWED


def _refusal(body: bytes) -> tuple[bytes | None, str | None]:
    """The JSON-RPC error reply for a body that calls a method the gate does not forward (a batch is
    refused whole, one error an entry), None for a body to forward. A body that is no JSON-RPC call
    at all is forwarded: the node answers it with its own error, and it changes nothing. The second
    value names the control method (`_CONTROLS`) a body to forward calls, which the gate runs with the
    node to itself (`_controlled`)."""
    if not body:
        return None, None
    try:
        call = json.loads(body)
    except (ValueError, RecursionError):
        # what Python cannot read, the node might (review s38c finding 2: a 5,001-digit integer beside an
        # unsigned transaction): nothing the gate has not checked goes through
        return json.dumps({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32700, "message": "the QEAIMS dev chain's gate cannot parse this body as JSON-RPC"}}).encode(), None
    entries = call if isinstance(call, list) else [call]
    methods = [e.get("method") if isinstance(e, dict) else None for e in entries]
    refused = sorted({m if isinstance(m, str) else repr(m) for m in methods
                      if not (isinstance(m, str) and allowed(m))})
    message = ""
    if refused:
        message = (f"method {', '.join(refused)} refused by the QEAIMS dev chain's gate: it would change state no "
                   "journaled transaction made (the journal could not replay the chain), or it is no method")
    elif bad := next((why for e in entries if isinstance(e, dict) and (why := _bad_params(e)) is not None), None):
        message = bad
    elif isinstance(call, list) and (controls := [m for m in methods if m in _CONTROLS]):
        # the base fee is set again only after the revert's answer: a block mined later in the same batch
        # would carry Anvil's stale one, and the journal would not replay (review s38c finding 3); and a
        # control method runs with the node alone, which a batch's other calls cannot wait for
        message = f"{controls[0]} must be sent alone, not in a batch, through the QEAIMS dev chain's gate"
    if not message:
        method = methods[0] if len(methods) == 1 and not isinstance(call, list) else None
        return None, method if method in _CONTROLS else None
    errors = [{"jsonrpc": "2.0", "id": e.get("id") if isinstance(e, dict) else None,
               "error": {"code": -32601 if refused else -32602 if bad else -32600, "message": message}}
              for e in entries]
    return json.dumps(errors if isinstance(call, list) else errors[0]).encode(), None


# what the dev chain's time and mining methods may ask (review s39c findings 4-6): Anvil 1.7.1 panics and
# exits on an interval of 2**64-1 s; a block stamped near 2**64 s is served and journaled but cannot be
# replayed (`start_anvil` then fails for good); and `anvil_mine 0xffffffff` goes on mining for hours after
# its client has gone, shutting every control method out. The bounds are far above any dev use.
_MAX_TIMESTAMP = 1 << 37  # seconds: the year 6325 (Python's datetime, which the readers use, ends at 9999)
_MAX_TIME_STEP = 1 << 32  # seconds one call may move the clock: 136 years
_MAX_INTERVAL_S = 86_400  # interval mining: a block a day at the slowest
_MAX_MINED = 256  # blocks one call may mine (0.3-0.6 s of Anvil's mining here): a call waits for each one ahead


def _bad_params(entry: dict[str, Any]) -> str | None:
    """Why a call's parameters are refused (None: they are not): the time and mining methods' bounds."""
    method, params = entry.get("method"), entry.get("params")
    args = params if isinstance(params, list) else []
    if method == "evm_setIntervalMining":
        return _out_of(method, "the interval", args[0] if args else None, 0, _MAX_INTERVAL_S, required=True)
    if method == "evm_setNextBlockTimestamp":
        return _out_of(method, "the timestamp", args[0] if args else None, 0, _MAX_TIMESTAMP, required=True)
    if method == "evm_increaseTime":
        return _out_of(method, "the step", args[0] if args else None, -_MAX_TIME_STEP, _MAX_TIME_STEP, required=True)
    if method == "anvil_mine":
        return (_out_of(method, "the number of blocks", args[0] if args else None, 0, _MAX_MINED)
                or _out_of(method, "the interval", args[1] if len(args) > 1 else None, 0, _MAX_TIME_STEP))
    if method == "evm_mine" and args:
        options = args[0]
        if isinstance(options, dict):
            return (_out_of(method, "the timestamp", options.get("timestamp"), 0, _MAX_TIMESTAMP)
                    or _out_of(method, "the number of blocks", options.get("blocks"), 0, _MAX_MINED))
        return _out_of(method, "the timestamp", options, 0, _MAX_TIMESTAMP)
    return None


def _out_of(method: str, what: str, value: object, low: int, high: int, *, required: bool = False) -> str | None:
    """Why `value` (a JSON number or hex quantity; None when left out) is refused, or None."""
    if value is None and not required:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?0x[0-9a-fA-F]{1,64}", value):
        number = int(value, 16)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,30}", value):
        number = int(value)
    if number is None or not low <= number <= high:
        return (f"{method}: {what} must be a number from {low} to {high} on the QEAIMS dev chain (a chain "
                f"outside it could not be replayed from its journal), not {str(value)[:40]}")
    return None


def _http_reply(body: bytes, *, keep_alive: bool) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: %s\r\n\r\n"
            % (len(body), b"keep-alive" if keep_alive else b"close")) + body


async def _http_error(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    """An HTTP error that ends the connection (what follows on it could not be read reliably)."""
    body = f"error: {message}\n".encode()
    reasons = {400: "Bad Request", 411: "Length Required", 413: "Content Too Large", 431: "Request Header Fields Too Large",
               501: "Not Implemented"}
    writer.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                 % (status, reasons.get(status, "Error").encode(), len(body)) + body)
    await writer.drain()


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not): `os.kill(pid, 0)` answers for a zombie too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not is_zombie(pid)
