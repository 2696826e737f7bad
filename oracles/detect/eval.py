"""Detection quality on labelled public data: the benchmark behind `qeaims detect eval`.

The same `fit_calibrated` the oracles run online is used here, so a figure printed by the eval is a
figure for the production detector, not for a tuned copy.

- SKAB (outlier-detection setting of its leaderboard): for every file under valve1/, valve2/,
  other/, train on the first 400 rows, score the rest, pool all predictions, then F1, FAR and MAR
  as SKAB's `evaluating.py` computes them (FAR = FP/(FP+TN)·100, MAR = FN/(FN+TP)·100).
- Generic CSVs (BATADAL and the like): train on normal rows of the train files, test on one file;
  besides F1/FAR/MAR it reports the BATADAL competition score S = γ·S_TTD + (1−γ)·S_CM, γ = 0.5
  (Taormina et al. 2018), with the attacks taken as the contiguous runs of positive labels.
  Rows whose label is neither 0 nor 1 (BATADAL's −999 "unlabelled") are left out of every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from oracles.detect.calibrate import fit_calibrated
from oracles.detect.features import numeric_columns, to_matrix

__all__ = [
    "SKAB_FOLDERS",
    "DetectorResult",
    "EvalError",
    "Metrics",
    "Settings",
    "batadal_score",
    "binary_metrics",
    "evaluate_generic",
    "evaluate_skab",
]

SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_TRAIN_ROWS = 400
Progress = Callable[[str, int, int], None]


class EvalError(ValueError):
    """A path, column or file the evaluation cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Settings:
    """How each detector is trained and calibrated; the defaults are the ones reported."""

    target_far: float = 0.01
    holdout: float = 0.25
    window: int = 5
    margin: float = 1.0


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


@dataclass
class DetectorResult:
    detector: str
    metrics: Metrics
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, **asdict(self.metrics), **self.extra}


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


