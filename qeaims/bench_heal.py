"""`qeaims bench heal`: fault onset → quorum isolation on-chain → service restored, over N injected faults.

Everything runs for real, in one process, on a private Anvil (temporary data directory, free port,
the development consortium deployed) and one embedded MQTT broker:

- the sector's **twin** steps in its own thread, publishing every sensor each report period at
  `speed` simulated seconds per wall second, and takes commands only for decisions on-chain
  (`sectors.remote.chain_decision_check`); its model is trained once at start on that twin's own
  normal operation (`oracles.training.train_sector`);
- **4 oracles** (`oracles.node.OracleNode`, each with its own MQTT subscriber, store, outbox and
  chain connection) judge the readings, record fault verdicts and vote the isolation of the
  verdict's node; 3 of 4 votes execute it;
- the **controller** (`controller.node.Controller`, FLISR locating from SCADA through a
  `FieldView`) acts on the executed isolation and records each step;
- a **watcher** syncs an index of the chain's logs every `watch_interval_s` and stamps each new log
  with the wall time it first saw it: every figure is read from the chain, none from the components.

Each run: wait until the twin is healthy (the node active, no fault episode open in any oracle),
inject one fault between two report periods (in the twin's own thread, so the onset is the moment
the fault exists in the field; the next report is up to one period later, as for a real RTU), then
time, from that onset:

- ``detection``: the first fault verdict on the faulted asset's node recorded on-chain;
- ``isolation``: the quorum's ``ProposalExecuted`` (isolate) for that node;
- ``restore``: the controller's ``isolation-applied`` step on-chain, i.e. the isolate and restore
  commands acknowledged by the devices (electricity: the faulted section open, the healthy dead
  sections picked up through ties, within voltage and loading limits).

Then the cycle is let run to its end so the next run starts healthy: the crew's repair (crew time
is not measured: it is compressed by `crew_speed`), the oracles' reintegration vote on fresh
readings, the controller's fail-back. Electricity has one registered feeder on the twin, and the
quorum's cap allows one isolated node per sector, so faults cannot overlap. Each run faults another
line (`FAULTS`). A run counts as *missed* if no isolation executes within `run_timeout_s`; an
isolation of any other node (or one with no fault injected) is *wrongful*; a plan on a line other
than the faulted one is *mislocated*.

What dominates the latency, by design of the city rather than the bench: the report period (a row
per period; the calibrated detector wants two faulty rows of three, so detection is 1–2 periods
after onset at `speed`), then three oracle transactions in sequence per oracle (verdict, vote) and
the third vote, then, for restore, the controller's planning (a power-flow-checked FLISR search)
and one device round-trip per command (a twin applies commands between report periods). The
settings that shape those figures (speed, polling intervals, batch sizes) are in the result.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.deploy import deploy_dev_consortium, dev_controller, dev_oracle
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.node import start_anvil, stop_anvil
from chain.quorum import Action, QuorumClient
from controller.commander import Commander, CommandTimeout
from controller.node import STEP_KINDS, Controller
from controller.planning import TwinPlanner
from controller.scada import FieldView
from keys.ids import from_bytes32, to_bytes32
from oracles.ingest.mqtt import EmbeddedBroker, MqttSubscriber
from oracles.ingest.sink import ReadingSink
from oracles.node import NodeOptions, OracleNode
from oracles.training import train_sector
from qeaims.config import Settings, load_settings
from qeaims.errors import ChainError, ConfigError, QeaimsError
from qeaims.kinds import kind_by_name
from qeaims.messages import FaultKind, Reading, Sector
from sectors.anchors import anchor_node
from sectors.publish import TwinPublisher
from sectors.remote import SimControl, chain_decision_check
from sectors.runner import REPORT_PERIOD_S, open_twin

__all__ = ["FAULTS", "HealBenchResult", "HealOptions", "HealRun", "result_dict", "run_heal_bench"]

FAULTS: dict[Sector, tuple[FaultKind, tuple[str, ...]]] = {
    # sections across the IEEE 33-bus feeder: main trunk, laterals, near and far from the substation
    Sector.ELECTRICITY: (FaultKind.LINE_FAULT, ("line-7", "line-20", "line-26", "line-12", "line-29", "line-9",
                                                "line-23", "line-15", "line-4", "line-31")),
}
FAULT_KIND = kind_by_name("fault")
Progress = Callable[[int, int, str], None]  # (runs done, runs, what is happening)


@dataclass(frozen=True)
class HealOptions:
    runs: int = 10
    sector: Sector = Sector.ELECTRICITY
    speed: float = 300.0  # twin seconds per wall second: electricity reports every 60 s → 0.2 s
    oracles: int = 4
    crew_speed: float = 9000.0  # a 2.5 h electricity crew job takes 1 s of wall time (not measured)
    oracle_idle_s: float = 0.05  # pause between passes of each oracle's loop (`qeaims oracle`: 0.2)
    controller_idle_s: float = 0.1  # pause between controller passes (`qeaims controller`: 0.5)
    watch_interval_s: float = 0.05
    batch_size: int = 4096  # readings per anchored Merkle root
    max_age_s: float = 2.0
    peer_interval_s: float = 1.0  # also how often the oracles check nodes under repair for reintegration
    run_timeout_s: float = 60.0
    train_rows: int | None = None  # None: the sector's training plan (`oracles.training.PLANS`)
    seed: int = 0


@dataclass(frozen=True)
class HealRun:
    asset: str
    node: str
    detection_s: float | None = None
    isolation_s: float | None = None
    restore_s: float | None = None
    cycle_s: float | None = None  # onset → reintegrated (repair compressed: not a figure to quote)
    proposal: int | None = None
    located: str = ""  # the asset the controller's plan worked around
    acks_ok: bool = False


@dataclass(frozen=True)
class HealBenchResult:
    isolation_p50_s: float
    isolation_p95_s: float
    restore_p50_s: float
    restore_p95_s: float
    detection_p50_s: float
    detection_p95_s: float
    injected: int
    detected: int
    isolated: int
    restored: int
    missed: int
    wrongful_isolations: int
    mislocated: int
    isolated_on_chain: list[int]  # executed isolation proposal ids, one per isolated run
    sector: str
    speed: float
    report_period_s: float  # wall seconds between two reports of the twin
    oracles: int
    settings: dict[str, float | int | None]
    training_s: float
    setup_s: float
    cores: int
    load_average_1m: float
    runs: list[HealRun] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ChainWatch:
    """Index the chain's logs as they come and stamp each with the wall time it was first seen."""

    def __init__(self, client: ChainClient, deployment: Deployment, path: Path, interval_s: float) -> None:
        self.index = Indexer(path, client.rpc, deployment, contract_abis())
        self.interval_s = interval_s
        self.quorum: list[tuple[float, str, dict[str, Any]]] = []  # IsolationQuorum logs
        self.events: list[tuple[float, str, int, dict[str, Any]]] = []  # (seen, oracle, kind, payload)
        self._cond = threading.Condition()
        self._last = self.index.last_block
        self.failure: BaseException | None = None

    def poll(self) -> None:
        if int(self.index.rpc.call("eth_blockNumber"), 16) <= self._last:
            return  # nothing new: one cheap call per poll
        self.index.sync()
        seen, db = time.monotonic(), self.index.db
        logs = db.execute("SELECT event, args FROM logs WHERE contract = 'IsolationQuorum' AND block > ? "
                          "ORDER BY block, log_index", (self._last,)).fetchall()
        events = db.execute("SELECT oracle, kind, payload FROM events WHERE block > ? ORDER BY block, log_index",
                            (self._last,)).fetchall()
        self._last = self.index.last_block
        with self._cond:
            self.quorum += [(seen, str(e), json.loads(a)) for e, a in logs]
            self.events += [(seen, str(o), int(k), _json(bytes(p))) for o, k, p in events]
            self._cond.notify_all()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.interval_s):
                try:
                    self.poll()
                except ChainError:
                    continue
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            self.failure = exc
            with self._cond:
                self._cond.notify_all()

    def executed(self, since: float, action: Action) -> list[tuple[float, int, str]]:
        """(seen, proposal, node) of every proposal with `action` executed after `since`."""
        with self._cond:
            return [(s, int(a["proposalId"]), from_bytes32(bytes.fromhex(str(a["target"])[2:])))
                    for s, e, a in self.quorum if s >= since and e == "ProposalExecuted"
                    and int(a["action"]) == int(action)]

    def payload(self, kind: int, proposal: int) -> dict[str, Any]:
        """The payload of the first event of `kind` about `proposal` (a controller step), or {}."""
        with self._cond:
            return next((p for _, _, k, p in self.events if k == kind and p.get("proposal") == proposal), {})

    def first_event(self, since: float, match: Callable[[str, int, dict[str, Any]], bool]) -> float | None:
        with self._cond:
            return next((s for s, o, k, p in self.events if s >= since and match(o, k, p)), None)

    def wait(self, what: Callable[[], Any], timeout_s: float) -> Any:
        """The first true value of `what()` (re-checked on every new log), or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self.failure is not None:
                    raise QeaimsError(f"the chain watcher stopped: {self.failure}") from self.failure
                found = what()
                if found or time.monotonic() >= deadline:
                    return found or None
                self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))


def _json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _broker_process(port: int, ready: Any, stop: Any) -> None:
    """The embedded MQTT broker in a process of its own: it forwards every reading five times."""
    with EmbeddedBroker(port=port):
        ready.set()
        stop.wait()


@contextlib.contextmanager
def _broker(port: int) -> Iterator[None]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    process = ctx.Process(target=_broker_process, args=(port, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(60):
            raise QeaimsError("the benchmark's MQTT broker did not start")
        yield
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_heal_bench(options: HealOptions, progress: Progress | None = None) -> HealBenchResult:
    if options.sector not in FAULTS:
        raise ConfigError(f"bench heal runs on {', '.join(s.value for s in FAULTS)}, not {options.sector.value}")
    say = progress or (lambda _d, _n, _w: None)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qeaims-bench-heal-") as home:
        settings = load_settings(home=Path(home), rpc_port=_free_port(), scrypt_n=1024)
        say(0, options.runs, "starting the chain and deploying the consortium")
        start_anvil(settings)
        try:
            deploy_dev_consortium(settings)
            return _bench(settings, options, say, began)
        finally:
            stop_anvil(settings)


@contextlib.contextmanager
def _threads(stop: threading.Event, *targets: Callable[[], None]) -> Iterator[list[BaseException]]:
    """Run `targets` in daemon threads until the block ends; yields the list their errors land in."""
    errors: list[BaseException] = []

    def guard(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - surfaced by the bench's main thread
                errors.append(exc)
        return body

    threads = [threading.Thread(target=guard(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    try:
        yield errors
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)


def _bench(settings: Settings, options: HealOptions, say: Progress, began: float) -> HealBenchResult:
    sector = options.sector
    say(0, options.runs, f"training the {sector.value} model on the twin's normal operation")
    trained_at = time.monotonic()
    runner = open_twin(sector, seed=options.seed)
    model = train_sector(sector, runner=runner, rows=options.train_rows, seed=options.seed)
    training_s = time.monotonic() - trained_at
    port = _free_port()
    node_options = NodeOptions(batch_size=options.batch_size, max_age_s=options.max_age_s,
                               peer_interval_s=options.peer_interval_s)
    stop = threading.Event()
    injections: list[tuple[FaultKind, str, threading.Event, list[float]]] = []

    def inject_between_steps(_readings: list[Reading]) -> None:  # the twin's own thread, between two periods
        while injections:
            kind, asset, done, onset = injections.pop()
            runner.twin.inject_fault(kind, asset)
            onset.append(time.monotonic())
            done.set()

    with contextlib.ExitStack() as stack:
        stack.callback(runner.close)
        stack.enter_context(_broker(port))
        client, deployment = connect(settings)
        host = stack.enter_context(TwinPublisher(runner, port=port, speed=options.speed,
                                                 decisions=chain_decision_check(connect(settings)[0])))
        commander = stack.enter_context(Commander(port=port))
        field_view = stack.enter_context(FieldView(port=port))
        nodes: list[OracleNode] = []
        for index in range(1, options.oracles + 1):
            sink = ReadingSink()
            oracle_client, _ = connect(settings)
            node = OracleNode(settings=settings, client=oracle_client, deployment=deployment,
                              identity=dev_oracle(settings, sector.value, index), model=model, sink=sink,
                              options=node_options)
            stack.callback(node.close)
            nodes.append(node)
            subscriber = MqttSubscriber(sink, port=port, sectors=[sector], client_id=f"bench-oracle-{index}")
            subscriber.start(timeout_s=30.0)
            stack.callback(subscriber.stop)
        controller = Controller(settings=settings, client=connect(settings)[0], deployment=deployment,
                                identity=dev_controller(settings), commander=commander,
                                planner=TwinPlanner(field_view), speed=options.crew_speed)
        stack.callback(controller.close)
        watch = ChainWatch(client, deployment, settings.home / "bench-index.sqlite", options.watch_interval_s)
        stack.callback(watch.index.close)

        def control_loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(ChainError, CommandTimeout):  # retried on the next pass
                    controller.run_once()
                stop.wait(options.controller_idle_s)

        loops: list[Callable[[], None]] = [partial(host.run, stop, on_step=inject_between_steps), partial(watch.run, stop), control_loop]
        loops += [partial(n.run, stop, idle_s=options.oracle_idle_s) for n in nodes]
        errors = stack.enter_context(_threads(stop, *loops))
        setup_s = time.monotonic() - began
        kind, assets = FAULTS[sector]
        quorum = QuorumClient(client)
        runs: list[HealRun] = []
        for i in range(options.runs):
            asset = assets[i % len(assets)]
            node_id = anchor_node(sector, asset) or asset
            say(i, options.runs, f"run {i + 1}: waiting for a healthy {node_id}")
            _wait_healthy(quorum, nodes, node_id, errors, options.run_timeout_s)
            done, onset = threading.Event(), list[float]()
            injections.append((kind, asset, done, onset))
            if not done.wait(30):
                raise QeaimsError("the twin stopped stepping: the fault was never injected")
            say(i, options.runs, f"run {i + 1}: {kind.value} on {asset}")
            runs.append(_time_run(watch, commander, sector, asset, node_id, onset[0], options, errors))
        say(options.runs, options.runs, "done")
        if errors:
            raise QeaimsError(f"a bench component failed: {errors[0]}") from errors[0]
        # every executed isolation that is not a run's own: another node, or one with no fault injected
        ours = {r.proposal for r in runs}
        wrongful = sum(1 for _, pid, _ in watch.executed(0.0, Action.ISOLATE) if pid not in ours)
    return _result(runs, wrongful, options, training_s, setup_s)


def _wait_healthy(quorum: QuorumClient, nodes: list[OracleNode], node: str, errors: list[BaseException],
                  timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if errors:
            raise QeaimsError(f"a bench component failed: {errors[0]}") from errors[0]
        with contextlib.suppress(RuntimeError):  # an oracle thread changed its episodes while we looked
            if quorum.node_status(to_bytes32(node)) == "active" and not any(
                    key.startswith(f"{node}|fault") for n in nodes for key in list(n.stream.open_episodes)):
                return
        if time.monotonic() > deadline:
            raise QeaimsError(f"{node} did not come back healthy within {timeout_s:g} s")
        time.sleep(0.05)


def _time_run(watch: ChainWatch, commander: Commander, sector: Sector, asset: str, node: str, t0: float,
              options: HealOptions, errors: list[BaseException]) -> HealRun:
    timeout = options.run_timeout_s
    isolated = watch.wait(lambda: [x for x in watch.executed(t0, Action.ISOLATE) if x[2] == node], timeout)
    if isolated is None:  # missed: clear the fault ourselves so the next run starts healthy
        with contextlib.suppress(CommandTimeout):
            commander.control(sector, SimControl(op="clear-fault", target=asset))
        return HealRun(asset, node)
    seen, proposal, _ = isolated[0]
    detected = watch.first_event(t0, lambda _o, k, p: k == FAULT_KIND and p.get("subject") == node)
    applied_kind, reintegrated_kind, plan_kind = STEP_KINDS["applied"], STEP_KINDS["reintegrated"], STEP_KINDS["plan"]

    def step(kind: int) -> Callable[[str, int, dict[str, Any]], bool]:
        return lambda _o, k, p: k == kind and int(p.get("proposal", -1)) == proposal

    applied = watch.wait(lambda: watch.first_event(t0, step(applied_kind)), timeout)
    reintegrated = watch.wait(lambda: watch.first_event(t0, step(reintegrated_kind)), timeout)
    plan, acks = watch.payload(plan_kind, proposal), watch.payload(applied_kind, proposal).get("acks", [])
    return HealRun(asset, node, detection_s=None if detected is None else detected - t0, isolation_s=seen - t0,
                   restore_s=None if applied is None else applied - t0,
                   cycle_s=None if reintegrated is None else reintegrated - t0, proposal=proposal,
                   located=str(plan.get("asset", "")), acks_ok=bool(acks) and all(a.get("ok") for a in acks))


def _result(runs: list[HealRun], wrongful: int, options: HealOptions, training_s: float,
            setup_s: float) -> HealBenchResult:
    isolation = [r.isolation_s for r in runs if r.isolation_s is not None]
    restore = [r.restore_s for r in runs if r.restore_s is not None and r.acks_ok]
    detection = [r.detection_s for r in runs if r.detection_s is not None]
    return HealBenchResult(
        isolation_p50_s=percentile(isolation, 0.50), isolation_p95_s=percentile(isolation, 0.95),
        restore_p50_s=percentile(restore, 0.50), restore_p95_s=percentile(restore, 0.95),
        detection_p50_s=percentile(detection, 0.50), detection_p95_s=percentile(detection, 0.95),
        injected=len(runs), detected=len(detection), isolated=len(isolation), restored=len(restore),
        missed=sum(1 for r in runs if r.proposal is None), wrongful_isolations=wrongful,
        mislocated=sum(1 for r in runs if r.proposal is not None and r.located != r.asset),
        isolated_on_chain=[r.proposal for r in runs if r.proposal is not None],
        sector=options.sector.value, speed=options.speed,
        report_period_s=REPORT_PERIOD_S[options.sector] / options.speed, oracles=options.oracles,
        settings={"crew_speed": options.crew_speed, "oracle_idle_s": options.oracle_idle_s,
                  "controller_idle_s": options.controller_idle_s, "watch_interval_s": options.watch_interval_s,
                  "batch_size": options.batch_size, "max_age_s": options.max_age_s,
                  "peer_interval_s": options.peer_interval_s, "run_timeout_s": options.run_timeout_s,
                  "train_rows": options.train_rows, "seed": options.seed},
        training_s=training_s, setup_s=setup_s, cores=os.cpu_count() or 1,
        load_average_1m=round(os.getloadavg()[0], 2), runs=runs)


def result_dict(result: HealBenchResult) -> dict[str, Any]:
    return asdict(result)

