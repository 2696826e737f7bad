"""Which asset does a fault verdict name? The benchmark behind `qeaims detect attribution`.

A FAULT verdict's asset decides what the oracles vote to isolate (`sectors.anchors.anchor_node`),
so a verdict that names an asset which merely *feels* a fault (the payment switch whose latency
rose when its data centre went down) votes a healthy node out of service. This measures that
against the twins' own fault APIs: per sector a matrix of faults (`DEFAULT_FAULTS`), a model
trained on one seed's normal operation and evaluated on others, and for each run

- the verdicts raised *before* the fault (false alarms: the model has never seen this seed);
- the first verdict after it: rows to detect, its kind, its asset, and whether that asset's
  anchor is the faulted asset's anchor (attribution);
- every FAULT verdict in the watch window whose anchor is another registered node: a wrongful
  isolation vote.

Some runs inject nothing (`FaultCase(None, ...)`): normal operation under conditions a model must
take in its stride — a storm on the sewers, the morning peak on the roads. There every verdict is a
false alarm and every FAULT vote a wrongful one; `SectorFigures.normal_runs` counts them apart
from the fault runs. A fault can also be injected under such conditions (the duty pump failing
40 minutes into a storm, as in the storm-day scenario).

Runs replay what `oracles.stream.SectorStream` does online: rows one report period apart, a
32-row history, the first assessment at the third row. Water and sewage twins are deterministic
(SWMM and EPANET take no seed), so their evaluation seeds repeat one run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ConfigError
from core.messages import AttackKind, Sector, Verdict, VerdictKind
from oracles.training import SectorModel, normal_twin, train_sector
from sectors.anchors import anchor_node
from sectors.plugin import FaultCase, by_sector
from sectors.runner import REPORT_PERIOD_S, parse_sector

__all__ = [
    "DEFAULT_FAULTS",
    "AttributionReport",
    "FaultCase",
    "RunResult",
    "SectorFigures",
    "decisive",
    "evaluate_attribution",
    "run_case",
]

HISTORY = 32  # rows an oracle keeps (SectorStream's default)
WARMUP = 3  # rows before the first assessment (SectorStream's default)
WATCH_S = 600  # field seconds watched after a fault by default: ten minutes of the sector's own rows
Progress = Callable[[str, int, int], None]


DEFAULT_FAULTS: Mapping[Sector, tuple[FaultCase, ...]] = by_sector(lambda p: p.fault_cases)
"""Each sector's evaluation faults (``SectorPlugin.fault_cases``)."""


@dataclass(frozen=True)
class RunResult:
    """One fault on one evaluation seed."""

    sector: str
    fault: str
    seed: int
    expected_asset: str
    expected_anchor: str | None
    false_alarms: tuple[str, ...]  # "row N: kind asset" for each verdict before the fault
    rows_to_detect: int | None  # first verdict's row after the fault (1 = the first row), None: unseen
    kind: str | None  # the decisive verdict's (see `decisive`)
    asset: str | None
    anchor: str | None
    wrongful: tuple[str, ...]  # registered nodes other than the expected one that a FAULT verdict named
    reason: str = ""
    injected: bool = True  # False: a run of normal operation (FaultCase kind None)
    period_s: int = 60  # the sector's report period: one row
    fault_kind: str = ""  # the class (FaultKind or AttackKind value; "" for a run of normal operation)
    attack: bool = False  # a falsified sensor: the right verdict is an intrusion on it
    rows_to_decide: int | None = None  # the decisive verdict's row after the fault
    sensor: str | None = None  # the decisive verdict's first named sensor (an intrusion: the one quarantined)
    expected_sensor: str | None = None  # a falsified sensor's id (``FaultCase.target``): the one to quarantine

    @property
    def detected(self) -> bool:
        return self.rows_to_detect is not None

    @property
    def seconds_to_detect(self) -> int | None:
        """Field seconds from the fault to the end of the row that raised the first verdict."""
        return None if self.rows_to_detect is None else self.rows_to_detect * self.period_s

    @property
    def acted_kind(self) -> bool:
        """The decisive verdict (`decisive`) is of the kind the quorum acts on: a FAULT for a fault (voted out of
        service, or for a surge answered by diversion), an INTRUSION for a falsified sensor
        (quarantined). An anomaly, or a fault called an intrusion, is seen but moves nothing."""
        want = VerdictKind.INTRUSION if self.attack else VerdictKind.FAULT
        return self.detected and self.kind == want.value

    @property
    def attributed(self) -> bool:
        """The decisive verdict's anchor is the faulted asset's (both None: nothing to isolate, rightly);
        for a falsified sensor, the decisive verdict is an intrusion on that sensor's asset that names
        that very sensor first (the one the quorum quarantines): an asset has several instruments (a
        pump's run contact and its meter), and quarantining the honest one leaves the liar reporting."""
        if self.attack:
            return self.detected and self.kind == VerdictKind.INTRUSION.value and self.asset == self.expected_asset \
                and (self.expected_sensor is None or self.sensor == self.expected_sensor)
        return self.detected and self.anchor == self.expected_anchor \
            and (self.expected_anchor is not None or self.asset == self.expected_asset)


