"""What every request handler of the API reads from: the settings, the chain and the API's own log index.

The API keeps its own index (`<home>/api/index.sqlite`), apart from the commands' one, so that the
follower that keeps it at the chain's head (api/live) never contends with an auditor's `qeaims audit`
for the writer's lock. Handlers read it through a read-only connection per request (WAL lets them read
while the follower writes).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.indexer import Indexer, SyncReport
from chain.manifest import Deployment
from core.config import Settings

__all__ = ["ApiContext"]


@dataclass
class ApiContext:
    """The settings and the chain, opened lazily: the public status page must answer even while the
    chain is down (its data comes from the twins' service messages), so nothing here connects at start."""

    settings: Settings
    _chain: tuple[ChainClient, Deployment] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _sync_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def api_dir(self) -> Path:
        return self.settings.home / "api"

    @property
    def index_path(self) -> Path:
        return self.api_dir / "index.sqlite"

    def chain(self) -> tuple[ChainClient, Deployment]:
        """The chain client and deployment, connected on first use (ChainNotRunning → 503)."""
        with self._lock:
            if self._chain is None:
                self._chain = connect(self.settings)
            return self._chain

    def sync(self) -> SyncReport:
        """Brings the API's index to the chain's head (the follower calls this in a loop; tests once)."""
        client, deployment = self.chain()
        self.api_dir.mkdir(parents=True, exist_ok=True)
        with self._sync_lock:
            index = Indexer(self.index_path, client.rpc, deployment, contract_abis(),
                            max_logs_range=self.settings.max_logs_range)
            try:
                return index.sync()
            finally:
                index.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection to the index, for one request: FastAPI may run a dependency and its
        endpoint on different worker threads, so a connection kept per thread could serve two requests at
        once; opening one costs a fraction of a millisecond (WAL lets it read while the follower writes)."""
        if not self.index_path.exists():
            self.sync()
        db = sqlite3.connect(f"file:{self.index_path}?mode=ro", uri=True, check_same_thread=False)
        try:
            yield db
        finally:
            db.close()
