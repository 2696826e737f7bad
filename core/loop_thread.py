"""A private asyncio loop on its own thread, for the servers written against asyncio (amqtt, pymodbus, the
gateways' proxies).

The oracle process and the tests are synchronous; running each server on its own loop thread keeps
them so, and keeps a slow device or client from ever blocking the oracle's main loop. Every wait
here has a timeout, and the thread is a daemon, so nothing outlives the process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """One event loop running on one daemon thread until `stop`."""

    def __init__(self, name: str, error: type[Exception] = RuntimeError) -> None:
        self.name = name
        self.error = error  # what a caller of this layer is told (bus: IngestError, gateway: GatewayError)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the loop and wait for its result, at most `timeout_s`."""
        if self._loop is None or not self.running:
            coro.close()
            raise self.error(f"{self.name} is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError as exc:
            future.cancel()
            raise self.error(f"{self.name}: no answer within {timeout_s} s") from exc

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel what is left on the loop, stop it and join the thread (bounded by `timeout_s`)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            try:
                self.run(_cancel_others(), timeout_s)
            except self.error:
                pass  # a task that ignores cancellation: stop the loop anyway
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()
        self._loop, self._thread = None, None


async def _cancel_others() -> None:
    """Cancel every other task on this loop and wait for them, so none is destroyed while pending."""
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
