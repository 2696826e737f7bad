"""Thresholds set on held-back normal data, never on the data being judged.

A detector's score on the rows it was trained on is optimistic (PCA's T² is smallest exactly
there), so a threshold taken from them fires too often on new normal data. Instead the normal
history is split in time: the older part trains the detector, the newer part — unseen, but known
normal — sets the threshold at the score quantile that gives the wanted false-alarm rate. The same
split is how a new oracle starts: it watches normal operation, trains, then calibrates on what
came after.

Scores can be smoothed by a causal rolling median over `window` rows before the threshold
applies: one noisy sample should not raise a verdict, and an oracle only ever sees the past.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from oracles.detect.models import Detector, make_detector

__all__ = ["CalibratedDetector", "StreamScorer", "fit_calibrated", "floored", "rolling_median", "threshold_for", "widened"]

Array = NDArray[np.float64]


def rolling_median(scores: Array, window: int) -> Array:
    """Causal rolling median: row i sees rows max(0, i−window+1)…i (the first rows see fewer)."""
    s = np.asarray(scores, dtype=np.float64)
    if window <= 1 or len(s) == 0:
        return s.copy()
    padded = np.concatenate([np.full(window - 1, np.nan), s])
    view = np.lib.stride_tricks.sliding_window_view(padded, window)
    out: Array = np.nanmedian(view, axis=1)
    return out


def threshold_for(scores: Array, target_far: float, *, margin: float = 1.0) -> float:
    """The score above which only `target_far` of these (normal) scores lie, times `margin`."""
    if not 0.0 < target_far < 1.0:
        raise ValueError(f"target false-alarm rate must be in (0, 1), got {target_far}")
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0:
        raise ValueError("no held-back normal rows to calibrate on")
    return float(np.quantile(s, 1.0 - target_far)) * margin


@dataclass
class CalibratedDetector:
    """A fitted detector with its threshold and smoothing: what an oracle runs online.

    `holdout_far` is the false-alarm rate measured on the held-back rows at the chosen threshold,
    so an operator can see how close calibration came to the target.
    """

    detector: Detector
    threshold: float
    window: int
    target_far: float
    holdout_far: float
    n_train: int
    n_holdout: int

    def score(self, x: Array) -> Array:
        """Smoothed scores for consecutive rows (oldest first)."""
        return rolling_median(self.detector.score(x), self.window)

    def flags(self, x: Array) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.score(x) > self.threshold
        return out

    @property
    def context(self) -> int:
        """Rows of history the newest row's smoothed score depends on: the smoothing window plus the
        rows the detector's own features look back over (`Detector.context`, 1 for a row-wise one)."""
        return max(self.window, 1) + self.lookback - 1

    @property
    def lookback(self) -> int:
        """Rows the detector's own features look back over (`Detector.context`; 1 for a row-wise one)."""
        return int(getattr(self.detector, "context", 1))

    def latest(self, recent: Array) -> float:
        """The smoothed score of the newest row, given the last `context` (or more) rows."""
        return float(self.score(recent[-self.context:])[-1])

    def stream(self) -> StreamScorer:
        """A row-by-row scorer with bounded memory, as an oracle runs the detector."""
        return StreamScorer(self)


class StreamScorer:
    """Scores rows one at a time, keeping only the `context` rows the newest score depends on.

    This is how an oracle runs a detector: no row after the one being scored exists yet, and memory
    does not grow with the stream. `tests/oracles/test_detect_stream.py` checks that it gives the
    batch scores exactly, so a benchmark scored in batch is a benchmark of the stream.
    """

    def __init__(self, model: CalibratedDetector) -> None:
        self.model = model
        self.rows: deque[Array] = deque(maxlen=model.context)

    def push(self, row: Array) -> tuple[float, bool]:
        """The newest row's smoothed score and whether it is over the threshold."""
        self.rows.append(np.asarray(row, dtype=np.float64))
        score = float(self.model.score(np.vstack(self.rows))[-1])
        return score, score > self.model.threshold


