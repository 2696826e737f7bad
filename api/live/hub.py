"""Fans the follower's messages out to the stream's clients (asyncio) and to thread-side sinks (webhooks).

The follower publishes from its own thread; each client's queue lives on the event loop, so a message
crosses over with `loop.call_soon_threadsafe`. A client's queue is bounded (`QUEUE_SIZE`): a client
that reads too slowly loses its oldest messages, never the server's memory, and is told so by one
`lagged` message (how many were dropped and the cursor to fetch them from `GET /events` or to
reconnect with as `Last-Event-ID`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from api.live.messages import CONTROL_TOPICS, OPERATOR_TOPICS, Message, for_sector

__all__ = ["QUEUE_SIZE", "Audience", "Hub", "Subscription", "hub_of"]

log = logging.getLogger("qeaims.api.hub")

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Audience:
    """Which messages a client receives: its topics and, for an operator, its one sector."""

    topics: frozenset[str]
    sector: str | None = None  # only this sector's messages (an operator's, or a filter an auditor asked for),
    # the notices addressed to it as an audience included
    operator: bool = False

    def wants(self, message: Message) -> bool:
        if message.topic in CONTROL_TOPICS:
            return True  # whatever the topics: a client must know that what it holds changed or has gaps
        if message.topic not in self.topics:
            return False
        if self.operator and message.topic not in OPERATOR_TOPICS:
            return False
        if self.sector is None:
            return True
        return for_sector(message, self.sector)  # its own sector's, and the notices addressed to it


@dataclass
class Subscription:
    """One client: its queue on the loop, and what it lost since it last read."""

    audience: Audience
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Message] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0
    first_dropped: str | None = None  # the cursors of the oldest and newest messages dropped
    last_dropped: str | None = None

    def _put(self, message: Message) -> None:  # on the loop
        if self.queue.full():
            lost = self.queue.get_nowait()
            self.dropped += 1
            self.first_dropped = self.first_dropped or lost.cursor
            self.last_dropped = lost.cursor or self.last_dropped
        self.queue.put_nowait(message)

    async def get(self) -> Message:
        """The next message; a `lagged` one first when messages were dropped since the last read."""
        if self.dropped:
            lagged = Message("lagged", {"dropped": self.dropped, "first_dropped": self.first_dropped,
                                        "last_dropped": self.last_dropped,
                                        "hint": "reconnect with Last-Event-ID or read GET /events to fill the gap"})
            self.dropped, self.first_dropped, self.last_dropped = 0, None, None
            return lagged
        return await self.queue.get()


class Hub:
    """Clients subscribe on the loop; the follower publishes from its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._sinks: list[Callable[[Message], None]] = []

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subs)

    def subscribe(self, audience: Audience) -> Subscription:
        """A new client on the running loop (call from a coroutine)."""
        sub = Subscription(audience, asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subs.remove(sub)

    def add_sink(self, sink: Callable[[Message], None]) -> None:
        """`sink(message)` is called on the follower's thread for every message; it must not block."""
        with self._lock:
            self._sinks.append(sink)

    def publish(self, messages: Collection[Message]) -> None:
        """From any thread: every client gets the messages it wants, in order."""
        if not messages:
            return
        with self._lock:
            subs = list(self._subs)
            sinks = list(self._sinks)
        for sub in subs:
            wanted = [m for m in messages if sub.audience.wants(m)]
            if not wanted:
                continue
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                sub.loop.call_soon_threadsafe(_put_all, sub, wanted)
        for sink in sinks:
            for message in messages:
                try:
                    sink(message)
                except Exception as exc:  # noqa: BLE001 - a sink's failure must not stop the stream
                    log.warning(json.dumps({"event": "hub-sink-failed", "error": type(exc).__name__}))


def _put_all(sub: Subscription, messages: list[Message]) -> None:
    for message in messages:
        sub._put(message)


def hub_of(app: Any) -> Hub:
    """The app's hub, made on first use (the stream, the metrics and the webhooks attach in any order)."""
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is None:
        hub = Hub()
        app.state.hub = hub
    return hub
