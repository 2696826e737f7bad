"""Bad campaign flags end in one `error:` line (exit 2) before anything starts."""

from __future__ import annotations

import pytest

from qeaims.cli import main

BAD = [
    (["campaign", "crash", "--runs", "0"], "--runs must be at least 1"),
    (["campaign", "crash", "--sectors", "gas"], "unknown sector 'gas'"),
    (["campaign", "crash", "--sectors", "banking,banking"], "names a sector twice"),
    (["campaign", "crash", "--kinds", "chain,disk"], "--kinds disk"),
    (["campaign", "chain-down", "--seconds", "0"], "--seconds must be at least 1"),
    (["campaign", "chain-down", "--seconds", "0.5"], "--seconds must be at least 1"),
    (["campaign", "chain-down", "--sectors", "gas"], "unknown sector 'gas'"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD)
def test_bad_campaign_flags_get_one_error_line(argv: list[str], expected: str, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main(["--home", str(tmp_path), *argv])
    assert exited.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error") and expected in err[0], err
    assert not (tmp_path / "chain").exists()  # refused before any chain or city was started