@dataclass(frozen=True)
class SectorFigures:
    """A sector's totals over its runs (percentages of detected runs, or of all runs)."""

    sector: str
    runs: int  # runs with a fault injected (the rest are `normal_runs`)
    detected: int
    attributed: int
    faults_kind: int  # detected runs whose first verdict is a FAULT
    wrongful_runs: int  # runs with a FAULT verdict that votes another registered node
    false_alarm_runs: int  # runs with any verdict before the fault
    mean_rows_to_detect: float | None
    normal_runs: int = 0  # runs of normal operation (a storm, the morning peak): any verdict is a false alarm
    mean_seconds_to_detect: float | None = None  # field seconds

    @property
    def detection_pct(self) -> float:
        return 100.0 * self.detected / self.runs if self.runs else 0.0

    @property
    def attribution_pct(self) -> float:
        return 100.0 * self.attributed / self.detected if self.detected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"detection_pct": round(self.detection_pct, 1),
                               "attribution_pct": round(self.attribution_pct, 1)}


@dataclass
class AttributionReport:
    train_seed: int
    eval_seeds: tuple[int, ...]
    warm_rows: int
    max_rows: int
    sectors: list[SectorFigures] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)

    def classes(self) -> list[dict[str, Any]]:
        """Per fault class (and the normal-operation runs apart): runs, detected %, attributed %, the
        share of decisive verdicts of the kind that acts (`RunResult.acted_kind`), wrongful votes and the
        field seconds to detect and to decide, the figures `qeaims detect attribution` prints by class."""
        out = []
        for kind in dict.fromkeys(r.fault_kind for r in self.runs):
            runs = [r for r in self.runs if r.fault_kind == kind]
            found = [r for r in runs if r.detected and r.injected]
            injected = [r for r in runs if r.injected]
            seconds = [r.seconds_to_detect for r in found if r.seconds_to_detect is not None]
            deciding = [r.rows_to_decide * r.period_s for r in found if r.rows_to_decide is not None]
            out.append({"sector": runs[0].sector, "class": kind or "normal operation", "runs": len(runs),
                        "detected_pct": round(100.0 * len(found) / len(injected), 1) if injected else None,
                        "attributed_pct": round(100.0 * sum(r.attributed for r in found) / len(found), 1)
                        if found else None,
                        "acted_kind_pct": round(100.0 * sum(r.acted_kind for r in found) / len(found), 1)
                        if found else None,
                        "wrongful_runs": sum(bool(r.wrongful) for r in runs),
                        "false_alarm_runs": sum(bool(r.false_alarms) for r in runs),
                        "max_seconds_to_detect": max(seconds) if seconds else None,
                        "max_seconds_to_decide": max(deciding) if deciding else None})
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"train_seed": self.train_seed, "eval_seeds": list(self.eval_seeds), "warm_rows": self.warm_rows,
                "max_rows": self.max_rows, "sectors": [s.as_dict() for s in self.sectors], "classes": self.classes(),
                "runs": [asdict(r) | {"detected": r.detected, "attributed": r.attributed,
                                      "seconds_to_detect": r.seconds_to_detect} for r in self.runs]}


