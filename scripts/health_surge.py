"""The storm day's hospital surge offline, without and with the controller's diversion.

Drives `sectors.healthcare.twin.HealthcareTwin` the way the storm day does (its admission surge at
``hospital-2``, at 3600 s, the scenario ending at 10,200 s; read from the scenario) twice per seed: nobody responding (the
automation-off baseline: `sectors.baseline` declares no manual response for healthcare) and with
``hospital-2/admissions divert`` applied ``--divert-after`` seconds after the onset (the controller's
response, `controller._responses_health`; its field-time latency is a parameter here, not measured).
Prints the time-weighted availability of each (`sectors.service.service_level`, sampled every
report period as the baseline does), and with ``--trace`` the hospitals' EDs every 15 minutes.

    PYTHONPATH=. python scripts/health_surge.py --seeds 0 1 2 3 4 --trace 0
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass

from core.messages import FaultKind, Sector
from qeaims.scenarios.definitions import scenario
from sectors.healthcare.twin import HealthcareTwin
from sectors.service import service_level

_STORM = scenario("storm-day")
_SURGE = next(s for s in _STORM.steps if s.sector == Sector.HEALTHCARE)
ONSET_S, END_S, PERIOD_S = float(_SURGE.at_s), float(_STORM.duration_s), 30.0
SEVERITY = float(str(_SURGE.control.params["severity"]))  # the storm day's (`qeaims.scenarios.definitions`)


@dataclass(frozen=True)
class Run:
    availability: float
    surge_availability: float  # over the surge only (onset to end)
    min_availability: float
    late_max: int
    late_patient_min: float  # patients late (past their triage target, or for a bed past 4 h) x minutes
    trace: tuple[str, ...]


def run(seed: int, *, severity: float, divert_after: float | None, end_s: float = END_S,
        onset_s: float = ONSET_S, trace: bool = False) -> Run:
    """One storm-day healthcare run; ``divert_after`` None is the baseline (no response)."""
    twin = HealthcareTwin(seed=seed)
    weighted = surge = 0.0
    worst, late_max, late_min, lines = 1.0, 0, 0.0, []
    now = 0.0
    events = [(onset_s, "surge")]
    if divert_after is not None:
        events.append((onset_s + divert_after, "divert"))
    while now < end_s:
        nxt = min([now + PERIOD_S, end_s, *(t for t, _ in events if t > now)])
        twin.advance(nxt - now)
        dt, now = nxt - now, nxt
        for t, what in events:
            if t == now and what == "surge":
                twin.inject_fault(FaultKind.ADMISSION_SURGE, "hospital-2", severity=severity)
            elif t == now:
                twin.apply(twin.command("hospital-2/admissions", "divert"))
        level = service_level(Sector.HEALTHCARE, twin)
        weighted += level.availability * dt
        if now > onset_s:
            surge += level.availability * dt
        worst = min(worst, level.availability)
        late = int(level.detail["late_unseen"] + level.detail["late_for_bed"])
        late_max, late_min = max(late_max, late), late_min + late * dt / 60.0
        if trace and now % 900 == 0:
            cells = []
            for hid, h in twin.hospitals.items():
                unseen, boarding = h.late(now)
                cells.append(f"{hid}: ed {len(h.ed_queue):2d} wait/{h.ed_in_bay:2d}of{h.ed_bays} bays, "
                             f"late {unseen:2d}+{boarding}, longest {h.ed_longest_wait_s(now) / 60:5.1f} min, "
                             f"beds free {h.free(False):3d}/{h.free(True):2d}icu, in {h.diverted_in}")
            lines.append(f"t={now / 3600:5.2f} h avail {level.availability:.4f} | " + " | ".join(cells))
    return Run(weighted / end_s, surge / (end_s - onset_s), worst, late_max, late_min, tuple(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--severity", type=float, default=SEVERITY, help="surge factor; the storm day's by default")
    ap.add_argument("--divert-after", type=float, default=120.0, help="field seconds from onset to diversion")
    ap.add_argument("--end", type=float, default=END_S, help="scenario end (s); the storm day's is 10,200")
    ap.add_argument("--onset", type=float, default=ONSET_S, help="surge onset (s); the storm day's is 3600")
    ap.add_argument("--trace", type=int, nargs="*", default=[], help="seeds to print every 15 minutes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:
        base, ctrl = (run(seed, severity=args.severity, divert_after=after, end_s=args.end, onset_s=args.onset,
                          trace=seed in args.trace) for after in (None, args.divert_after))
        for name, r in (("baseline", base), ("controller", ctrl)):
            for line in r.trace:
                print(f"[seed {seed} {name}] {line}")
        rows.append({"seed": seed, "baseline": base.availability, "controller": ctrl.availability,
                     "baseline_surge": base.surge_availability, "controller_surge": ctrl.surge_availability,
                     "baseline_min": base.min_availability, "controller_min": ctrl.min_availability,
                     "baseline_late_max": base.late_max, "controller_late_max": ctrl.late_max,
                     "baseline_late_patient_min": base.late_patient_min,
                     "controller_late_patient_min": ctrl.late_patient_min})
    summary = {k: statistics.mean(r[k] for r in rows) for k in rows[0] if k != "seed"}
    if args.json:
        print(json.dumps({"runs": rows, "mean": summary}, indent=1))
        return
    for row in rows:
        print(f"seed {row['seed']}: availability baseline {row['baseline']:.4f} controller {row['controller']:.4f} | "
              f"during the surge {row['baseline_surge']:.4f} vs {row['controller_surge']:.4f} | "
              f"min {row['baseline_min']:.4f} vs {row['controller_min']:.4f} | "
              f"most late at once {row['baseline_late_max']} vs {row['controller_late_max']} | "
              f"late patient-min {row['baseline_late_patient_min']:.0f} vs {row['controller_late_patient_min']:.0f}")
    print("mean: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
