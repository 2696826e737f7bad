"""PCA with Hotelling T² and Q, and the pieces every detector shares (standardising, input checks).

Its own module so that detectors built on it (`oracles.detect.drift`) need not import the registry
in `oracles.detect.models`, which lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # scikit-learn takes seconds to import: only the processes that fit or score pay for it
    from sklearn.decomposition import PCA

__all__ = ["EPS", "Array", "PcaT2Q", "Scaler", "ShrunkT2", "check_rows", "ledoit_wolf_shrinkage"]

Array = NDArray[np.float64]
EPS = 1e-9
_EPS = EPS


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


def check_rows(x: Array, n_features: int | None = None) -> Array:
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
    context = 1

    def __init__(self, *, explained_variance: float = 0.85, reference_quantile: float = 0.99) -> None:
        self.explained_variance = explained_variance
        self.reference_quantile = reference_quantile
        self.scaler = Scaler()
        self.pca: PCA | None = None
        self.inv_var: Array = np.ones(0)
        self.t2_ref = 1.0
        self.q_ref = 1.0

    def fit(self, normal: Array) -> PcaT2Q:
        x = check_rows(normal)
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
        return self._stats(self.scaler.transform(check_rows(x, len(self.scaler.mean))))

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
        z = self.scaler.transform(check_rows(x, len(self.scaler.mean)))
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
        z = self.scaler.transform(check_rows(x, len(self.scaler.mean)))
        centred = z - self.pca.mean_
        t = centred @ self.pca.components_.T
        residual = centred - t @ self.pca.components_
        q_part = residual * residual / self.q_ref
        # T² contribution of sensor j: Σ_a t_a/λ_a · p_aj · z_j (Westerhuis et al.), clipped at 0
        t2_part = np.clip(((t * self.inv_var) @ self.pca.components_) * centred, 0.0, None) / self.t2_ref
        use_q = q_part.sum(axis=1, keepdims=True) >= t2_part.sum(axis=1, keepdims=True)
        out: Array = np.where(use_q, q_part, t2_part)
        return out


def ledoit_wolf_shrinkage(z: Array, independent_rows: float) -> float:
    """Ledoit and Wolf's (2004) weight α of the target in (1 − α)·S + α·μI, for standardised rows `z`
    of which `independent_rows` are independent (fewer than len(z) when the rows are overlapping means).

    α = min(1, β̄/δ) with δ = ‖S − μI‖²_F, the spread of the sample covariance S around the target,
    and β̄ = (1/n)·mean_k ‖z_k z_kᵀ − S‖²_F, the estimation noise of S from n independent rows: the
    fewer the independent rows, the less of S is trusted.
    """
    centred = z - z.mean(axis=0)
    cov = centred.T @ centred / len(z)
    target = np.trace(cov) / len(cov) * np.eye(len(cov))
    delta = float(((cov - target) ** 2).sum())
    if delta <= 0.0:
        return 1.0
    spread = float(np.mean([((np.outer(r, r) - cov) ** 2).sum() for r in centred]))
    return min(spread / max(independent_rows, 1.0) / delta, 1.0)


class ShrunkT2(PcaT2Q):
    """Hotelling T² over every principal component of the standardised rows, with the covariance shrunk
    toward the identity by Ledoit–Wolf's α (`ledoit_wolf_shrinkage`); no Q, as no component is left out.

    For training rows that are overlapping means of `independent` rows (`oracles.detect.drift`), the
    sample covariance rests on about len/`independent` independent rows: on SKAB's 211 fitting rows of
    30-row means, about 7 for 8 channels. Its small eigenvalues are then mostly chance, and PCA's
    residual space (what Q watches) is made of them: Q's reference comes out far too small and the
    false alarms on `anomaly-free.csv` were nearly all Q's. Shrinking toward the identity keeps every
    direction's variance at least α (in training sd): with few independent rows (α = 1) each channel
    is judged by its own z-score; with many, the relations between channels learnt from them count.
    Component k's variance is (1 − α)·λ_k + α, the eigenvectors unchanged (the identity commutes), so
    `contributions` and `column_scores` are `PcaT2Q`'s.
    """

    name = "pca-shrunk"
    label = "T², shrunk covariance"

    def __init__(self, *, independent: int = 1, reference_quantile: float = 0.99) -> None:
        super().__init__(explained_variance=1.0, reference_quantile=reference_quantile)
        self.independent = independent
        self.alpha = 0.0

    def fit(self, normal: Array) -> ShrunkT2:
        x = check_rows(normal)
        if len(x) < 3:
            raise ValueError("T² needs at least 3 normal rows to train on")
        z = self.scaler.fit(x).transform(x)
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(x.shape), svd_solver="full").fit(z)
        self.pca = pca
        self.alpha = ledoit_wolf_shrinkage(z, len(z) / self.independent)
        self.inv_var = 1.0 / np.maximum((1.0 - self.alpha) * pca.explained_variance_ + self.alpha, _EPS)
        t2, _ = self._stats(z)
        self.t2_ref = max(float(np.quantile(t2, self.reference_quantile)), _EPS)
        self.q_ref = float("inf")  # every component is kept: no residual to judge
        return self
