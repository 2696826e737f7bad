"""`qeaims bench heal`: fault onset → quorum isolation on-chain → service restored, over N injected faults.

Everything runs for real on a private Anvil (temporary data directory, free port, the development
consortium deployed) and an embedded MQTT broker in a process of its own (it forwards each reading
six times: four oracles, the controller's SCADA view, and takes it in once):

- the sector's **twin** steps in a thread of the bench's process, publishing every sensor each
  report period at `speed` simulated seconds per wall second, and takes commands only for decisions
  on-chain (`sectors.remote.chain_decision_check`); its model is trained once at start on that
  twin's own normal operation (`oracles.training.train_sector`) and saved for the oracles;
- **4 oracles**, each a process of its own running what `qeaims oracle` runs
  (`oracles.process.run_oracle`: its MQTT subscriber, store, outbox and chain connection), as
  `qeaims up` runs them (`qeaims._heal_oracles`), judge the readings, record fault verdicts and vote
  the isolation of the verdict's node; 3 of 4 votes execute it;
- the **controller** (`controller.node.Controller`, FLISR locating from SCADA through a
  `FieldView`) acts on the executed isolation and records each step;
- a **watcher** syncs an index of the chain's logs every `watch_interval_s` and stamps each new log
  with the wall time it first saw it: every figure is read from the chain, none from the components. The controller, SCADA view and
  watcher are threads of the bench's process.

Each run: wait until the twin is healthy (the node active; every oracle has seen it back, has no
fault episode open on it, is past its settling window after the reintegration and has at most two
report periods unjudged),
inject one fault between two report periods (in the twin's own thread, so the onset is the moment
the fault exists in the field; the next report is up to one period later, as for a real RTU), then
time, from that onset:

- ``detection``: the first fault verdict on the faulted asset's node recorded on-chain;
- ``isolation``: the quorum's ``ProposalExecuted`` (isolate) for that node;
- ``restore``: the controller's ``restored`` step on-chain (an ``isolation-applied`` event after
  its ``applied`` one), i.e. the restore commands acknowledged by the devices after the isolate
  commands were (electricity: the faulted section open, the healthy dead sections picked up through
  ties, within voltage and loading limits).

Then the cycle runs to its end before the next fault: the crew's repair (crew time is not measured:
`crew_speed` compresses it), the oracles' reintegration vote on fresh readings, the controller's
fail-back. Electricity has one registered feeder on the twin, and the quorum's cap allows one
isolated node per sector, so faults cannot overlap; each run faults another line (`FAULTS`). A run
is *missed* if no isolation of its node executes within `run_timeout_s`; an executed isolation that
is no run's own (another node, or none injected) is *wrongful*; a plan around another asset than the
faulted one is *mislocated* (its restore is not counted). When the injected fault outlives its run
(missed, or the crew was sent to the wrong asset), the bench clears it in the twin
(``cleared_by_bench``) so that the next run starts healthy; if the node still does not come back,
the runs stop and ``aborted`` says why, with the figures of the runs done.

What dominates the latency, by design of the city rather than the bench: the report period (a row
per period; the calibrated detector wants two faulty rows of three, so detection is 1–2 periods
after onset at `speed`), then the oracle transactions in sequence per oracle (its verdict, then its
vote) up to the third vote, then, for restore, the controller's planning (a power-flow-checked FLISR search)
and one device round-trip per command (a twin applies commands between report periods). The
settings that shape those figures (speed, polling intervals, batch sizes) are in the result.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from bus.secure import open_links
from chain.connect import connect
from chain.deploy import deploy_dev_consortium, dev_controller
from chain.node import start_anvil, stop_anvil
from chain.quorum import Action, QuorumClient
from controller.commander import Commander, CommandTimeout
from controller.node import STEP_KINDS, Controller
from controller.planning import TwinPlanner
from controller.scada import FieldView
from core.config import Settings, load_settings
from core.errors import ChainError, ConfigError, QeaimsError
from core.kinds import kind_by_name
from core.messages import FaultKind, Reading, Sector
from keys.ids import to_bytes32
from links.plan import CONTROLLER_SAE, twin_sae
from oracles.node import NodeOptions
from oracles.process import OracleProcessOptions
from oracles.training import save_model, train_sector
from qeaims._heal_oracles import OracleProcess, start_oracles
from qeaims._heal_watch import ChainWatch, broker, free_port, percentile, threads
from sectors.anchors import anchor_node
from sectors.publish import TwinPublisher
from sectors.remote import chain_decision_check
from sectors.runner import REPORT_PERIOD_S, TwinRunner, open_twin

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
    links: bool = True  # every link through hybrid channels keyed by a KME, as `qeaims up` runs them


@dataclass(frozen=True)
class HealRun:
    asset: str
    node: str
    detection_s: float | None = None
    isolation_s: float | None = None
    restore_s: float | None = None
    proposal: int | None = None
    located: str = ""  # the asset the controller's plan worked around
    acks_ok: bool = False
    cleared_by_bench: bool = False  # the injected fault outlived the run (missed, or another asset repaired)


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
    aborted: str  # why the runs stopped early ("" when all ran)
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
    links: str = "plaintext"  # "hybrid": every link through a QKD + ML-KEM-768 + X25519 channel


def run_heal_bench(options: HealOptions, progress: Progress | None = None, *,
                   inspect: Callable[[Settings, HealBenchResult], None] | None = None) -> HealBenchResult:
    """Run the benchmark; `inspect` sees the result while its private chain still runs (tests check it)."""
    if options.sector not in FAULTS:
        raise ConfigError(f"bench heal runs on {', '.join(s.value for s in FAULTS)}, not {options.sector.value}")
    say = progress or (lambda _d, _n, _w: None)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qeaims-bench-heal-") as home:
        settings = load_settings(home=Path(home), rpc_port=free_port(), scrypt_n=1024)
        say(0, options.runs, "starting the chain and deploying the consortium")
        start_anvil(settings)
        try:
            deploy_dev_consortium(settings)
            result = _bench(settings, options, say, began)
            if inspect is not None:
                inspect(settings, result)
            return result
        finally:
            stop_anvil(settings)


def _bench(settings: Settings, options: HealOptions, say: Progress, began: float) -> HealBenchResult:
    sector = options.sector
    say(0, options.runs, f"training the {sector.value} model on the twin's normal operation")
    trained_at = time.monotonic()
    runner = open_twin(sector, seed=options.seed)
    model = train_sector(sector, runner=runner, rows=options.train_rows, seed=options.seed)
    model_path = save_model(model, settings.home / "models" / f"{sector.value}.joblib")
    training_s = time.monotonic() - trained_at
    port = free_port()
    oracle_options = OracleProcessOptions(
        mqtt_port=port, model=model_path, idle_s=options.oracle_idle_s,
        node=NodeOptions(batch_size=options.batch_size, max_age_s=options.max_age_s,
                         peer_interval_s=options.peer_interval_s))
    stop = threading.Event()
    field_work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def between_steps(_readings: list[Reading]) -> None:  # the twin's own thread, between two report periods
        while not field_work.empty():
            field_work.get()()

    def in_field(work: Callable[[], object]) -> tuple[float, object]:
        """Do `work` to the twin between two steps: (the wall time it was done, what it returned)."""
        done: queue.SimpleQueue[tuple[float, object]] = queue.SimpleQueue()

        def job() -> None:
            try:
                done.put((time.monotonic(), work()))
            except QeaimsError as exc:  # the twin refused (e.g. an asset with a fault already)
                done.put((time.monotonic(), exc))

        field_work.put(job)
        try:
            at, result = done.get(timeout=30)
        except queue.Empty:
            raise QeaimsError("the twin stopped stepping") from None
        if isinstance(result, QeaimsError):
            raise result
        return at, result

    with contextlib.ExitStack() as stack:
        stack.callback(runner.close)
        stack.enter_context(broker(port))
        if options.links:
            say(0, options.runs, "keying the secure links (KME, QKD pairs)")
            stack.enter_context(_key_service(settings, sector, options.oracles))
        twin_links, controller_links = (open_links(settings.home, twin_sae(sector.value)),
                                        open_links(settings.home, CONTROLLER_SAE))
        for links in (twin_links, controller_links):
            if links is not None:
                stack.callback(links.close)
        client, deployment = connect(settings)
        host = stack.enter_context(TwinPublisher(runner, port=port, speed=options.speed, links=twin_links,
                                                 decisions=chain_decision_check(connect(settings)[0])))
        field_view = stack.enter_context(FieldView(port=port, links=controller_links))
        oracles = start_oracles(settings, sector, options.oracles, oracle_options)
        for oracle in oracles:
            stack.callback(oracle.stop)
        controller = Controller(settings=settings, client=connect(settings)[0], deployment=deployment,
                                identity=dev_controller(settings),
                                commander=stack.enter_context(Commander(port=port, links=controller_links)),
                                planner=TwinPlanner(field_view), speed=options.crew_speed)
        stack.callback(controller.close)
        watch = ChainWatch(client, deployment, settings.home / "bench-index.sqlite", options.watch_interval_s,
                           max_logs_range=settings.max_logs_range)
        stack.callback(watch.index.close)

        def control_loop() -> None:  # as `qeaims controller` does, with a shorter pause between passes
            while not stop.is_set():
                with contextlib.suppress(ChainError, CommandTimeout):  # retried on the next pass
                    controller.run_once()
                stop.wait(options.controller_idle_s)

        loops: list[Callable[[], None]] = [partial(host.run, stop, on_step=between_steps),
                                           partial(watch.run, stop), control_loop]
        loops += [partial(_watch_oracle, oracle, stop) for oracle in oracles]
        errors = stack.enter_context(threads(stop, *loops))
        setup_s = time.monotonic() - began
        kind, assets = FAULTS[sector]
        quorum = QuorumClient(client)
        runs: list[HealRun] = []
        aborted = ""
        for i in range(options.runs):
            asset = assets[i % len(assets)]
            node_id = anchor_node(sector, asset) or asset
            say(i, options.runs, f"run {i + 1}: waiting for a healthy {node_id}")
            aborted = _wait_healthy(quorum, oracles, node_id, errors, options.run_timeout_s)
            if aborted:
                break
            onset, _ = in_field(partial(runner.twin.inject_fault, kind, asset))
            say(i, options.runs, f"run {i + 1}: {kind.value} on {asset}")
            run = _time_run(watch, node_id, asset, onset, options.run_timeout_s)
            # missed, or the crew repaired another asset: the bench clears the fault so the next run starts healthy
            _, cleared = in_field(partial(_clear_if_faulted, runner, asset))
            runs.append(replace(run, cleared_by_bench=bool(cleared)))
        say(len(runs), options.runs, "done")
        if errors:
            raise QeaimsError(f"a bench component failed: {errors[0]}") from errors[0]
        # every executed isolation that is not a run's own: another node, or one with no fault injected
        ours = {r.proposal for r in runs}
        wrongful = sum(1 for _, pid, _ in watch.executed(0.0, Action.ISOLATE) if pid not in ours)
    return _result(runs, wrongful, aborted, options, training_s, setup_s)


@contextlib.contextmanager
def _key_service(settings: Settings, sector: Sector, oracles: int) -> Iterator[None]:
    """The links of one sector's city (gateway to each oracle and to the controller), keyed by a KME
    in this process; the oracles' processes find the plan in the data directory and use it."""
    from links.files import LinkFiles
    from links.kme.server import KmeServer
    from links.pki import DevPki
    from links.plan import city_plan
    from links.site import prepare

    files = LinkFiles.of(settings.home)
    plan = city_plan([sector.value], oracles_per_sector=oracles, operations=False,
                     kme_url=f"https://127.0.0.1:{free_port()}")
    prepare(files, plan)
    port = int(plan.kme_url.rsplit(":", 1)[1])
    with KmeServer(plan, DevPki(files.pki), port=port, state_path=files.kme_state):
        yield


