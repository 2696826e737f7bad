"""The bus's asyncio loop thread: `core.loop_thread.LoopThread` telling its callers `IngestError`."""

from __future__ import annotations

from bus.errors import IngestError
from core.loop_thread import LoopThread as _LoopThread

__all__ = ["LoopThread"]


class LoopThread(_LoopThread):
    def __init__(self, name: str) -> None:
        super().__init__(name, error=IngestError)
