"""Labelled CSVs in general, and BATADAL in particular: train on normal rows, score a test file.

The model is fitted and calibrated on the normal rows of the train files (rows a train file labels
anomalous are dropped first), the test file is streamed through it row by row, and its labels are
read only by the metrics. The sensors are the train files' numeric columns other than time and
label; the test file must have exactly those (a test file with other columns is a different plant).
Rows whose label is neither 0 nor 1 (BATADAL's −999, "unlabelled") are left out of every metric.
`blind` scores a test file without labels (the reviewer's held-out period): predictions only.

BATADAL (`BATADAL_FILES`): trained on training set 1 (a year of normal operation) only, validated on
training set 2 (six months, seven attacks), as the competition's rules allowed; the S score and the
per-attack time to detection are reported beside F1, FAR and MAR. Its production row is the water
detector joined by C-Town's physics checks (`eval_batadal`: the network `c-town.inp` in the dataset
folder, fitted on training set 1's rows too); the detector alone and the physics alone are
secondary rows, and the predictions file gets each row's physics ratio and the sensors it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from oracles.detect.eval import (
    BATADAL_ENTRIES,
    DetectorResult,
    EvalError,
    Progress,
    Report,
    Scored,
    baselines,
    batadal_score,
    binary_metrics,
    check_columns,
    detection_delays,
    read_csv,
    stream_scores,
)
from oracles.detect.eval_batadal import PhysicsRun, fit_physics, hold_rows, hour_of_week, stream_physics
from oracles.detect.features import numeric_columns, to_matrix
from oracles.detect.models import DETECTORS
from oracles.detect.production import DetectorConfig, fit_config

__all__ = ["BATADAL_FILES", "Predictions", "batadal_paths", "evaluate_csv"]

BATADAL_FILES = ("BATADAL_training_dataset_1.csv", "BATADAL_training_dataset_2.csv")
BATADAL_TIME, BATADAL_LABEL = "DATETIME", "ATT_FLAG"


def batadal_paths(root: Path) -> tuple[Path, Path]:
    """Training set 1 (train) and training set 2 (validation) in a BATADAL folder."""
    if not root.is_dir():
        raise EvalError(f"no such directory: {root}")
    paths = tuple(root / name for name in BATADAL_FILES)
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        found = sorted(p.name for p in root.glob("*.csv"))
        raise EvalError(f"{root} lacks {', '.join(missing)} (CSV files there: {', '.join(found) or 'none'})")
    return paths[0], paths[1]


def _labels(frame: pd.DataFrame, column: str, path: Path) -> NDArray[np.float64]:
    raw = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    known = np.isin(raw, (0.0, 1.0))
    if not known.any():
        raise EvalError(f"label column {column!r} in {path} has no 0/1 values")
    return np.where(known, raw, np.nan)


def _normal_rows(train: Sequence[Path], *, time_column: str, label_column: str,
                 sep: str) -> tuple[list[str], NDArray[np.float64], NDArray[Any]]:
    """The train files' sensor columns (the first file's), their normal rows in file order, and those
    rows' times."""
    sensors: list[str] = []
    parts, times = [], []
    for path in train:
        frame = read_csv(path, sep)
        if time_column not in frame.columns:
            raise EvalError(f"column {time_column!r} not in {path} (columns: {', '.join(frame.columns[:8])}, …)")
        if not sensors:
            sensors = [c for c in numeric_columns(frame) if c not in (time_column, label_column)]
            if not sensors:
                raise EvalError(f"{path} has no numeric sensor columns besides {time_column!r} and {label_column!r}")
        check_columns(frame, sensors, path, train[0])
        if label_column in frame.columns:
            frame = frame[pd.to_numeric(frame[label_column], errors="coerce") == 0]
        parts.append(to_matrix(frame, sensors))
        times.append(frame[time_column].to_numpy())
    return sensors, np.concatenate(parts), np.concatenate(times)


def _physics(train: Path, sensors: Sequence[str], normal: NDArray[np.float64], normal_times: NDArray[Any],
             test: Path, test_frame: pd.DataFrame, x: NDArray[np.float64], *,
             time_column: str) -> tuple[PhysicsRun, Any, int]:
    """C-Town's physics checks fitted on the normal training rows (with their times; the network is
    `train`'s neighbour) and streamed over `x`."""
    normal_how = hour_of_week(normal_times, train)
    model = fit_physics(train.parent, sensors, normal, normal_how)
    how = hour_of_week(test_frame[time_column].to_numpy(), test)
    hold = hold_rows(model, normal)
    return stream_physics(model, normal, normal_how, x, how, hold=hold), model, hold


