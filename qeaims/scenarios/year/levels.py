"""What a fault costs in service, with and without the controller: the twins measure it, the controller plans it.

Why measure on the twins rather than assume: the year's uptime must come from the same physics and
the same plans the live city uses. For one fault (an asset at an hour of the day) this opens the
sector's twin at that hour of a representative day and measures `sectors.service.service_level`
in four states:

- ``normal``: no fault (the reference; availability is reported relative to it);
- ``faulted``: the fault and nothing else (protection trips by itself) — the baseline until repair;
- ``manual``: what a crew does by hand on arrival without automation — for a water main, shutting
  its segment's valves (the controller's own isolation commands) while it repairs; elsewhere the
  same as ``faulted``;
- ``controlled``: after the controller's isolation and restoration plans, which come from
  `controller.planning.TwinPlanner` — the planner the live controller runs, on its own model,
  through `controller.responses.plan_for` — exactly as the live controller would send them.

Each state is measured ``SETTLE_S`` after it is reached (an hour for water, where tanks drain and
pressures sag over the repair; a fail-over's length for banking), so a level stands for the
repair window rather than the first second. Results are cached per (asset, hour).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from controller.planning import TwinPlanner
from controller.plans import ResponsePlan
from core.errors import QeaimsError
from core.messages import FaultKind, Sector
from sectors.runner import TwinRunner, open_twin
from sectors.service import ServiceLevel, service_level

__all__ = ["SETTLE_S", "Levels", "Plans", "levels", "plans"]

SETTLE_S: dict[Sector, int] = {Sector.ELECTRICITY: 5, Sector.WATER: 3600, Sector.BANKING: 180}
"""Field seconds each state runs before it is measured (see the module docstring)."""


@dataclass(frozen=True)
class State:
    availability: float
    unserved: float  # the sector's unserved demand now: kW (electricity), customers (water), failed tx/min (banking)
    leak_m3s: float = 0.0  # water lost to a break (water only)

    @classmethod
    def of(cls, sector: Sector, level: ServiceLevel) -> State:
        if sector is Sector.ELECTRICITY:
            return cls(level.availability, float(level.detail.get("unserved_kw", 0.0)))
        return cls(level.availability, float(level.customers_affected), float(level.detail.get("leak_m3s", 0.0)))


@dataclass(frozen=True)
class Plans:
    """The controller's plans for one asset (empty when it has none: then it cannot do better than the baseline)."""

    isolate: ResponsePlan | None
    restore: ResponsePlan | None
    reintegrate: ResponsePlan | None
    error: str = ""

    @property
    def commands(self) -> list[dict[str, Any]]:
        return [_spec(c) for p in (self.isolate, self.restore) if p is not None for c in p.commands]

    @property
    def switching_ops(self) -> int:
        return sum(len(p.commands) for p in (self.isolate, self.restore, self.reintegrate) if p is not None)


@dataclass(frozen=True)
class Levels:
    normal: State
    faulted: State
    manual: State
    controlled: State


def _spec(c: Any) -> dict[str, Any]:
    return {"asset": c.asset_id, "actuator": c.actuator_id, "action": c.action, "value": c.value}


@functools.cache
def _planner() -> TwinPlanner:
    return TwinPlanner()  # no field view: the year has no SCADA stream, the verdict names the faulted asset


@functools.cache
def plans(sector: Sector, asset: str) -> Plans:
    """Isolation, restoration and reintegration as the live controller plans them (`TwinPlanner`)."""
    planner = _planner()
    try:
        isolate = planner(sector, "isolate", asset)
        sent = [] if isolate is None else [_spec(c) for c in isolate.commands]
        restore = planner(sector, "restore", asset, sent)
        sent += [] if restore is None else [_spec(c) for c in restore.commands]
        reintegrate = planner(sector, "reintegrate", asset, sent)
    except QeaimsError as exc:  # no plan: the controller only dispatches the crew
        return Plans(None, None, None, f"{type(exc).__name__}: {exc}"[:200])
    return Plans(isolate, restore, reintegrate)


@functools.cache
def _at_hour(sector: Sector, hour: int) -> TwinRunner:
    """A fresh twin advanced to ``hour`` of its first day (kept as a template; copies are measured)."""
    runner = open_twin(sector)
    if hour:
        runner.advance(hour * 3600)
    return runner


def _measure(sector: Sector, hour: int, kind: FaultKind | None, asset: str,
             commands: list[dict[str, Any]]) -> State:
    from core.messages import ActuatorCommand

    runner = copy.deepcopy(_at_hour(sector, hour))
    twin = runner.twin
    if kind is not None:
        twin.inject_fault(kind, asset)
    for spec in commands:
        twin.apply(ActuatorCommand(sector=sector, asset_id=str(spec["asset"]), actuator_id=str(spec["actuator"]),
                                   action=str(spec["action"]), value=spec.get("value")))
    runner.advance(SETTLE_S[sector])
    return State.of(sector, service_level(sector, twin))


@functools.cache
def levels(sector: Sector, asset: str, kind: FaultKind, hour: int) -> Levels:
    """The four service states of a fault on ``asset`` at ``hour`` (see the module docstring)."""
    normal = _measure(sector, hour, None, asset, [])
    faulted = _measure(sector, hour, kind, asset, [])
    chosen = plans(sector, asset)
    controlled = _measure(sector, hour, kind, asset, chosen.commands) if chosen.commands else faulted
    manual = faulted
    if kind is FaultKind.PIPE_BREAK and chosen.isolate is not None:
        manual = _measure(sector, hour, kind, asset, [_spec(c) for c in chosen.isolate.commands])
    return Levels(normal, faulted, manual, controlled)
