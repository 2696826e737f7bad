"""The oracle's own state: its state file (detection cursor, stream state, isolation actions), its
options and counters, and the row counts its settling and repair windows keep (part of `oracles.node`).

The cursor, the stream's state and the queued actions are committed together in the state file
(one per deployment, `state_path`), so a restart judges from exactly where the last commit left
off. `NodeState` declares what every stage (`oracles.node.judging`, `.repairs`, `.voting`) reads of
the running oracle, and answers the questions about it that need no chain.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from chain.client import ChainClient
from chain.outbox import EventOutbox
from chain.quorum import QuorumClient
from chain.recorder import EventRecorder
from core import logs
from core.config import Settings
from core.kinds import kind_by_name
from core.messages import Sector, VerdictKind
from keys.identity import HybridIdentity
from oracles.ingest.sink import ReadingSink
from oracles.peer_check import PeerChecker, PeerFinding
from oracles.stream import SectorStream
from oracles.telemetry import TelemetryStore

__all__ = ["LOGGER_NAME", "STATE_SCHEMA", "VERDICT_KINDS", "NodeOptions", "NodeState", "NodeStats", "RowsSince",
           "log_line", "state_path"]


LOGGER_NAME = "qeaims.oracle"

VERDICT_KINDS = {v: kind_by_name(v.value) for v in VerdictKind}

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    episode      TEXT PRIMARY KEY,
    target       TEXT NOT NULL,
    evidence_seq INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    detail       TEXT NOT NULL DEFAULT ''
);
"""


def state_path(settings: Settings, deployment_id: str, oracle: str) -> Path:
    """The oracle's detection cursor, stream state and action queue (one file per deployment)."""
    return settings.home / "oracles" / deployment_id / f"{oracle.lower()}.sqlite"


def log_line(event: str, **fields: object) -> None:
    """One JSON line on the ``qeaims.oracle`` logger."""
    logs.log_line(LOGGER_NAME, event, **fields)


@dataclass(frozen=True)
class NodeOptions:
    batch_size: int = 1024  # readings per Merkle root
    max_age_s: float = 2.0  # a partial batch is anchored after this long
    peer_interval_s: float = 5.0
    judge_chunk: int = 5_000
    backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)


@dataclass
class NodeStats:
    stored: int = 0
    judged: int = 0
    episodes: int = 0
    votes: int = 0
    peer_findings: list[PeerFinding] = field(default_factory=list)
    chain_errors: int = 0
    last_error: str = ""


@dataclass
class RowsSince:
    """Rows judged since the oracle learned something from the chain (a node under repair, back
    active), counted from the readings that arrived *after* it learned it.

    An oracle judges in arrival order and can run minutes behind the chain it reads (24 oracles on
    two cores in the storm day: the banking oracles were a minute of wall time behind). Counting from
    the rows judged at that moment would count rows from before the event: a settling window opened
    on a fail-back then expired on readings older than the fail-back, and its transient was voted
    on (the storm day's `switch-1`).
    """

    after_id: int  # the last reading stored when the oracle learned it
    start_row: int | None = None  # the stream's rows once everything up to `after_id` was judged
    # A settling window also waits for the field's own clock: the readings can arrive a minute late
    # (a starved broker), so even the first reading after the reintegration may predate the fail-back.
    # `waiting`: the controller's `reintegrated` step is not indexed yet; `since_ms`: the latest time a
    # device reported acting in it; rows count from the first one judged at or after it.
    waiting: bool = False
    since_ms: int | None = None
    field_start_row: int | None = None
    # `fell_back`: no step came within `3 x settle_rows` rows, so the window restarted its count on
    # the readings arriving from then on, and still takes the step's field time if it comes later
    fell_back: bool = False

    def rows(self, stream_rows: int) -> int:
        if self.waiting:
            return 0
        start = self.start_row if self.since_ms is None else self.field_start_row
        return 0 if start is None else stream_rows - start

    def arrival_rows(self, stream_rows: int) -> int:
        return 0 if self.start_row is None else stream_rows - self.start_row

    def advance(self, cursor: int, stream: SectorStream) -> None:
        """Start the counts whose moment the judge has reached."""
        if self.start_row is None and cursor >= self.after_id:
            self.start_row = stream.rows
        if self.since_ms is not None and self.field_start_row is None:
            after = stream.rows_since(self.since_ms)
            if after:
                self.field_start_row = stream.rows - after


class NodeState:
    """What every stage of the oracle reads: its stores, its state file, its windows (set up by
    `oracles.node.loop.OracleNode.__init__`), and the small questions they answer."""

    client: ChainClient
    identity: HybridIdentity
    me: str
    sector: Sector
    sink: ReadingSink
    options: NodeOptions
    stats: NodeStats
    outbox: EventOutbox
    recorder: EventRecorder
    store: TelemetryStore
    stream: SectorStream
    quorum: QuorumClient
    peers: PeerChecker
    _db: sqlite3.Connection
    _reader: sqlite3.Connection
    _recorded: dict[str, int]  # episode key → its verdict's outbox seq
    _cursor: int
    _repairs: dict[str, RowsSince]
    _settling: dict[str, RowsSince]
    _settling_origin: dict[str, str]
    _reintegration_voted: set[str]
    _controllers: dict[str, bool]

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _load_state(self) -> int:
        cursor = self._meta("cursor")
        if cursor is None:
            # a new deployment (or a new oracle) judges what arrives from now on, not an old ledger's past
            start = self._stored_last_id()
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('cursor', ?)", (str(start),))
            return start
        saved = self._meta("stream")
        if saved is not None:
            try:
                self.stream.restore(json.loads(saved))
            except (ValueError, KeyError, TypeError) as exc:
                log_line("stream-reset", oracle=self.me, reason=str(exc))
        return int(cursor)

    def _episodes_in_outbox(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.outbox.rows_of_kinds(sorted(VERDICT_KINDS.values())):
            try:
                key = json.loads(row.payload).get("episode")
            except (ValueError, AttributeError):
                continue
            if isinstance(key, str):
                found[key] = row.seq
        return found

    @property
    def cursor(self) -> int:
        return self._cursor

    def settling(self, node: str) -> bool:
        """Whether `node` is inside its settling window after a reintegration (a fault on it is only
        acted on if it outlasts the window)."""
        window = self._settling.get(node)
        return window is not None and window.rows(self.stream.rows) < self.settle_rows

    def under_repair(self, node: str) -> bool:
        """Whether this oracle last saw `node` under repair on-chain (it settles once it sees it back)."""
        return node in self._repairs

    @property
    def settle_rows(self) -> int:
        return 2 * self.stream.clear_rows

    def backlog(self) -> int:
        """Readings stored but not judged yet."""
        return max(0, self._stored_last_id() - self._cursor)

    def actions(self) -> list[tuple[str, str, int, str, str]]:
        """(episode, target, evidence seq, state, detail) of every isolation action, oldest first."""
        rows = self._db.execute("SELECT episode, target, evidence_seq, state, detail FROM actions ORDER BY rowid")
        return [(str(a), str(b), int(c), str(d), str(e)) for a, b, c, d, e in rows]

    def _stored_last_id(self) -> int:
        row = self._reader.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM chunks").fetchone()
        return int(row[0])
