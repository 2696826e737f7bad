"""The crash campaign: kill -9 one process per run mid-scenario, restart it, and prove nothing was lost.

Each run plays a sector's default fault scenario (`qeaims scenario run <sector>-fault`) against a
throwaway city (`qeaims.crash_city`) and, at a random moment of it, SIGKILLs one process: the
chain node (Anvil), a sector's oracle host (its four oracles share one process under `qeaims up`),
the controller, a twin, or the broker (the Mosquitto process itself). Every kind is covered once in
every five runs, in an order drawn from the seed.

Who restarts what: the supervisor restarts the components it runs (the broker wrapper exits when
Mosquitto dies, so it too); the chain is not the supervisor's (`qeaims.supervisor`), so the
campaign restarts it as a service manager would (`start_anvil`: the journal replays, the outboxes
resend what the replay lacks).

Recovery time, per kill: from the SIGKILL to the process back (a new pid the supervisor marks
running, or a chain answering again) *and* the pipeline flowing: every oracle of the city has
recorded a new event on chain since (for a killed controller, which records only when it decides,
its ready line: subscribed and connected to the chain).

Every run starts from a healthy city: after its scenario, the run waits (at most `SETTLE_TIMEOUT_S`)
until the twin holds no fault and every node the scenario faulted is back in service on chain. A
fault still active then is cleared by the campaign, as the crew would have, and the run is failed
with the reason: the next scenario must inject into a healthy field, not be refused by the twin
("already has an active outage") and count as a run. A run whose fault was not injected is not valid
and is not counted as passed.

At the end, once every outbox has drained, the ledger is checked (`qeaims.crash_checks`) and
audited (`qeaims audit verify`).
"""

from __future__ import annotations

import json
import random
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.errors import ConfigError
from core.messages import Sector
from qeaims.crash_checks import Ending, LedgerCheck
from qeaims.crash_city import City, Progress, children_of, kill, throwaway_city, wait_for

__all__ = ["KINDS", "CrashOptions", "CrashReport", "KillRecord", "kill_schedule", "run_crash_campaign"]

KINDS = ("chain", "oracle", "controller", "twin", "broker")
RECOVERY_GOAL_S = 10.0
RECOVERY_TIMEOUT_S = 120.0
SCENARIO_TIMEOUT_S = 20.0  # `scenario run --timeout`: how long to wait for each fault's story after the scenario
KILL_WINDOW_S = (1.0, 15.0)  # a kill lands this many seconds into the scenario (~20 s at constant speed)
SCENARIO_CAP_S = 60.0  # a scenario still watching after this long is stopped (and the run says so)
SETTLE_TIMEOUT_S = 90.0
"""After its scenario, how long a run waits for the city to be healthy again (the fault repaired by the
controller's crew, the node reintegrated by the oracles) before the campaign clears the fault itself."""
SCENARIO_FLAGS = ("--constant-speed", "--no-baseline")
"""At constant speed (no real-time window around the fault) the oracles anchor a batch every ~2 wall s, so
"flowing again" is seen within seconds of a recovery instead of waiting out a real-time window of 30 s
report periods; no baseline: the automation-off replay measures KPIs, not crashes, and costs a core."""


@dataclass(frozen=True)
class CrashOptions:
    runs: int
    seed: int
    sectors: tuple[Sector, ...]
    kinds: tuple[str, ...] = KINDS
    keep_home: bool = False

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ConfigError(f"--runs must be at least 1, not {self.runs}")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ConfigError(f"--kinds {','.join(unknown) or '(empty)'}: choose among {', '.join(KINDS)}")


@dataclass
class KillRecord:
    run: int
    kind: str
    victim: str  # component name, or "anvil"
    sector: str
    scenario: str
    at_s: float  # seconds into the scenario
    recovered: bool = False
    recovery_s: float | None = None
    process_back_s: float | None = None
    scenario_ok: bool = False
    scenario_note: str = ""
    faults: dict[str, int] = field(default_factory=dict)
    injected: bool = False  # the twin took the scenario's fault (a refused or unanswered injection: False)
    detected: bool = False
    isolated: bool = False
    restored: bool = False
    healthy_after: bool = False  # no fault left in the twin, the scenario's nodes in service, within the bound
    settle_s: float | None = None  # seconds from the scenario's end to a healthy city
    settle_note: str = ""

    @property
    def valid(self) -> bool:
        """A run counts only if its fault went in: a run that injected nothing tested nothing."""
        return self.injected


