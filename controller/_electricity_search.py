"""Searches over switch states on the fast model (:mod:`._electricity_model`).

- :func:`min_loss` — minimum-loss radial configuration: Shirmohammadi & Hong's sequential switch
  opening (close every switch, solve the meshed feeder, open the closed branch with the least
  current that still leaves every bus fed, repeat until radial) gives one start, the current
  configuration another; from each, branch exchange (Baran & Wu; Civanlar et al.) closes an open
  switch and opens a branch on the loop it forms while that lowers the losses, taking the best
  exchange each round, within the voltage and loading limits. The better end state wins.
- :func:`restorations` — candidate switch states that re-energise a dead region through tie
  switches: close one or more usable open switches, then (where that closes a loop) open a
  sectionalising switch inside the dead region on each loop, so that the result is radial.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from controller._electricity_model import Feeder, Flow

__all__ = ["Candidate", "min_loss", "restorations"]


def min_loss(feeder: Feeder, start: NDArray[np.bool_], *, locked: AbstractSet[int] = frozenset()) -> tuple[NDArray[np.bool_], Flow]:
    """The lowest-loss radial state found from ``start`` and from sequential opening; switches in
    ``locked`` (indices) keep their state in ``start``."""
    best: tuple[NDArray[np.bool_], Flow] | None = None
    for origin in (start.copy(), _sequential_opening(feeder, start, locked)):
        state, flow = _branch_exchange(feeder, origin, locked)
        if best is None or flow.losses_kw < best[1].losses_kw - 1e-9:
            best = state, flow
    assert best is not None
    return best


def _sequential_opening(feeder: Feeder, start: NDArray[np.bool_], locked: AbstractSet[int]) -> NDArray[np.bool_]:
    closed = start.copy()
    free = [k for k in range(len(closed)) if k not in locked]
    closed[free] = True
    live = feeder.energised(closed)
    while not feeder.is_radial(closed):
        flow = feeder.solve(closed)
        graph = feeder.graph(closed)
        bridges = {frozenset(e) for e in nx.bridges(nx.Graph(graph))}
        in_loop = [
            k for k in free
            if closed[k] and (graph.number_of_edges(*feeder.ends[k]) > 1 or frozenset(feeder.ends[k]) not in bridges)
        ]
        if not in_loop:
            break
        weakest = min(in_loop, key=lambda k: float(flow.loading[k] * feeder.rating_a[k]))
        closed[weakest] = False
        if not np.array_equal(feeder.energised(closed), live):  # cannot happen for a loop branch
            closed[weakest] = True
            break
    return closed


def _loop(feeder: Feeder, closed: NDArray[np.bool_], tie: int) -> list[int]:
    """Branches (indices) on the loop that closing open branch ``tie`` would form."""
    graph = feeder.graph(closed)
    a, b = feeder.ends[tie]
    if not nx.has_path(graph, a, b):
        return []
    path = nx.shortest_path(graph, a, b)
    return [min(graph[u][v]) for u, v in itertools.pairwise(path)]


def _branch_exchange(feeder: Feeder, closed: NDArray[np.bool_], locked: AbstractSet[int]) -> tuple[NDArray[np.bool_], Flow]:
    flow = feeder.solve(closed)
    while True:
        best: tuple[NDArray[np.bool_], Flow] | None = None
        for tie in np.flatnonzero(~closed):
            if tie in locked:
                continue
            for branch in _loop(feeder, closed, int(tie)):
                if branch in locked:
                    continue
                trial = closed.copy()
                trial[tie], trial[branch] = True, False
                result = feeder.solve(trial)
                if result.violation() > flow.violation() + 1e-12 or not np.array_equal(result.energised, flow.energised):
                    continue
                if result.losses_kw < (best[1] if best else flow).losses_kw - 1e-6:
                    best = trial, result
        if best is None:
            return closed, flow
        closed, flow = best


@dataclass(frozen=True)
class Candidate:
    """A restoration state: switches to close and to open (indices) and the fast model's flow."""

    close: tuple[int, ...]
    open: tuple[int, ...]
    closed: NDArray[np.bool_]
    flow: Flow


def restorations(
    feeder: Feeder, closed: NDArray[np.bool_], dead: AbstractSet[int], barred: AbstractSet[int], *, max_ties: int = 3
) -> Iterator[Candidate]:
    """Radial states that re-energise buses of ``dead`` (bus indices): close 1..``max_ties`` open
    switches that touch the dead region (never one in ``barred``: the isolation boundary), then
    open one sectionalising switch inside the dead region per loop formed. Yields by the number of
    ties closed, so fewer switching operations come first."""
    usable = [
        k for k in np.flatnonzero(~closed)
        if k not in barred and (feeder.ends[k][0] in dead or feeder.ends[k][1] in dead)
    ]
    reach = closed.copy()
    reach[usable] = True
    if not feeder.energised(reach)[list(dead)].any():
        return  # no tie leads from the dead region to a source
    seen: set[bytes] = set()
    for count in range(1, min(max_ties, len(usable)) + 1):
        for ties in itertools.combinations(usable, count):
            trial = closed.copy()
            trial[list(ties)] = True
            for candidate in _break_loops(feeder, trial, tuple(int(t) for t in ties), (), dead, barred):
                key = candidate.closed.tobytes()
                if key not in seen:
                    seen.add(key)
                    yield candidate


def _break_loops(
    feeder: Feeder, closed: NDArray[np.bool_], ties: tuple[int, ...], opened: tuple[int, ...],
    dead: AbstractSet[int], barred: AbstractSet[int],
) -> Iterator[Candidate]:
    graph = feeder.graph(closed)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        if feeder.energised(closed)[list(dead)].any():
            yield Candidate(ties, opened, closed, feeder.solve(closed))
        return
    for u, v, key in cycle:
        k = int(key)
        if k in ties or k in barred or u not in dead or v not in dead:
            continue  # only a switch inside the dead region may open: the live area stays as it is
        trial = closed.copy()
        trial[k] = False
        yield from _break_loops(feeder, trial, ties, (*opened, k), dead, barred)
