"""The year itself: draw the faults, send the crews in both worlds, sum the spans into the report.

Why both worlds share one fault draw: the comparison must be paired (the same breaks at the same
hours), so any difference comes from the controller, not from luck. The report's numbers are per
sector and in total (the total availability is the plain mean over the sectors covered: their
availabilities have no common unit to weight them by). Every input figure comes from
`assumptions` and is echoed in the report so a reader sees what the result rests on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.messages import Sector
from qeaims.scenarios.year import assumptions as A
from qeaims.scenarios.year.cascade import protective_commands
from qeaims.scenarios.year.dispatch import Job, Visit, dispatch
from qeaims.scenarios.year.energy import feeder_day
from qeaims.scenarios.year.faults import SECTORS, Fault, assets, draw_faults
from qeaims.scenarios.year.levels import plans
from qeaims.scenarios.year.outcomes import Outcome, baseline_outcome, controller_outcome
from qeaims.scenarios.year.predict import Alarm, alarms, threshold

__all__ = ["parse_sectors", "run_year"]

Progress = Callable[[str], None]
_UNSERVED_UNIT = {Sector.ELECTRICITY: "MWh", Sector.WATER: "customer-hours", Sector.BANKING: "failed transactions"}


def parse_sectors(text: str | None) -> tuple[Sector, ...]:
    """``a,b`` → the sectors, each one the year covers; the error names the ones it does."""
    if not text:
        return SECTORS
    out: list[Sector] = []
    for name in (n.strip() for n in text.split(",")):
        match = next((s for s in SECTORS if s.value == name), None)
        if match is None:
            raise ConfigError(f"the year covers {', '.join(s.value for s in SECTORS)}, not {name!r}")
        out.append(match)
    return tuple(dict.fromkeys(out))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pandapower warns on stderr when a copied network re-runs a power flow; the year copies thousands."""
    logger = logging.getLogger("pandapower")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _jobs(faults: Sequence[Fault], found: Sequence[Alarm]) -> tuple[list[Job], list[Job], dict[int, str]]:
    """(controller jobs, baseline jobs, fault index → the controller job that answers it)."""
    index = {id(f): i for i, f in enumerate(faults)}
    ctl: list[Job] = []
    answer: dict[int, str] = {}
    for n, alarm in enumerate(found):
        visit_s = alarm.at_s + A.PREVENTIVE_LEAD_S
        sector = alarm.asset.sector
        if alarm.fault is None:
            ctl.append(Job(f"false-{n}", sector, visit_s, preventive=True, inspection_only=True))
            continue
        i = index[id(alarm.fault)]
        if i in answer or visit_s >= alarm.fault.at_s:
            continue  # already answered, or the visit could not come before the failure: corrective
        answer[i] = f"predicted-{i}"
        ctl.append(Job(answer[i], sector, visit_s, preventive=True))
    for i, fault in enumerate(faults):
        if i not in answer:
            answer[i] = f"fault-{i}"
            ctl.append(Job(answer[i], fault.asset.sector, fault.at_s + A.AUTO_RESPONSE_S))
    base = [Job(f"fault-{i}", f.asset.sector, f.at_s + A.BASELINE_DISPATCH_DELAY_S) for i, f in enumerate(faults)]
    return ctl, base, answer


