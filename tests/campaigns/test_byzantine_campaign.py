"""`qeaims campaign byzantine` on a real Anvil with the real contracts (docs/campaigns.md): a small
campaign keeps its goals, more liars than f make it fail (the counters are not constant zero), a
run replays to the same record, and bad input is one `error:` line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qeaims.campaigns.byzantine import BEHAVIOURS
from qeaims.campaigns.common import derive_seed
from tests.conftest import free_port
from tests.support import run_main


def _campaign(capsys, tmp_path, *args: str) -> tuple[int, dict[str, Any], str]:  # type: ignore[no-untyped-def]
    code, out, err = run_main(capsys, "--home", str(tmp_path), "--port", str(free_port()),
                              "campaign", "byzantine", "--json", *args)
    return code, json.loads(out), err


@pytest.mark.chain
def test_a_small_campaign_isolates_every_fault_and_no_healthy_node_and_its_runs_replay(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, report, err = _campaign(capsys, tmp_path, "--runs", "10", "--seed", "20", "--records")
    assert code == 0, err
    assert (report["runs"], report["wrongful"], report["missed"], report["failing"]) == (10, 0, 0, [])
    # every behaviour was tried, and what the liars sent reached the chain: the zeros are earned
    assert all(report["behaviours"][b] > 0 for b in BEHAVIOURS), report["behaviours"]
    assert report["effects"].get("honest: voted", 0) > 0
    assert report["effects"].get("forged-signature: accepted", 0) > 0  # the EVM cannot check ML-DSA
    assert report["effects"].get("forged-signature: sender caught by its peers", 0) > 0
    assert report["effects"].get("liar quarantined", 0) > 0
    assert report["details"]["votes_not_votes"] > 0
    assert report["details"]["peer_check_disagrees_in_runs"] == []
    faults = sum(len(s["faulty"]) for r in report["records"] for s in r["drawn"].values())
    isolated = sum(len(s["isolated"]) for r in report["records"] for s in r["outcome"].values() if isinstance(s, dict)
                   and "isolated" in s)
    assert faults == isolated > 0
    # run 6, played alone on a fresh chain from its derived seed, gives the same record
    run = report["records"][6]
    assert run["seed"] == derive_seed(20, 6)
    code, alone, err = _campaign(capsys, tmp_path / "replay", "--replay", str(run["seed"]), "--records")
    assert code == 0, err
    replayed = alone["records"][0]
    assert {k: v for k, v in replayed.items() if k != "index"} == {k: v for k, v in run.items() if k != "index"}


@pytest.mark.chain
def test_more_liars_than_f_make_the_campaign_fail_and_name_the_seeds(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two liars of four (f = 1) silent on a real fault leave two honest votes of the three needed:
    missed isolations, exit code 1, and the seeds to replay them."""
    code, report, err = _campaign(capsys, tmp_path, "--runs", "4", "--seed", "3", "--liars", "2")
    assert code == 1
    assert report["missed"] > 0 and report["failing"]
    first = report["failing"][0]
    assert first["seed"] == derive_seed(3, first["index"])
    assert f"--replay {first['seed']}" in first["replay"] and "--liars 2" in first["replay"]
    assert "campaign failed" in err and str(first["seed"]) in err


@pytest.mark.unit
@pytest.mark.parametrize(("args", "says"), [
    (["--runs", "0"], "--runs"),
    (["--runs", "3", "--seed", "banana"], "bad seed 'banana'"),
    (["--runs", "3", "--seed", "-4"], "bad seed '-4'"),
    (["--runs", "3", "--seed", "1", "--sectors", "gas"], "unknown sector 'gas'"),
    (["--only", "2"], "--only needs the campaign's --seed"),
    (["--replay", "x1"], "bad replay seed"),
])
def test_bad_input_is_one_error_line(capsys, tmp_path, args: list[str], says: str) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = run_main(capsys, "--home", str(tmp_path), "campaign", "byzantine", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error") and says in lines[0], err
    assert not (tmp_path / "campaigns").exists()  # nothing started
