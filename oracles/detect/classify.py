"""Fault or intrusion? Whether a deviation is physically consistent across the network.

A physical disturbance moves many sensors together: a line fault de-energises a stretch of feeder,
a pipe break drops the pressure of a whole zone. A falsified measurement moves one sensor while
everything physically linked to it stays where the physics says it should. So the question is:
*can one sensor alone explain the deviation?*

Contribution plots answer it badly: PCA's residual of a bias on one sensor is smeared over every
sensor correlated with it (a sensor with communality h keeps only 1 − h of its own Q
contribution), so "one sensor carries 80 % of the contributions" misses exactly the sensors that
are easiest to check against their neighbours. We use reconstruction instead (the idea of
reconstruction-based contributions, Alcalá & Qin 2009, made detector-agnostic): replace one
sensor's value by the value, among those it took in normal operation, that makes the row look most
normal, and re-score. The share of the score that this removes is that sensor's *reconstruction
share*; the score that remains is how the rest of the network looks without it.

`classify` holds the rule; `explain` gathers its evidence from a detector and a window.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.messages import VerdictKind
from oracles.detect.calibrate import CalibratedDetector
from oracles.detect.features import Finding

__all__ = ["DOMINANCE", "GROUP_SHARE", "Evidence", "classify", "explain", "value_grid"]

Array = NDArray[np.float64]

DOMINANCE = 0.8
"""A single sensor must remove at least this share of the score to carry the deviation alone."""
GROUP_SHARE = 0.05
"""A sensor "deviates" in a group when it holds at least this share of the contributions."""
_TRIAL_ROWS = 4096  # rows per detector call when trying reconstructions (memory: rows x sensors x 8 B)
_CANDIDATES = 8  # sensors tried for reconstruction: the largest contributors plus any with findings


@dataclass(frozen=True)
class Evidence:
    """What the rule looks at, for one window.

    `score` is the smoothed detector score of the newest row; `suspect` is the sensor whose
    reconstruction lowers it most, `residual` the smoothed score with that sensor reconstructed,
    `shares` every sensor's share of the (mean) contributions over the window.
    """

    score: float
    threshold: float
    shares: Mapping[str, float]
    suspect: str | None
    residual: float
    findings: tuple[Finding, ...]
    neighbours: tuple[str, ...]  # the suspect's physically linked sensors: the rest of its asset
    baseline: float = 0.0  # the typical score of a normal row: a deviation is what lies above it

    @property
    def reconstruction_share(self) -> float:
        """Share of the deviation (score above the normal baseline) that reconstructing the suspect removes."""
        excess = self.score - self.baseline
        if self.suspect is None or excess <= 0.0:
            return 0.0
        return float(np.clip((self.score - max(self.residual, self.baseline)) / excess, 0.0, 1.0))


def classify(ev: Evidence, *, dominance: float = DOMINANCE, group_share: float = GROUP_SHARE) -> tuple[VerdictKind, str]:
    """The kind of a verdict and why, from physical consistency.

    - INTRUSION (spoofed or failed sensor): one sensor explains the deviation — reconstructing it
      alone removes at least `dominance` of the score's excess over a normal row's and brings the rest of the network back
      under the threshold — and its linked neighbours (the other sensors of its asset) have no
      first-pass findings; no other sensor has one either. With the score still under the
      threshold (a verdict raised by first-pass findings only), findings on that one sensor and a
      normal rest are enough: a stuck sensor on a network the model finds normal.
    - FAULT (physically consistent disturbance): no single sensor explains it — the rest stays
      over the threshold whichever one is reconstructed — and at least two sensors each carry
      `group_share` of the contributions; or, before the smoothed score has crossed, first-pass
      findings on two or more sensors at once.
    - ANOMALY otherwise: unusual, but neither story fits well enough to say.
    """
    flagged = {f.sensor for f in ev.findings}
    over = ev.score > ev.threshold
    rest_normal = ev.suspect is not None and ev.residual <= ev.threshold
    others_flagged = bool(flagged - {ev.suspect})
    alone = (over and ev.reconstruction_share >= dominance) or (not over and flagged == {ev.suspect})
    if rest_normal and not others_flagged and alone:
        where = (f"; its neighbours ({', '.join(ev.neighbours[:3])}) look normal" if ev.neighbours
                 else "; the rest of the network looks normal")
        how = (f"it alone explains {100 * ev.reconstruction_share:.0f} % of the deviation" if over
               else "only its own first-pass checks fail")
        return VerdictKind.INTRUSION, (f"measurement inconsistent with the rest of the network: spoofed or "
                                       f"failed sensor {ev.suspect} ({how}{where})")
    group = sorted((n for n, s in ev.shares.items() if s >= group_share), key=lambda n: -ev.shares[n])
    if over and not rest_normal and len(group) >= 2:
        return VerdictKind.FAULT, (f"physically consistent disturbance: {len(group)} sensors deviate together "
                                   f"({', '.join(group[:3])}{', …' if len(group) > 3 else ''})")
    if not over and len(flagged) >= 2:
        return VerdictKind.FAULT, f"physically consistent disturbance: {len(flagged)} sensors fail first-pass checks at once"
    return VerdictKind.ANOMALY, "unusual, but neither a single inconsistent sensor nor a consistent disturbance"


def value_grid(normal: Array, *, points: int = 41) -> Array:
    """Per sensor, `points` quantiles of its normal values: the values a reconstruction may try."""
    x = np.asarray(normal, dtype=np.float64)
    out: Array = np.quantile(x, np.linspace(0.0, 1.0, points), axis=0)
    return out


def explain(
    model: CalibratedDetector,
    recent: Array,
    sensors: Sequence[str],
    *,
    grid: Array,
    findings: Sequence[Finding] = (),
    assets: Mapping[str, str] | None = None,
    baseline: float = 0.0,
) -> Evidence:
    """Gather the evidence `classify` needs for the newest row of `recent` (oldest first)."""
    x = np.asarray(recent, dtype=np.float64)
    # the rows the newest smoothed score depends on (`context`): a detector whose features look back
    # (a drifting channel's baseline, a trailing mean) needs them to explain the last `window` rows
    rows = x[-model.context:]
    window = max(model.window, 1)
    score = model.latest(x)
    contrib = np.clip(model.detector.contributions(rows)[-window:].mean(axis=0), 0.0, None)
    total = float(contrib.sum())
    shares = {name: float(c) / total for name, c in zip(sensors, contrib, strict=True)} if total > 0 else {}
    index = {name: j for j, name in enumerate(sensors)}
    named = list(dict.fromkeys(index[f.sensor] for f in findings if f.sensor in index))
    if score <= model.threshold and named:
        tried = named  # raised by first-pass findings alone: the suspects are the sensors they name
    else:
        tried = [int(j) for j in np.argsort(-contrib)[:_CANDIDATES]]
        tried += [j for j in named if j not in tried]
    suspect, residual = None, float("inf")
    for j, r in zip(tried, _reconstructed(model, rows, tried, grid, window=window), strict=True):
        if r < residual:
            suspect, residual = sensors[j], r
    neighbours: tuple[str, ...] = ()
    if suspect is not None and assets is not None:
        neighbours = tuple(n for n in sensors if n != suspect and assets.get(n) == assets.get(suspect))
    return Evidence(score=score, threshold=model.threshold, shares=shares, suspect=suspect,
                    residual=residual if suspect is not None else score, findings=tuple(findings),
                    neighbours=neighbours, baseline=baseline)


def _reconstructed(model: CalibratedDetector, rows: Array, columns: Sequence[int], grid: Array, *,
                   window: int) -> list[float]:
    """Per column j, the median over the last `window` rows of the best raw score reachable by changing
    column `j` only (to one of its `grid[:, j]` values); `rows` are the `context` rows they depend on.

    A detector that can score single-column changes directly (`column_scores`, PCA's closed form)
    does, with the history its features need; any other (row-wise: its context is the window) gets
    all trial rows in a few large calls, not one call per column.
    """
    if not columns:
        return []
    direct = getattr(model.detector, "column_scores", None)
    if direct is not None:
        scores = np.asarray(direct(rows, columns, grid), dtype=np.float64)[:, -window:, :]
        return [float(v) for v in np.median(scores.min(axis=2), axis=1)]
    tail = rows[-window:]
    cache = _row_cache(model.detector)
    keys = [row.tobytes() for row in np.asarray(tail, dtype=np.float64)]
    todo = sorted({(i, j) for j in columns for i, key in enumerate(keys) if (key, j) not in cache})
    g = grid.shape[0]
    chunk = max(1, _TRIAL_ROWS // g)
    for start in range(0, len(todo), chunk):
        pairs = todo[start:start + chunk]
        trial = np.repeat(np.asarray(tail, dtype=np.float64)[[i for i, _ in pairs]], g, axis=0)
        for k, (_, j) in enumerate(pairs):
            trial[k * g:(k + 1) * g, j] = grid[:, j]
        best = model.detector.score(trial).reshape(len(pairs), g).min(axis=1)
        for (i, j), value in zip(pairs, best.tolist(), strict=True):
            cache[(keys[i], j)] = float(value)
    while len(cache) > _CACHED_ROWS:
        cache.popitem(last=False)
    return [float(np.median([cache[(key, j)] for key in keys])) for j in columns]


_CACHED_ROWS = 4096
"""(row, column) reconstructions kept per detector. A row is judged again in each of the next rows'
windows (and every row while an episode stays open is explained): an MSET with 1,000 states spent
60 % of a sewage oracle host's time reconstructing rows it had reconstructed a row before."""
_CACHES: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[bytes, int], float]] = weakref.WeakKeyDictionary()


def _row_cache(detector: Any) -> OrderedDict[tuple[bytes, int], float]:
    """The detector's own cache of reconstructions: a score depends only on the row and the column
    changed, for a fitted detector (each oracle's model is its own, and so is its cache)."""
    try:
        return _CACHES.setdefault(detector, OrderedDict())
    except TypeError:  # not weak-referenceable: no cache
        return OrderedDict()
