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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # scikit-learn takes seconds to import: only the processes that fit or score pay for it
    from sklearn.decomposition import PCA

__all__ = ["DETECTORS", "Detector", "IsolationForestDetector", "Mset", "PcaT2Q", "Scaler", "make_detector"]

Array = NDArray[np.float64]
_EPS = 1e-9


class Detector(Protocol):
    """What every detector offers; `name` is the one used on the command line and in verdicts."""

    name: str
    label: str

    def fit(self, normal: Array) -> Detector: ...

    def score(self, x: Array) -> Array: ...

    def contributions(self, x: Array) -> Array: ...


class Scaler:
    """Standardisation that survives constant columns (a pump that never ran in training).

    A column with no spread in training gets unit scale around its training value, so a later
    change still shows (instead of dividing by zero or being silently dropped).
    """

    def __init__(self) -> None:
        self.mean: Array = np.zeros(0)
        self.scale: Array = np.ones(0)

    def fit(self, x: Array) -> Scaler:
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        # a constant column keeps a modest scale: deviations count, but do not explode
        floor = np.maximum(np.abs(self.mean) * 0.01, 1e-3)
        self.scale = np.where(std > _EPS, std, floor)
        return self

    def transform(self, x: Array) -> Array:
        out: Array = (x - self.mean) / self.scale
        return out


def _check(x: Array, n_features: int | None = None) -> Array:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array (rows × sensors), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"expected {n_features} sensors per row, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("input contains NaN or infinite values; fill gaps before scoring")
    return arr


class PcaT2Q:
    """PCA with Hotelling T² and Q (SPE); score = max(T²/T²₉₉, Q/Q₉₉) on the training rows."""

    name = "pca"
    label = "PCA T²+Q"

    def __init__(self, *, explained_variance: float = 0.85, reference_quantile: float = 0.99) -> None:
        self.explained_variance = explained_variance
        self.reference_quantile = reference_quantile
        self.scaler = Scaler()
        self.pca: PCA | None = None
        self.inv_var: Array = np.ones(0)
        self.t2_ref = 1.0
        self.q_ref = 1.0

    def fit(self, normal: Array) -> PcaT2Q:
        x = _check(normal)
        if len(x) < 3:
            raise ValueError("PCA T²+Q needs at least 3 normal rows to train on")
        z = self.scaler.fit(x).transform(x)
        from sklearn.decomposition import PCA

        pca = PCA(n_components=self.explained_variance, svd_solver="full")
        if x.shape[1] == 1:
            pca = PCA(n_components=1)
        pca.fit(z)
        self.pca = pca
        self.inv_var = 1.0 / np.maximum(pca.explained_variance_, _EPS)
        t2, q = self._stats(z)
        self.t2_ref = max(float(np.quantile(t2, self.reference_quantile)), _EPS)
        self.q_ref = max(float(np.quantile(q, self.reference_quantile)), _EPS)
        return self

    def _stats(self, z: Array) -> tuple[Array, Array]:
        assert self.pca is not None, "fit the detector first"
        centred = z - self.pca.mean_
        t = centred @ self.pca.components_.T
        t2: Array = (t * t * self.inv_var).sum(axis=1)
        residual = centred - t @ self.pca.components_
        q: Array = (residual * residual).sum(axis=1)
        return t2, q

    def statistics(self, x: Array) -> tuple[Array, Array]:
        """Raw T² and Q per row, for charts and for operators who know the classic control limits."""
        return self._stats(self.scaler.transform(_check(x, len(self.scaler.mean))))

    def score(self, x: Array) -> Array:
        t2, q = self.statistics(x)
        out: Array = np.maximum(t2 / self.t2_ref, q / self.q_ref)
        return out

    def column_scores(self, x: Array, columns: Sequence[int], values: Array) -> Array:
        """Scores of `x`'s rows with column j set to each of `values[:, j]`, for each j in `columns`:
        shape (len(columns), rows, len(values)). The same as `score` on every such trial row.

        Closed form, because changing one standardised coordinate by d moves the scores by
        t → t + d·P[:, j] and residual → residual + d·(e_j − Pᵀ P[:, j]): T² and Q are quadratics in
        d, and Q's cross term is the residual's own j-th entry (the residual is orthogonal to P's
        rows). A fault names dozens of candidate sensors; scoring 41 trial values for each as full
        rows cost ~30 ms a row per oracle, this costs well under 1 ms.
        """
        assert self.pca is not None, "fit the detector first"
        cols = np.asarray(columns, dtype=np.intp)
        z = self.scaler.transform(_check(x, len(self.scaler.mean)))
        centred = z - self.pca.mean_
        p = self.pca.components_  # (k, n), orthonormal rows
        t = centred @ p.T
        t2 = (t * t * self.inv_var).sum(axis=1)
        residual = centred - t @ p
        q = (residual * residual).sum(axis=1)
        trial = (np.asarray(values, dtype=np.float64)[:, cols].T - self.scaler.mean[cols, None]) \
            / self.scaler.scale[cols, None]  # (m, g) standardised trial values
        d = trial[:, None, :] - z[:, cols].T[:, :, None]  # (m, rows, g)
        a = ((t * self.inv_var) @ p[:, cols]).T  # (m, rows): Σ_k t_k p_kj / λ_k
        b = (p[:, cols] ** 2 * self.inv_var[:, None]).sum(axis=0)  # (m,)
        q_lin = residual[:, cols].T  # (m, rows)
        q_quad = np.clip(1.0 - (p[:, cols] ** 2).sum(axis=0), 0.0, None)  # (m,)
        t2_new = t2[None, :, None] + 2 * d * a[:, :, None] + d * d * b[:, None, None]
        q_new = q[None, :, None] + 2 * d * q_lin[:, :, None] + d * d * q_quad[:, None, None]
        out: Array = np.maximum(t2_new / self.t2_ref, np.clip(q_new, 0.0, None) / self.q_ref)
        return out

    def contributions(self, x: Array) -> Array:
        """Per-sensor share of the larger statistic: squared residual for Q, weighted score for T²."""
        assert self.pca is not None, "fit the detector first"
        z = self.scaler.transform(_check(x, len(self.scaler.mean)))
        centred = z - self.pca.mean_
        t = centred @ self.pca.components_.T
        residual = centred - t @ self.pca.components_
        q_part = residual * residual / self.q_ref
        # T² contribution of sensor j: Σ_a t_a/λ_a · p_aj · z_j (Westerhuis et al.), clipped at 0
        t2_part = np.clip(((t * self.inv_var) @ self.pca.components_) * centred, 0.0, None) / self.t2_ref
        use_q = q_part.sum(axis=1, keepdims=True) >= t2_part.sum(axis=1, keepdims=True)
        out: Array = np.where(use_q, q_part, t2_part)
        return out


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


DETECTORS: dict[str, type[PcaT2Q | Mset | IsolationForestDetector]] = {
    PcaT2Q.name: PcaT2Q,
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
