"""Who a water main break leaves without service, while it flows and once it is shut, and for how long
under each response: the storm day's question "why does the controller lose water availability to
the manual crew?", answered junction by junction on the water twin alone (no city, no chain).

    PYTHONPATH=. python scripts/water_break_tradeoff.py [--pipe pipe:159] [--onset-s 1800]
        [--window-s 10200] [--detect-s 60] [--valves-n 1] [--survey] [--json]

**States** (one report period after the change, from the twin at the onset): each customer junction
of the break's segment and of the dead ends behind it, with its pressure and whether it is served
(≥ the required 14.06 m), low (partly served) or dry, (a) with the break flowing, (b) with the
segment's valves shut, (c) shut and then the controller's restore plan (re-feed, pressure support).

**Arms** over the window, each a fresh twin stepped at the sector's 30-second report period, each
period valued at the level at its end (as `sectors.baseline.run_baseline` weights it):

- ``crew``: automation off: the crew arrives ``crew_travel_s`` after the onset and shuts the valves
  (the plug-in's ``manual_response``, the baseline's code), repairs ``crew_repair_s`` later;
- ``controller``: ``--detect-s`` after the onset the controller's isolate and restore plans
  (`controller._responses_water`, made on the twin as it is then), its crew dispatched then;
- ``hold``: a what-if: the restore plan (pressure support) at detection with the break flowing, and
  the isolation only when the crew is on site.

The arms reproduce `scripts/water_storm_availability.py` (which goes through `run_baseline` and the
controller's planner) for the storm day; this one also takes ``--valves-n`` (the valve layer's
N-n rule, `sectors.water.segments`: 1 is the city's layer, 2 the strategic N-2 it kept before) to show
what the valve layer decides.

``--survey``: every Net3 pipe broken at the onset: customers affected with it flowing, cut by its
isolation, and left after the controller's restore plan, one period on each.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from controller import _responses_water as responses
from core.messages import ActuatorCommand, FaultKind
from sectors._twin import TwinError
from sectors.water import WaterTwin
from sectors.water.plugin import PLUGIN

PERIOD_S = PLUGIN.report_period_s
Action = Callable[[WaterTwin], None]


def _split(twin: WaterTwin) -> tuple[int, int, float]:
    """(customers dry, customers low, leak m³/s) now: the water service level's own counts."""
    service = twin.service()
    return (service.customers_without_water, sum(twin.customers.get(j, 0) for j in service.low_pressure),
            service.leak_m3s)


def _apply(twin: WaterTwin, commands: Sequence[ActuatorCommand]) -> None:
    for command in commands:
        twin.apply(command)


def _isolate_and_restore(twin: WaterTwin, target: str) -> list[str]:
    isolate = responses.isolate_plan(twin, target)
    _apply(twin, isolate.commands)
    restore = responses.restore_plan(twin, target)
    _apply(twin, restore.commands)
    return [f"{c.asset_id} {c.action}" for c in (*isolate.commands, *restore.commands)]


def states(at_onset: WaterTwin, target: str) -> dict[str, Any]:
    """Each junction of the break's segment and its stranded dead ends: pressure and state, flowing,
    shut, and shut with the controller's restore plan (one report period after each)."""
    broken = copy.deepcopy(at_onset)
    broken.inject_fault(FaultKind.PIPE_BREAK, target)
    plan = broken.isolation_plan(target)
    watched = [*plan.junctions, *plan.stranded]
    out: dict[str, Any] = {"segment": plan.segment, "valves": [v.valve_id for v in plan.valves],
                           "segment_junctions": list(plan.junctions), "stranded": list(plan.stranded)}

    def snapshot(twin: WaterTwin) -> dict[str, Any]:
        dry, low, leak = _split(twin)
        service = twin.service()
        junctions = {}
        for j in watched:
            state = ("no customers" if j not in twin.customers else "dry" if j in service.without_water
                     else "low" if j in service.low_pressure else "served")
            junctions[j] = {"customers": twin.customers.get(j, 0), "state": state,
                            "pressure_m": round(float(twin.wn.get_node(j).pressure), 1)}
        return {"customers_dry": dry, "customers_low": low, "leak_m3s": round(leak, 3), "junctions": junctions}

    flowing = copy.deepcopy(broken)
    flowing.step(PERIOD_S)
    shut = copy.deepcopy(broken)
    shut.isolate(target)
    shut.step(PERIOD_S)
    managed = copy.deepcopy(broken)
    sent = _isolate_and_restore(managed, target)
    managed.step(PERIOD_S)
    out.update(flowing=snapshot(flowing), shut=snapshot(shut), shut_and_restored=snapshot(managed),
               controller_commands=sent)
    return out


