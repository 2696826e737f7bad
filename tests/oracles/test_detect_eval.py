"""`qeaims detect eval` and its metrics on tiny generated datasets, checked by hand."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oracles.detect.eval import batadal_score, binary_metrics
from oracles.detect.eval_skab import evaluate_skab
from oracles.detect.production import BENCHMARK_SECTOR, Calibration, DetectorConfig, sector_config
from qeaims.cli import main

COLUMNS = ["Accelerometer1RMS", "Current", "Pressure", "Temperature"]
MEAN = np.array([0.2, 2.0, 1.0, 70.0])


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_detect(args: list[str], capsys: pytest.CaptureFixture[str]) -> Run:
    """The command in-process (a subprocess per call would cost seconds of imports each)."""
    capsys.readouterr()
    try:
        main(["detect", "eval", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return Run(code, out.out, out.err)


def test_binary_metrics_by_hand() -> None:
    truth = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([0, 1, 1, 1, 0, 0])
    m = binary_metrics(truth, pred)
    assert (m.tp, m.tn, m.fp, m.fn) == (2, 2, 1, 1)
    assert m.f1 == round(2 / (2 + (1 + 1) / 2), 4)  # 0.6667
    assert m.far == 33.33 and m.mar == 33.33 and m.n_test == 6


def test_batadal_score_by_hand() -> None:
    # two attacks of 4 rows: found after 1 row, and never; one false alarm in 6 normal rows
    truth = np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    pred = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    s = batadal_score(truth, pred)
    s_ttd = 1 - (1 / 4 + 4 / 4) / 2
    s_cm = (3 / 8 + 5 / 6) / 2
    assert s["S_TTD"] == round(s_ttd, 4) and s["S_CM"] == round(s_cm, 4)
    assert s["S"] == round(0.5 * s_ttd + 0.5 * s_cm, 4) and s["attacks"] == 2


def _skab_file(path: Path, seed: int) -> None:
    """400 noisy training rows, then 100 rows at the training mean, 50 far off (anomaly), 50 at the mean."""
    rng = np.random.default_rng(seed)
    train = MEAN + rng.standard_normal((400, 4)) * [0.01, 0.1, 0.05, 1.0]
    calm = np.tile(train[:300].mean(axis=0), (100, 1))
    fault = calm[:50] + [0.5, 3.0, 2.0, 20.0]
    rows = np.concatenate([train, calm, fault, calm[:50]])
    labels = np.r_[np.zeros(500), np.ones(50), np.zeros(50)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.insert(0, "datetime", pd.date_range("2020-03-09", periods=len(rows), freq="s").astype(str))
    frame["anomaly"] = labels
    frame["changepoint"] = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=";", index=False)


def test_skab_layout_metrics_are_pooled_as_skab_scores_them(tmp_path: Path) -> None:
    _skab_file(tmp_path / "valve1" / "0.csv", 1)
    _skab_file(tmp_path / "other" / "1.csv", 2)
    config = DetectorConfig("pca", calibration=Calibration(target_far=0.01, window=5))
    report = evaluate_skab(tmp_path, config, secondary=["mset"])
    data = report.as_dict()
    # a 5-row rolling median needs 3 high rows: per file the first 2 fault rows are missed (FN) and
    # the 2 rows after the fault still flagged (FP); everything else is right
    assert data["n_test"] == 2 * 200
    assert (data["tp"], data["fn"], data["fp"], data["tn"]) == (96, 4, 4, 296)
    assert data["f1"] == round(96 / (96 + (4 + 4) / 2), 4)  # 0.96
    assert data["far"] == round(100 * 4 / 300, 2)  # 1.33 %
    assert data["mar"] == 4.0
    assert data["rows_to_detect"] == [2, 2] and data["anomalies_detected"] == 2
    assert data["baselines"]["all_anomalous"] == {"f1": round(100 / (100 + 300 / 2), 4), "far": 100.0, "mar": 0.0}
    assert data["baselines"]["all_normal"] == {"f1": 0.0, "far": 0.0, "mar": 100.0}
    assert [r["detector"] for r in data["secondary"]] == ["mset"] and data["secondary"][0]["role"] == "secondary"


def test_eval_runs_the_production_detector_with_its_settings(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _skab_file(tmp_path / "valve1" / "0.csv", 1)
    result = run_detect(["--dataset", "skab", str(tmp_path), "--json"], capsys)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    production = sector_config(BENCHMARK_SECTOR)
    assert data["detector"] == production.detector and data["role"] == "production"
    assert data["settings"] == production.as_dict() and data["settings"]["source"]
    assert {"f1", "far", "mar", "baselines", "published", "rows_per_s", "rows_to_detect"} <= set(data)
    assert data["rows_per_s"] > 0 and data["secondary"] == []
    assert any(row["detector"] == "Conv-AE" and row["far"] == 13.55 for row in data["published"])
    table = run_detect(["--dataset", "skab", str(tmp_path), "--detector", "mset"], capsys)
    assert table.returncode == 0 and "MSET" in table.stdout and "all anomalous" in table.stdout


def test_generic_csvs_with_unlabelled_rows_and_predictions_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    normal = MEAN + rng.standard_normal((600, 4)) * [0.01, 0.1, 0.05, 1.0]
    train = pd.DataFrame(normal, columns=COLUMNS)
    train.insert(0, "DATETIME", [f"t{i}" for i in range(600)])
    train["ATT_FLAG"] = 0
    train.loc[590:, "ATT_FLAG"] = 1  # labelled attacks in a train file are left out of training
    train.loc[590:, COLUMNS] += 100
    train.to_csv(tmp_path / "train.csv", index=False)
    test_rows = MEAN + rng.standard_normal((120, 4)) * [0.01, 0.1, 0.05, 1.0]
    test_rows[60:90] += [0.5, 3.0, 2.0, 20.0]
    test = pd.DataFrame(test_rows, columns=COLUMNS)
    test.insert(0, "DATETIME", [f"s{i}" for i in range(120)])
    test["ATT_FLAG"] = np.r_[np.zeros(60), np.ones(30), np.zeros(30)]
    test.loc[:9, "ATT_FLAG"] = -999  # unlabelled rows: out of every metric
    test.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "pred.csv"
    result = run_detect(["--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
                      "--time-column", "DATETIME", "--label-column", "ATT_FLAG", "--predictions-out", str(out),
                      "--detector", "mset", "--json"], capsys)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["n_test"] == 110
    assert data["mar"] < 10
    assert {"S", "S_TTD", "S_CM", "tpr", "tnr"} <= set(data) and data["attacks"] == 1
    preds = pd.read_csv(out)
    assert list(preds.columns[:1]) == ["DATETIME"] and len(preds) == 120
    assert {"score", "flag", "score_mset", "flag_mset"} <= set(preds.columns)  # production, then the others
    # no false alarm in normal operation; the production detector scores 30-row means (oracles.detect.drift),
    # so it may stay flagged for up to 30 rows after the attack ends, never later
    production = sector_config(BENCHMARK_SECTOR)
    window = int(getattr(production.make(), "mean_rows", 0)) + production.calibration.window
    assert not preds["flag"][10:60].any() and not preds["flag"][90 + window:].any()


def _one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    result = run_detect([*args], capsys)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_input_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def one_line(args: list[str]) -> str:
        return _one_line_error(args, capsys)

    assert "no such directory" in one_line(["--dataset", "skab", str(tmp_path / "nope")])
    assert "has no SKAB files" in one_line(["--dataset", "skab", str(tmp_path)])
    assert "unknown dataset" in one_line(["--dataset", "nab", str(tmp_path)])
    assert "unknown detector" in one_line(["--dataset", "skab", str(tmp_path), "--detector", "magic"])
    assert "either --dataset" in one_line([])
    csv = tmp_path / "a.csv"
    pd.DataFrame({"t": range(10), "x": range(10), "y": np.arange(10) % 2}).to_csv(csv, index=False)
    base = ["--train", str(csv), "--test", str(csv), "--time-column", "t"]
    assert "column 'label' not in" in one_line([*base, "--label-column", "label"])
    assert "no such file" in one_line(["--train", str(tmp_path / "x.csv"), "--test", str(csv),
                                              "--time-column", "t", "--label-column", "y"])
    assert "all needed" in one_line(["--train", str(csv), "--test", str(csv)])
    # a test file whose sensors differ from the training file's, either way
    other = tmp_path / "b.csv"
    pd.DataFrame({"t": range(10), "z": range(10), "y": np.arange(10) % 2}).to_csv(other, index=False)
    labelled = [*base[:2], "--test", str(other), "--time-column", "t", "--label-column", "y"]
    assert "lacks sensor column(s) x found in" in one_line(labelled)
    wider = tmp_path / "c.csv"
    pd.DataFrame({"t": range(10), "x": range(10), "w": range(10), "y": np.arange(10) % 2}).to_csv(wider, index=False)
    assert "has sensor column(s) w that" in one_line([*base[:2], "--test", str(wider), "--time-column", "t",
                                                      "--label-column", "y"])
    assert "--blind scores without labels" in one_line([*base, "--blind"])
    # BATADAL: a folder without its CSV files, and a test file without the label column
    (tmp_path / "empty").mkdir()
    assert "lacks BATADAL_training_dataset_1.csv" in one_line(["--dataset", "batadal", str(tmp_path / "empty")])
    batadal = tmp_path / "batadal"
    batadal.mkdir()
    frame = pd.DataFrame({"DATETIME": [f"0{i}/01/14 00" for i in range(1, 10)], "L_T1": np.arange(9.0),
                          "ATT_FLAG": np.zeros(9)})
    frame.to_csv(batadal / "BATADAL_training_dataset_1.csv", index=False)
    frame.drop(columns="ATT_FLAG").to_csv(batadal / "BATADAL_training_dataset_2.csv", index=False)
    assert "column 'ATT_FLAG' not in" in one_line(["--dataset", "batadal", str(batadal)])
    # SKAB: a file without the label column, and a file whose sensors differ from the first one's
    _skab_file(tmp_path / "skab" / "valve1" / "0.csv", 1)
    second = tmp_path / "skab" / "other" / "1.csv"
    _skab_file(second, 2)
    pd.read_csv(second, sep=";").drop(columns="Current").to_csv(second, sep=";", index=False)
    assert "lacks sensor column(s) Current" in one_line(["--dataset", "skab", str(tmp_path / "skab")])
    pd.read_csv(second, sep=";").drop(columns="anomaly").to_csv(second, sep=";", index=False)
    assert "has no 'anomaly' column" in one_line(["--dataset", "skab", str(tmp_path / "skab")])
