"""The gate: the development chain's public port, spliced byte for byte to Anvil's private one.

Why: Anvil cannot change its port, and while a restarted chain replays its journal it must answer
no client (a client that reads a half-replayed chain sees its funding or its key rotation missing;
one that sends gets its transaction into a replayed block). So Anvil listens on a loopback port of
its own, the replay runs there, and only then does the journal keeper (`chain.keeper`) open this
gate on the port clients know. The gate copies bytes both ways, so HTTP keep-alive and anything
else JSON-RPC does over TCP work unchanged, and it parses nothing.

It lives and dies with Anvil: it watches Anvil's pid (`os.pidfd_open`, or /proc where that is
missing) and, the moment Anvil is gone, closes its listener and every connection, so a client sees
"connection refused", as it would from a dead Anvil, never a hang. A stopped Anvil (SIGSTOP) is
still alive: through the gate it looks as frozen as it is. The keeper closes the gate before it
journals for the last time, so a client is only ever served by a chain whose blocks are journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["Gate"]

_CHUNK = 65536


class Gate:
    """Listens on ``listen`` and pipes each connection to ``target`` while process ``watched`` lives."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], watched: int,
                 on_gone: Callable[[], None] | None = None) -> None:
        self.listen = listen
        self.on_gone = on_gone
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
        try:
            await asyncio.gather(_copy(client_r, node_w), _copy(node_r, client_w))
        finally:
            for writer in (client_w, node_w):
                self._writers.discard(writer)
                writer.transport.abort()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side (as a plain TCP peer would)."""
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