def _spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean and p95 of per-fault durations (hours), over the faults that cut service in either world."""
    if not values:
        return {"mean": None, "p95": None, "faults": 0}
    return {"mean": round(float(np.mean(values)), 3), "p95": round(float(np.percentile(values, 95)), 3),
            "faults": len(values)}


def _world(sector: Sector, outcomes: Sequence[Outcome], visits: Sequence[Visit], horizon_s: float,
           impacted: set[int]) -> dict[str, Any]:
    spans = [s for o in outcomes for s in o.clipped(horizon_s)]
    lost = sum(s.deficit * s.seconds for s in spans)
    unserved_h = sum(s.unserved * s.seconds for s in spans) / 3600.0  # unit-hours
    unserved = {Sector.ELECTRICITY: unserved_h / 1000.0, Sector.WATER: unserved_h,
                Sector.BANKING: unserved_h * 60.0}[sector]  # kW·h → MWh; customers·h; failed/min·h → failed
    price = {Sector.ELECTRICITY: A.VOLL_USD_PER_MWH, Sector.WATER: A.WATER_USD_PER_CUSTOMER_HOUR,
             Sector.BANKING: A.BANK_USD_PER_FAILED_TRANSACTION}[sector]
    weighted = [o.weighted_outage_s / 3600.0 for n, o in enumerate(outcomes) if n in impacted]
    last = [o.outage_s / 3600.0 for n, o in enumerate(outcomes) if n in impacted]
    crew_h = sum(v.crew_s for v in visits) / 3600.0
    out: dict[str, Any] = {
        "availability": round(1.0 - lost / horizon_s, 6),
        "recovery_h": _spread(weighted),
        "full_restoration_h": _spread(last),
        "unserved": {"value": round(unserved, 3), "unit": _UNSERVED_UNIT[sector]},
        "crew_hours": round(crew_h, 2),
        "truck_rolls": len(visits),
        "cost_usd": {"crews": round(crew_h * A.CREW_USD_PER_HOUR + len(visits) * A.TRUCK_ROLL_USD),
                     "unserved": round(unserved * price)},
    }
    if sector is Sector.WATER:
        out["water_lost_m3"] = round(sum(s.state.leak_m3s * s.seconds for s in spans), 1)
    return out


def _sector(sector: Sector, faults: Sequence[Fault], found: Sequence[Alarm], ctl: dict[str, Visit],
            base: dict[str, Visit], answer: dict[int, str], horizon_s: float) -> dict[str, Any]:
    mine = [i for i, f in enumerate(faults) if f.asset.sector is sector]
    ctl_out = [controller_outcome(faults[i], ctl[answer[i]]) for i in mine]
    base_out = [baseline_outcome(faults[i], base[f"fault-{i}"]) for i in mine]
    impacted = {n for n in range(len(mine)) if ctl_out[n].outage_s > 0 or base_out[n].outage_s > 0}
    ctl_visits = [v for v in ctl.values() if v.job.sector is sector]
    averted = sum(1 for o in ctl_out if o.averted)
    false = sum(1 for v in ctl_visits if v.job.inspection_only)
    predicted = len({id(a.fault) for a in found if a.asset.sector is sector and a.fault is not None})
    failed_plans = sorted({faults[i].asset.asset_id for i in mine if plans(sector, faults[i].asset.asset_id).error})
    return {
        "faults": len(mine),
        "faults_with_service_impact": len(impacted),
        "controller": _world(sector, ctl_out, ctl_visits, horizon_s, impacted),
        "baseline": _world(sector, base_out, [v for v in base.values() if v.job.sector is sector], horizon_s, impacted),
        "work_orders": {"corrective": len(ctl_visits) - averted - false, "preventive_before_failure": averted,
                        "preventive_false_alarm": false,
                        "preventive_share": round(averted / len(ctl_visits), 4) if ctl_visits else None,
                        "failures_predicted": predicted},
        "switching_ops": sum(plans(sector, faults[i].asset.asset_id).switching_ops for i in mine),
        "protective_commands": _protective([faults[i] for i in mine]),
        "no_plan": failed_plans,
    }


def _protective(faults: Sequence[Fault]) -> dict[str, int]:
    """Protective commands the controller's cascade step sends to other sectors, counted by command."""
    out: dict[str, int] = {}
    for fault in faults:
        for c in protective_commands(fault.asset.sector, fault.asset.asset_id):
            key = f"{c['sector']}: {c['actuator']} {c['action']}"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def _totals(per: dict[str, dict[str, Any]], energy: dict[str, Any] | None) -> dict[str, Any]:
    def add(world: str, *path: str) -> float:
        total = 0.0
        for row in per.values():
            value: Any = row[world]
            for key in path:
                value = value[key]
            total += float(value)
        return total

    out: dict[str, Any] = {}
    for world in ("controller", "baseline"):
        losses = 0.0 if energy is None else energy[f"{world}_losses_usd_year"]
        cost = {"crews": add(world, "cost_usd", "crews"), "unserved": add(world, "cost_usd", "unserved"),
                "feeder_losses": losses}
        out[world] = {"availability": round(add(world, "availability") / len(per), 6),
                      "crew_hours": round(add(world, "crew_hours"), 2), "truck_rolls": int(add(world, "truck_rolls")),
                      "cost_usd": {**{k: round(v) for k, v in cost.items()}, "total": round(sum(cost.values()))}}
    orders = sum(r["controller"]["truck_rolls"] for r in per.values())
    before = sum(r["work_orders"]["preventive_before_failure"] for r in per.values())
    out["preventive_share"] = round(before / orders, 4) if orders else None
    return out


def _energy(seed: int) -> dict[str, Any]:
    day = feeder_day(seed=seed)
    mwh = {"baseline": day.base_kwh * 365 / 1000, "controller": day.controlled_kwh * 365 / 1000}
    return {"day_losses_kwh": {"baseline": round(day.base_kwh, 1), "controller": round(day.controlled_kwh, 1)},
            "saved_share": round(day.saved_share, 4), "switching_ops_per_day": day.switching_ops,
            "year_losses_mwh": {k: round(v, 1) for k, v in mwh.items()},
            "baseline_losses_usd_year": round(mwh["baseline"] * A.ENERGY_USD_PER_MWH),
            "controller_losses_usd_year": round(mwh["controller"] * A.ENERGY_USD_PER_MWH)}


def run_year(*, seed: int = 0, scale: float = 1.0, sectors: Sequence[Sector] = SECTORS, days: float = 365.0,
             energy: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """The year's report (see docs/year.md for every figure's meaning)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"--faults-scale must be a positive number, not {scale:g}")
    if not (math.isfinite(days) and 0 < days <= 366):
        raise ConfigError(f"the horizon must be 1..366 days, not {days:g}")
    chosen = tuple(dict.fromkeys(sectors))
    if not chosen:
        raise ConfigError("name at least one sector")
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    horizon_s = days * 86400.0
    with _quiet():
        faults = draw_faults(chosen, seed=seed, scale=scale, horizon_s=horizon_s)
        say(f"{len(faults)} faults drawn; predicting")
        found = alarms([a for s in chosen for a in assets(s)], faults, seed=seed, horizon_s=horizon_s)
        ctl_jobs, base_jobs, answer = _jobs(faults, found)
        ctl, base = dispatch(ctl_jobs), dispatch(base_jobs)
        per: dict[str, dict[str, Any]] = {}
        for sector in chosen:
            say(f"measuring {sector.value} faults on the twins")
            per[sector.value] = _sector(sector, faults, found, ctl, base, answer, horizon_s)
        day = None
        if energy and Sector.ELECTRICITY in chosen:
            say("feeder losses over a day")
            day = _energy(seed)
    return {
        "scenario": "year", "seed": seed, "faults_scale": scale, "days": days,
        "sectors": per, "total": _totals(per, day), "energy": day,
        "not_covered": [s.value for s in Sector if s not in SECTORS],
        "assumptions": {name: getattr(A, name) for name in dir(A) if name.isupper()},
        "cusum_threshold_h": round(threshold(), 3),
        "wall_s": round(time.perf_counter() - started, 1),
    }
