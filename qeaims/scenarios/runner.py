"""Playing a scenario against the running city and measuring what the city did, from the chain.

The runner is an outsider: it breaks things through the twins' simulation topic and then only
*watches* — the chain (through its own indexer) for verdicts, executed proposals and the
controller's steps, and the twins' service feed (``qeaims-svc/<sector>``) for availability. Each
injected fault is tracked from its onset (the moment the runner sent the injection: the twin
applies it at its next step, so the onset errs early and every time below errs long, never short)
to:

- detection: the first verdict on-chain about the fault's node (or asset) in its sector;
- isolation: the isolation of that node executed by the quorum;
- cross-system response: the controller's ``applied`` step, which carries the acknowledgements of
  the isolate commands and of the protective commands for the dependants at risk
  (`controller.protect`), sent right after the cascade analysis that decided them;
- restoration: the controller's ``restored`` step (the restore plan's commands acknowledged: service
  brought back around the isolated asset), which follows once the restore plan is made.

A spoofed-sensor attack is tracked to its detection, to the controller's ``sensor-quarantine`` of
that sensor (``quarantined``: a quorum of intrusion verdicts named it) and to the quarantine's
lifting once a technician removed the tampering (``lifted``).

Every step has two times (`qeaims.scenarios.clock`):

- *field* seconds, the city's KPIs: from the onset on the twin's own clock (the clock it stamped
  its acknowledgement of the injection with) to the field time at which the block that recorded the
  step was mined, mapped through the same twin's published clock;
- *wall* seconds, the processing: from the moment the runner sent the injection to the moment the
  block was first seen (a 10 Hz head poll stamps each block; block timestamps are not used).

A measurement attack is expected to be detected but never isolated; an isolation of a node no
injected fault concerns counts as wrongful.

Each step is injected when the scenario's field clock reaches its offset, and with a `Pacemaker`
the city runs at real time from shortly before each injection until the fault is `settled`
(`qeaims.scenarios.pacing`), so the processing in its KPIs costs the field time it would cost a
city living at real time, whatever the run's ``--speed``.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from bus.client import NamedClient
from bus.secure import SecureLinks
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.quorum import Action, QuorumClient
from controller.commander import Commander
from core.config import Settings
from core.errors import ChainNotRunning
from core.kinds import kind_by_name
from core.logs import log_line
from keys.ids import from_bytes32, to_bytes32
from keys.keystore import load_keystore
from qeaims.scenarios.clock import BlockStamps, TwinClocks
from qeaims.scenarios.definitions import Scenario, Step
from qeaims.scenarios.pacing import LEAD_S, WINDOW_CAP_S, Pacemaker
from sectors.anchors import anchor_node
from sectors.runner import REPORT_PERIOD_S
from sectors.service import volume_of

__all__ = ["CHAIN_START_WAIT_S", "FaultTrack", "ScenarioRun", "ServiceFeed", "connect_waiting", "first_decided", "real_time_wanted", "settled", "while_chain_away",
           "wrongful_isolations"]

QUARANTINE = kind_by_name("sensor-quarantine")
# How long a scenario that starts waits for a chain that does not answer yet: a supervisor's restart and
# the replay behind the gate took up to 11 s in the crash campaign (a 1,500-block journal, 8 s of replay);
# three minutes leave room for a journal ten times as long
CHAIN_START_WAIT_S = 180.0
_T = TypeVar("_T")
VERDICTS = tuple(kind_by_name(k) for k in ("anomaly", "fault", "intrusion"))
ANOMALY = kind_by_name("anomaly")
CONTROLLER_STEPS = {"cascade": kind_by_name("cascade-analysis"), "applied": kind_by_name("isolation-applied"),
                    "restored": kind_by_name("isolation-applied"),
                    "dispatched": kind_by_name("repair-dispatched"), "repaired": kind_by_name("repaired"),
                    "reintegrated": kind_by_name("reintegrated")}


_STEP_ATTRS = {"applied": ("response",), "restored": ("restored",), "repaired": ("repaired",),
               "reintegrated": ("reintegrated",)}


def track_attrs(kind: str, body: dict[str, Any]) -> tuple[str, ...]:
    """The `FaultTrack` times a controller step sets: steps sharing an event kind (``applied`` and
    ``restored`` are both ``isolation-applied``) are told apart by the payload's ``step``; an
    ``applied`` step recorded with its restore (a controller from before the restore had a step of
    its own: its ``acks`` hold both) is both the response and the restoration."""
    step = str(body.get("step", kind))
    if step == "applied" and body.get("restore_in_step"):
        return ("response", "restored")
    return _STEP_ATTRS.get(step, ())


def first_decided(verdicts: list[tuple[dict[str, Any], float, int]], subject: str) -> float | None:
    """When the first verdict about `subject` that is not an anomaly was mined: of (payload, wall
    time, event kind) in chain order. An anomaly tells (detection); a fault or an intrusion is
    what a quorum acts on (confirmation)."""
    for body, when, kind in verdicts:
        if kind != ANOMALY and body.get("subject") == subject:
            return when
    return None


@dataclass
class FaultTrack:
    step: Step
    node: str | None  # the on-chain node it should isolate (None: an attack, or nothing isolable)
    subject: str  # what a verdict about it names (node, else the asset)
    onset: float | None = None
    onset_block: int = 0  # the chain head when the injection was sent: only later blocks can be its story
    detected: float | None = None
    confirmed: float | None = None  # the first verdict about it that is not an anomaly (a fault, an intrusion)
    isolated: float | None = None
    proposal: int | None = None
    response: float | None = None
    restored: float | None = None
    repaired: float | None = None
    reintegrated: float | None = None
    quarantined: float | None = None
    lifted: float | None = None
    error: str = ""
    onset_field: float | None = None  # the twin's clock (POSIX s) when it applied the injection
    sensed_field: float | None = None  # the field time (POSIX s) of the reading the detecting verdict judged

    STEPS = ("detected", "confirmed", "isolated", "response", "restored", "repaired", "reintegrated", "quarantined", "lifted")

    @property
    def is_attack(self) -> bool:
        return self.step.control.op == "inject-attack"

    def since(self, value: float | None) -> float | None:
        """Wall seconds from the onset (the injection sent) to a wall time."""
        return None if value is None or self.onset is None else max(0.0, value - self.onset)

    def sensed(self) -> float | None:
        """Field seconds from the onset to the reading the detection judged: the field's own part of
        the detection (report period, rows a rule waits for), the same at any speed."""
        if self.sensed_field is None or self.onset_field is None:
            return None
        return self.sensed_field - self.onset_field

    def field_since(self, value: float | None, clocks: TwinClocks) -> float | None:
        """Field seconds from the onset (on the twin's clock) to the field time at wall time `value`."""
        if value is None or self.onset_field is None:
            return None
        field = clocks.field_at(self.step.sector.value, value)
        return None if field is None else field - self.onset_field  # never clamped: a step before onset shows


class ServiceFeed(NamedClient):
    """Availability per sector, weighted by field time, from the twins' ``qeaims-svc/<sector>`` messages;
    each message also gives `clocks` a sample of that twin's clock."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, links: SecureLinks | None = None,
                 speed: float = 1.0) -> None:
        super().__init__("scenario-service-feed", host=host, port=port, settle_s=0.2, links=links)
        self.clocks = TwinClocks(speed)
        self._listen([("qeaims-svc/+", 0)], self._on_message)
        self._lock = threading.Lock()
        self.latest: dict[str, float] = {}
        self._area: dict[str, float] = {}
        self._span: dict[str, float] = {}
        self._last: dict[str, tuple[float, float]] = {}  # sector → (field time, availability)
        self._detail: dict[str, dict[str, Any]] = {}  # sector → the last message's detail figures
        self._volumes: dict[str, dict[str, float]] = {}  # sector → key → m³ (flows in m³/s over field time)
        self._counting = False  # between `begin` (the play starts) and `freeze` (it ends)

    def _on_message(self, _topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            sector, value = str(body["sector"]), float(body["availability"])
            field_at = datetime.fromisoformat(str(body["at"]))
        except (ValueError, KeyError, TypeError):
            return
        received = time.time()
        # the twin's own wall stamp of its step when it sent one (a plausible one): the receipt time
        # is later by the broker's lag, which at speed 30 would map a step thirty lags too early
        stamped = body.get("wall")
        wall = float(stamped) if isinstance(stamped, int | float) and not isinstance(stamped, bool) \
            and received - 60.0 <= float(stamped) <= received + 1.0 else received
        self.clocks.record(sector, wall, field_at)
        now = field_at.timestamp()
        with self._lock:
            if not self._counting:
                self._last.pop(sector, None)
                return  # outside the play: what the city does before or after it is not its availability
            if sector in self._last:
                then, held = self._last[sector]
                if now <= then:
                    return  # a repeated message: its period is counted already
                self._area[sector] = self._area.get(sector, 0.0) + held * (now - then)
                self._span[sector] = self._span.get(sector, 0.0) + (now - then)
                volumes = self._volumes.setdefault(sector, {})
                for key, flow in self._detail.get(sector, {}).items():
                    name = volume_of(key)  # m³/s held over the period: m³
                    if name is not None and isinstance(flow, int | float) and math.isfinite(flow):
                        volumes[name] = volumes.get(name, 0.0) + flow * (now - then)
            self._last[sector] = (now, value)
            detail = body.get("detail")
            self._detail[sector] = detail if isinstance(detail, dict) else {}
            self.latest[sector] = value

    def availability(self) -> dict[str, float]:
        with self._lock:
            return {s: self._area[s] / self._span[s] for s in self._span if self._span[s] > 0}

    def volumes_m3(self) -> dict[str, dict[str, float]]:
        """Per sector, each flow the service feed reports in m³/s (water's leak, sewage's overflow and
        flooding) integrated over the counted field time: what was lost or spilled, in m³."""
        with self._lock:
            return {s: dict(v) for s, v in self._volumes.items()}

    def window_s(self) -> dict[str, float]:
        """Field seconds each sector's availability covers."""
        with self._lock:
            return dict(self._span)

    def begin(self) -> None:
        """Start counting availability: the play's first injection is due (a window as the baseline's)."""
        with self._lock:
            self._counting = True

    def freeze(self) -> None:
        """Stop counting availability (the twins' clocks are still followed).

        The scenario command computes the automation-off baseline after the play, for minutes of
        wall time while the city runs on; counted on, the storm went on raining into the live
        figure for hours of field time more than the baseline's, and sewage read 0.42 against
        the baseline's 0.49 over windows of different lengths.
        """
        with self._lock:
            self._counting = False


def while_chain_away(call: Callable[[], _T], *, timeout_s: float = CHAIN_START_WAIT_S,
                     on_wait: Callable[[float], None] | None = None) -> _T:
    """`call()`, again each second while the chain does not answer (`ChainNotRunning`: a supervisor
    restarting it, a replay behind its gate), for up to `timeout_s`; then the error it was.

    Why: a scenario waited out a chain that went away while it played, but not one that went away while
    it started: crash campaign run 19 lost its chain then and ended with exit 2 and no report, though
    the city's supervisor had the chain back seconds later. `on_wait(seconds away)` is told each retry
    (a spinner's line)."""
    deadline = time.monotonic() + timeout_s
    away_since: float | None = None
    while True:
        try:
            result = call()
        except ChainNotRunning as exc:
            now = time.monotonic()
            if now >= deadline:
                raise
            if away_since is None:
                away_since = now
                log_line("qeaims.scenario", "scenario-chain-unreachable", error=str(exc)[:200], at="start")
            if on_wait is not None:
                on_wait(now - away_since)
            time.sleep(min(1.0, max(0.0, deadline - now)))
            continue
        if away_since is not None:
            log_line("qeaims.scenario", "scenario-chain-back", away_s=round(time.monotonic() - away_since, 2),
                     at="start")
        return result


def connect_waiting(settings: Settings, *, timeout_s: float = CHAIN_START_WAIT_S,
                    on_wait: Callable[[float], None] | None = None) -> tuple[ChainClient, Deployment]:
    """`chain.connect.connect`, waiting out a chain that is restarting (`while_chain_away`)."""
    return while_chain_away(lambda: connect(settings), timeout_s=timeout_s, on_wait=on_wait)


@dataclass
class ScenarioRun:
    settings: Settings
    client: ChainClient
    deployment: Deployment
    scenario: Scenario
    speed: float
    commander: Commander
    feed: ServiceFeed | None = None
    tracks: list[FaultTrack] = field(default_factory=list)
    byzantine: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    wrongful: list[dict[str, Any]] = field(default_factory=list)
    wrongful_quarantines: list[dict[str, Any]] = field(default_factory=list)
    pacemaker: Pacemaker | None = None  # None: the city stays at `speed` throughout
    wire: list[dict[str, Any]] = field(default_factory=list)  # detections on the wire recorded during the run
    watched: dict[str, int] = field(default_factory=dict)  # sector → its gateway's port (`qeaims up --wire-watch`)

    def __post_init__(self) -> None:
        self.stamps = BlockStamps(self.client.rpc)
        self.clocks = self.feed.clocks if self.feed is not None else TwinClocks(self.speed)
        if self.pacemaker is None:
            self.pacemaker = Pacemaker(send=lambda _payload: None, speed=self.speed, enabled=False)
        self.pace: Pacemaker = self.pacemaker
        self.clocks.paced_by(self.pace.field_between)
        self._head: int = 0
        self._acks: list[tuple[Step, str, float]] = []  # injections sent, awaiting the twin's answer
        self._chain_away_since: float | None = None  # wall time the chain stopped answering, while it does
        base = self.settings.home / "scenarios" / self.deployment.deployment_id
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.index = Indexer(base / "index.sqlite", self.client.rpc, self.deployment, contract_abis(),
                             max_logs_range=self.settings.max_logs_range)
        for step in self.scenario.steps:
            if step.control.op not in ("inject-fault", "inject-attack"):
                continue
            asset = step.control.target.split("/")[0] if step.control.op == "inject-attack" else step.control.target
            node = anchor_node(step.sector, asset)
            self.tracks.append(FaultTrack(step, None if step.control.op == "inject-attack" else node, node or asset))

    def close(self) -> None:
        self.stamps.close()
        self.index.close()

    def _sync(self) -> None:
        """Sync the index; every block it holds is stamped by then (a poll here stamps any the 10 Hz
        poll has not reached yet)."""
        self.index.sync()
        self.stamps.poll()
        head = int(self.index.db.execute("SELECT COALESCE(MAX(block), 0) FROM logs").fetchone()[0])
        self._head = max(self._head, head)

    def _when(self, block: int) -> float:
        """Wall time the block was first seen (`BlockStamps`); now, for one mined before the run."""
        stamped = self.stamps.when(block)
        return stamped if stamped is not None else time.time()

    # --- playing ----------------------------------------------------------------------------------

    def play(self, on_tick: Callable[[ScenarioRun], None] | None = None, *, settle_timeout_s: float | None = None) -> None:
        """Inject every step when the city's field clock reaches its time, then watch until the
        scenario's field duration is over or `settle_timeout_s` wall seconds have passed since the
        last injection (and no real-time window is open), or all is healed. With a `Pacemaker` the
        city runs at real time around each fault (`qeaims.scenarios.pacing`); it is back at its
        speed however the play ends."""
        self._acks.clear()
        while_chain_away(self.index.sync)  # a chain that went away while the scenario started
        self._head = int(self.index.db.execute("SELECT COALESCE(MAX(block), 0) FROM logs").fetchone()[0])
        while_chain_away(self.stamps.start)  # its first poll, too (crash campaign run 19, session 40)
        self.started = time.time()
        self.pace.start(self.started)
        if self.feed is not None:
            self.feed.begin()
        self._from_block = self._head + 1
        pending: list[Step | Any] = sorted([*self.scenario.steps, *self.scenario.byzantine], key=lambda s: s.at_s)
        last_fired = self.started
        try:
            while True:
                now = time.time()
                progress = self.pace.field_between(self.started, now)  # the scenario's clock, field s
                while pending and pending[0].at_s <= progress:
                    self._fire(pending.pop(0))
                    last_fired = now
                self._observe_or_wait()
                self.pace.hold(*real_time_wanted(self.tracks, pending[0].at_s - progress if pending else None,
                                                 self._field_since_onset))
                if on_tick is not None:
                    on_tick(self)
                # a real-time window is never cut short: it closes when its fault is settled or capped,
                # and a timeout in wall seconds was set for the city's speed, not for real time
                over = (progress >= self.scenario.duration_s or (
                    settle_timeout_s is not None and not pending and now - last_fired >= settle_timeout_s)) \
                    and not self.pace.slowed(now)
                if not pending and not self._acks and (over or self._all_healed()):
                    break
                time.sleep(0.5)
            self._observe()
        finally:
            self.pace.stop()
            if self.feed is not None:
                self.feed.freeze()

    def _observe_or_wait(self) -> None:
        """`_observe`, waiting out a chain that does not answer for a while (restarting, replaying its
        journal) as the city's own processes do: the play goes on with what it saw and the next tick
        catches up from the blocks it missed (each stamped when first seen). A chain that never comes back
        ends the play at its own timeout, with the error, at the final observation."""
        try:
            self._observe()
        except ChainNotRunning as exc:
            if self._chain_away_since is None:
                self._chain_away_since = time.time()
                log_line("qeaims.scenario", "scenario-chain-unreachable", error=str(exc)[:200])
            return
        if self._chain_away_since is not None:
            log_line("qeaims.scenario", "scenario-chain-back", away_s=round(time.time() - self._chain_away_since, 2))
            self._chain_away_since = None

    def _field_since_onset(self, track: FaultTrack) -> float:
        """Field seconds the pace schedule let pass since the track's injection was sent."""
        now = time.time()
        return self.pace.field_between(track.onset if track.onset is not None else now, now)

    def _collect_acks(self) -> None:
        waiting = []
        for step, what, deadline in self._acks:
            ack = self.commander.take_ack(what)
            if ack is None and time.time() < deadline:
                waiting.append((step, what, deadline))
                continue
            error = "no acknowledgement from the twin in time" if ack is None else ("" if ack.ok else ack.error)
            for track in self.tracks:
                if track.step is step:
                    track.error = error
                    if ack is not None and ack.ok:
                        track.onset_field = _field_seconds(ack.at)
        self._acks = waiting

    def _fire(self, step: Any) -> None:
        if isinstance(step, Step):
            try:
                self._sync()
            except ChainNotRunning:
                pass  # the onset block is the last head seen; the twins take controls over the broker
            what = self.commander.post_control(step.sector, step.control)
            # a twin applies controls between its report periods, and a busy one answers late: two
            # periods of its clock in wall time, plus three minutes
            period_wall = 2.0 * REPORT_PERIOD_S[step.sector] / self.pace.pace_at(time.time())
            self._acks.append((step, what, time.time() + 180.0 + period_wall))
            for track in self.tracks:
                if track.step is step:
                    track.onset, track.onset_block = time.time(), self._head
            return
        identity = load_keystore(self.settings.keystore_dir / "oracles" / f"{step.oracle}.json",
                                 self.settings.passphrase)
        proposal = QuorumClient(self.client).propose(identity, Action.ISOLATE, to_bytes32(step.node),
                                                     to_bytes32("byzantine: no fault there"))
        self.byzantine.append({"oracle": step.oracle, "address": identity.address, "node": step.node,
                               "proposal": proposal})

    def _all_healed(self) -> bool:
        faults = [t for t in self.tracks if not t.is_attack and t.node is not None and not t.error]
        attacks_seen = all(t.detected is not None for t in self.tracks if t.is_attack)
        return bool(faults) and attacks_seen and all(t.reintegrated is not None for t in faults)

    # --- watching the chain -------------------------------------------------------------------------

    def _observe(self) -> None:
        self._sync()
        self._collect_acks()
        db = self.index.db
        rows = db.execute(
            f"SELECT payload, block, kind FROM events WHERE block >= ? AND kind IN ({','.join('?' * len(VERDICTS))}) "
            "ORDER BY block, log_index", (self._from_block, *VERDICTS)).fetchall()
        parsed = [(json.loads(bytes(p)), int(b), int(k)) for p, b, k in rows]  # parsed once for every track
        # a detection on the wire (`oracles.wire`) is about traffic, not about a fault's asset: it is counted
        # apart, and a scenario without an attack on the wire counts each as a false positive
        verdicts = [v for v in parsed if "wire" not in v[0]]
        self.wire = [_wire_detection(body, block) for body, block, _ in parsed if "wire" in body]
        exec_rows = db.execute(
            "SELECT args, block FROM logs WHERE contract = 'IsolationQuorum' AND event = 'ProposalExecuted' "
            "AND block >= ? ORDER BY block, log_index", (self._from_block,)).fetchall()
        executed = [json.loads(a) for a, _ in exec_rows]
        exec_block = {int(json.loads(a)["proposalId"]): int(b) for a, b in exec_rows}
        steps = db.execute(
            f"SELECT kind, payload, block FROM events WHERE block >= ? AND kind IN "
            f"({','.join('?' * len(CONTROLLER_STEPS))}) ORDER BY block, log_index",
            (self._from_block, *CONTROLLER_STEPS.values())).fetchall()
        names: dict[int, str] = {}
        for name, kind in CONTROLLER_STEPS.items():
            names.setdefault(kind, name)  # a kind's first step name (the payload's ``step`` decides)
        quarantines = [(json.loads(bytes(p)), int(b)) for p, b in db.execute(
            "SELECT payload, block FROM events WHERE block >= ? AND kind = ? ORDER BY block, log_index",
            (self._from_block, QUARANTINE)).fetchall()]
        for track in self.tracks:
            if track.onset is None:
                continue
            if track.detected is None:
                # the first verdict about its node; failing that, the first in its sector after the onset
                # (detected, but blamed on another asset: that shows as a wrongful isolation, if any)
                if track.onset_field is None:
                    continue  # the twin has not said when it applied the fault: nothing can be its story yet
                after = [(body, self._when(b)) for body, b, _ in verdicts if self._after_onset(track, b)]
                mine = [(ts, body) for body, ts in after if body.get("sector") == track.step.sector.value]
                exact = [(ts, body) for ts, body in mine if body.get("subject") == track.subject]
                found = exact or mine
                if found:
                    track.detected = found[0][0]
                    track.sensed_field = _field_seconds(found[0][1].get("observed_at"))
            if track.confirmed is None and track.onset_field is not None:
                # detection is the first word about it (an alert may be one system's, `Violation.alert`);
                # confirmation the first verdict a quorum acts on, about the same subject
                track.confirmed = first_decided(
                    [(body, self._when(b), k) for body, b, k in verdicts if self._after_onset(track, b)], track.subject)
            if track.is_attack:
                for body, block in quarantines:
                    if body.get("sensor") == track.step.control.target and self._after_onset(track, block):
                        attr = "quarantined" if body.get("state") == "quarantined" else "lifted"
                        if getattr(track, attr) is None:
                            setattr(track, attr, self._when(block))
            if track.node is not None and track.proposal is None:
                for ex in executed:
                    target = from_bytes32(bytes.fromhex(str(ex["target"])[2:]))
                    pid = int(ex["proposalId"])
                    if int(ex["action"]) == Action.ISOLATE and target == track.node and \
                            self._after_onset(track, exec_block[pid]):
                        track.proposal, track.isolated = pid, self._when(exec_block[pid])
                        break
            if track.proposal is not None:
                for kind, payload, block in steps:
                    body = json.loads(bytes(payload))
                    if int(body.get("proposal", -1)) != track.proposal:
                        continue
                    ts = self._when(block)
                    for attr in track_attrs(names[int(kind)], body):
                        if getattr(track, attr) is None:
                            setattr(track, attr, float(ts))
        attacked = {t.step.control.target for t in self.tracks if t.is_attack}
        self.wrongful_quarantines = [{"sensor": body.get("sensor"), "node": body.get("node")}
                                     for body, _ in quarantines if body.get("state") == "quarantined"
                                     and body.get("sensor") not in attacked]
        isolations = [(int(ex["proposalId"]), from_bytes32(bytes.fromhex(str(ex["target"])[2:])),
                       exec_block[int(ex["proposalId"])]) for ex in executed if int(ex["action"]) == Action.ISOLATE]
        self.wrongful = wrongful_isolations(isolations, self.tracks, self._after_onset)

    def _after_onset(self, track: FaultTrack, block: int) -> bool:
        """Was `block` mined after the twin applied the track's fault (in field time, on its twin's clock)?

        The injection is sent at `onset_block` and applied at the twin's next step, up to a report
        period later: a verdict or an isolation in between is not the fault's, and counting it would
        report a detection 0 s after onset (or a node voted out before its fault as rightful).
        """
        if block <= track.onset_block:
            return False
        if track.onset_field is None:
            return False
        field = self.clocks.field_at(track.step.sector.value, self._when(block))
        return field is not None and field >= track.onset_field


def _wire_detection(body: dict[str, Any], block: int) -> dict[str, Any]:
    """What the report keeps of an oracle's wire detection (`oracles.wire.intrusion_payload`)."""
    wire = body["wire"] if isinstance(body["wire"], dict) else {}
    return {"sector": body.get("sector"), "device": body.get("subject"), "block": block,
            "class": wire.get("class"), "source": wire.get("source")}


def real_time_wanted(tracks: list[FaultTrack], next_due_s: float | None,
                     since_onset: Callable[[FaultTrack], float]) -> tuple[bool, str]:
    """Should the city run at real time now, and why (`qeaims.scenarios.pacing`): the next injection
    is due within `LEAD_S` field seconds (`next_due_s`), or an injected fault is not `settled` and
    its onset is less than `WINDOW_CAP_S` field seconds ago (`since_onset`)."""
    if next_due_s is not None and next_due_s <= LEAD_S:
        return True, f"an injection is due in {max(0.0, next_due_s):.0f} field s"
    for t in tracks:
        if t.onset is not None and not settled(t) and since_onset(t) < WINDOW_CAP_S:
            return True, f"{t.step.label} is not settled yet"
    return False, ""


def settled(track: FaultTrack) -> bool:
    """Has the fault come as far as the report's KPIs read (`Pacemaker`'s windows close on it)?

    An isolable fault once service is restored around it (or it is already back); an attack once its
    sensor is quarantined or its node isolated; a fault with nothing to isolate once it is confirmed;
    any step that failed to inject at once.
    """
    if track.error:
        return True
    if track.is_attack:
        return track.quarantined is not None or track.isolated is not None
    if track.node is None:
        return track.confirmed is not None
    return track.restored is not None or track.reintegrated is not None


def _field_seconds(stamp: str) -> float | None:
    """A twin's ISO-8601 clock reading as POSIX seconds (None if it sent none or garbage)."""
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except (TypeError, ValueError):
        return None


def wrongful_isolations(isolations: list[tuple[int, str, int]], tracks: list[FaultTrack],
                        after_onset: Callable[[FaultTrack, int], bool] | None = None) -> list[dict[str, Any]]:
    """The executed isolations (proposal, node, block) that no injected fault justifies.

    Rightful only in a block after a fault on that very node began: the same node voted out before
    its fault was injected was isolated for nothing (and its real fault then went unseen, since an
    isolated node gets no votes), which a check on the node's name alone counted as a success.
    """
    def after(t: FaultTrack, block: int) -> bool:
        return after_onset(t, block) if after_onset is not None else t.onset is not None and block > t.onset_block

    return [{"proposal": pid, "node": node} for pid, node, block in isolations
            if not any(t.node == node and after(t, block) for t in tracks)]
