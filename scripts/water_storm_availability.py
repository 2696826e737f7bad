"""Water availability over a scenario's window, the controller's response against automation off,
measured on the water twin alone (no city, no chain, no oracles).

    PYTHONPATH=. python scripts/water_storm_availability.py [--scenario storm-day] [--asset pipe:159]
                                                            [--detect-s 60] [--hold] [--json]

What runs, each on a fresh water twin stepped at the sector's report period:

- **automation off**: `sectors.baseline.run_baseline`, the code the city's report uses, with the crew's
  manual response (the water plug-in's: the crew arrives ``crew_travel_s`` after the onset and shuts
  the break's valves by hand) and, for comparison, without it (nobody ever comes: the old baseline);
- **managed**: the scenario's water controls, and ``--detect-s`` after each fault's onset the
  controller's plans made the way the city makes them (`controller.planning.TwinPlanner`, which
  breaks its own model and calls `controller.responses.plan_for`): isolate, then restore with the
  isolate commands replayed. The crew, dispatched then, repairs after travel + repair
  (`controller.crews`), and the reintegrate plan follows ``--detect-s`` later (the oracles' vote);
- ``--hold`` adds a what-if the city does not run: the valves are shut only once the crew is on site,
  and until then the restore plan made on a model with the break still flowing (pressure support).

Availability is weighted in time as `run_baseline` weights it (each period valued at the level at its
end); the leak volume (m³) is integrated the same way. ``--asset`` moves the scenario's water fault
onto another pipe (same times), to see the responses where re-routing and pressure matter.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from controller.crews import REPAIR_S, TRAVEL_S
from controller.planning import TwinPlanner
from controller.plans import ResponsePlan
from core.messages import Sector
from qeaims.scenarios.definitions import scenario
from sectors.baseline import run_baseline
from sectors.remote import SimControl
from sectors.runner import TwinRunner, open_twin
from sectors.service import service_level

W = Sector.WATER
Action = Callable[[TwinRunner], None]


def play(events: Sequence[tuple[float, Action]], duration_s: float) -> dict[str, float]:
    """Run a fresh water twin for ``duration_s``, doing each event at its time; the service over it."""
    due = sorted(((int(round(at)), i, act) for i, (at, act) in enumerate(events)), key=lambda e: (e[0], e[1]))
    end = int(round(duration_s))
    weighted = leak = 0.0
    worst, affected = 1.0, 0
    with open_twin(W) as runner:
        now = 0
        while due and due[0][0] <= now:
            due.pop(0)[2](runner)
        while now < end:
            period_end = (now // runner.period_s + 1) * runner.period_s
            nxt = min([end, period_end, *(at for at, _, _ in due if at > now)])
            runner.advance(nxt - now)
            level = service_level(W, runner.twin)
            weighted += level.availability * (nxt - now)
            leak += float(level.detail.get("leak_m3s", 0.0)) * (nxt - now)
            worst, affected = min(worst, level.availability), max(affected, level.customers_affected)
            now = nxt
            while due and due[0][0] <= now:
                due.pop(0)[2](runner)
    return {"availability": weighted / end, "min_availability": worst, "customers_affected_max": affected,
            "leak_m3": leak}


def _apply(plan: ResponsePlan | None, log: list[dict[str, Any]], at: float) -> Action:
    def act(runner: TwinRunner) -> None:
        for command in plan.commands if plan else ():
            runner.twin.apply(command)
        log.append({"at_s": at, "purpose": plan.purpose if plan else None,
                    "commands": [f"{c.asset_id} {c.action}" + ("" if c.value is None else f"={c.value}")
                                 for c in (plan.commands if plan else ())],
                    "reason": plan.reason if plan else "no plan"})
    return act


def _sent(*plans: ResponsePlan | None) -> tuple[dict[str, Any], ...]:
    return tuple(c for p in plans if p is not None for c in p.summary()["commands"])


def managed_events(controls: Sequence[tuple[float, SimControl]], detect_s: float, hold: bool,
                   log: list[dict[str, Any]]) -> list[tuple[float, Action]]:
    """The scenario's controls, the controller's plans after detection, the crew's repair, reintegration."""
    planner = TwinPlanner()
    events: list[tuple[float, Action]] = [(at, lambda r, c=c: c.apply_to(r.twin)) for at, c in controls]
    for onset, control in controls:
        if control.op != "inject-fault":
            continue
        asset, seen = control.target, onset + detect_s
        on_site = seen + TRAVEL_S[W]
        if hold:  # what-if: pressure support while it flows, the valves once the crew is there
            support = planner(W, "restore", asset, ())
            isolate = planner(W, "isolate", asset, _sent(support))
            restore = planner(W, "restore", asset, _sent(support, isolate))
            events += [(seen, _apply(support, log, seen)), (on_site, _apply(isolate, log, on_site)),
                       (on_site, _apply(restore, log, on_site))]
            sent = _sent(support, isolate, restore)
        else:
            isolate = planner(W, "isolate", asset, ())
            restore = planner(W, "restore", asset, _sent(isolate))
            events += [(seen, _apply(isolate, log, seen)), (seen, _apply(restore, log, seen))]
            sent = _sent(isolate, restore)
        repaired = on_site + REPAIR_S[W]
        events.append((repaired, lambda r, a=asset: r.twin.clear_fault(a)))

        def reintegrate(runner: TwinRunner, a: str = asset, s: tuple[dict[str, Any], ...] = sent,
                        at: float = repaired + detect_s) -> None:
            _apply(planner(W, "reintegrate", a, s), log, at)(runner)

        events.append((repaired + detect_s, reintegrate))
    return events


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", default="storm-day")
    parser.add_argument("--asset", default=None, help="move the scenario's water fault onto this pipe")
    parser.add_argument("--detect-s", type=float, default=60.0,
                        help="field seconds from onset to the plans being applied (issue 16's detection target)")
    parser.add_argument("--hold", action="store_true", help="also run the hold-until-the-crew-is-on-site what-if")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    chosen = scenario(args.scenario)
    controls = [(s.at_s, s.control if args.asset is None or s.control.op != "inject-fault"
                 else s.control.model_copy(update={"target": args.asset}))
                for s in chosen.steps if s.sector is W]
    if not any(c.op == "inject-fault" for _, c in controls):
        print(f"error: scenario {args.scenario!r} has no water fault", file=sys.stderr)
        return 2
    duration = chosen.duration_s
    plan = [(at, W, c) for at, c in controls]
    crews = run_baseline(plan, sectors=[W], duration_s=duration)[W]
    nobody = run_baseline(plan, sectors=[W], duration_s=duration, manual_crews=False)[W]
    log: list[dict[str, Any]] = []
    managed = play(managed_events(controls, args.detect_s, False, log), duration)
    # the baseline's leak volume: the same crew, replayed here (its availability must match run_baseline's)
    from sectors.water.plugin import PLUGIN

    crew_events: list[tuple[float, Action]] = [(at, lambda r, c=c: c.apply_to(r.twin)) for at, c in controls]
    undo: dict[str, Callable[[], None] | None] = {}
    for at, c in controls:
        if c.op == "inject-fault" and PLUGIN.manual_response is not None:
            respond, arrive = PLUGIN.manual_response, at + PLUGIN.crew_travel_s
            crew_events.append((arrive, lambda r, t=c.target, f=respond: undo.update({t: f(r.twin, t)})))
            crew_events.append((arrive + PLUGIN.crew_repair_s, lambda r, t=c.target: _repair(r, t, undo)))
    replay = play(crew_events, duration)
    report: dict[str, Any] = {
        "scenario": args.scenario, "window_s": duration, "detect_s": args.detect_s,
        "faults": [f"{at:g} s {c.op} {c.kind} {c.target}".strip() for at, c in controls],
        "managed": managed,
        "baseline": {"availability": crews.availability, "min_availability": crews.min_availability,
                     "customers_affected_max": crews.customers_affected_max, "leak_m3": replay["leak_m3"],
                     "replayed_availability": replay["availability"]},
        "baseline_nobody_comes": {"availability": nobody.availability,
                                  "customers_affected_max": nobody.customers_affected_max},
        "plans": log,
    }
    if args.hold:
        held: list[dict[str, Any]] = []
        report["what_if_hold"] = {**play(managed_events(controls, args.detect_s, True, held), duration), "plans": held}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"{args.scenario}: {'; '.join(report['faults'])}; window {duration:g} s, plans {args.detect_s:g} s after onset")
    rows = [("managed (controller)", managed), ("automation off, crew", report["baseline"]),
            ("automation off, nobody", report["baseline_nobody_comes"])]
    if args.hold:
        rows.append(("what-if: hold until crew", report["what_if_hold"]))
    for name, row in rows:
        leak = row.get("leak_m3")
        print(f"  {name:26s} availability {row['availability']:.5f}  worst customers affected "
              f"{row['customers_affected_max']:>6}" + ("" if leak is None else f"  leaked {leak:8.0f} m3"))
    for entry in log:
        print(f"  plan at {entry['at_s']:g} s ({entry['purpose']}): {', '.join(entry['commands']) or '-'} — {entry['reason']}")
    return 0


def _repair(runner: TwinRunner, target: str, undo: dict[str, Callable[[], None] | None]) -> None:
    runner.twin.clear_fault(target)
    reopen = undo.pop(target, None)
    if reopen is not None:
        reopen()


if __name__ == "__main__":
    raise SystemExit(main())