def _label(v: Verdict, anchor: str | None) -> str:
    return f"{v.kind.value} {v.asset_id}" + (f" ({anchor})" if anchor and anchor != v.asset_id else "")


def run_case(model: SectorModel, case: FaultCase, *, seed: int, warm_rows: int = 8, max_rows: int = 10) -> RunResult:
    """Open a fresh twin on `seed`, run `warm_rows` normal rows, inject `case`, watch `max_rows` rows."""
    sector = model.sector
    expected = anchor_node(sector, case.named) if case.kind is not None else None
    # a FAULT vote on any registered node is wrongful for a falsified sensor: nothing broke
    rightful = None if case.attack else expected
    recent: list[NDArray[np.float64]] = []
    before: list[str] = []
    after: list[tuple[int, Verdict]] = []
    normal: list[Verdict] = []  # a run without a fault: every verdict
    warm_rows = case.warm_rows or warm_rows
    max_rows = case.max_rows or max_rows
    with normal_twin(sector, seed=seed, start=case.start) as runner:
        runner_period = runner.period_s
        if case.rain_mm_h is not None:
            if not hasattr(runner.twin, "set_rain"):
                raise ConfigError(f"the {sector.value} twin has no rain")
            runner.twin.set_rain(case.rain_mm_h)
        for i in range(warm_rows + max_rows):
            if i == warm_rows and isinstance(case.kind, AttackKind):
                if case.kind is AttackKind.REPLAY:  # severity: how many past samples are replayed in a loop
                    runner.twin.inject_attack(case.kind, case.target, window=int(case.severity or warm_rows))
                else:
                    runner.twin.inject_attack(case.kind, case.target, magnitude=case.severity)
            elif i == warm_rows and case.kind is not None:
                extra = {} if case.severity is None else {"severity": case.severity}
                runner.twin.inject_fault(case.kind, case.target, **extra)
            readings = runner.advance()
            row = model.row({r.sensor_id: r.value for r in readings})
            if row is None:
                raise ConfigError(f"the {sector.value} twin no longer reports every sensor the model was trained on")
            recent = (recent + [row])[-max(HISTORY, model.model.context + 1):]
            if len(recent) < WARMUP:
                continue
            verdict = model.assess(np.asarray(recent), readings[0].timestamp)
            if verdict is None:
                continue
            if i < warm_rows or case.kind is None:
                before.append(f"row {i + 1}: {_label(verdict, anchor_node(sector, verdict.asset_id))}")
                if case.kind is None:
                    normal.append(verdict)
            else:
                after.append((i - warm_rows + 1, verdict))
    wrongful = sorted({a for v in [*normal, *(v for _, v in after)] if v.kind is VerdictKind.FAULT
                       for a in [anchor_node(sector, v.asset_id)] if a is not None and a != rightful})
    first = decisive(after)
    return RunResult(
        sector=sector.value, fault=case.label, seed=seed, expected_asset=case.named, expected_anchor=expected,
        false_alarms=tuple(before), rows_to_detect=after[0][0] if after else None,
        rows_to_decide=first[0] if first and first[1].kind is not VerdictKind.ANOMALY else None,  # nothing decided
        kind=first[1].kind.value if first else None, asset=first[1].asset_id if first else None,
        anchor=anchor_node(sector, first[1].asset_id) if first else None, wrongful=tuple(wrongful),
        reason=first[1].reason if first else "", injected=case.kind is not None, period_s=runner_period,
        fault_kind=case.kind.value if case.kind is not None else "", attack=case.attack,
        sensor=first[1].sensors[0] if first and first[1].sensors else None,
        expected_sensor=case.target if case.attack else None)


