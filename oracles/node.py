"""One oracle at work: readings in, telemetry anchored, verdicts signed, isolations voted, peers checked.

Everything that writes runs on one thread, in this order, once per `run_once`:

1. **Store.** The sink (filled by the MQTT/Modbus threads) is drained into the oracle's
   `TelemetryStore`; a reading counts as taken in once that commit is on disk.
2. **Judge.** Readings stored after the *detection cursor* are replayed from the store through the
   sector's `SectorStream` (rows → model → episodes). Each new episode's verdict is written ahead
   to the outbox as an anomaly/fault/intrusion/maintenance event whose payload carries the episode
   key; a fault on an isolable node also queues an isolation action. The cursor, the stream's state
   and the queued actions are committed together in the oracle's state file.
3. **Anchor and send.** Telemetry batches that are due are sealed and their roots enqueued; the
   recorder sends the outbox (verdicts and roots, in sequence order).
4. **Act.** Queued isolation actions are carried out on the quorum: open the proposal or vote on
   the open one, citing the verdict event as evidence.
5. **Watch peers.** Every `peer_interval_s`, `PeerChecker` re-verifies the peers' ML-DSA batches.

Exactly once, whatever dies when. Readings: the store commit. Verdicts: a crash between the outbox
append (2) and the state commit replays the same readings from the same saved stream state, which
re-derives the same episode keys; keys already in the outbox are not appended again. Roots: the
store's own adoption rule. Votes: the contract refuses a second vote (`QuorumAlreadyVoted`) and a
vote on a node already isolated (`QuorumNodeNotInState`); both mean "done". A chain outage only
delays steps 3–5: they are retried with backoff while readings keep being stored and judged.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from eth_utils.address import to_checksum_address

from chain.client import ChainClient
from chain.commanded import commanded_assets, sensor_asset
from chain.manifest import Deployment
from chain.outbox import EventOutbox
from chain.quarantines import active_quarantines, named_sensor
from chain.quorum import Action, QuorumClient
from chain.recorder import EventRecorder, canonical_payload
from chain.rotation import rotation_owed
from core import logs
from core.config import Settings
from core.errors import ChainError, ContractRejected, QeaimsError, TransactionFailed
from core.kinds import kind_by_name
from core.messages import Reading, VerdictKind
from keys.identity import HybridIdentity
from keys.ids import event_id, from_bytes32, to_bytes32
from oracles.ingest.sink import ReadingSink
from oracles.merkle import reading_from_body, timestamp_ms
from oracles.peer_check import PeerChecker, PeerFinding
from oracles.stream import Episode, SectorModelLike, SectorStream
from oracles.telemetry import TelemetryStore
from oracles.telemetry_chunks import read_bodies

__all__ = ["LOGGER_NAME", "KeyRotationOwed", "NodeOptions", "NodeStats", "OracleNode", "state_path"]

LOGGER_NAME = "qeaims.oracle"

VERDICT_KINDS = {v: kind_by_name(v.value) for v in VerdictKind}
_REINTEGRATED = kind_by_name("reintegrated")
_REPAIRED = kind_by_name("repaired")
_ACTIVE, _REPAIRING = 1, 3  # Registry.NodeStatus

_SCHEMA = """
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