def _run(events: list[tuple[int, Action]], window_s: int, valves_n: int) -> dict[str, float]:
    twin = WaterTwin(valves_n=valves_n)
    due = sorted(events, key=lambda e: e[0])
    total = len(twin.customers) and sum(twin.customers.values())
    now, weighted, dry_s, low_s, leak = 0, 0.0, 0.0, 0.0, 0.0
    while due and due[0][0] <= now:
        due.pop(0)[1](twin)
    while now < window_s:
        nxt = min([window_s, (now // PERIOD_S + 1) * PERIOD_S, *(at for at, _ in due if at > now)])
        twin.step(nxt - now)
        dry, low, rate = _split(twin)
        weighted += (total - dry - low) / total * (nxt - now)
        dry_s, low_s, leak = dry_s + dry * (nxt - now), low_s + low * (nxt - now), leak + rate * (nxt - now)
        now = nxt
        while due and due[0][0] <= now:
            due.pop(0)[1](twin)
    return {"availability": round(weighted / window_s, 5), "customer_hours_dry": round(dry_s / 3600),
            "customer_hours_low": round(low_s / 3600), "leak_m3": round(leak)}


def arms(target: str, onset: int, window_s: int, detect_s: int, valves_n: int) -> dict[str, dict[str, float]]:
    """The crew (automation off), the controller, and the hold what-if over the window."""
    travel, repair = int(PLUGIN.crew_travel_s), int(PLUGIN.crew_repair_s)

    def inject(twin: WaterTwin) -> None:
        twin.inject_fault(FaultKind.PIPE_BREAK, target)

    def crew_shuts(twin: WaterTwin) -> None:
        twin.isolate(target, decision_ref="manual-crew")

    def repaired(twin: WaterTwin) -> None:  # the crew's repair; valves re-opened, links back to auto
        twin.clear_fault(target)
        _apply(twin, responses.reintegrate_plan(twin, target).commands)

    def controller(twin: WaterTwin) -> None:
        _isolate_and_restore(twin, target)

    def support(twin: WaterTwin) -> None:
        _apply(twin, responses.restore_plan(twin, target).commands)

    seen = onset + detect_s
    return {
        "crew": _run([(onset, inject), (onset + travel, crew_shuts), (onset + travel + repair, repaired)],
                     window_s, valves_n),
        "controller": _run([(onset, inject), (seen, controller), (seen + travel + repair, repaired)],
                           window_s, valves_n),
        "hold": _run([(onset, inject), (seen, support), (seen + travel, controller),
                      (seen + travel + repair, repaired)], window_s, valves_n),
    }


def survey(onset: int, valves_n: int) -> list[dict[str, Any]]:
    """Every pipe broken at ``onset``: affected flowing, cut shut, left after the restore plan."""
    base = WaterTwin(valves_n=valves_n)
    base.step(onset)
    rows: list[dict[str, Any]] = []
    for pipe in base.wn.pipe_name_list:
        target = f"pipe:{pipe}"
        twin = copy.deepcopy(base)
        try:
            twin.inject_fault(FaultKind.PIPE_BREAK, target)
            twin.isolation_plan(target)
            flowing, shut = copy.deepcopy(twin), copy.deepcopy(twin)
            flowing.step(PERIOD_S)
            shut.isolate(target)
            shut.step(PERIOD_S)
            sent = _isolate_and_restore(twin, target)
            twin.step(PERIOD_S)
        except TwinError as exc:
            rows.append({"pipe": target, "error": str(exc)})
            continue
        f, s, m = _split(flowing), _split(shut), _split(twin)
        rows.append({"pipe": target, "flowing_affected": f[0] + f[1], "shut_affected": s[0] + s[1],
                     "controller_affected": m[0] + m[1], "controller_commands": sent})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pipe", default="pipe:159")
    parser.add_argument("--onset-s", type=int, default=1800, help="the storm day's break: 1800 s")
    parser.add_argument("--window-s", type=int, default=10200, help="the storm day's window: 10,200 s")
    parser.add_argument("--detect-s", type=int, default=60)
    parser.add_argument("--valves-n", type=int, default=1, help="valve layer N-n rule (1: the city's)")
    parser.add_argument("--survey", action="store_true")
    parser.add_argument("--no-arms", action="store_true", help="states only (fast)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    at_onset = WaterTwin(valves_n=args.valves_n)
    at_onset.step(args.onset_s)
    report: dict[str, Any] = {"pipe": args.pipe, "onset_s": args.onset_s, "window_s": args.window_s,
                              "detect_s": args.detect_s, "valves_n": args.valves_n,
                              "states": states(at_onset, args.pipe)}
    if not args.no_arms:
        report["arms"] = arms(args.pipe, args.onset_s, args.window_s, args.detect_s, args.valves_n)
    if args.survey:
        report["survey"] = survey(args.onset_s, args.valves_n)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    st = report["states"]
    print(f"{args.pipe}: segment {st['segment']} shut by {', '.join(st['valves'])}; valve layer N-{args.valves_n}")
    for name in ("flowing", "shut", "shut_and_restored"):
        snap = st[name]
        print(f"  {name:18s} dry {snap['customers_dry']:>6}  low {snap['customers_low']:>6}  leak {snap['leak_m3s']} m3/s")
        print("      " + "  ".join(f"{j}:{v['customers']}/{v['state']}@{v['pressure_m']}m" for j, v in snap["junctions"].items()))
    print(f"  controller commands: {', '.join(st['controller_commands'])}")
    for name, row in report.get("arms", {}).items():
        print(f"  {name:10s} availability {row['availability']:.5f}  customer-hours dry {row['customer_hours_dry']:>6} "
              f"low {row['customer_hours_low']:>6}  leaked {row['leak_m3']:>5} m3")
    for row in report.get("survey", []):
        print(f"  {row['pipe']:10s} " + (row["error"] if "error" in row else
              f"flowing {row['flowing_affected']:>6}  shut {row['shut_affected']:>6}  controller {row['controller_affected']:>6}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
