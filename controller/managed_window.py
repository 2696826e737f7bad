"""The controller's plans played into an offline twin: the managed counterpart of `sectors.baseline`.

`sectors.baseline.run_baseline` says what a scenario's faults cost with automation off; this module
says what they cost with the controller's response, on the same kind of fresh twin, stepped at the
same report period and weighted the same way (each period valued at the level measured at its end),
without a city: no chain, no oracles, no MQTT. The plans are the city's own — `TwinPlanner`, which
breaks its own model the way a verdict says and asks `controller.responses.plan_for` — applied
``detect_s`` after each fault's onset (the detection the city must achieve), then the crew's repair
after its travel and repair times (`controller.crews`), then the reintegrate plan ``detect_s`` later
(the oracles' vote).

``hold=True`` is a what-if the controller does not run: the isolation waits until the crew is on
site, and until then the restore plan made with the fault still active (support only). It is here so
the trade-off between stopping a leak at once and keeping customers on a leaking main is measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.crews import REPAIR_S, TRAVEL_S
from controller.planning import TwinPlanner
from controller.plans import ResponsePlan
from core.messages import Sector
from sectors.remote import SimControl
from sectors.runner import TwinRunner, open_twin
from sectors.service import service_level

__all__ = ["Action", "PlanLog", "WindowResult", "managed_events", "play"]

Action = Callable[[TwinRunner], None]


@dataclass(frozen=True)
class WindowResult:
    """Service over the window: time-weighted availability, the worst instant, and the time integral
    of each finite number in the service level's ``detail`` (as `sectors.baseline.BaselineResult`)."""

    availability: float
    min_availability: float
    customers_affected_max: int
    integrals: dict[str, float]


@dataclass
class PlanLog:
    """The plans applied, in order: when, what for, which commands, why."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, plan: ResponsePlan | None, at: float) -> Action:
        def act(runner: TwinRunner) -> None:
            commands = plan.commands if plan is not None else ()
            for command in commands:
                runner.twin.apply(command)
            self.entries.append({
                "at_s": at, "purpose": plan.purpose if plan is not None else None,
                "commands": [f"{c.asset_id} {c.action}" + ("" if c.value is None else f"={c.value}") for c in commands],
                "reason": plan.reason if plan is not None else "no plan"})
        return act


def play(sector: Sector, events: Sequence[tuple[float, Action]], duration_s: float) -> WindowResult:
    """Run a fresh twin of ``sector`` for ``duration_s``, doing each event at its time (whole seconds)."""
    due = sorted(((round(at), i, act) for i, (at, act) in enumerate(events)), key=lambda e: (e[0], e[1]))
    end = round(duration_s)
    weighted = 0.0
    integrals: dict[str, float] = {}
    worst, affected = 1.0, 0
    with open_twin(sector) as runner:
        now = 0
        while due and due[0][0] <= now:
            due.pop(0)[2](runner)
        while now < end:
            period_end = (now // runner.period_s + 1) * runner.period_s
            nxt = min([end, period_end, *(at for at, _, _ in due if at > now)])
            runner.advance(nxt - now)
            level = service_level(sector, runner.twin)
            weighted += level.availability * (nxt - now)
            for key, value in level.detail.items():
                if math.isfinite(value):
                    integrals[key] = integrals.get(key, 0.0) + float(value) * (nxt - now)
            worst, affected = min(worst, level.availability), max(affected, level.customers_affected)
            now = nxt
            while due and due[0][0] <= now:
                due.pop(0)[2](runner)
    return WindowResult(weighted / end, worst, affected, integrals)


def _sent(*plans: ResponsePlan | None) -> tuple[dict[str, Any], ...]:
    return tuple(c for p in plans if p is not None for c in p.summary()["commands"])


def managed_events(sector: Sector, controls: Sequence[tuple[float, SimControl]], *, detect_s: float,
                   log: PlanLog, hold: bool = False,
                   planner: TwinPlanner | None = None) -> list[tuple[float, Action]]:
    """The controls at their times, and for each injected fault the controller's plans, the repair
    and the reintegration (see the module docstring)."""
    plan = planner or TwinPlanner()
    events: list[tuple[float, Action]] = [(at, _control(c)) for at, c in controls]
    for onset, control in controls:
        if control.op != "inject-fault":
            continue
        asset, seen = control.target, onset + detect_s
        on_site = seen + TRAVEL_S[sector]
        if hold:
            support = plan(sector, "restore", asset, ())
            isolate = plan(sector, "isolate", asset, _sent(support))
            restore = plan(sector, "restore", asset, _sent(support, isolate))
            events += [(seen, log.apply(support, seen)), (on_site, log.apply(isolate, on_site)),
                       (on_site, log.apply(restore, on_site))]
            sent = _sent(support, isolate, restore)
        else:
            isolate = plan(sector, "isolate", asset, ())
            restore = plan(sector, "restore", asset, _sent(isolate))
            events += [(seen, log.apply(isolate, seen)), (seen, log.apply(restore, seen))]
            sent = _sent(isolate, restore)
        repaired = on_site + REPAIR_S[sector]
        events.append((repaired, _control(SimControl(op="clear-fault", target=asset))))
        events.append((repaired + detect_s, _reintegrate(plan, sector, asset, sent, log, repaired + detect_s)))
    return events


def _control(control: SimControl) -> Action:
    def act(runner: TwinRunner) -> None:
        control.apply_to(runner.twin)
    return act


def _reintegrate(planner: TwinPlanner, sector: Sector, asset: str, sent: tuple[dict[str, Any], ...],
                 log: PlanLog, at: float) -> Action:
    def act(runner: TwinRunner) -> None:  # planned when it is due: the model is repaired by then
        log.apply(planner(sector, "reintegrate", asset, sent), at)(runner)
    return act
