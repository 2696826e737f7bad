"""The gateway's asyncio loop thread: `core.loop_thread.LoopThread` telling its callers `GatewayError`."""

from __future__ import annotations

from core.loop_thread import LoopThread as _LoopThread
from gateway.errors import GatewayError

__all__ = ["LoopThread"]


class LoopThread(_LoopThread):
    def __init__(self, name: str) -> None:
        super().__init__(name, error=GatewayError)
