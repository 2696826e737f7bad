"""Choosing a restoration: power-flow-checked candidates, then load shedding when none fits.

A candidate (:class:`~controller._electricity_search.Candidate`) that keeps every energised bus
at ≥ ``v_min`` and every branch ≤ ``max_loading`` serves all the load it reaches. One that breaks a
limit is repaired by shedding loads of the restored region, least critical first and, within a
priority level, the load on the lowest-voltage bus first (the far end of the pick-up path, which
also relieves every overloaded branch upstream of it); afterwards each shed load is tried back,
most critical and largest first. Candidates are then compared by the load they serve per
priority level, most critical level first; ties go to fewer switching operations and then to
lower losses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from controller._electricity_model import Feeder, Flow
from controller._electricity_search import Candidate

__all__ = ["Choice", "rank", "shed_to_fit"]


@dataclass(frozen=True)
class Choice:
    """A candidate with the loads (bus indices) it sheds and its score."""

    candidate: Candidate
    shed: tuple[int, ...]
    flow: Flow
    score: tuple[float, ...]  # served kW per priority level, most critical first; then -ops, -losses

    @property
    def operations(self) -> int:
        return len(self.candidate.close) + len(self.candidate.open) + len(self.shed)


def _priorities(feeder: Feeder, priority: Mapping[str, int]) -> np.ndarray:
    return np.array([int(priority.get(b, 0)) for b in feeder.buses])


def served_by_level(feeder: Feeder, flow: Flow, shed: Iterable[int], levels: np.ndarray) -> tuple[float, ...]:
    served = np.where(flow.energised, feeder.demand_kw, 0.0)
    served[list(shed)] = 0.0
    return tuple(float(served[levels == level].sum()) for level in sorted(set(levels.tolist()), reverse=True))


def shed_to_fit(
    feeder: Feeder, candidate: Candidate, region: AbstractSet[int], levels: np.ndarray, *, v_min: float, max_loading: float
) -> tuple[tuple[int, ...], Flow] | None:
    """Loads of ``region`` (bus indices) to shed so that ``candidate`` keeps the limits, or None
    when even shedding all of them does not."""
    flow = candidate.flow
    shed: list[int] = []
    pool = [b for b in region if flow.energised[b] and feeder.demand_kw[b] > 0.0]
    while flow.violation(v_min=v_min, max_loading=max_loading) > 0.0:
        left = [b for b in pool if b not in shed]
        if not left:
            return None
        lowest = min(levels[b] for b in left)
        victim = min((b for b in left if levels[b] == lowest), key=lambda b: (flow.vm_pu[b], -feeder.demand_kw[b]))
        shed.append(victim)
        flow = feeder.solve(candidate.closed, shed)
    for b in sorted(shed, key=lambda b: (-levels[b], -feeder.demand_kw[b])):
        trial = [s for s in shed if s != b]
        result = feeder.solve(candidate.closed, trial)
        if result.violation(v_min=v_min, max_loading=max_loading) == 0.0:
            shed, flow = trial, result
    return tuple(sorted(shed)), flow


def rank(
    feeder: Feeder, candidates: Iterable[Candidate], region: AbstractSet[int], priority: Mapping[str, int], *,
    v_min: float, max_loading: float, fit_at_most: int = 30,
) -> list[Choice]:
    """Candidates made to fit the limits (shedding where needed), best first.

    ``candidates`` come grouped by the number of ties they close, fewest first. Once a group holds
    a candidate that serves the whole region within the limits, later groups (more switching for
    no more load) are not looked at. Otherwise shedding is tried on at most ``fit_at_most``
    limit-breaking candidates, those that could serve the most and break the limits least first,
    and stops as soon as none left could beat the best found."""
    levels = _priorities(feeder, priority)
    region_idx = sorted(region)
    out: list[Choice] = []
    over: list[Candidate] = []
    for _, group in itertools.groupby(candidates, key=lambda c: len(c.close)):
        for candidate in group:
            if candidate.flow.violation(v_min=v_min, max_loading=max_loading) == 0.0:
                out.append(_choice(feeder, candidate, (), candidate.flow, levels))
            else:
                over.append(candidate)
        if any(c.flow.energised[region_idx].all() for c in out):
            return sorted(out, key=lambda c: c.score, reverse=True)

    def bound(candidate: Candidate) -> tuple[float, ...]:
        return served_by_level(feeder, candidate.flow, (), levels)

    over.sort(key=lambda c: (bound(c), -c.flow.violation(v_min=v_min, max_loading=max_loading)), reverse=True)
    n_levels = len(set(levels.tolist()))
    for candidate in over[:fit_at_most]:
        best = max((c.score[:n_levels] for c in out), default=None)
        if best is not None and bound(candidate) <= best:
            break  # shedding only lowers what a candidate serves
        fitted = shed_to_fit(feeder, candidate, region, levels, v_min=v_min, max_loading=max_loading)
        if fitted is not None:
            out.append(_choice(feeder, candidate, *fitted, levels))
    return sorted(out, key=lambda c: c.score, reverse=True)


def _choice(feeder: Feeder, candidate: Candidate, shed: tuple[int, ...], flow: Flow, levels: np.ndarray) -> Choice:
    ops = len(candidate.close) + len(candidate.open) + len(shed)
    return Choice(candidate, shed, flow, (*served_by_level(feeder, flow, shed, levels), -float(ops), -flow.losses_kw))