class OracleNode:
    def __init__(self, *, settings: Settings, client: ChainClient, deployment: Deployment, identity: HybridIdentity,
                 model: SectorModelLike, sink: ReadingSink, options: NodeOptions = NodeOptions(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.client = client
        self.identity = identity
        self.me = identity.address
        self.sector = model.sector
        self.sink = sink
        self.options = options
        self._clock = clock
        self.stats = NodeStats()
        self.outbox = EventOutbox.for_oracle(settings.outbox_dir, self.me, deployment.deployment_id)
        self.recorder = EventRecorder(client, identity, self.outbox)
        self.store = TelemetryStore.for_oracle(settings.home, self.me, batch_size=options.batch_size,
                                               max_age_s=options.max_age_s)
        self.stream = SectorStream(model)
        self.quorum = QuorumClient(client)
        base = state_path(settings, deployment.deployment_id, self.me)
        base.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.peers = PeerChecker(client, deployment, self.recorder, base.with_suffix(".peers.sqlite"))
        self._db = sqlite3.connect(base, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._reader = sqlite3.connect(f"file:{self.store.path}?mode=ro", uri=True, check_same_thread=False)
        self._recorded = self._episodes_in_outbox()
        self._cursor = self._load_state()
        self._repairs: dict[str, RowsSince] = {}  # node under repair → rows judged since it was first seen so
        # node → rows judged since its reintegration: a reintegrated node goes through a commanded
        # transition (a fail-back, a re-energised section) that looks like a fault for a few report
        # periods; a vote opened within `settle_rows` is cast only if the fault outlasts them
        self._settling: dict[str, RowsSince] = {}
        self._settling_origin: dict[str, str] = {}  # settling node → the reintegrated node it settles with
        self._replay()
        self._chain_ok_at = float("-inf")  # when chain work may next be tried
        self._failures = 0
        self._next_peer_check = float("-inf")
        self._recheck = True  # votes are re-checked at start and after every chain outage
        self._reintegration_voted: set[str] = set()
        self._loop_lock = threading.Lock()  # held by `run`: `close` never pulls the stores from under it
        with contextlib.suppress(ChainError):  # the chain may be down at start: the loop syncs later
            self.peers.index.sync()  # quarantines and repairs are known before the first vote
        self._controllers: dict[str, bool] = {}  # account → holds the repair role (see `_speaks_for_controller`)

    def close(self, timeout_s: float = 120.0) -> None:
        """Close the stores once `run` has returned: a connection closed under a running query crashes
        the process (SQLite frees what the other thread still reads), so a loop still draining its
        backlog is waited for; after `timeout_s` the connections are left to the process's exit."""
        if not self._loop_lock.acquire(timeout=timeout_s):
            log_line("close-skipped", oracle=self.me, reason=f"the loop was still running after {timeout_s:g} s")
            return
        try:
            for closer in (self.peers.close, self._reader.close, self._db.close, self.store.close, self.outbox.close):
                with contextlib.suppress(Exception):  # closing everything matters more than the first failure
                    closer()
        finally:
            self._loop_lock.release()

    # --- state -----------------------------------------------------------------------------------

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

    # --- the loop --------------------------------------------------------------------------------

    def run_once(self, *, store: bool = True) -> None:
        """One pass of store → judge → anchor/send → act → peers; chain failures are retried later.

        `store=False` when another thread stores (`run`): one writer keeps the arrival order.
        """
        if store:
            self.store_waiting()
        self._replay()
        now = self._clock()
        if now < self._chain_ok_at:
            return
        try:
            if self._recheck:
                self._recheck_votes()
                self._recheck = False
            if self.store.due():
                self.store.anchor(self.recorder)
            elif self.outbox.pending_count():
                self.recorder.flush()
            self._act()
            if now >= self._next_peer_check:
                self._next_peer_check = now + self.options.peer_interval_s
                self.peers.index.sync()  # repairs are judged on the chain as it is now, not as of the last check
                self._verify_repairs()
                self._field_times()  # a window waiting for its fail-back ends even with no vote pending
                for finding in self.peers.check():
                    self.stats.peer_findings.append(finding)
                    log_line("peer-finding", oracle=self.me, sender=finding.sender, batch=finding.batch,
                             action=finding.action, reason=finding.reason, proposal=finding.proposal_id)
                if rotation_owed(self.peers.index.db, self.me) and \
                        int(self.client.call1("Registry", "oracle", self.me)[4]) == 1:
                    raise KeyRotationOwed(f"oracle {self.me} was reinstated after a quarantine: it signs nothing "
                                          "more with its old key and rotates it before going on")
        except ChainError as exc:
            self._failures += 1
            delay = self.options.backoff_s[min(self._failures, len(self.options.backoff_s)) - 1]
            self._chain_ok_at = self._clock() + delay
            self.stats.chain_errors += 1
            self.stats.last_error = str(exc)
            self._recheck = True
            log_line("chain-error", oracle=self.me, error=str(exc), retry_in_s=delay)
            return
        self._failures = 0

    def run(self, stop: threading.Event, *, idle_s: float = 0.2) -> None:
        """Loop until `stop` is set; then anchor what is left if the chain allows.

        A second thread stores readings as they arrive, so a slow chain never holds readings (and
        their MQTT acknowledgements) in memory: the only readings a crash can lose are the ones that
        arrived in the last few milliseconds and were not acknowledged yet.
        """
        with self._loop_lock:
            self._run(stop, idle_s)

    def _run(self, stop: threading.Event, idle_s: float) -> None:
        storing = threading.Event()
        broken: list[BaseException] = []

        def store_loop() -> None:
            try:
                while not storing.is_set():
                    self.sink.wait(0.05)
                    self.store_waiting()
            except BaseException as exc:  # noqa: BLE001 - the disk is full or the store damaged: the oracle must stop
                broken.append(exc)

        storer = threading.Thread(target=store_loop, name="oracle-store", daemon=True)
        storer.start()
        try:
            while not stop.is_set() and not broken:
                self.run_once(store=False)
                stop.wait(idle_s)
        finally:
            storing.set()
            storer.join()
        if broken:
            log_line("store-failed", oracle=self.me, error=str(broken[0]))
            raise broken[0]
        self.drain_and_anchor(timeout_s=5.0)

    def drain_and_anchor(self, timeout_s: float = 10.0) -> bool:
        """Store and judge everything waiting, anchor even a partial batch; True when nothing is left."""
        deadline = self._clock() + timeout_s
        while True:
            self.store_waiting()
            self._replay()
            try:
                self.store.anchor(self.recorder, force=True)
                self._act()
                if not self.outbox.pending_count() and not self.store.pending_count() and not len(self.sink):
                    return True
            except ChainError as exc:
                self.stats.last_error = str(exc)
            if self._clock() >= deadline:
                return False
            time.sleep(0.2)

    # --- judging ---------------------------------------------------------------------------------

    def _stored_last_id(self) -> int:
        row = self._reader.execute("SELECT COALESCE(MAX(first_id + count - 1), 0) FROM chunks").fetchone()
        return int(row[0])

    def store_waiting(self) -> int:
        """Move everything in the sink into the store (durable; the MQTT acknowledgements go out)."""
        total = 0
        while True:
            ids = self.sink.drain_into(self.store, max_items=self.options.judge_chunk)
            if not ids:
                self.stats.stored += total
                return total
            total += len(ids)

    def _replay(self, upto: int | None = None) -> None:
        """Judge readings stored after the cursor (left unjudged by a crash), straight from the store."""
        last = self._stored_last_id() if upto is None else upto
        while self._cursor < last:
            hi = min(last, self._cursor + self.options.judge_chunk, *self._window_edges())
            readings = [reading_from_body(body) for body in read_bodies(self._reader, self._cursor + 1, hi)]
            self._judge(readings, hi)
            for window in (*self._repairs.values(), *self._settling.values()):
                window.advance(self._cursor, self.stream)

    def _window_edges(self) -> list[int]:
        """Where a `RowsSince` starts counting: judging stops there once, so the count starts exactly."""
        return [w.after_id for w in (*self._repairs.values(), *self._settling.values())
                if w.start_row is None and w.after_id > self._cursor]

    def _rows_since_now(self) -> RowsSince:
        """A count of the rows judged from the readings arriving from now on."""
        after = self._stored_last_id()
        return RowsSince(after, self.stream.rows if self._cursor >= after else None)

    def _field_times(self) -> None:
        """Give each settling window that waits for it the field time of its fail-back, from the
        controller's `reintegrated` step (read from the peers' index, synced every peer interval).

        A window that has waited `3 x settle_rows` rows of readings for it stops waiting and counts
        `settle_rows` readings arriving from then on; if the step comes after all, its field time
        still counts. In a storm day the controller's step landed 69 s after the node was back (its
        device's acknowledgement crossed the same loaded broker as the readings): the rows counted
        while waiting had ended the window at once, and the fail-back transient that arrived next
        isolated `switch-1`.
        """
        open_ = {node: w for node, w in self._settling.items() if w.waiting or w.fell_back}
        if not open_:
            return
        found = _reintegrations(self.peers.index.db, self._speaks_for_controller)
        for node, window in open_.items():
            origin = self._settling_origin.get(node, node)
            if origin in found:
                window.waiting = window.fell_back = False
                window.since_ms = found[origin]
                window.advance(self._cursor, self.stream)
                log_line("settling-from", oracle=self.me, node=node, field_ms=window.since_ms)
            elif window.waiting and window.arrival_rows(self.stream.rows) >= 3 * self.settle_rows:
                # no controller step for it yet: the readings' arrival order it is, from now on
                window.waiting, window.fell_back, window.start_row = False, True, self.stream.rows
                log_line("settling-from", oracle=self.me, node=node, field_ms=None, fell_back=True)

    def _judge(self, readings: list[Reading], last_id: int) -> None:
        episodes = self.stream.feed(readings)
        actions: list[tuple[str, str, int]] = []
        for ep in episodes:
            seq = self._recorded.get(ep.key)
            if seq is None:
                seq = self.outbox.append(VERDICT_KINDS[ep.verdict.kind], to_bytes32(ep.subject), _payload(ep))
                self._recorded[ep.key] = seq
                self.stats.episodes += 1
                log_line("verdict", oracle=self.me, seq=seq, episode=ep.key, kind=ep.verdict.kind.value,
                         asset=ep.verdict.asset_id, reason=ep.verdict.reason)
            if ep.verdict.kind is VerdictKind.FAULT and ep.anchor is not None:
                actions.append((ep.key, ep.anchor, seq))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO actions(episode, target, evidence_seq) VALUES (?, ?, ?)",
                                 actions)
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('cursor', ?)", (str(last_id),))
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('stream', ?)",
                             (json.dumps(self.stream.state(), separators=(",", ":")),))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._cursor = last_id
        self.stats.judged += len(readings)

    # --- acting on the quorum ------------------------------------------------------------------

    def _act(self) -> None:
        pending = self._db.execute(
            "SELECT episode, target, evidence_seq FROM actions WHERE state = 'pending' ORDER BY rowid").fetchall()
        if not pending:
            return
        if self.outbox.pending_count():
            self.recorder.flush()  # the evidence goes on-chain before the vote that cites it
        # the peers' index is synced every peer interval (and at start): a vote does not wait for a sync,
        # which after a backlog can take seconds; a quarantine is known at most one interval late
        quarantined = active_quarantines(self.peers.index.db, self.sector.value)
        commanded = commanded_assets(self.peers.index.db, self.sector.value, self._speaks_for_controller)
        self._field_times()
        for node in list(self._repairs):
            # reintegrated since `_verify_repairs` last looked: the node and its dependants settle now,
            # or a dependant's fail-back transient (a data centre's switch) is voted on before they do
            if self.quorum.node_status(to_bytes32(node)) == "active":
                self._settled_from_repair(node)
        for episode, target, seq in pending:
            row = self.outbox.get(int(seq))
            sensor = named_sensor(json.loads(row.payload)) if row is not None else None
            if sensor is not None and sensor in quarantined:
                # its sector's quorum found this sensor spoofed: what it says no longer moves anything
                self._decided(episode, target, "moot", f"driven by quarantined sensor {sensor}")
                continue
            if sensor is not None and sensor_asset(sensor) in commanded:
                # the deviation is one the city commanded to protect this asset from a cascade: not a fault
                self._decided(episode, target, "moot",
                              f"driven by {sensor}, held by the controller: {commanded[sensor_asset(sensor)]}")
                continue
            window = self._settling.get(str(target))
            if window is not None and window.rows(self.stream.rows) < self.settle_rows:
                continue  # decided once the node has settled after its reintegration
            if window is not None and not any(k.startswith(f"{target}|fault") for k in self.stream.open_episodes):
                state, detail = "moot", "a transient while the node settled after its reintegration"
            else:
                state, detail = self._isolate(str(target), int(seq), str(episode))
            self._decided(episode, target, state, detail)

    def _decided(self, episode: str, target: str, state: str, detail: str) -> None:
        """Close a pending action (voted, moot or refused) and say why in the log."""
        self._db.execute("UPDATE actions SET state = ?, detail = ? WHERE episode = ?", (state, detail, episode))
        log_line("isolation-" + state, oracle=self.me, target=target, episode=episode, detail=detail)

    def _speaks_for_controller(self, account: str) -> bool:
        """Whether `account` holds the quorum's repair role (the controller's), asked once per account."""
        known = self._controllers.get(account.lower())
        if known is None:
            role = self.client.call1("IsolationQuorum", "REPAIR_ROLE")
            known = bool(self.client.call1("IsolationQuorum", "hasRole", role, to_checksum_address(account)))
            self._controllers[account.lower()] = known
        return known

    def _settled_from_repair(self, node: str) -> None:
        """The node and what depends on it at once (a data centre's switch fails back with it)
        settle for `settle_rows` rows from the fail-back's field time, once the controller's
        `reintegrated` step gives it (`_field_times`); until then a vote on them waits."""
        from sectors.graph import at_risk

        self._repairs.pop(node, None)
        window = replace(self._rows_since_now(), waiting=True)
        try:
            moved = [r.node for r in at_risk(node) if r.time_to_impact_s == 0]
        except QeaimsError:  # a node the dependency graph does not know settles alone
            moved = []
        for settling in (node, *moved):
            self._settling[settling] = window
            self._settling_origin[settling] = node
        log_line("settling", oracle=self.me, node=node, nodes=[node, *moved], rows=self.stream.rows,
                 after_reading=window.after_id, unjudged=self.backlog(), settle_rows=self.settle_rows)

    def _verify_repairs(self) -> None:
        """Vote to reintegrate a node of this sector under repair once fresh readings show it healthy:
        no fault episode open on it for `clear_rows` rows from the moment the crew's repair took
        effect in the field (the controller's `repaired` step; rows arriving after it, where the
        field gave no time).

        Counting from the dispatch instead voted a data centre back 14 s after its crew set out
        (storm day): once the failover had moved its traffic, its verdicts were anomalies, no
        longer faults, and the node was on-chain active for 71 s before the crew had repaired it.
        A node whose repair nobody with the repair role reports stays under repair."""
        rows = self.peers.index.db.execute(
            "SELECT args FROM logs WHERE contract = 'Registry' AND event = 'NodeStatusChanged'").fetchall()
        latest: dict[str, int] = {}
        for (args,) in rows:
            change = json.loads(args)
            if from_bytes32(bytes.fromhex(str(change["sector"])[2:])) == self.sector.value:
                latest[from_bytes32(bytes.fromhex(str(change["node"])[2:]))] = int(change["to"])
        done: dict[str, int | None] | None = None
        for node, status in latest.items():
            if status != _REPAIRING:
                if node in self._repairs and status == _ACTIVE:  # back: it settles
                    self._settled_from_repair(node)
                self._repairs.pop(node, None)
                self._reintegration_voted.discard(node)
                continue
            seen = self._repairs.get(node)
            if seen is None:
                seen = self._repairs[node] = replace(self._rows_since_now(), waiting=True)
            if seen.waiting:
                if done is None:
                    done = _repairs_done(self.peers.index.db, self._speaks_for_controller)
                if node not in done:
                    continue  # the crew is still at work
                if done[node] is None:
                    seen = self._repairs[node] = self._rows_since_now()
                else:
                    seen.waiting, seen.since_ms = False, done[node]
                    seen.advance(self._cursor, self.stream)
                log_line("repair-verifying", oracle=self.me, node=node, field_ms=done[node])
            faulty = any(key.startswith(f"{node}|fault") for key in self.stream.open_episodes)
            if faulty or seen.rows(self.stream.rows) < self.stream.clear_rows or node in self._reintegration_voted:
                continue
            try:
                proposal = self.quorum.propose(self.identity, Action.REINTEGRATE, to_bytes32(node),
                                               to_bytes32("verified on fresh readings"))
            except ContractRejected as exc:
                if exc.error not in ("QuorumAlreadyVoted", "QuorumNodeNotInState", "QuorumWrongState"):
                    raise
                proposal = None
            self._reintegration_voted.add(node)
            log_line("reintegration-vote", oracle=self.me, node=node, proposal=proposal)

    def _recheck_votes(self) -> None:
        """A vote is only as durable as its block: after an outage the chain may have lost it (the
        journal keeper can lose the last fraction of a second on a hard kill). Queue it again if the
        proposal no longer holds it while the node is still active."""
        rows = self._db.execute("SELECT episode, target, detail FROM actions WHERE state = 'voted'").fetchall()
        for episode, target, detail in rows:
            proposal = int(str(detail).rsplit(" ", 1)[-1]) if str(detail).startswith("proposal ") else 0
            held = proposal > 0 and bool(self.client.call1("IsolationQuorum", "hasVoted", proposal, self.me))
            if not held and self.quorum.node_status(to_bytes32(str(target))) == "active":
                self._db.execute("UPDATE actions SET state = 'pending', detail = 'vote lost with the chain' "
                                 "WHERE episode = ?", (episode,))
                log_line("isolation-vote-lost", oracle=self.me, target=target, episode=episode, proposal=proposal)

    def _isolate(self, target: str, evidence_seq: int, episode: str) -> tuple[str, str]:
        reason = to_bytes32(f"fault:{target}"[:32])
        try:
            proposal = self.quorum.propose(self.identity, Action.ISOLATE, to_bytes32(target), reason,
                                           [event_id(self.me, evidence_seq)])
        except ContractRejected as exc:
            if exc.error == "QuorumAlreadyVoted":
                return "voted", f"proposal {exc.args_by_name.get('proposalId')}"
            if exc.error in ("QuorumNodeNotInState", "QuorumWrongState"):
                return "moot", f"{target} is no longer active (already isolated or under repair)"
            return "refused", str(exc)
        except TransactionFailed:
            # a vote racing the one that executed the proposal can revert without a decodable reason
            if self.quorum.node_status(to_bytes32(target)) != "active":
                return "moot", f"{target} is no longer active (isolated while this vote was in flight)"
            raise
        self.stats.votes += 1
        return "voted", f"proposal {proposal}"


class KeyRotationOwed(QeaimsError):
    """Raised by the loop when governance reinstated this oracle after a quarantine (`chain.rotation`)."""


def _reintegrations(db: sqlite3.Connection, trusted: Callable[[str], bool]) -> dict[str, int | None]:
    """Node → the latest field time (ms) a device reported acting in the controller's `reintegrated`
    step for the node's latest return to active (None when no device reported a time), for the
    nodes whose step is indexed. Steps recorded before that return belong to an earlier repair."""
    return _controller_steps(db, trusted, _REINTEGRATED, _ACTIVE)


def _repairs_done(db: sqlite3.Connection, trusted: Callable[[str], bool]) -> dict[str, int | None]:
    """Node → the field time (ms) the crew's repair took effect, from the controller's `repaired`
    step for the node's latest repair (None when the field gave no time), for the nodes whose
    step is indexed."""
    return _controller_steps(db, trusted, _REPAIRED, _REPAIRING)


def _controller_steps(db: sqlite3.Connection, trusted: Callable[[str], bool], kind: int,
                      status: int) -> dict[str, int | None]:
    """Node → the latest field time (ms) in the controller's `kind` step recorded since the node's
    latest change to `status` (its acks' `at`, or the step's own `at`; None when it has none).
    Only steps from a holder of the repair role count: anyone may record an event."""
    since: dict[str, int] = {}
    for args, block in db.execute("SELECT args, block FROM logs WHERE contract = 'Registry' "
                                  "AND event = 'NodeStatusChanged' ORDER BY block, log_index"):
        change = json.loads(args)
        if int(change["to"]) == status:
            since[from_bytes32(bytes.fromhex(str(change["node"])[2:]))] = int(block)
    out: dict[str, int | None] = {}
    for recorder, payload, block in db.execute("SELECT oracle, payload, block FROM events WHERE kind = ? "
                                               "ORDER BY block, log_index", (kind,)):
        try:
            body = json.loads(bytes(payload))
            node = str(body["node"])
            if node not in since or int(block) < since[node] or not trusted(str(recorder)):
                continue
            stamps = [a["at"] for a in body.get("acks", []) if a.get("at")] + ([body["at"]] if body.get("at") else [])
            times = [timestamp_ms(datetime.fromisoformat(str(t))) for t in stamps]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # not a controller step this reader understands
        out[node] = max(times) if times else None
    return out


def _payload(ep: Episode) -> bytes:
    v = ep.verdict
    return canonical_payload({
        "episode": ep.key, "subject": ep.subject, "sector": v.sector.value, "asset": v.asset_id,
        "verdict": v.kind.value, "score": round(v.score, 6), "threshold": round(v.threshold, 6),
        "sensors": list(v.sensors), "reason": v.reason, "observed_at": v.observed_at.isoformat(),
    })