def batadal_score(truth: NDArray[Any], predicted: NDArray[Any], *, gamma: float = 0.5) -> dict[str, float]:
    """S_TTD = 1 − mean(TTD/Δt) over attacks, S_CM = (TPR + TNR)/2, S = γ·S_TTD + (1−γ)·S_CM.

    Each attack is a run of positive labels of Δt rows; TTD is the rows until the first flag inside
    it (Δt if never flagged).
    """
    t = np.asarray(truth).astype(bool)
    p = np.asarray(predicted).astype(bool)
    edges = np.diff(np.concatenate([[0], t.astype(int), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    ratios = []
    for start, end in zip(starts, ends, strict=True):
        hits = np.flatnonzero(p[start:end])
        ratios.append((hits[0] if len(hits) else end - start) / (end - start))
    s_ttd = 1.0 - float(np.mean(ratios)) if ratios else 1.0
    tpr = float(np.mean(p[t])) if t.any() else 1.0
    tnr = float(np.mean(~p[~t])) if (~t).any() else 1.0
    s_cm = (tpr + tnr) / 2
    return {"s_ttd": round(s_ttd, 4), "s_cm": round(s_cm, 4), "batadal_s": round(gamma * s_ttd + (1 - gamma) * s_cm, 4),
            "attacks": float(len(starts))}


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    if not path.is_file():
        raise EvalError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise EvalError(f"cannot read {path} as CSV: {str(exc).splitlines()[0]}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def skab_files(root: Path) -> list[Path]:
    """The labelled SKAB files, in a stable order; accepts the dataset root or its data/ folder."""
    if not root.is_dir():
        raise EvalError(f"no such directory: {root}")
    base = root / "data" if (root / "data").is_dir() and not (root / "valve1").is_dir() else root
    files = [f for folder in SKAB_FOLDERS for f in sorted((base / folder).glob("*.csv"),
                                                           key=lambda p: (len(p.stem), p.stem))]
    if not files:
        raise EvalError(f"{root} has no SKAB files (expected valve1/, valve2/, other/ with *.csv)")
    return files


def evaluate_skab(root: Path, detectors: Sequence[str], *, settings: Settings = Settings(),
                  progress: Progress | None = None) -> list[DetectorResult]:
    """Per file: train on the first 400 rows, score the rest; metrics pooled over all files."""
    files = skab_files(root)
    truth: list[NDArray[Any]] = []
    preds: dict[str, list[NDArray[Any]]] = {d: [] for d in detectors}
    for i, path in enumerate(files):
        if progress:
            progress(path.parent.name + "/" + path.name, i, len(files))
        frame = _read_csv(path, ";")
        if "anomaly" not in frame.columns:
            raise EvalError(f"{path} has no 'anomaly' column")
        sensors = [c for c in numeric_columns(frame) if c not in ("anomaly", "changepoint")]
        x = to_matrix(frame, sensors)
        labels = frame["anomaly"].to_numpy()
        if len(x) <= SKAB_TRAIN_ROWS:
            raise EvalError(f"{path} has {len(x)} rows; SKAB needs more than {SKAB_TRAIN_ROWS}")
        truth.append(labels[SKAB_TRAIN_ROWS:])
        for name in detectors:
            model = fit_calibrated(x[:SKAB_TRAIN_ROWS], detector=name, target_far=settings.target_far,
                                   holdout=settings.holdout, window=settings.window, margin=settings.margin)
            # score with the training tail in front so the smoothing window starts warm
            flags = model.flags(x)[SKAB_TRAIN_ROWS:]
            preds[name].append(flags)
    if progress:
        progress("done", len(files), len(files))
    pooled = np.concatenate(truth)
    return [DetectorResult(name, binary_metrics(pooled, np.concatenate(preds[name])),
                           {"files": float(len(files))}) for name in detectors]


def _labels(frame: pd.DataFrame, column: str, path: Path) -> NDArray[np.float64]:
    raw = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    known = np.isin(raw, (0.0, 1.0))
    if not known.any():
        raise EvalError(f"label column {column!r} in {path} has no 0/1 values")
    return np.where(known, raw, np.nan)


def evaluate_generic(
    train: Sequence[Path],
    test: Path,
    *,
    time_column: str,
    label_column: str,
    detectors: Sequence[str],
    sep: str = ",",
    settings: Settings = Settings(),
    predictions_out: Path | None = None,
    progress: Progress | None = None,
) -> list[DetectorResult]:
    """Train on the (normal) train rows in file order, test on `test`; optional predictions CSV.

    The sensors are the numeric columns of the test file other than time and label, and every
    train file must have them all. Rows labelled anomalous in a train file are dropped before
    training; unlabelled (−999) ones are kept as normal only if the file has no label column.
    """
    test_frame = _read_csv(test, sep)
    for col in (time_column, label_column):
        if col not in test_frame.columns:
            raise EvalError(f"column {col!r} not in {test} (columns: {', '.join(test_frame.columns[:8])}, …)")
    sensors = [c for c in numeric_columns(test_frame) if c not in (time_column, label_column)]
    if not sensors:
        raise EvalError(f"{test} has no numeric sensor columns besides {time_column!r} and {label_column!r}")
    parts = []
    for path in train:
        frame = _read_csv(path, sep)
        missing = [c for c in sensors if c not in frame.columns]
        if missing:
            raise EvalError(f"{path} lacks sensor column(s) {', '.join(missing[:5])} found in the test file")
        if label_column in frame.columns:
            frame = frame[pd.to_numeric(frame[label_column], errors="coerce") == 0]
        parts.append(to_matrix(frame, sensors))
    normal = np.concatenate(parts)
    if progress:
        progress("test file", 0, len(detectors))
    x = to_matrix(test_frame, sensors)
    labels = _labels(test_frame, label_column, test)
    known = ~np.isnan(labels)
    results = []
    outputs: dict[str, Any] = {time_column: test_frame[time_column].to_numpy()}
    for i, name in enumerate(detectors):
        if progress:
            progress(name, i, len(detectors))
        model = fit_calibrated(normal, detector=name, target_far=settings.target_far, holdout=settings.holdout,
                               window=settings.window, margin=settings.margin)
        # warm the smoothing window with the end of the normal history
        warm = normal[-model.window + 1:] if model.window > 1 else normal[:0]
        scores = model.score(np.concatenate([warm, x]))[len(warm):]
        flags = scores > model.threshold
        truth = labels[known].astype(bool)
        metrics = binary_metrics(truth, flags[known])
        extra = batadal_score(truth, flags[known])
        extra.update(threshold=round(model.threshold, 6), holdout_far=round(100 * model.holdout_far, 2))
        results.append(DetectorResult(name, metrics, extra))
        if len(detectors) == 1:
            outputs.update(score=scores, flag=flags.astype(int))
        else:
            outputs.update({f"score_{name}": scores, f"flag_{name}": flags.astype(int)})
    if predictions_out is not None:
        pd.DataFrame(outputs).to_csv(predictions_out, index=False)
    return results