@dataclass
class CrashReport:
    runs: int
    seed: int
    sectors: list[str]
    kills: list[KillRecord]
    ledger: LedgerCheck
    outbox_problems: list[str]
    audit: dict[str, Any]
    drained: bool
    home: str = ""

    @property
    def ending(self) -> Ending:
        return Ending(self.outbox_problems, self.ledger, self.audit)

    @property
    def recovery_p50_s(self) -> float | None:
        times = sorted(k.recovery_s for k in self.kills if k.recovery_s is not None)
        return round(statistics.median(times), 2) if times else None

    @property
    def recovery_p95_s(self) -> float | None:
        return _p95(sorted(k.recovery_s for k in self.kills if k.recovery_s is not None))

    @property
    def ok(self) -> bool:
        return self.ending.ok and self.drained and all(k.recovered for k in self.kills)

    def scenarios(self) -> dict[str, int]:
        """How far each run's fault went: injected, detected, isolated, restored; valid runs (a fault was
        injected), passed runs (valid, the scenario ok, the city healthy again after it)."""
        k = self.kills
        return {"runs": len(k), "injected": sum(r.injected for r in k), "detected": sum(r.detected for r in k),
                "isolated": sum(r.isolated for r in k), "restored": sum(r.restored for r in k),
                "healthy_after": sum(r.healthy_after for r in k), "valid": sum(r.valid for r in k),
                "passed": sum(r.valid and r.scenario_ok and r.healthy_after for r in k)}

    def as_json(self) -> dict[str, Any]:
        per_kind: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            mine = [k for k in self.kills if k.kind == kind]
            times = sorted(k.recovery_s for k in mine if k.recovery_s is not None)
            per_kind[kind] = {"kills": len(mine), "recovered": sum(k.recovered for k in mine),
                              "recovery_max_s": times[-1] if times else None,
                              "recovery_p50_s": round(statistics.median(times), 2) if times else None,
                              "recovery_p95_s": _p95(times)}
        return {
            "ok": self.ok, "home": self.home, "runs": self.runs, "seed": self.seed, "sectors": self.sectors,
            "kills_per_kind": per_kind, "recovery_p50_s": self.recovery_p50_s,
            "recovery_p95_s": self.recovery_p95_s, "recovery_goal_s": RECOVERY_GOAL_S, "drained": self.drained,
            **self.ending.as_json(),
            "scenarios": self.scenarios(),
            "kills": [{**asdict(k), "valid": k.valid} for k in self.kills],
        }


def _p95(times: list[float]) -> float | None:
    """The nearest-rank 95th percentile of sorted `times`."""
    return round(times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))], 2) if times else None


