"""`qeaims detect eval --dataset batadal` with the network's physics, on a tiny simulated C-Town stand-in.

The folder is laid out as BATADAL's: training set 1 (normal), training set 2 (attacks labelled in
``ATT_FLAG``) and ``c-town.inp`` — here the tiny network of `tests.sectors.scada_network`, so the
test needs no shared data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import wntr

from oracles.detect.eval_csv import BATADAL_FILES
from tests.oracles.test_detect_eval import run_detect
from tests.sectors.scada_network import simulate, tiny_network

NORMAL_ROWS = 24 * 56


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batadal")
    wn = tiny_network()
    rows = simulate(wn, 24 * 70, root)
    wntr.network.io.write_inpfile(tiny_network(), str(root / "c-town.inp"), units="LPS")
    normal, test = rows.iloc[:NORMAL_ROWS].copy(), rows.iloc[NORMAL_ROWS:].reset_index(drop=True)
    normal["ATT_FLAG"] = 0
    test["ATT_FLAG"] = 0
    test.loc[100:139, "L_T1"] += 1.0  # a level offset (attack 3's kind)
    test.loc[100:139, "ATT_FLAG"] = 1
    running = test.index[(test.S_PU1 == 1) & (test.index >= 220)][:6]
    test.loc[running, "S_PU1"] = 0.0  # a pump reported off while it runs
    test.loc[running[0]:running[-1], "ATT_FLAG"] = 1
    normal.to_csv(root / BATADAL_FILES[0], index=False)
    test.to_csv(root / BATADAL_FILES[1], index=False)
    return root


def test_production_row_is_detector_and_physics(folder: Path, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    result = run_detect(["--dataset", "batadal", str(folder), "--json", "--predictions-out", str(out)], capsys)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["detector"].endswith("+physics") and data["role"] == "production"
    assert {"S", "S_TTD", "S_CM", "tpr", "tnr", "rows_to_detect", "rows_per_s"} <= set(data)
    assert data["anomalies"] == 2 and data["anomalies_detected"] == 2
    assert all(d is not None and d <= 6 for d in data["rows_to_detect"])
    physics = next(r for r in data["secondary"] if r["detector"] == "physics")
    assert physics["anomalies_detected"] == 2
    thresholds = data["settings"]["physics"]["thresholds"]
    assert {"status:PU1", "control:PU1", "balance:T1", "hydraulic:P_JD"} <= set(thresholds)
    preds = pd.read_csv(out)
    assert {"score", "flag", "physics", "flag_physics", "physics_sensors"} <= set(preds.columns)
    assert (preds.physics[:100] <= 1).all() and (preds.flag[:100] == 0).all()  # normal rows before the attacks
    assert "L_T1" in str(preds.physics_sensors[100:106].str.cat(sep=" "))
    running = preds.index[preds.physics_sensors.fillna("").str.contains("S_PU1")]
    assert len(running) >= 1


def test_predictions_do_not_read_the_labels(folder: Path, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    test = pd.read_csv(folder / BATADAL_FILES[1])
    shuffled = tmp_path / "shuffled.csv"
    test.assign(ATT_FLAG=test.ATT_FLAG.sample(frac=1.0, random_state=1).to_numpy()).to_csv(shuffled, index=False)
    blind = tmp_path / "blind.csv"
    test.drop(columns="ATT_FLAG").to_csv(blind, index=False)
    flags: list[pd.DataFrame] = []
    for args in (["--test", str(shuffled)], ["--test", str(blind), "--blind"]):
        out = tmp_path / f"pred{len(flags)}.csv"
        result = run_detect(["--dataset", "batadal", str(folder), *args, "--predictions-out", str(out), "--json"],
                            capsys)
        assert result.returncode == 0, result.stderr
        flags.append(pd.read_csv(out)[["flag", "physics"]])
    pd.testing.assert_frame_equal(flags[0], flags[1])


def test_folder_without_the_network_is_one_error_line(folder: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in BATADAL_FILES:
        (bare / name).write_bytes((folder / name).read_bytes())
    result = run_detect(["--dataset", "batadal", str(bare)], capsys)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "c-town.inp" in lines[0] and lines[0].startswith("error:")
