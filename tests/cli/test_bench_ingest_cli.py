"""`qeaims bench ingest` as a person runs it: one-line errors for bad options, JSON figures otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import load_settings
from tests.cli.test_cli import _one_line_error
from tests.conftest import cli_env, free_port, run_cli


@pytest.mark.parametrize(("args", "message"), [
    (["--seconds", "0"], "--seconds"),
    (["--seconds", "soon"], "--seconds"),
    (["--producers", "0"], "--producers"),
    (["--checkers", "99"], "--checkers"),
    (["--batch-size", "8"], "--batch-size"),
    (["--chunk", "1"], "--chunk"),
    (["--fast"], "No such option"),
])
def test_bad_options_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = cli_env(load_settings(home=tmp_path, rpc_port=free_port(), scrypt_n=1024))
    line = _one_line_error(run_cli(["bench", "ingest", *args], env))
    assert line.startswith("error") and message in line


def test_bench_ingest_prints_json_figures(tmp_path: Path) -> None:
    env = cli_env(load_settings(home=tmp_path, rpc_port=free_port(), scrypt_n=1024))
    done = run_cli(["bench", "ingest", "--seconds", "1", "--batch-size", "1024", "--checkers", "1", "--json"], env,
                   timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["readings_per_second"] > 0 and figures["anchor_lag_p95_s"] > 0
    assert figures["roots_on_chain"] == figures["batches"] >= 1
    assert not (tmp_path / "telemetry").exists(), "the benchmark keeps its chain and store to itself"
