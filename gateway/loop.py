"""A private asyncio loop on a daemon thread, so synchronous code starts and stops a gateway.

The same shape as `bus.loop_thread.LoopThread` (the gateway may not import `bus` beyond its errors:
it sits beside it, not above it). Every wait has a timeout; the thread is a daemon.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from gateway.errors import GatewayError

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
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
            raise GatewayError(f"{self.name} is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError as exc:
            future.cancel()
            raise GatewayError(f"{self.name}: no answer within {timeout_s} s") from exc

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel every task, stop the loop, join the thread (bounded by `timeout_s`)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            try:
                self.run(_cancel_others(), timeout_s)
            except GatewayError:
                pass  # a task that ignores cancellation: stop the loop anyway
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()
        self._loop, self._thread = None, None


async def _cancel_others() -> None:
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
