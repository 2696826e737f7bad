"""PCA T²+Q that treats slow drift as drift: channels that drift are judged against a short causal baseline.

**The problem.** A detector trained on a short stretch of normal operation learns each channel's
*level* in that stretch. A channel with a memory much longer than the stretch — a temperature, which
integrates the heat flows into a motor or a body of fluid over minutes to hours — keeps moving after
training ends, and every later row it reaches "out of range" is a false alarm of a plant doing
nothing wrong. On SKAB (400 rows of 1 s per experiment) the fluid thermocouple rises all through
an experiment while training sees only its first minutes: more than half the false alarms of plain
PCA T²+Q on `anomaly-free.csv` were the thermocouple's.

**Which channels drift: learnt from the training rows, per channel** (no sensor names). A channel's
*slow-variance ratio* is R = var(x) / (var(Δx)/2), its variance over the training rows against the
variance its row-to-row changes imply. A channel that is a level plus fast noise (a flow, a current,
a vibration RMS around its operating point) has R ≈ 1: consecutive rows differ by as much as any two
rows. A channel that integrates (a temperature) has R ≫ 1: most of its variance is slower than the
row spacing, and the training stretch is too short to have seen the range it will wander over.
For an AR(1) process R = 1/(1−φ), so R ≥ `slow_ratio` = 5 means a memory of five rows or more
(φ ≥ 0.8); chosen on `anomaly-free.csv` (5 gave fewer false alarms than 10 or 3, docs/detection.md).
Over the 300 fitting rows of SKAB's 34 labelled files the fluid thermocouple has R 2.7–504 and the
motor-body temperature 2.2–211 (drifting in 32 and 19 files, by level in the rest); the
level channels (vibration RMS, current, pressure, voltage, flow) stay within 0.6–4.2 in all files
but one (`other/13`, where the flow and a vibration channel trend through training, R 16 and 7.6).

**How a drifting channel is judged: by its deviation from its own recent past,** the median of
its previous `baseline_rows` rows (causal: row i sees rows i−W…i−1). A step (a heater failing, a
valve closing on hot fluid) moves the value away from that baseline at once and shows for about
W/2 rows; a change in the *rate* of drift (heat coming in faster than before) shifts the deviation
persistently, since on a ramp of slope s the deviation from the median of the last W rows is
s·(W+1)/2: the rate is what is judged, not the level. A slow drift at the training rate is what the
model learnt as normal. W = 60 rows: long enough that the median's own noise is small against the
channel's (√(π/2W) ≈ 0.16 of it), short enough that fitting keeps 211 of 300 SKAB rows (those
with the whole 90-row history the features need).
All other channels are judged by level, as in `PcaT2Q`; the deviations and levels then go through
one PCA T²+Q, so the relations between channels (current with flow, a temperature's rate with
the load) are still checked.

**Every channel is scored by its mean over the last `mean_rows` rows** (30): the features of a
row are averaged over it and the 29 before it, and the T² below is fitted on and applied to those means.
A fault that holds (a valve left part-closed, a rotor out of balance) shifts a channel by an
amount that may be below one row's noise — a pump's current and a pressure transducer are noisy
at 1 s — but the mean of 30 rows has √30 ≈ 5.5 times less noise, so the shift stands out, while
what fakes a fault in single rows (one noisy sample) does not survive the mean. The cost is
delay: a shift of a few noise sd is seen after some rows rather than at once. 30 rows was the
best of 1, 5, 10, 20, 30, 40 on `anomaly-free.csv` with injected steps, each at the threshold
margin that kept its false alarms under 10 % (docs/detection.md).

**Covariance: T²+Q; shrinkage tried and not kept.** The 30-row means of the fitting rows overlap:
SKAB's 211 hold about 7 independent ones for 8 channels, so PCA's smallest eigenvalues are partly
chance and Q's reference is uncertain. ``shrink=True`` scores the windowed rows by Hotelling T² over a
covariance shrunk toward the identity (of the standardised features) by Ledoit–Wolf's weight for
len/`mean_rows` independent rows (`pca.ShrunkT2`). On `anomaly-free.csv` it detected 1.7 points more
injected steps over the protocol's 21 starts, but tied over 166 overlapping segments, and did worse on
SKAB's test rows (docs/detection.md, evaluation log run 4): the default stays T²+Q.

**Only where the training rows are consecutive.** A rate, a deviation over W rows or a mean over
30 rows learnt from rows taken `stride` report periods apart means something else online, where
rows are one period apart (the city's water twin trains on rows 15 minutes apart and runs on rows
30 s apart; its junction pressures and tank levels, sampled every 15 minutes over a day, all look
"slow" by R). So with `stride` > 1, or fewer than 3·(W + `mean_rows`) training rows, the detector
is exactly `PcaT2Q` on single rows (`fit_config` sets `stride` from the training plan).

**Streaming.** `context` is the rows of history a row's score depends on: W + `mean_rows` with a
drifting channel, `mean_rows` without, 1 when not windowed. Every row's features are computed
from its own fixed window (no state carried across calls, sums in a fixed order), so scoring the
last `context` rows gives the newest row's batch score exactly. `contributions` and
`column_scores` need those rows too: given fewer (the verdict code passes the last few rows), a
windowed detector's attribution sees a truncated history. The city never runs windowed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from oracles.detect.pca import Array, PcaT2Q, ShrunkT2, check_rows

__all__ = ["DriftPca", "causal_baseline", "slow_ratio", "trailing_mean"]


def slow_ratio(x: Array) -> Array:
    """Per column, var(x) / (var(Δx)/2): ≈ 1 for a level with white noise, ≫ 1 for a drifting channel.

    A constant column (or one whose rows never change) gets 0: there is nothing to drift.
    """
    arr = np.asarray(x, dtype=np.float64)
    if len(arr) < 3:
        return np.zeros(arr.shape[1])
    fast = np.var(np.diff(arr, axis=0), axis=0) / 2.0
    total = np.var(arr, axis=0)
    out: Array = np.where(fast > 0.0, total / np.where(fast > 0.0, fast, 1.0), 0.0)
    return out


def trailing_mean(x: Array, rows: int) -> Array:
    """Per row i and column, the mean of rows max(0, i−rows+1)…i, summed in a fixed order so a row's
    value does not depend on how many rows before it were passed."""
    arr = np.asarray(x, dtype=np.float64)
    if rows <= 1 or len(arr) == 0:
        return arr.copy()
    total = arr.copy()
    count = np.ones(len(arr))
    for lag in range(1, rows):
        total[lag:] += arr[:-lag]
        count[lag:] += 1.0
    out: Array = total / count[:, None]
    return out


def causal_baseline(x: Array, rows: int) -> Array:
    """Per row i and column, the median of rows max(0, i−rows)…i−1; row 0 (no past) is its own baseline.

    Each row's median is taken over its own window, so the result for a row does not depend on how
    many rows before it were passed (the streaming scorer passes only the last `context`).
    """
    arr = np.asarray(x, dtype=np.float64)
    padded = np.concatenate([np.full((rows, arr.shape[1]), np.nan), arr[:-1]]) if len(arr) else arr
    if len(arr) == 0:
        return arr.copy()
    view = np.lib.stride_tricks.sliding_window_view(padded, rows, axis=0)  # (n, cols, rows)
    out = np.empty_like(arr)
    out[0] = arr[0]
    if len(arr) > 1:
        out[1:] = np.nanmedian(view[1:], axis=2)
    return out


class DriftPca:
    """PCA T²+Q over levels and, for the channels found drifting in training, deviations from a
    causal `baseline_rows`-row median (see the module docstring for the rule and its physics)."""

    name = "pca-drift"
    label = "PCA T²+Q, drift-aware"

    def __init__(self, *, baseline_rows: int = 60, slow_ratio: float = 5.0, mean_rows: int = 30,
                 explained_variance: float = 0.85, reference_quantile: float = 0.99, stride: int = 1,
                 shrink: bool = False) -> None:
        if baseline_rows < 1 or mean_rows < 1:
            raise ValueError(f"baseline_rows and mean_rows must be ≥ 1, got {baseline_rows}, {mean_rows}")
        self.baseline_rows = baseline_rows
        self.mean_rows = mean_rows
        self.slow_ratio = slow_ratio
        self.stride = stride  # report periods between training rows: set by `fit_config`
        self.shrink = shrink
        self.explained_variance = explained_variance
        self.reference_quantile = reference_quantile
        self.inner: PcaT2Q = PcaT2Q(explained_variance=explained_variance, reference_quantile=reference_quantile)
        self.drifting: np.ndarray = np.zeros(0, dtype=bool)
        self.windowed = False
        self.ratios: Array = np.zeros(0)
        self.context = 1

    def fit(self, normal: Array) -> DriftPca:
        x = check_rows(normal)
        w = self.baseline_rows
        self.ratios = slow_ratio(x)
        # a drift treatment needs consecutive rows and enough of them to learn deviations from
        self.windowed = self.stride == 1 and len(x) >= 3 * (w + self.mean_rows)
        self.drifting = (self.ratios >= self.slow_ratio) & self.windowed
        self.context = (w if self.drifting.any() else 0) + (self.mean_rows if self.windowed else 1)
        # overlapping means: about one independent row in `mean_rows` (module docstring, "Covariance")
        self.inner = (ShrunkT2(independent=self.mean_rows, reference_quantile=self.reference_quantile)
                      if self.windowed and self.shrink else
                      PcaT2Q(explained_variance=self.explained_variance, reference_quantile=self.reference_quantile))
        # on the rows whose features have their whole history, as every online row has
        self.inner.fit(self.features(x)[self.context - 1:])
        return self

    def row_features(self, x: Array) -> Array:
        """Levels, with each drifting channel replaced by its deviation from its causal baseline."""
        arr = check_rows(x, len(self.drifting) if len(self.drifting) else None)
        cols = np.flatnonzero(self.drifting)
        if not len(cols):
            return arr
        out = arr.copy()
        out[:, cols] = arr[:, cols] - causal_baseline(arr[:, cols], self.baseline_rows)
        return out

    def features(self, x: Array) -> Array:
        """The row features averaged over each row's last `mean_rows` rows (what the scores are of)."""
        rows = self.row_features(x)
        return trailing_mean(rows, self.mean_rows) if self.windowed else rows

    def score(self, x: Array) -> Array:
        return self.inner.score(self.features(x))

    def contributions(self, x: Array) -> Array:
        """Per-channel contributions (`PcaT2Q.contributions` of the features): a drifting channel's is
        that of its deviation. Needs the rows' history (`context`) to be among `x`'s rows."""
        return self.inner.contributions(self.features(x))

    def column_scores(self, x: Array, columns: Sequence[int], values: Array) -> Array:
        """`PcaT2Q.column_scores` of the features; a drifting channel's trial value is taken against the
        row's own baseline (the deviation it would have had at that value)."""
        if not self.windowed:
            return self.inner.column_scores(x, columns, values)
        arr = check_rows(x, len(self.drifting))
        feats = self.features(arr)
        vals = np.asarray(values, dtype=np.float64)
        # changing row i's value by d moves its features by d / (rows in its trailing mean): a drifting
        # channel's baseline is of the rows before i, so its deviation moves by d as well
        count = np.minimum(np.arange(len(arr)) + 1, self.mean_rows)
        parts = [self.inner.column_scores(feats[i:i + 1], columns, feats[i] + (vals - arr[i]) / count[i])
                 for i in range(len(arr))]
        out: Array = np.concatenate(parts, axis=1)
        return out