def decisive(after: Sequence[tuple[int, Verdict]]) -> tuple[int, Verdict] | None:
    """The verdict a run is judged by: the first that is not an anomaly, else the first.

    An oracle records every new episode (`oracles.stream`): an anomaly first (one system's alert,
    `sectors.invariants.Violation.alert`, or a model that cannot yet say what it sees), then the
    fault or intrusion once it is confirmed, which opens an episode of its own and is the one the
    quorum acts on. The run is *detected* at the first verdict and *decided* at this one, as the
    live city is.
    """
    for at, verdict in after:
        if verdict.kind is not VerdictKind.ANOMALY:
            return at, verdict
    return after[0] if after else None


def figures(sector: Sector, runs: Sequence[RunResult]) -> SectorFigures:
    faulted = [r for r in runs if r.injected]
    found = [r for r in faulted if r.detected]
    delays = [r.rows_to_detect for r in found if r.rows_to_detect is not None]
    return SectorFigures(
        sector=sector.value, runs=len(faulted), normal_runs=len(runs) - len(faulted), detected=len(found), attributed=sum(r.attributed for r in found),
        faults_kind=sum(r.kind == VerdictKind.FAULT.value for r in found),
        wrongful_runs=sum(bool(r.wrongful) for r in runs), false_alarm_runs=sum(bool(r.false_alarms) for r in runs),
        mean_rows_to_detect=round(float(np.mean(delays)), 2) if delays else None,
        mean_seconds_to_detect=round(float(np.mean(delays)) * runs[0].period_s, 1) if delays else None)


def evaluate_attribution(
    sector: Sector | str,
    faults: Iterable[FaultCase] | None = None,
    *,
    train_seed: int = 0,
    eval_seeds: Sequence[int] = (1, 2, 3),
    rows: int | None = None,
    stride: int | None = None,
    warm_rows: int = 8,
    max_rows: int | None = None,
    model: SectorModel | None = None,
    progress: Progress | None = None,
) -> AttributionReport:
    """Train `sector`'s model on `train_seed` (or use `model`), then run every fault on every eval seed.

    `rows`/`stride` shrink the training plan (`oracles.training.PLANS`) for a quick look; the
    defaults measure the model the oracles run. `max_rows` defaults to `WATCH_S` of the sector's rows
    and at least 10 (a feeder reporting every 5 s is watched for 120 rows, a water network reporting
    each minute for 10, the sewers reporting every 5 minutes for 10).
    """
    which = parse_sector(sector)
    if max_rows is None:  # never fewer than the 10 rows it always watched (sewage: 50 minutes)
        max_rows = max(10, math.ceil(WATCH_S / REPORT_PERIOD_S[which]))
    cases = tuple(DEFAULT_FAULTS[which] if faults is None else faults)
    if not cases or not eval_seeds:
        raise ConfigError("evaluate at least one fault on at least one seed")
    if warm_rows < WARMUP or max_rows < 1:
        raise ConfigError(f"warm rows must be ≥ {WARMUP} and max rows ≥ 1")
    if model is None:
        if progress is not None:
            progress(f"training {which.value}", 0, 1)
        model = train_sector(which, rows=rows, stride=stride, seed=train_seed)
    elif model.sector is not which:
        raise ConfigError(f"a {model.sector.value} model cannot evaluate {which.value}")
    runs: list[RunResult] = []
    total = len(cases) * len(eval_seeds)
    for seed in eval_seeds:
        for case in cases:
            if progress is not None:
                progress(f"{which.value}: {case.label} (seed {seed})", len(runs), total)
            runs.append(run_case(model, case, seed=seed, warm_rows=warm_rows, max_rows=max_rows))
    return AttributionReport(train_seed=train_seed, eval_seeds=tuple(eval_seeds), warm_rows=warm_rows,
                             max_rows=max_rows, sectors=[figures(which, runs)], runs=runs)
