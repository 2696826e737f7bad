"""Anomaly detectors trained on normal operation only, shared by the oracles and `qeaims detect eval`.

Every detector answers the same three questions, so an oracle can swap one for another without
touching the verdict code: `fit(normal)` learns what normal looks like, `score(X)` says how far each
row is from it (higher is worse, one number per row), and `contributions(X)` says which columns
carry that distance — the sensors a verdict names. Thresholds are not the detector's business:
`calibrate.py` sets them on held-back normal data, so every detector is judged the same way.

- `PcaT2Q`: PCA on standardised data; Hotelling T² inside the principal subspace and Q (squared
  prediction error) outside it. Each is divided by its own 99th percentile on the training rows so
  the two can be combined into one score (their maximum). Cheap, explainable, the classic
  process-monitoring baseline (SKAB leaderboard: F1 0.76).
- `Mset`: a similarity-based state estimator (MSET / auto-associative kernel regression): a memory
  of normal states, an estimate of each new row as a weighted blend of them, the residual is the
  score. Catches relations between sensors that a linear subspace misses.
- `IsolationForestDetector`: the tree-ensemble baseline; no per-sensor attribution beyond a
  z-score fallback, kept mainly as a reference point.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

__all__ = ["DETECTORS", "Detector", "IsolationForestDetector", "Mset", "PcaT2Q", "Scaler", "make_detector"]

from oracles.detect.drift import DriftPca
from oracles.detect.pca import EPS as _EPS
from oracles.detect.pca import Array, PcaT2Q, Scaler
from oracles.detect.pca import check_rows as _check


class Detector(Protocol):
    """What every detector offers; `name` is the one used on the command line and in verdicts."""

    name: str
    label: str
    context: int  # rows of history a row's score depends on: 1 for a row-wise detector

    def fit(self, normal: Array) -> Detector: ...

    def score(self, x: Array) -> Array: ...

    def contributions(self, x: Array) -> Array: ...


def _similarity(a: Array, b: Array) -> Array:
    """MSET's similarity s(x, y) = 1 − ‖x−y‖ / (‖x‖ + ‖y‖), for every pair of rows of a and b."""
    na = np.linalg.norm(a, axis=1)[:, None]
    nb = np.linalg.norm(b, axis=1)[None, :]
    sq = np.clip(na**2 + nb**2 - 2.0 * (a @ b.T), 0.0, None)
    out: Array = 1.0 - np.sqrt(sq) / np.maximum(na + nb, _EPS)
    return out


class Mset:
    """Multivariate state estimation: estimate = D·(DᵀD)⁻¹·(Dᵀx) with the MSET similarity operator.

    The memory D holds at most `memory` training states, chosen to cover each sensor's range (the
    rows holding every column's minimum and maximum) plus evenly spaced ones. The score is the
    Euclidean norm of the standardised residual x − x̂.
    """

    name = "mset"
    label = "MSET"
    context = 1

    def __init__(self, *, memory: int = 200, ridge: float = 1e-6) -> None:
        self.memory = memory
        self.ridge = ridge
        self.scaler = Scaler()
        self.states: Array = np.zeros((0, 0))
        self.gram_inv: Array = np.zeros((0, 0))

    def fit(self, normal: Array) -> Mset:
        x = _check(normal)
        if len(x) < 2:
            raise ValueError("MSET needs at least 2 normal rows to train on")
        z = self.scaler.fit(x).transform(x)
        # shift so no state sits at the origin, where the similarity operator is undefined
        z = z + 10.0
        keep = set(np.argmin(z, axis=0).tolist()) | set(np.argmax(z, axis=0).tolist())
        spare = max(self.memory - len(keep), 0)
        if spare:
            keep |= set(np.linspace(0, len(z) - 1, num=min(spare, len(z))).astype(int).tolist())
        self.states = z[sorted(keep)]
        gram = _similarity(self.states, self.states)
        self.gram_inv = np.asarray(np.linalg.pinv(gram + self.ridge * np.eye(len(gram))), dtype=np.float64)
        return self

    def estimate(self, x: Array) -> Array:
        """The normal state closest in behaviour to each row, in the original units."""
        z = self.scaler.transform(_check(x, len(self.scaler.mean))) + 10.0
        est = self._estimate_z(z)
        out: Array = (est - 10.0) * self.scaler.scale + self.scaler.mean
        return out

    def _estimate_z(self, z: Array) -> Array:
        weights = self.gram_inv @ _similarity(self.states, z)
        weights = weights / np.where(np.abs(weights.sum(axis=0)) > _EPS, weights.sum(axis=0), 1.0)
        out: Array = (self.states.T @ weights).T
        return out

    def _residual(self, x: Array) -> Array:
        z = self.scaler.transform(_check(x, len(self.scaler.mean))) + 10.0
        out: Array = z - self._estimate_z(z)
        return out

    def score(self, x: Array) -> Array:
        r = self._residual(x)
        out: Array = np.sqrt((r * r).sum(axis=1))
        return out

    def contributions(self, x: Array) -> Array:
        r = self._residual(x)
        out: Array = r * r
        return out


class IsolationForestDetector:
    """Isolation Forest baseline; contributions are squared z-scores (the forest gives none)."""

    name = "iforest"
    label = "Isolation Forest"
    context = 1

    def __init__(self, *, trees: int = 200, seed: int = 0) -> None:
        from sklearn.ensemble import IsolationForest

        self.forest = IsolationForest(n_estimators=trees, random_state=seed)
        self.scaler = Scaler()

    def fit(self, normal: Array) -> IsolationForestDetector:
        x = _check(normal)
        self.forest.fit(self.scaler.fit(x).transform(x))
        return self

    def score(self, x: Array) -> Array:
        z = self.scaler.transform(_check(x, len(self.scaler.mean)))
        out: Array = -np.asarray(self.forest.score_samples(z), dtype=np.float64)
        return out

    def contributions(self, x: Array) -> Array:
        z = self.scaler.transform(_check(x, len(self.scaler.mean)))
        out: Array = z * z
        return out


DETECTORS: dict[str, type[PcaT2Q | DriftPca | Mset | IsolationForestDetector]] = {
    PcaT2Q.name: PcaT2Q,
    DriftPca.name: DriftPca,
    Mset.name: Mset,
    IsolationForestDetector.name: IsolationForestDetector,
}


def make_detector(name: str, **options: Any) -> Detector:
    """A fresh, unfitted detector by its command-line name (`pca`, `mset`, `iforest`); `options` are
    its constructor's keyword arguments (a sector plug-in's ``detector_options``, e.g. MSET's memory)."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}") from None
    return cls(**options)
