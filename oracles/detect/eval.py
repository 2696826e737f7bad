"""Detection quality on labelled public data: what every benchmark behind `qeaims detect eval` shares.

What a reviewer of an anomaly-detection result asks for, and where it is kept:

- **the detector production runs**, named before the run: `oracles.detect.production` (the water
  sector's configured detector and calibration; no setting is taken from the command line);
- **thresholds from training data only**: the detector is fitted and calibrated on normal rows
  (`fit_config`); the test rows are scored without their labels, which are read afterwards, only
  by the metrics (`tests/oracles/test_detect_eval.py` shuffles and removes them and expects the
  same predictions);
- **scored as the oracles score**: row by row through `CalibratedDetector.stream` (bounded memory,
  no look-ahead), which also gives the throughput (`rows_per_s`, one core);
- **the trivial baselines beside it**: every row anomalous, every row normal (`baselines`), and the
  published rows of the benchmark (`SKAB_LEADERBOARD`, `BATADAL_ENTRIES`);
- **time to detection** in rows, per anomaly (each run of positive labels).

Metrics are SKAB's (`evaluating.py`): F1 = TP/(TP + (FP+FN)/2), FAR = FP/(FP+TN)·100,
MAR = FN/(FN+TP)·100, counts pooled over all files; and BATADAL's S = γ·S_TTD + (1−γ)·S_CM, γ = 0.5
(Taormina et al. 2018). The benchmarks themselves: `eval_skab.py`, `eval_csv.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from oracles.detect.calibrate import CalibratedDetector

__all__ = [
    "BATADAL_ENTRIES",
    "SKAB_LEADERBOARD",
    "DetectorResult",
    "EvalError",
    "Metrics",
    "Progress",
    "Report",
    "Scored",
    "baselines",
    "batadal_score",
    "binary_metrics",
    "check_columns",
    "detection_delays",
    "read_csv",
    "stream_scores",
]

Progress = Callable[[str, int, int], None]

SKAB_LEADERBOARD: tuple[tuple[str, float, float | None, float | None], ...] = (
    ("Conv-AE", 0.78, 13.55, 28.02),
    ("MSET", 0.78, 39.73, 14.13),
    ("PCA T²+Q", 0.76, 26.62, 24.92),
    ("LSTM-AE", 0.74, None, None),
    ("T²", 0.66, None, None),
    ("Isolation Forest", 0.29, None, None),
)
"""SKAB's outlier-detection leaderboard (name, F1, FAR %, MAR %; None where the leaderboard figure is not
on record here), as `../shared/datasets/README.md` gives it."""

BATADAL_ENTRIES: tuple[tuple[str, float], ...] = (
    ("BATADAL entry 1", 0.970),
    ("BATADAL entry 2", 0.949),
    ("BATADAL entry 3", 0.927),
    ("BATADAL entry 4", 0.894),
    ("BATADAL entry 5", 0.802),
)
"""The competition's best scores S on its own test period (Taormina et al. 2018): a reference, not the
same rows as a validation on training set 2."""


class EvalError(ValueError):
    """A path, column or file the evaluation cannot use; the message is one line for the user."""


@dataclass
class Metrics:
    tp: int
    tn: int
    fp: int
    fn: int
    f1: float
    far: float
    mar: float
    n_test: int


def binary_metrics(truth: NDArray[Any], predicted: NDArray[Any]) -> Metrics:
    """Pooled confusion counts and SKAB's F1 (0–1), FAR and MAR (percent)."""
    t = np.asarray(truth).astype(bool)
    p = np.asarray(predicted).astype(bool)
    tp = int(np.sum(t & p))
    tn = int(np.sum(~t & ~p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    f1 = tp / (tp + (fp + fn) / 2) if tp + fp + fn else 1.0
    far = 100.0 * fp / (fp + tn) if fp + tn else 0.0
    mar = 100.0 * fn / (fn + tp) if fn + tp else 0.0
    return Metrics(tp=tp, tn=tn, fp=fp, fn=fn, f1=round(f1, 4), far=round(far, 2), mar=round(mar, 2),
                   n_test=len(t))


def _runs(truth: NDArray[Any]) -> list[tuple[int, int]]:
    """The anomalies: (start, end) of each run of positive labels, end exclusive."""
    t = np.asarray(truth).astype(int)
    edges = np.diff(np.concatenate([[0], t, [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def detection_delays(truth: NDArray[Any], predicted: NDArray[Any]) -> list[int | None]:
    """Per anomaly, the rows from its first row to its first flagged row (0: flagged at once); None if
    it is never flagged while it lasts."""
    p = np.asarray(predicted).astype(bool)
    out: list[int | None] = []
    for start, end in _runs(truth):
        hits = np.flatnonzero(p[start:end])
        out.append(int(hits[0]) if len(hits) else None)
    return out


def batadal_score(truth: NDArray[Any], predicted: NDArray[Any], *, gamma: float = 0.5) -> dict[str, float]:
    """S_TTD = 1 − mean(TTD/Δt) over attacks, S_CM = (TPR + TNR)/2, S = γ·S_TTD + (1−γ)·S_CM.

    Each attack is a run of positive labels of Δt rows; TTD is the rows until the first flag inside
    it (Δt if never flagged).
    """
    t = np.asarray(truth).astype(bool)
    p = np.asarray(predicted).astype(bool)
    runs = _runs(t)
    ratios = [(d if d is not None else end - start) / (end - start)
              for d, (start, end) in zip(detection_delays(t, p), runs, strict=True)]
    s_ttd = 1.0 - float(np.mean(ratios)) if ratios else 1.0
    tpr = float(np.mean(p[t])) if t.any() else 1.0
    tnr = float(np.mean(~p[~t])) if (~t).any() else 1.0
    s_cm = (tpr + tnr) / 2
    return {"S": round(gamma * s_ttd + (1 - gamma) * s_cm, 4), "S_TTD": round(s_ttd, 4), "S_CM": round(s_cm, 4),
            "tpr": round(tpr, 4), "tnr": round(tnr, 4), "attacks": float(len(runs))}


def baselines(truth: NDArray[Any], *, batadal: bool = False) -> dict[str, dict[str, float]]:
    """The two constant detectors: every row anomalous, every row normal (what a score must beat)."""
    t = np.asarray(truth).astype(bool)
    out: dict[str, dict[str, float]] = {}
    for name, value in (("all_anomalous", True), ("all_normal", False)):
        p = np.full(len(t), value)
        m = binary_metrics(t, p)
        row: dict[str, float] = {"f1": m.f1, "far": m.far, "mar": m.mar}
        if batadal:
            row.update({k: v for k, v in batadal_score(t, p).items() if k != "attacks"})
        out[name] = row
    return out


@dataclass
class Scored:
    """A fitted model's streamed scores and flags over rows, and what streaming them cost."""

    scores: NDArray[np.float64]
    flags: NDArray[np.bool_]
    seconds: float


def stream_scores(model: CalibratedDetector, warm: NDArray[np.float64], rows: NDArray[np.float64]) -> Scored:
    """Score `rows` one at a time as an oracle does, after `warm` rows of (normal) history.

    The warm rows fill the scorer's bounded history (a smoothing window and a detector's feature
    window start full, as they would online after training); only `rows` are timed and returned, on
    one thread (BLAS and OpenMP pools limited to one), so `rows_per_s` is per core.
    """
    from threadpoolctl import threadpool_limits

    scorer = model.stream()
    for row in warm[-model.context:]:
        scorer.push(row)
    scores = np.empty(len(rows))
    flags = np.zeros(len(rows), dtype=bool)
    with threadpool_limits(limits=1):  # one core, as the throughput is reported
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            scores[i], flags[i] = scorer.push(row)
        spent = time.perf_counter() - t0
    return Scored(scores, flags, spent)


@dataclass
class DetectorResult:
    """One detector's figures on a benchmark; `role` says what it is in the report."""

    detector: str
    label: str
    metrics: Metrics
    role: str = "production"  # or "secondary"
    extra: dict[str, float] = field(default_factory=dict)
    rows_per_s: float | None = None
    delays: list[int | None] = field(default_factory=list)
    flags: NDArray[np.bool_] | None = field(default=None, repr=False)  # the pooled predictions, row by row

    def as_dict(self) -> dict[str, Any]:
        found = [d for d in self.delays if d is not None]
        return {"detector": self.detector, "label": self.label, "role": self.role, **asdict(self.metrics),
                **self.extra, "rows_per_s": None if self.rows_per_s is None else round(self.rows_per_s),
                "anomalies": len(self.delays), "anomalies_detected": len(found),
                "rows_to_detect_median": float(np.median(found)) if found else None,
                "rows_to_detect": self.delays}


@dataclass
class Report:
    """A benchmark's whole result: the production row first, then secondary rows, baselines, published rows."""

    dataset: str
    production: DetectorResult
    settings: dict[str, Any]
    baselines: dict[str, dict[str, float]]
    published: list[dict[str, Any]]
    secondary: list[DetectorResult] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, **self.header, **self.production.as_dict(), "settings": self.settings,
                "baselines": self.baselines, "published": self.published,
                "secondary": [r.as_dict() for r in self.secondary]}


def read_csv(path: Path, sep: str) -> pd.DataFrame:
    """A CSV as a frame with stripped column names, or one `EvalError` line."""
    if not path.is_file():
        raise EvalError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise EvalError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def check_columns(frame: pd.DataFrame, sensors: Sequence[str], path: Path, reference: Path) -> None:
    """One line naming the sensor columns `frame` lacks (or has besides) compared with `reference`'s."""
    missing = [c for c in sensors if c not in frame.columns]
    if missing:
        raise EvalError(f"{path} lacks sensor column(s) {', '.join(missing[:5])} found in {reference}")