def floored(calibrated: CalibratedDetector, normal: Array) -> CalibratedDetector:
    """The threshold raised, if need be, to the highest smoothed score of the training rows themselves.

    The held-back rows are the newest stretch of normal operation; where the plant has a daily
    cycle they can be quieter than the rows the detector was fit on (water's and a short banking
    run's held-back rows are a night), and a threshold taken from them sits below the scores of
    the very rows the model learnt as normal: a fresh twin then raised a verdict from its third
    row on (the twin's first rows, a start-up transient, are among the highest-scoring training
    rows). A row the detector was trained on is normal by definition, so no such row may score
    over the threshold; where the held-back rows are the livelier ones (the usual case: training
    scores are optimistic), nothing changes.
    """
    smoothed = calibrated.score(normal)
    # a detector whose features look back over rows (`Detector.context`) cannot score the first
    # rows fully: their features lack history no online row lacks, so they set no floor
    first = min(calibrated.lookback - 1, calibrated.n_train - 1)
    floor = float(smoothed[first:calibrated.n_train].max())
    if floor <= calibrated.threshold:
        return calibrated
    return _at_threshold(calibrated, smoothed, floor)


def widened(calibrated: CalibratedDetector, normal: Array, margin: float) -> CalibratedDetector:
    """For a detector that scores windows of rows (`context` > 1): the threshold multiplied by
    `margin` (≥ 1), with the held-back false-alarm rate measured again. A row-wise detector is
    returned as it is.

    Scores of overlapping windows are strongly correlated: a held-back stretch of 100 rows holds
    about three independent 30-row means, so its high quantile says little about the spread of
    normal scores, and a short training segment (shorter than the plant's slow dynamics) has not
    seen the range they wander over anyway. The margin is a sector's, chosen on a long normal run
    (`TrainingPlan.threshold_margin`), never on the data judged. Row-wise scores need none: their
    held-back rows are many nearly independent samples.
    """
    if margin < 1.0:
        raise ValueError(f"a threshold margin must be ≥ 1, got {margin}")
    if margin == 1.0 or calibrated.lookback <= 1:
        return calibrated
    return _at_threshold(calibrated, calibrated.score(normal), calibrated.threshold * margin)


def _at_threshold(calibrated: CalibratedDetector, smoothed: Array, threshold: float) -> CalibratedDetector:
    """`calibrated` with another threshold, and the false-alarm rate its held-back rows (the smoothed
    scores after the first `n_train`) show at it."""
    held = smoothed[calibrated.n_train:]
    return replace(calibrated, threshold=threshold, holdout_far=float(np.mean(held > threshold)) if len(held) else 0.0)


def fit_calibrated(
    normal: Array,
    *,
    detector: str | Detector = "pca",
    target_far: float = 0.01,
    holdout: float = 0.25,
    window: int = 1,
    margin: float = 1.0,
) -> CalibratedDetector:
    """Train on the older `1 − holdout` of the normal rows, calibrate on the newer rest.

    Rows must be in time order. With `holdout=0` the training rows set the threshold too (only
    for when too little normal data exists to hold any back; the false-alarm rate will be higher).
    """
    x = np.asarray(normal, dtype=np.float64)
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {holdout}")
    n_hold = round(len(x) * holdout)
    n_train = len(x) - n_hold
    if n_train < 3:
        raise ValueError(f"need at least 3 normal rows to train on, got {n_train}")
    det = make_detector(detector) if isinstance(detector, str) else detector
    det.fit(x[:n_train])
    # smoothing runs across the train/holdout boundary, as it does online
    smoothed = rolling_median(det.score(x), window)
    calib = smoothed[n_train:] if n_hold else smoothed
    threshold = threshold_for(calib, target_far, margin=margin)
    holdout_far = float(np.mean(calib > threshold))
    return CalibratedDetector(detector=det, threshold=threshold, window=window, target_far=target_far,
                              holdout_far=holdout_far, n_train=n_train, n_holdout=n_hold)
