"""Helpers of `qeaims bench heal` (`qeaims.bench_heal`): the chain watcher, the broker process, threads."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bus.mqtt import EmbeddedBroker
from chain.client import ChainClient
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.logs import DEFAULT_MAX_LOGS_RANGE
from chain.manifest import Deployment
from chain.quorum import Action
from core.errors import ChainError, QeaimsError
from keys.ids import from_bytes32

__all__ = ["ChainWatch", "broker", "free_port", "percentile", "threads"]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ChainWatch:
    """Index the chain's logs as they come and stamp each with the wall time it was first seen."""

    def __init__(self, client: ChainClient, deployment: Deployment, path: Path, interval_s: float, *,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        self.index = Indexer(path, client.rpc, deployment, contract_abis(), max_logs_range=max_logs_range)
        self.interval_s = interval_s
        self.quorum: list[tuple[float, str, dict[str, Any]]] = []  # IsolationQuorum logs
        self.events: list[tuple[float, str, int, dict[str, Any]]] = []  # (seen, oracle, kind, payload)
        self._cond = threading.Condition()
        self._last = self.index.last_block
        self.failure: BaseException | None = None

    def poll(self) -> None:
        if int(self.index.rpc.call("eth_blockNumber"), 16) <= self._last:
            return  # nothing new: one cheap call per poll
        self.index.sync()
        seen, db = time.monotonic(), self.index.db
        logs = db.execute("SELECT event, args FROM logs WHERE contract = 'IsolationQuorum' AND block > ? "
                          "ORDER BY block, log_index", (self._last,)).fetchall()
        events = db.execute("SELECT oracle, kind, payload FROM events WHERE block > ? ORDER BY block, log_index",
                            (self._last,)).fetchall()
        self._last = self.index.last_block
        with self._cond:
            self.quorum += [(seen, str(e), json.loads(a)) for e, a in logs]
            self.events += [(seen, str(o), int(k), _json(bytes(p))) for o, k, p in events]
            self._cond.notify_all()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.interval_s):
                try:
                    self.poll()
                except ChainError:
                    continue
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            self.failure = exc
            with self._cond:
                self._cond.notify_all()

    def executed(self, since: float, action: Action) -> list[tuple[float, int, str]]:
        """(seen, proposal, node) of every proposal with `action` executed after `since`."""
        with self._cond:
            return [(s, int(a["proposalId"]), from_bytes32(bytes.fromhex(str(a["target"])[2:])))
                    for s, e, a in self.quorum if s >= since and e == "ProposalExecuted"
                    and int(a["action"]) == int(action)]

    def payload(self, kind: int, proposal: int, step: str) -> dict[str, Any]:
        """The payload of the controller's `step` (an event of `kind`) about `proposal`, or {}."""
        with self._cond:
            return next((p for _, _, k, p in self.events
                         if k == kind and p.get("proposal") == proposal and p.get("step") == step), {})

    def first_event(self, since: float, match: Callable[[str, int, dict[str, Any]], bool]) -> float | None:
        with self._cond:
            return next((s for s, o, k, p in self.events if s >= since and match(o, k, p)), None)

    def wait(self, what: Callable[[], Any], timeout_s: float) -> Any:
        """The first true value of `what()` (re-checked on every new log), or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self.failure is not None:
                    raise QeaimsError(f"the chain watcher stopped: {self.failure}") from self.failure
                found = what()
                if found or time.monotonic() >= deadline:
                    return found or None
                self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))


def _json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _broker_process(port: int, ready: Any, stop: Any) -> None:
    """The embedded MQTT broker in a process of its own: it forwards every reading five times."""
    with EmbeddedBroker(port=port):
        ready.set()
        stop.wait()


@contextlib.contextmanager
def broker(port: int) -> Iterator[None]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    process = ctx.Process(target=_broker_process, args=(port, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise QeaimsError("the benchmark's MQTT broker did not start")
        yield
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def threads(stop: threading.Event, *targets: Callable[[], None]) -> Iterator[list[BaseException]]:
    """Run `targets` in daemon threads until the block ends; yields the list their errors land in."""
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - surfaced by the bench's main thread
                errors.append(exc)
        return body

    threads = [threading.Thread(target=guard(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    try:
        yield errors
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)  # an oracle draining its backlog may take longer: its close() waits for it
