"""Every detector as the oracles run it: row by row, bounded memory, no look-ahead, labels never read.

A benchmark figure computed over a whole file at once would flatter a detector that peeks at the
future (a centred window, a scaler fitted on the test rows); these tests hold every registered
detector, and the benchmark itself, to what an oracle can do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oracles.detect.eval_csv import evaluate_csv
from oracles.detect.eval_skab import evaluate_skab
from oracles.detect.models import DETECTORS
from oracles.detect.production import BENCHMARK_SECTOR, Calibration, DetectorConfig, fit_config, sector_config

COLUMNS = ["Accelerometer1RMS", "Current", "Pressure", "Temperature", "Thermocouple"]


def plant(n: int, seed: int) -> np.ndarray:
    """A pump loop: one load drives vibration, current and pressure; two temperatures drift up slowly."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    load = 1.0 + 0.2 * np.sin(t / 40.0) + 0.05 * rng.standard_normal(n)
    return np.column_stack([
        0.2 * load + 0.01 * rng.standard_normal(n),
        2.0 * load + 0.05 * rng.standard_normal(n),
        1.0 * load + 0.03 * rng.standard_normal(n),
        70 + 0.004 * t + 0.1 * rng.standard_normal(n),
        25 + 0.003 * t + 0.05 * rng.standard_normal(n),
    ])


def faulty(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = plant(n, seed)
    labels = np.zeros(n)
    labels[n // 2:n // 2 + 80] = 1
    x[n // 2:n // 2 + 80, 1:3] *= [1.25, 0.7]  # a valve closing: current up, pressure down
    return x, labels


@pytest.fixture(params=sorted(DETECTORS))
def model(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    config = DetectorConfig(request.param, calibration=Calibration(window=3))
    return fit_config(plant(400, seed=1), config)


def test_streaming_gives_the_batch_scores(model) -> None:  # type: ignore[no-untyped-def]
    x, _ = faulty(300, seed=2)
    batch = model.score(x)
    scorer = model.stream()
    streamed = np.array([scorer.push(row)[0] for row in x])
    # the first rows see a shorter history in both; from `context` rows on, both see exactly it
    np.testing.assert_allclose(streamed, batch, rtol=1e-9, atol=1e-12)
    assert len(scorer.rows) == model.context, "the stream keeps more history than its context"


def test_no_score_depends_on_a_later_row(model) -> None:  # type: ignore[no-untyped-def]
    x, _ = faulty(300, seed=3)
    full = model.score(x)
    for cut in (50, 151, 240):
        np.testing.assert_allclose(model.score(x[:cut]), full[:cut], rtol=1e-9, atol=1e-12)
        changed = x.copy()
        changed[cut:] += 100.0  # anything may happen after row `cut`
        np.testing.assert_allclose(model.score(changed)[:cut], full[:cut], rtol=1e-9, atol=1e-12)


def _skab(root: Path, labels_of: str) -> None:
    for k, folder in enumerate(("valve1", "other")):
        train = plant(400, seed=10 + k)
        test, labels = faulty(300, seed=20 + k)
        frame = pd.DataFrame(np.vstack([train, test]), columns=COLUMNS)
        frame.insert(0, "datetime", pd.date_range("2020-03-09", periods=len(frame), freq="s").astype(str))
        full = np.r_[np.zeros(400), labels]
        if labels_of == "shuffled":
            full = np.random.default_rng(k).permutation(full)
        elif labels_of == "zero":
            full = np.zeros_like(full)
        frame["anomaly"] = full
        frame["changepoint"] = 0.0
        (root / folder).mkdir(parents=True)
        frame.to_csv(root / folder / "1.csv", sep=";", index=False)


def test_skab_predictions_do_not_change_with_the_labels(tmp_path: Path) -> None:
    """Shuffled or all-zero labels: the very same flags (only the metrics change)."""
    config = sector_config(BENCHMARK_SECTOR)
    flags: dict[str, np.ndarray] = {}
    for labels_of in ("true", "shuffled", "zero"):
        root = tmp_path / labels_of
        _skab(root, labels_of)
        report = evaluate_skab(root, config)
        assert report.production.flags is not None and report.production.metrics.n_test == 600
        flags[labels_of] = report.production.flags
    np.testing.assert_array_equal(flags["true"], flags["shuffled"])
    np.testing.assert_array_equal(flags["true"], flags["zero"])
    assert flags["true"].sum() > 0


def test_csv_predictions_do_not_change_when_the_labels_are_shuffled_or_removed(tmp_path: Path) -> None:
    normal = pd.DataFrame(plant(600, seed=4), columns=COLUMNS)
    normal.insert(0, "DATETIME", [f"t{i}" for i in range(600)])
    normal.to_csv(tmp_path / "train.csv", index=False)
    x, labels = faulty(300, seed=5)
    test = pd.DataFrame(x, columns=COLUMNS)
    test.insert(0, "DATETIME", [f"s{i}" for i in range(300)])
    config = sector_config(BENCHMARK_SECTOR)
    predictions = {}
    for labels_of in ("true", "shuffled", "removed"):
        frame = test.copy()
        if labels_of == "true":
            frame["ATT_FLAG"] = labels
        elif labels_of == "shuffled":
            frame["ATT_FLAG"] = np.random.default_rng(0).permutation(labels)
        path, out = tmp_path / f"{labels_of}.csv", tmp_path / f"{labels_of}-pred.csv"
        frame.to_csv(path, index=False)
        evaluate_csv([tmp_path / "train.csv"], path, config, time_column="DATETIME", label_column="ATT_FLAG",
                     predictions_out=out, blind=labels_of == "removed")
        predictions[labels_of] = pd.read_csv(out)
    pd.testing.assert_frame_equal(predictions["true"], predictions["shuffled"])
    pd.testing.assert_frame_equal(predictions["true"], predictions["removed"])
    assert predictions["true"]["flag"].sum() > 0