def _clear_if_faulted(runner: TwinRunner, asset: str) -> bool:
    if asset not in runner.twin.faults:
        return False
    runner.twin.clear_fault(asset)
    return True


def _watch_oracle(oracle: OracleProcess, stop: threading.Event) -> None:
    """Raise (into the bench's errors) if an oracle process dies before the bench ends."""
    while not stop.wait(0.5):
        oracle.check()


def _wait_healthy(quorum: QuorumClient, oracles: list[OracleProcess], node: str, errors: list[BaseException],
                  timeout_s: float) -> str:
    """Wait for the steady state a fault is timed from, else say why not: `node` active on-chain, and
    in every oracle no fault episode open on it, its settling window after the last reintegration
    over (a fault inside it is acted on later, by design) and at most two report periods unjudged."""
    deadline = time.monotonic() + timeout_s
    pending = "not looked at yet"
    while not errors:
        pending = _not_steady(quorum, oracles, node)
        if not pending:
            return ""
        if time.monotonic() > deadline:
            return f"{node} did not come back healthy within {timeout_s:g} s ({pending})"
        time.sleep(0.2)
    raise QeaimsError(f"a bench component failed: {errors[0]}") from errors[0]


def _not_steady(quorum: QuorumClient, oracles: list[OracleProcess], node: str) -> str:
    """What still keeps `node` from steady state ("" when nothing does)."""
    status = quorum.node_status(to_bytes32(node))
    if status != "active":
        return f"it is {status} on-chain"
    for oracle in oracles:
        pending = oracle.not_steady(node)
        if pending:
            return f"oracle {oracle.index} {pending}"
    return ""


