"""`OracleNode`: the stages run in order, on one thread, once per `run_once` (part of `oracles.node`).

Store and judge (`oracles.node.judging`), then, when the chain allows: anchor and send (telemetry
batches that are due are sealed and their roots enqueued; the recorder sends the outbox, verdicts
and roots in sequence order), act (`oracles.node.voting`), and every `peer_interval_s` watch the
peers (`PeerChecker` re-verifies their ML-DSA batches) and the repairs (`oracles.node.repairs`).

Roots are sent exactly once by the store's own adoption rule. A chain outage only delays the chain
work: it is retried with backoff while readings keep being stored and judged.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable

from chain.client import ChainClient
from chain.manifest import Deployment
from chain.outbox import EventOutbox
from chain.quorum import QuorumClient
from chain.recorder import EventRecorder
from chain.rotation import rotation_owed
from core.backoff import next_backoff
from core.config import Settings
from core.errors import ChainError, QeaimsError
from keys.identity import HybridIdentity
from oracles.ingest.sink import ReadingSink
from oracles.node.judging import Judging
from oracles.node.key_watch import KeyWatch
from oracles.node.state import STATE_SCHEMA, NodeOptions, NodeStats, RowsSince, log_line, state_path
from oracles.node.voting import Voting
from oracles.peer_check import PeerChecker
from oracles.stream import SectorModelLike, SectorStream
from oracles.telemetry import TelemetryStore

__all__ = ["KeyRotationOwed", "OracleNode"]


_DEFAULT_OPTIONS = NodeOptions()  # frozen: one shared default, as a default argument would be


class OracleNode(Judging, Voting):
    def __init__(self, *, settings: Settings, client: ChainClient, deployment: Deployment, identity: HybridIdentity,
                 model: SectorModelLike, sink: ReadingSink, options: NodeOptions = _DEFAULT_OPTIONS,
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
        self.peers = PeerChecker(client, deployment, self.recorder, base.with_suffix(".peers.sqlite"),
                                 max_logs_range=settings.max_logs_range)
        self._db = sqlite3.connect(base, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(STATE_SCHEMA)
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
        self._key_watch = KeyWatch(identity.pq_public_key)  # an indicator naming this key: rotate

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
                self._rotate_if_named()
        except ChainError as exc:
            self._failures, delay = next_backoff(self._failures, exc, self.options.backoff_s)
            self._chain_ok_at = self._clock() + delay
            self.stats.chain_errors += 1
            self.stats.last_error = str(exc)
            self._recheck = True
            log_line("chain-error", oracle=self.me, error=str(exc), retry_in_s=delay)
            return
        self._failures = 0

    def _rotate_if_named(self) -> None:
        """A quorum's indicator names this oracle's key (`oracles.node.key_watch`): it signs nothing more with
        it and rotates. Not while it is out of service (the registry refuses a quarantined oracle's rotation;
        its reinstatement asks for one anyway, `chain.rotation.rotation_owed`)."""
        named = self._key_watch.check(self.peers.index.db)
        if named is None or int(self.client.call1("Registry", "oracle", self.me)[4]) != 1:
            return
        log_line("key-named", oracle=self.me, fingerprint=self._key_watch.fingerprint, indicator=named.id,
                 source_sector=named.body.get("source_sector"), block=named.block)
        raise KeyRotationOwed(f"oracle {self.me}: indicator {named.id[:16]}… from {named.body.get('source_sector')}'s "
                              f"quorum names its key {self._key_watch.fingerprint[:16]}…: it signs nothing more with "
                              "it and rotates it before going on", indicator=named.id)

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


class KeyRotationOwed(QeaimsError):
    """Raised by the loop when governance reinstated this oracle after a quarantine (`chain.rotation`), or when
    a quorum's indicator names its key (``indicator``: that indicator's id; `oracles.node.key_watch`)."""

    def __init__(self, message: str, *, indicator: str = "") -> None:
        super().__init__(message)
        self.indicator = indicator

    @property
    def reason(self) -> str:
        """Why, in a few words (for the rotation's log line)."""
        return f"named by indicator {self.indicator}" if self.indicator else "reinstated after a quarantine"
