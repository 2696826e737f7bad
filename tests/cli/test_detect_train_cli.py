"""`qeaims detect train` and `show`: models saved where the oracles look, bad input as one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"QEAIMS_HOME": str(home), "COLUMNS": "200"})
    return env


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_train_show_and_refusals(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = run_cli(["detect", "train", "--sector", "banking", "--rows", "120", "--json"], env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    path = tmp_path / "models" / "banking.joblib"
    assert summary["sector"] == "banking" and summary["rows"] == 120 and summary["sensors"] == 18
    assert summary["path"] == str(path) and path.is_file() and summary["holdout_far"] <= 0.05

    shown = run_cli(["detect", "show", "--sector", "banking", "--verify"], env)
    assert shown.returncode == 0, shown.stderr
    meta = json.loads(shown.stdout)
    assert meta["sector"] == "banking" and meta["verified"] is True and len(meta["sha256"]) == 64
    assert meta["calibration"]["threshold"] == pytest.approx(summary["threshold"])

    assert "pass --force" in _one_line_error(run_cli(["detect", "train", "--sector", "banking"], env))
    table = run_cli(["detect", "train", "--sector", "banking", "--rows", "60", "--force"], env)
    assert table.returncode == 0 and "banking" in table.stdout and "holdout FAR" in table.stdout

    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert "sha256" in _one_line_error(run_cli(["detect", "show", "--sector", "banking", "--verify"], env))


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert "unknown sector 'gas'" in _one_line_error(run_cli(["detect", "train", "--sector", "gas"], env))
    assert "no trained model" in _one_line_error(run_cli(["detect", "show", "--sector", "water"], env))


@pytest.mark.slow
def test_train_all_sectors(tmp_path: Path) -> None:
    done = run_cli(["detect", "train", "--sector", "all", "--rows", "12", "--json"], _env(tmp_path), timeout=300)
    assert done.returncode == 0, done.stderr
    trained = {r["sector"]: r for r in json.loads(done.stdout)}
    assert set(trained) == {"electricity", "water", "sewage", "healthcare", "transportation", "banking"}
    # without --detector each sector gets its plan's: `qeaims up` trains this way (sewage judges by MSET)
    assert trained["sewage"]["detector"] == "mset" and trained["electricity"]["detector"] == "pca"
