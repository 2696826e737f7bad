"""Keeps the API's index at the chain's head and publishes what each sync added.

One thread, `ChainFollower`, calls `ApiContext.sync()` every `INTERVAL_S`; after each sync it reads the
logs past the last one it published (`api/live/messages.py`) and hands the messages to the hub. It
starts from the index's end after its first sync: a server that was down for a day does not replay a
day of alerts to its webhooks; a client that wants the history resumes with `Last-Event-ID`.

It never dies of the chain: when a sync fails (chain down, deployment gone, RPC error) it logs one
structured line for the outage, retries with a doubling backoff up to `MAX_BACKOFF_S`, and logs one
more line when the chain answers again. When the chain lost blocks (a dev chain restarted from its
journal, a reorg) the index rewinds (`chain/indexer.py`); the follower then publishes `rewound` and
goes on from the rewound block, so messages of blocks mined again are published again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from api.context import ApiContext
from api.live.hub import Hub
from api.live.messages import Message, index_end, messages_after

__all__ = ["INTERVAL_S", "MAX_BACKOFF_S", "ChainFollower"]

log = logging.getLogger("qeaims.api.follower")

INTERVAL_S = 0.2
MAX_BACKOFF_S = 5.0
PAGE = 2_000


class ChainFollower:
    def __init__(self, ctx: ApiContext, hub: Hub, *, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.hub = hub
        self.interval_s = interval_s
        self.clock = clock
        self.cursor: tuple[int, int] | None = None  # the last log published; None before the first sync
        self.synced_at: float | None = None  # monotonic time of the last successful sync
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="qeaims-chain-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.interval_s
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - the follower outlives every failure; it logs it once
                self.failures += 1
                if self.failures == 1:
                    log.warning(json.dumps({"event": "follower-sync-failed", "error": type(exc).__name__,
                                            "detail": str(exc).splitlines()[0][:200] if str(exc) else "",
                                            "retry": "with backoff up to 5 s"}))
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self._stop.wait(backoff)
                continue
            if self.failures:
                log.warning(json.dumps({"event": "follower-recovered", "failed_syncs": self.failures}))
                self.failures = 0
            backoff = self.interval_s
            self._stop.wait(self.interval_s)

    def step(self) -> list[Message]:
        """One sync and the messages it added, published (also what a test calls directly)."""
        report = self.ctx.sync()
        self.synced_at = self.clock()
        db = self._read()
        published: list[Message] = []
        if self.cursor is None:
            self.cursor = index_end(db)
            return published
        if report.rewound_to is not None and self.cursor[0] > report.rewound_to:
            self.cursor = (report.rewound_to, 2**62)
            rewound = Message("rewound", {"to_block": report.rewound_to,
                                          "hint": "the chain lost later blocks; their messages may come again"})
            self.hub.publish([rewound])
            published.append(rewound)
        while True:
            messages, last = messages_after(db, self.cursor, limit=PAGE)
            if last == self.cursor:
                break
            self.cursor = last
            self.hub.publish(messages)
            published.extend(messages)
        return published

    def _read(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.ctx.index_path}?mode=ro", uri=True, check_same_thread=False)
        return self._db
