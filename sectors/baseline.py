"""The automation-off counterfactual of a scenario: the same faults, nobody responding.

A scenario's report compares the service the city kept *with* QEAIMS against the service it would
have kept without it. `run_baseline` plays the scenario's fault plan (``(offset_s, sector,
SimControl)``: the same controls the scenario sends to the live twins over MQTT) into fresh twins
and measures `sectors.service.service_level` over the run: the time-weighted mean availability
(each report period weighted by its length, valued at the level measured at its end, so a fault
applied at ``t`` counts from ``t``), the worst instant, and the most customers and critical loads
affected at once.

What it leaves out, on purpose:

- **Every response.** No controller, no oracle, no operator: no isolation, re-routing, backup
  transfer, fail-over, diversion or repair. Whatever the twins do by themselves stays in, because
  the field equipment does it without QEAIMS: feeder protection trips, a hospital's automatic
  transfer switch starts its generator, the lift station's PLC brings in the standby pump.
- **Manual repair, unless asked for.** Without automation a utility still fixes things: customers
  call, a crew is sent, the fault is repaired, typically within an hour or two (a US utility's
  average interruption lasts roughly two hours by the duration indices utilities report to the
  EIA, major events excluded). That number is not ours to pick per scenario, so the default
  (``manual_repair_s=None``) is a pure "nobody responds" baseline, which a short scenario's run
  would not see repaired anyway. Pass ``manual_repair_s`` to model a crew that clears each
  injected fault that many seconds after its onset (``clear-fault`` on the same target, with the
  twin's own stand-alone repair: protection recloses). Attacks are never "repaired" this way:
  without detection nobody knows about them.
- **The crew's manual response, where a sector declares one** (``SectorPlugin.manual_response``).
  Some faults are not left alone even without automation, and leaving them alone would flatter
  the baseline: a water main break is isolated by hand. Customers call, a crew drives out and
  shuts the valves around the break so it can dig — the same valves the controller closes, shut
  by hand instead of in a minute — and the segment stays dry for the repair. So for a sector with
  a manual response, each injected fault gets a crew: at onset + ``crew_travel_s`` (the plug-in's
  figure, the same the controller's crews take; the calls and the dispatch before it are counted
  as nothing, which favours the baseline) the crew does the manual response, and
  ``crew_repair_s`` later the fault is cleared and the response undone. Until the crew arrives
  the fault runs as the twin's physics make it: a break leaks and robs pressure.
- **Cross-sector cascades** the twins do not simulate themselves (each sector runs alone, as the
  live twins do); the scenario's plan injects the dependants' faults explicitly if it wants them.

Sectors run one after another, each with a fresh twin closed before the next opens: SWMM allows
one open simulation per process, so this cannot run in a process that holds a live sewage twin.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import ConfigError, QeaimsError
from core.messages import Sector
from sectors.plugin import plugin_of
from sectors.remote import SimControl
from sectors.runner import TwinRunner, open_twin
from sectors.service import ServiceLevel, service_level

__all__ = ["BaselineResult", "Plan", "Progress", "run_baseline"]

Plan = Sequence[tuple[float, Sector, SimControl]]
Progress = Callable[[Sector, float, float], None]  # (sector, simulated seconds done, duration)

_QUANTUM_S = {Sector.SEWAGE: 5, Sector.TRANSPORTATION: 5}
"""Clock granularity of twins that step on a fixed grid (SWMM routing step, uxsim time step)."""


@dataclass(frozen=True)
class BaselineResult:
    """One sector's service over the automation-off run.

    ``availability`` is the time-weighted mean over ``duration_s``; ``series`` holds each sample
    as (seconds since the start, availability); ``integrals`` the time integral of each finite
    number in the service level's ``detail``, weighted the same way (water's ``leak_m3s`` becomes
    the m³ lost). ``rejected`` lists the controls the twin refused (with why), so a baseline that
    silently missed a fault cannot pass for a good one.
    """

    sector: Sector
    duration_s: float
    availability: float
    min_availability: float
    customers_affected_max: int
    critical_affected_max: int
    applied: int
    repaired: int
    rejected: tuple[str, ...]
    series: tuple[tuple[float, float], ...]
    integrals: Mapping[str, float] = field(default_factory=dict)


def run_baseline(
    plan: Plan,
    *,
    sectors: Sequence[Sector],
    duration_s: float,
    starts: Mapping[Sector, datetime] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    manual_repair_s: float | None = None,
    manual_crews: bool = True,
) -> dict[Sector, BaselineResult]:
    """Play ``plan`` into fresh twins of ``sectors`` for ``duration_s`` with no response at all.

    Controls for sectors not listed, or due after ``duration_s``, are left out; offsets are seconds
    from the start (rounded up to the twin's clock grid). ``starts`` gives a sector's start time
    (default: its twin's); ``seed`` is passed to every twin, as the live run's twins get it.
    ``manual_crews=False`` leaves out the crews' manual responses (nobody ever comes), for comparison.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"a baseline needs a positive duration, got {duration_s} s")
    if manual_repair_s is not None and not (math.isfinite(manual_repair_s) and manual_repair_s > 0):
        raise ConfigError(f"manual_repair_s must be positive (or None for no repair), got {manual_repair_s}")
    for offset, _sector, _control in plan:
        if not (math.isfinite(offset) and offset >= 0):
            raise ConfigError(f"a plan offset must be a non-negative number of seconds, got {offset}")
    out: dict[Sector, BaselineResult] = {}
    for sector in dict.fromkeys(sectors):
        controls = [(offset, control) for offset, s, control in plan if s is sector and offset <= duration_s]
        start = (starts or {}).get(sector)
        with open_twin(sector, seed=seed, start=start) as runner:
            out[sector] = _run_one(runner, controls, duration_s, progress, manual_repair_s, manual_crews)
    return out


def _run_one(runner: TwinRunner, controls: list[tuple[float, SimControl]], duration_s: float,
             progress: Progress | None, manual_repair_s: float | None, manual_crews: bool) -> BaselineResult:
    sector = runner.sector
    quantum = _QUANTUM_S.get(sector, 1)
    end = _grid(duration_s, quantum)
    due: list[tuple[int, int, SimControl | CrewWork, bool]] = [  # (at, order, control, a manual repair?)
        (_grid(offset, quantum), i, control, False) for i, (offset, control) in enumerate(controls)]
    applied = repaired = 0
    rejected: list[str] = []
    chosen = plugin_of(sector)
    crew = chosen.manual_response if manual_crews else None

    def apply_due(now: int) -> None:
        nonlocal applied, repaired
        due.sort(key=lambda d: (d[0], d[1]))
        while due and due[0][0] <= now:
            at, order, control, repair = due.pop(0)
            if isinstance(control, CrewWork):
                undo = control.work()
                if undo is not None:
                    due.append((at + _grid(chosen.crew_repair_s, quantum), order, CrewWork(undo), True))
                continue
            try:
                control.apply_to(runner.twin)
            except (QeaimsError, ValueError, TypeError) as exc:
                if not repair:  # a repair finding the fault already cleared by the plan is fine
                    rejected.append(f"{at} s: {control.op} {control.kind} {control.target}: {exc}".strip())
                continue
            if repair:
                repaired += 1
                continue
            applied += 1
            if control.op != "inject-fault":
                continue
            if crew is not None:  # the crew arrives, responds by hand, repairs, then undoes its response
                target = control.target
                on_site = at + _grid(chosen.crew_travel_s, quantum)
                fix = SimControl(op="clear-fault", target=target)
                due.append((on_site, len(controls) + order, CrewWork(functools.partial(crew, runner.twin, target)), False))
                due.append((on_site + _grid(chosen.crew_repair_s, quantum), len(controls) + order, fix, True))
            elif manual_repair_s is not None:
                fix = SimControl(op="clear-fault", target=control.target)
                due.append((at + _grid(manual_repair_s, quantum), len(controls) + order, fix, True))

    now = 0
    first = service_level(sector, runner.twin)  # before any control: a twin is solved only on a step
    apply_due(now)
    series = [(0.0, first.availability)]
    worst: list[ServiceLevel] = [first]
    weighted = 0.0
    integrals: dict[str, float] = {}
    while now < end:
        period_end = (now // runner.period_s + 1) * runner.period_s
        nxt = min([end, period_end, *(d[0] for d in due if d[0] > now)])
        runner.advance(nxt - now)
        level = service_level(sector, runner.twin)
        weighted += level.availability * (nxt - now)
        for key, value in level.detail.items():
            if math.isfinite(value):
                integrals[key] = integrals.get(key, 0.0) + float(value) * (nxt - now)
        now = nxt
        series.append((float(now), level.availability))
        worst.append(level)
        apply_due(now)
        if progress is not None:
            progress(sector, float(now), float(end))
    return BaselineResult(
        sector=sector,
        duration_s=float(end),
        availability=weighted / end,
        min_availability=min(level.availability for level in worst),
        customers_affected_max=max(level.customers_affected for level in worst),
        critical_affected_max=max(level.critical_affected for level in worst),
        applied=applied,
        repaired=repaired,
        rejected=tuple(rejected),
        series=tuple(series),
        integrals=integrals,
    )


@dataclass(frozen=True)
class CrewWork:
    """Something a manual crew does at a scheduled time; ``work`` returns what undoes it, if anything."""

    work: Callable[[], Callable[[], None] | None]


def _grid(seconds: float, quantum: int) -> int:
    """``seconds`` rounded up to the twin's clock grid."""
    return math.ceil(seconds / quantum - 1e-9) * quantum
