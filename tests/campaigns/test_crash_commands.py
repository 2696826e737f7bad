"""`qeaims campaign crash` and `chain-down` around their campaign (`crash_campaign_cmd._play`): the
table or the JSON, every problem on its own line, exit 1 when the report is not ok. The campaigns
themselves (minutes on a throwaway city) are replaced by a finished report; they are run end to end
in tests/crash/test_campaigns_slow.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qeaims import chain_down_campaign, crash_campaign
from qeaims.chain_down_campaign import ChainDownReport
from qeaims.cli import main
from qeaims.crash_campaign import CrashReport, KillRecord
from qeaims.crash_checks import Ending, LedgerCheck

pytestmark = pytest.mark.unit
AUDIT = {"events": 10, "batches": 2, "valid": 10, "invalid": []}


def _cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str]:
    """Exit code and stdout; with the table (wrapped to the terminal) its white space folded."""
    try:
        main(["--home", str(home), "campaign", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    return code, out if "--json" in args else " ".join(out.split())


def _crash(ledger: LedgerCheck, outbox_problems: list[str]) -> CrashReport:
    kill = KillRecord(1, "chain", "anvil", "banking", "banking-fault", 3.0, recovered=True, recovery_s=4.2,
                      injected=True, scenario_ok=True, healthy_after=True)
    return CrashReport(1, 5, ["banking"], [kill], ledger, outbox_problems, AUDIT, True)


def test_the_crash_command_prints_the_report_and_fails_on_a_lost_event(capsys, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    reports = iter([_crash(LedgerCheck(events=10, recorders=2), []),
                    _crash(LedgerCheck(lost_ids=["0xabcd#3"]), ["0xabcd: outbox up to #4"])] * 2)
    seen: list[Any] = []

    def fake(options: Any, progress: Any) -> CrashReport:
        seen.append(options)
        progress("run 1/1")
        return next(reports)

    monkeypatch.setattr(crash_campaign, "run_crash_campaign", fake)
    code, out = _cli(capsys, tmp_path, "crash", "--runs", "1", "--seed", "5", "--kinds", "chain")
    assert code == 0 and "nothing lost, nothing applied twice" in out and "audit: 10 valid, 0 invalid" in out
    assert seen[0].runs == 1 and seen[0].kinds == ("chain",)
    code, out = _cli(capsys, tmp_path, "crash", "--runs", "1")
    assert code == 1 and "campaign FAILED" in out
    assert "problem: 0xabcd#3" in out and "problem: 0xabcd: outbox up to #4" in out
    code, out = _cli(capsys, tmp_path, "crash", "--runs", "1", "--json")
    body = json.loads(out)
    assert code == 0 and body["ok"] and body["events_lost"] == 0 and body["audit"] == {**AUDIT, "problems": None}
    code, out = _cli(capsys, tmp_path, "crash", "--runs", "1", "--json")
    body = json.loads(out)
    assert code == 1 and not body["ok"] and body["events_lost"] == 2 and not body["ledger"]["ok"]


def test_the_chain_down_command_prints_the_report_and_fails_on_a_command_during_the_outage(  # type: ignore[no-untyped-def]
        capsys, tmp_path, monkeypatch) -> None:
    good = ChainDownReport(5.0, ["banking"], queued=3, drained=True, drain_s=1.5, ending=Ending(audit=AUDIT))
    bad = ChainDownReport(5.0, ["banking"], queued=3, drained=True, ending=Ending(audit=AUDIT),
                          commands_during_outage=["banking: isolate atm-1"])
    reports = iter([good, bad, bad])
    monkeypatch.setattr(chain_down_campaign, "run_chain_down", lambda options, progress: next(reports))
    code, out = _cli(capsys, tmp_path, "chain-down", "--seconds", "5")
    assert code == 0 and "queued, nothing lost, drained in order" in out
    code, out = _cli(capsys, tmp_path, "chain-down", "--seconds", "5")
    assert code == 1 and "problem: command during the outage: banking: isolate atm-1" in out
    code, out = _cli(capsys, tmp_path, "chain-down", "--seconds", "5", "--json")
    body = json.loads(out)
    assert code == 1 and not body["ok"] and body["events_lost"] == 0 and "ending" not in body
    assert body["commands_during_outage"] == ["banking: isolate atm-1"] and body["ledger"]["ok"]
