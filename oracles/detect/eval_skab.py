"""SKAB (Skoltech Anomaly Benchmark), outlier-detection setting of its leaderboard.

For every labelled file under valve1/, valve2/, other/: the production detector is fitted and
calibrated on the file's first 400 rows (`SKAB_TRAIN_ROWS`, the leaderboard's protocol), the rest is
streamed through it row by row, and only then are the file's labels read. Counts are pooled over all
files. Every file must carry the first file's sensor columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from oracles.detect.eval import (
    SKAB_LEADERBOARD,
    DetectorResult,
    EvalError,
    Progress,
    Report,
    baselines,
    binary_metrics,
    check_columns,
    detection_delays,
    read_csv,
    stream_scores,
)
from oracles.detect.features import numeric_columns, to_matrix
from oracles.detect.models import DETECTORS
from oracles.detect.production import DetectorConfig, fit_config

__all__ = ["SKAB_FOLDERS", "SKAB_TRAIN_ROWS", "evaluate_skab", "skab_files"]

SKAB_FOLDERS = ("valve1", "valve2", "other")
SKAB_TRAIN_ROWS = 400
LABELS = ("anomaly", "changepoint")


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


def predict_file(x: NDArray[np.float64], config: DetectorConfig) -> tuple[NDArray[np.bool_], float]:
    """Flags for the rows after the first 400 of one file's sensor matrix, and the rows/s of streaming
    them. Takes the sensors only: no label can reach a prediction."""
    model = fit_config(x[:SKAB_TRAIN_ROWS], config)
    scored = stream_scores(model, x[:SKAB_TRAIN_ROWS], x[SKAB_TRAIN_ROWS:])
    return scored.flags, scored.seconds


def evaluate_skab(root: Path, config: DetectorConfig, *, secondary: Sequence[str] = (),
                  progress: Progress | None = None) -> Report:
    """Per file: fit on the first 400 rows, stream the rest; metrics pooled over all files."""
    files = skab_files(root)
    configs = [config, *(config.with_detector(name) for name in secondary)]
    truth: list[NDArray[np.bool_]] = []
    flags: list[list[NDArray[np.bool_]]] = [[] for _ in configs]
    seconds = [0.0 for _ in configs]
    sensors: list[str] = []
    for i, path in enumerate(files):
        if progress:
            progress(path.parent.name + "/" + path.name, i, len(files))
        frame = read_csv(path, ";")
        if "anomaly" not in frame.columns:
            raise EvalError(f"{path} has no 'anomaly' column")
        if not sensors:
            sensors = [c for c in numeric_columns(frame) if c not in LABELS]
        check_columns(frame, sensors, path, files[0])
        x = to_matrix(frame, sensors)
        if len(x) <= SKAB_TRAIN_ROWS:
            raise EvalError(f"{path} has {len(x)} rows; SKAB needs more than {SKAB_TRAIN_ROWS}")
        for k, cfg in enumerate(configs):
            predicted, spent = predict_file(x, cfg)
            flags[k].append(predicted)
            seconds[k] += spent
        truth.append(frame["anomaly"].to_numpy()[SKAB_TRAIN_ROWS:].astype(bool))
    if progress:
        progress("done", len(files), len(files))
    pooled = np.concatenate(truth)
    results = []
    for k, cfg in enumerate(configs):
        p = np.concatenate(flags[k])
        delays = [d for t, f in zip(truth, flags[k], strict=True) for d in detection_delays(t, f)]
        results.append(DetectorResult(cfg.detector, DETECTORS[cfg.detector].label, binary_metrics(pooled, p),
                                      role="production" if k == 0 else "secondary",
                                      extra={"files": float(len(files))},
                                      rows_per_s=len(p) / seconds[k] if seconds[k] > 0 else None, delays=delays,
                                      flags=p))
    published = [{"detector": name, "f1": f1, "far": far, "mar": mar} for name, f1, far, mar in SKAB_LEADERBOARD]
    return Report("skab", results[0], config.as_dict(), baselines(pooled), published, results[1:],
                  header={"path": str(root)})