def kill_schedule(runs: int, seed: int, kinds: Sequence[str] = KINDS) -> list[str]:
    """Which kind each run kills: every kind once in each block of len(kinds) runs, the order drawn from `seed`."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < runs:
        block = list(kinds)
        rng.shuffle(block)
        out += block
    return out[:runs]


def run_crash_campaign(options: CrashOptions, progress: Progress = lambda _: None) -> CrashReport:
    rng = random.Random(options.seed ^ 0x5EED)
    kills: list[KillRecord] = []
    with throwaway_city(options.sectors, options.keep_home, progress) as city:
        for run, kind in enumerate(kill_schedule(options.runs, options.seed, options.kinds), 1):
            sector = rng.choice(options.sectors)
            record = KillRecord(run, kind, _victim_name(kind, sector), sector.value, f"{sector.value}-fault",
                                round(rng.uniform(*KILL_WINDOW_S), 2))
            progress(f"run {run}/{options.runs}: {record.scenario}, kill -9 {record.victim} at {record.at_s:.1f} s")
            _one_run(city, record)
            kills.append(record)
            progress(f"run {run}/{options.runs}: {record.victim} "
                     + (f"recovered in {record.recovery_s:.1f} s" if record.recovered else "did NOT recover"))
        progress("waiting for every outbox to drain")
        drained = wait_for(city.drained, 120.0, interval_s=1.0)
        ending = city.ending(progress)
    return CrashReport(options.runs, options.seed, [s.value for s in options.sectors], kills, ending.ledger,
                       ending.outbox_problems, ending.audit, drained, str(city.home) if options.keep_home else "")


def _victim_name(kind: str, sector: Sector) -> str:
    return {"chain": "anvil", "oracle": f"oracles-{sector.value}", "controller": "controller",
            "twin": f"twin-{sector.value}", "broker": "broker"}[kind]


def _one_run(city: City, record: KillRecord) -> None:
    sector = Sector(record.sector)
    left = city.active_faults(sector)
    if left:  # the previous run's settling should have cleared it; never play into a faulted field unsaid
        record.settle_note = f"the twin still had {', '.join(left)} faulted before the run: cleared by the campaign"
        for target in left:
            city.clear_fault(sector, target)
    scenario = city.popen("scenario", "run", record.scenario, "--timeout", f"{SCENARIO_TIMEOUT_S:g}",
                          *SCENARIO_FLAGS, "--json")
    started = time.monotonic()
    time.sleep(max(0.0, started + record.at_s - time.monotonic()))
    before = city.status()
    killed_at = _kill(city, record)
    _await_recovery(city, record, before, killed_at)
    try:
        out, err = scenario.communicate(timeout=SCENARIO_CAP_S)
    except subprocess.TimeoutExpired:
        scenario.kill()
        out, err = scenario.communicate()
        err += f"\nthe scenario did not end within {SCENARIO_CAP_S:g} s: stopped"
    nodes = _read_scenario(record, scenario.returncode, out, err)
    # the next run starts from a city that runs whole (a slow restart must not land in the next run's kill)
    wait_for(lambda: _all_running(city), RECOVERY_TIMEOUT_S, interval_s=0.5)
    _settle(city, record, sector, nodes)


def _settle(city: City, record: KillRecord, sector: Sector, nodes: list[str]) -> None:
    """Wait for the city to be healthy again: no fault in the twin, the scenario's nodes in service.
    Past `SETTLE_TIMEOUT_S`, clear what is still faulted (as the crew would) and fail the run, saying why."""
    started = time.monotonic()
    faults: list[str] | None = None

    def _healthy() -> bool:
        nonlocal faults
        faults = city.active_faults(sector)
        return faults == [] and all(city.node_in_service(n) for n in nodes)

    if wait_for(_healthy, SETTLE_TIMEOUT_S, interval_s=2.0):
        record.healthy_after, record.settle_s = True, round(time.monotonic() - started, 2)
        return
    record.scenario_ok = False
    out_of_service = [n for n in nodes if not city.node_in_service(n)]
    if faults is None:
        why = f"the {sector.value} twin did not say whether it still holds a fault"
    elif faults:
        cleared = [t for t in faults if city.clear_fault(sector, t)]
        why = (f"{', '.join(faults)} still faulted in the twin {SETTLE_TIMEOUT_S:g} s after the scenario "
               f"(cleared by the campaign: {', '.join(cleared) or 'none'})")
    else:
        why = "the twin holds no fault"
    if out_of_service:
        why += f"; node(s) {', '.join(out_of_service)} not back in service"
    record.settle_note = "; ".join(x for x in (record.settle_note, f"city not healthy after the run: {why}") if x)


def _kill(city: City, record: KillRecord) -> float:
    if record.kind == "chain":
        pid = city.anvil_pid()
    elif record.kind == "broker":  # Mosquitto itself, not the `qeaims broker` that watches it
        wrapper = city.status().get("broker", {}).get("pid")
        pid = next(iter(children_of(int(wrapper))), None) if wrapper else None
    else:
        pid = city.status().get(record.victim, {}).get("pid")
    if not kill(int(pid) if pid else None, signal.SIGKILL):
        raise ConfigError(f"run {record.run}: no {record.victim} process to kill (the city is not whole)")
    return time.monotonic()


def _await_recovery(city: City, record: KillRecord, before: dict[str, dict[str, Any]], killed_at: float) -> None:
    deadline = killed_at + RECOVERY_TIMEOUT_S
    if record.kind == "chain":
        city.restart_chain()  # at once, as a service manager with Restart=always would
        back = wait_for(city.chain_answers, max(0.0, deadline - time.monotonic()))
    else:
        name = "broker" if record.kind == "broker" else record.victim
        old = before.get(name, {}).get("pid")

        def _back() -> bool:
            now = city.status().get(name, {})
            return bool(now.get("state") == "running" and now.get("pid") and now.get("pid") != old)

        back = wait_for(_back, max(0.0, deadline - time.monotonic()), interval_s=0.1)
    if not back:
        return
    record.process_back_s = round(time.monotonic() - killed_at, 2)
    if record.kind == "controller":  # it records only when it decides: running (its ready line) is recovered
        record.recovered, record.recovery_s = True, record.process_back_s
        return
    baseline = city.ledger_last_seqs()
    oracles = city.oracle_accounts()

    def _flowing() -> bool:
        now = city.ledger_last_seqs()
        return bool(now) and all(now.get(a, 0) > baseline.get(a, 0) for a in oracles)

    if wait_for(_flowing, max(0.0, deadline - time.monotonic()), interval_s=0.2):
        record.recovered, record.recovery_s = True, round(time.monotonic() - killed_at, 2)


def _all_running(city: City) -> bool:
    status = city.status()
    return bool(status) and all(c.get("state") == "running" for c in status.values()) and city.chain_answers()


def _read_scenario(record: KillRecord, code: int | None, out: str, err: str) -> list[str]:
    """Fill the record from the scenario's report; returns the nodes its faults concern."""
    try:
        report = json.loads(out)
    except ValueError:
        tail = (err.strip().splitlines() or ["(no output)"])[-1]
        record.scenario_note = f"scenario exited {code}: {tail}"[:300]
        return []
    faults = report.get("faults", {})
    record.faults = {k: int(v) for k, v in faults.items() if isinstance(v, int)}
    tracks = report.get("tracks", [])
    errors = [t.get("error") for t in tracks if t.get("error")]
    # a track with an error is an injection the twin refused or never answered: nothing went in
    record.injected = bool(tracks) and not errors
    record.detected = record.injected and faults.get("detected", 0) >= len(tracks)
    isolable = [t for t in tracks if not t.get("attack")]
    record.isolated = record.injected and faults.get("isolated", 0) >= len(isolable)
    record.restored = record.injected and faults.get("restored", 0) >= len(isolable)
    record.scenario_ok = (code == 0 and record.injected and not faults.get("wrongful_isolations"))
    record.scenario_note = ("nothing injected: " if errors else "") + "; ".join(str(e) for e in errors)[:300]
    return sorted({str(t["node"]) for t in isolable if t.get("node")})


def summary_rows(report: CrashReport) -> list[tuple[str, ...]]:
    """The table's rows: one per process kind."""
    rows: list[tuple[str, ...]] = []
    per_kind = report.as_json()["kills_per_kind"]
    for kind in KINDS:
        row = per_kind[kind]
        mine = [k for k in report.kills if k.kind == kind]
        rows.append((kind, str(row["kills"]), str(row["recovered"]),
                     "-" if row["recovery_p50_s"] is None else f"{row['recovery_p50_s']:.1f}",
                     "-" if row["recovery_p95_s"] is None else f"{row['recovery_p95_s']:.1f}",
                     "-" if row["recovery_max_s"] is None else f"{row['recovery_max_s']:.1f}",
                     *(str(sum(getattr(k, step) for k in mine))
                       for step in ("injected", "detected", "isolated", "restored", "healthy_after"))))
    return rows


def kill_counts(report: CrashReport) -> Counter[str]:
    return Counter(k.kind for k in report.kills)
