"""Helpers for the live API's tests: a real uvicorn server on a free port, an SSE client on a thread,
and a watcher that stamps the moment each block appears on the chain."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
import uvicorn
from fastapi import FastAPI

from chain.rpc import RpcClient
from tests.conftest import free_port
from tests.support import wait_until


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1:<free port>, with its lifespan (the follower); yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 20, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@dataclass
class Received:
    event: str
    id: str | None
    data: dict[str, Any]
    at: float  # time.monotonic() when the message's blank line arrived


@dataclass
class SseClient:
    """Reads `GET /api/v1/stream` on a thread; messages land in `inbox` as they arrive."""

    url: str
    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    inbox: queue.Queue[Received] = field(default_factory=queue.Queue)
    status: int | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    body: str = ""
    _thread: threading.Thread | None = None
    _response: httpx.Response | None = None

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()  # wakes the reader blocked on the socket
        if self._thread is not None:
            self._thread.join(5)

    def _read(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(5, read=None)) as http, \
                    http.stream("GET", self.url + "/api/v1/stream", headers=self.headers, params=self.params) as r:
                self._response = r
                self.status = r.status_code
                if r.status_code != 200:
                    r.read()
                    self.body = r.text
                    return
                event, ident, data = "message", None, []
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith((":", "retry:")):
                        self.opened.set()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("id:"):
                        ident = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.inbox.put(Received(event, ident, json.loads("\n".join(data)), time.monotonic()))
                        event, ident, data = "message", None, []
        except (httpx.HTTPError, OSError, RuntimeError):
            if not self._stop.is_set():
                raise
        finally:
            self.opened.set()

    def take(self, count: int, timeout_s: float = 10, *, topic: str | None = None) -> list[Received]:
        """The next `count` messages (of `topic`, others skipped), or AssertionError after `timeout_s`."""
        out: list[Received] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            try:
                got = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"got {len(out)} of {count} messages in {timeout_s} s: "
                                     f"{[m.data for m in out][-3:]}") from None
            if topic is None or got.event == topic:
                out.append(got)
        return out

    def until(self, predicate: Callable[[Received], bool], timeout_s: float = 10) -> list[Received]:
        """Every message up to and including the first that satisfies `predicate`."""
        out: list[Received] = []
        deadline = time.monotonic() + timeout_s
        while not out or not predicate(out[-1]):
            try:
                out.append(self.inbox.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no matching message in {timeout_s} s; got {[m.data for m in out][-3:]}") from None
        return out

    def quiet(self, wait_s: float) -> list[Received]:
        """Whatever arrives within `wait_s`."""
        time.sleep(wait_s)
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out


class BlockWatch:
    """Stamps (time.monotonic) the first time each block number is seen at the chain's head."""

    def __init__(self, rpc: RpcClient, interval_s: float = 0.005) -> None:
        self.rpc = rpc
        self.interval_s = interval_s
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            head = int(self.rpc.call("eth_blockNumber"), 16)
            now = time.monotonic()
            for number in range(last + 1, head + 1):
                self.seen.setdefault(number, now)
            last = head
            time.sleep(self.interval_s)
