"""A scenario's KPIs, computed from what the run recorded: tracks, service feed, baseline, audit.

Each time KPI is the 95th percentile over the run's faults (nearest-rank, so with few faults it
is the slowest one), in wall-clock seconds; faults that never reached a step do not count towards
its time but show in `faults` (detected < injected says more than a percentile could).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from qeaims.scenarios.runner import FaultTrack, ScenarioRun

__all__ = ["TARGETS", "build_report", "p95", "tracks_table"]

# the seed's future-state targets the report is read against
TARGETS = {"detection_time_s": (60, 180), "cross_system_response_s": 12 * 60, "uptime": 0.99998}


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile; None when nothing was measured."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3)


def _times(tracks: Sequence[FaultTrack], attr: str) -> list[float]:
    out = []
    for t in tracks:
        v = t.since(getattr(t, attr))
        if v is not None:
            out.append(v)
    return out


def build_report(run: ScenarioRun, *, baseline: dict[str, Any] | None, audit: dict[str, Any]) -> dict[str, Any]:
    physical = [t for t in run.tracks if not t.is_attack]
    isolable = [t for t in physical if t.node is not None]
    kpis: dict[str, Any] = {
        "detection_time_s": p95(_times(run.tracks, "detected")),
        "isolation_time_s": p95(_times(isolable, "isolated")),
        "cross_system_response_s": p95(_times(isolable, "response")),
        "restoration_time_s": p95(_times(isolable, "restored")),
        "availability": {k: round(v, 6) for k, v in (run.feed.availability() if run.feed else {}).items()},
        "baseline": baseline,
        "clock": "wall seconds from onset to the block that recorded the step; twins ran at "
                 f"{run.speed:g}x real time",
    }
    faults = {
        "injected": len(run.tracks),
        "detected": sum(t.detected is not None for t in run.tracks),
        "isolated": sum(t.isolated is not None for t in isolable),
        "restored": sum(t.restored is not None for t in isolable),
        "reintegrated": sum(t.reintegrated is not None for t in isolable),
        "wrongful_isolations": len(run.wrongful),
        "attacks_isolated": sum(t.isolated is not None for t in run.tracks if t.is_attack),
        "attacks_quarantined": sum(t.quarantined is not None for t in run.tracks if t.is_attack),
        "wrongful_quarantines": len(run.wrongful_quarantines),
    }
    return {
        "scenario": run.scenario.name, "speed": run.speed, "kpis": kpis, "faults": faults,
        "wrongful": run.wrongful, "wrongful_quarantines": run.wrongful_quarantines, "byzantine": run.byzantine, "audit": audit,
        "tracks": [_track(t) for t in run.tracks], "targets": TARGETS,
    }


def _track(t: FaultTrack) -> dict[str, Any]:
    return {"step": t.step.label, "node": t.node, "subject": t.subject, "attack": t.is_attack, "error": t.error,
            "proposal": t.proposal, **{k: t.since(getattr(t, k)) for k in (
                "detected", "isolated", "response", "restored", "repaired", "reintegrated", "quarantined",
                "lifted")}}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"+{value:.0f}s"


def _short(t: FaultTrack) -> str:
    """``water pipe-break pipe:159``: what broke, in a few words (the sector and the fault or attack)."""
    c = t.step.control
    return f"{t.step.sector.value} {c.kind} {c.target}".replace("  ", " ")


def tracks_table(run: ScenarioRun, title: str) -> Table:
    """One row per injected fault; fits an 80-column terminal (times are seconds after the onset)."""
    table = Table(title=title, caption="seconds after each fault's onset; protect = dependants protected; "
                                       "for an attack, isolate = sensor quarantined (q), back = quarantine lifted")
    table.add_column("fault", overflow="fold", ratio=1, min_width=16)
    table.add_column("node", overflow="fold", max_width=14)
    for column in ("detect", "isolate", "protect", "restore", "repair", "back"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in run.tracks:
        label = _short(t) + (f" [red]({t.error})[/]" if t.error else "")
        if t.is_attack:
            table.add_row(label, "(attack)", _fmt(t.since(t.detected)), _fmt(t.since(t.quarantined)).replace("s", "s q"), "-",
                          "-", "-", _fmt(t.since(t.lifted)))
            continue
        table.add_row(label, t.node or "-", _fmt(t.since(t.detected)),
                      _fmt(t.since(t.isolated)), _fmt(t.since(t.response)), _fmt(t.since(t.restored)),
                      _fmt(t.since(t.repaired)), _fmt(t.since(t.reintegrated)))
    return table