@dataclass(frozen=True)
class Predictions:
    """A blind run's outcome: where the predictions went, for how many rows, under which settings."""

    path: Path | None
    rows: int
    settings: dict[str, Any]


def evaluate_csv(
    train: Sequence[Path],
    test: Path,
    config: DetectorConfig,
    *,
    time_column: str,
    label_column: str,
    secondary: Sequence[str] = (),
    sep: str = ",",
    predictions_out: Path | None = None,
    blind: bool = False,
    dataset: str = "csv",
    progress: Progress | None = None,
) -> Report | Predictions:
    """Fit on the train files' normal rows, stream `test`; the report (when `blind`, what was written)."""
    sensors, normal, normal_times = _normal_rows(train, time_column=time_column, label_column=label_column, sep=sep)
    test_frame = read_csv(test, sep)
    needed = [time_column] if blind else [time_column, label_column]
    for col in needed:
        if col not in test_frame.columns:
            raise EvalError(f"column {col!r} not in {test} (columns: {', '.join(test_frame.columns[:8])}, …)")
    check_columns(test_frame, sensors, test, train[0])
    extra = [c for c in numeric_columns(test_frame) if c not in (*sensors, time_column, label_column)]
    if extra:
        raise EvalError(f"{test} has sensor column(s) {', '.join(extra[:5])} that {train[0]} does not")
    x = to_matrix(test_frame, sensors)
    configs = [config, *(config.with_detector(name) for name in secondary)]
    outputs: dict[str, Any] = {time_column: test_frame[time_column].to_numpy()}
    scored, thresholds = [], []
    for i, cfg in enumerate(configs):
        if progress:
            progress(cfg.detector, i, len(configs))
        model = fit_config(normal, cfg)
        thresholds.append(model.threshold)
        run = stream_scores(model, normal, x)
        scored.append(run)
        suffix = "" if i == 0 else f"_{cfg.detector}"
        outputs.update({f"score{suffix}": run.scores, f"flag{suffix}": run.flags.astype(int)})
    physics = _physics(train[0], sensors, normal, normal_times, test, test_frame, x, time_column=time_column) \
        if dataset == "batadal" else None
    settings = config.as_dict()
    if physics is not None:
        prun, pmodel, hold = physics
        combined = Scored(np.maximum(scored[0].scores / thresholds[0], prun.ratios),
                          scored[0].flags | prun.flags, scored[0].seconds + prun.seconds)
        scored = [combined, scored[0], Scored(prun.ratios, prun.flags, prun.seconds), *scored[1:]]
        outputs.update({"score": combined.scores, "flag": combined.flags.astype(int),
                        f"score_{config.detector}": scored[1].scores, f"flag_{config.detector}": scored[1].flags.astype(int),
                        "physics": prun.ratios, "flag_physics": prun.flags.astype(int),
                        "physics_sensors": prun.sensors})
        settings["physics"] = {"network": str(train[0].parent / "c-town.inp"), "hold_rows": hold,
                               "fitted_on": str(train[0]), "combine": "union of alarms",
                               "thresholds": {c.name: round(float(c.threshold), 4) for c in pmodel.checks}}
    if predictions_out is not None:
        pd.DataFrame(outputs).to_csv(predictions_out, index=False)
    if blind:
        return Predictions(predictions_out, len(x), settings)
    labels = _labels(test_frame, label_column, test)  # read only now, by the metrics
    known = ~np.isnan(labels)
    truth = labels[known].astype(bool)
    names = [(cfg.detector, DETECTORS[cfg.detector].label) for cfg in configs]
    if physics is not None:
        base = names[0]
        names = [(f"{base[0]}+physics", f"{base[1]} ∪ C-Town physics"), base,
                 ("physics", "C-Town physics checks"), *names[1:]]
    results = []
    for i, ((name, label), run) in enumerate(zip(names, scored, strict=True)):
        flags = run.flags[known]
        results.append(DetectorResult(name, label, binary_metrics(truth, flags),
                                      role="production" if i == 0 else "secondary",
                                      extra=batadal_score(truth, flags),
                                      rows_per_s=len(x) / run.seconds if run.seconds > 0 else None,
                                      delays=detection_delays(truth, flags)))
    published = [{"detector": name, "S": s, "note": "competition test period"} for name, s in BATADAL_ENTRIES] \
        if dataset == "batadal" else []
    return Report(dataset, results[0], settings, baselines(truth, batadal=True), published, results[1:],
                  header={"train": [str(p) for p in train], "test": str(test)})
