"""Water availability over a scenario's window, the controller's response against automation off,
measured on the water twin alone (no city, no chain, no oracles).

    PYTHONPATH=. python scripts/water_storm_availability.py [--scenario storm-day] [--asset pipe:159]
                                                            [--detect-s 60] [--hold] [--json]

What runs, each on a fresh water twin stepped at the sector's report period:

- **automation off**: `sectors.baseline.run_baseline`, the code the city's report uses, with the crew's
  manual response (the water plug-in's: the crew arrives ``crew_travel_s`` after the onset and shuts
  the break's valves by hand) and, for comparison, without it (nobody ever comes: the old baseline);
- **managed**: `controller.managed_window`: the scenario's water controls, and ``--detect-s`` after
  each fault's onset the controller's plans made the way the city makes them
  (`controller.planning.TwinPlanner`, which breaks its own model and calls
  `controller.responses.plan_for`): isolate, then restore with the isolate commands replayed. The
  crew, dispatched then, repairs after travel + repair (`controller.crews`), and the reintegrate
  plan follows ``--detect-s`` later (the oracles' vote);
- ``--hold`` adds a what-if the city does not run: the valves are shut only once the crew is on site,
  and until then the restore plan made on a model with the break still flowing (pressure support).

Availability is weighted in time as `run_baseline` weights it (each period valued at the level at its
end); the leak volume (m³) is the time integral of the service level's leak rate, weighted the same way. ``--asset`` moves the scenario's water fault
onto another pipe (same times), to see the responses where re-routing and pressure matter.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from controller.managed_window import PlanLog, managed_events, play
from core.messages import Sector
from qeaims.scenarios.definitions import scenario
from sectors.baseline import run_baseline

W = Sector.WATER


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    log = PlanLog()
    managed = play(W, managed_events(W, controls, detect_s=args.detect_s, log=log), duration)

    def row(availability: float, worst: int, integrals: dict[str, float] | Any) -> dict[str, float]:
        return {"availability": round(availability, 5), "customers_affected_max": worst,
                "leak_m3": round(float(integrals.get("leak_m3s", 0.0)), 1),
                "customer_hours_without_water": round(float(integrals.get("customers_without_water", 0.0)) / 3600),
                "customer_hours_low_pressure": round(float(integrals.get("customers_low_pressure", 0.0)) / 3600)}

    rows = {"managed": row(managed.availability, managed.customers_affected_max, managed.integrals),
            "baseline": row(crews.availability, crews.customers_affected_max, crews.integrals),
            "baseline_nobody_comes": row(nobody.availability, nobody.customers_affected_max, nobody.integrals)}
    held = PlanLog()
    if args.hold:
        hold = play(W, managed_events(W, controls, detect_s=args.detect_s, log=held, hold=True), duration)
        rows["what_if_hold"] = row(hold.availability, hold.customers_affected_max, hold.integrals)
    report: dict[str, Any] = {
        "scenario": args.scenario, "window_s": duration, "detect_s": args.detect_s,
        "faults": [f"{at:g} s {c.op} {c.kind} {c.target}".strip() for at, c in controls],
        **rows, "plans": log.entries, **({"what_if_hold_plans": held.entries} if args.hold else {}),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"{args.scenario}: {'; '.join(report['faults'])}; window {duration:g} s, "
          f"plans {args.detect_s:g} s after onset")
    names = {"managed": "managed (controller)", "baseline": "automation off, crew",
             "baseline_nobody_comes": "automation off, nobody", "what_if_hold": "what-if: hold until crew"}
    for key, values in rows.items():
        print(f"  {names[key]:26s} availability {values['availability']:.5f}  worst affected "
              f"{values['customers_affected_max']:>6}  leaked {values['leak_m3']:7.0f} m3  customer-hours "
              f"dry {values['customer_hours_without_water']:>6} low {values['customer_hours_low_pressure']:>6}")
    for entry in log.entries:
        print(f"  plan at {entry['at_s']:g} s ({entry['purpose']}): {', '.join(entry['commands']) or '-'} "
              f"— {entry['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