def _time_run(watch: ChainWatch, node: str, asset: str, t0: float, timeout: float) -> HealRun:
    isolated = watch.wait(lambda: [x for x in watch.executed(t0, Action.ISOLATE) if x[2] == node], timeout)
    if isolated is None:
        return HealRun(asset, node)  # missed
    seen, proposal, _ = isolated[0]
    detected = watch.first_event(t0, lambda _o, k, p: k == FAULT_KIND and p.get("subject") == node)

    def step(name: str) -> Callable[[], float | None]:
        return lambda: watch.first_event(t0, lambda _o, k, p: k == STEP_KINDS[name] and p.get("step") == name
                                         and p.get("proposal") == proposal)

    restored = watch.wait(step("restored"), timeout)
    watch.wait(step("repaired"), timeout)
    plan, acks, restore = (watch.payload(STEP_KINDS[s], proposal, s) for s in ("plan", "applied", "restored"))
    return HealRun(asset, node, detection_s=None if detected is None else detected - t0, isolation_s=seen - t0,
                   restore_s=None if restored is None else restored - t0, proposal=proposal,
                   located=str(plan.get("asset", "")),
                   acks_ok=bool(acks.get("acks")) and all(a.get("ok") for a in acks["acks"] + restore.get("acks", [])))


def _result(runs: list[HealRun], wrongful: int, aborted: str, options: HealOptions, training_s: float,
            setup_s: float) -> HealBenchResult:
    isolation = [r.isolation_s for r in runs if r.isolation_s is not None]
    restore = [r.restore_s for r in runs if r.restore_s is not None and r.acks_ok and r.located == r.asset]
    detection = [r.detection_s for r in runs if r.detection_s is not None]
    return HealBenchResult(
        isolation_p50_s=percentile(isolation, 0.50), isolation_p95_s=percentile(isolation, 0.95),
        restore_p50_s=percentile(restore, 0.50), restore_p95_s=percentile(restore, 0.95),
        detection_p50_s=percentile(detection, 0.50), detection_p95_s=percentile(detection, 0.95),
        injected=len(runs), detected=len(detection), isolated=len(isolation), restored=len(restore),
        missed=sum(1 for r in runs if r.proposal is None), wrongful_isolations=wrongful,
        mislocated=sum(1 for r in runs if r.proposal is not None and r.located != r.asset),
        isolated_on_chain=[r.proposal for r in runs if r.proposal is not None], aborted=aborted,
        sector=options.sector.value, speed=options.speed,
        report_period_s=REPORT_PERIOD_S[options.sector] / options.speed, oracles=options.oracles,
        settings={"crew_speed": options.crew_speed, "oracle_idle_s": options.oracle_idle_s,
                  "controller_idle_s": options.controller_idle_s, "watch_interval_s": options.watch_interval_s,
                  "batch_size": options.batch_size, "max_age_s": options.max_age_s,
                  "peer_interval_s": options.peer_interval_s, "run_timeout_s": options.run_timeout_s,
                  "train_rows": options.train_rows, "seed": options.seed},
        training_s=training_s, setup_s=setup_s, cores=os.cpu_count() or 1,
        load_average_1m=round(os.getloadavg()[0], 2), runs=runs, links="hybrid" if options.links else "plaintext")


def result_dict(result: HealBenchResult) -> dict[str, Any]:
    return asdict(result)

