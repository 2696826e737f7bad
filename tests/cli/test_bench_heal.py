"""`qeaims bench heal` as a person runs it: bad options get one clear line and exit 2, before any chain starts.

The run itself (chain, twin, oracles, controller) is exercised in `tests/controller/test_bench_heal.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from tests.cli.test_cli import _one_line_error
from tests.conftest import cli_env, free_port, run_cli


@pytest.mark.parametrize(("args", "message"), [
    (["--runs", "0"], "--runs"),
    (["--runs", "many"], "--runs"),
    (["--speed", "0"], "--speed"),
    (["--timeout", "1"], "--timeout"),
    (["--train-rows", "2"], "--train-rows"),
    (["--sector", "gas"], "unknown sector 'gas'"),
    (["--sector", "healthcare"], "--sector"),
    (["--fast"], "No such option"),
])
def test_bad_options_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = cli_env(load_settings(home=tmp_path, rpc_port=free_port(), scrypt_n=1024))
    line = _one_line_error(run_cli(["bench", "heal", *args], env))
    assert line.startswith("error") and message in line, line
    assert not (tmp_path / "chain").exists(), "a bad flag starts nothing"
