"""A crash-campaign run counts only if its fault went in: a refused injection is not valid, not passed.

Found by the 20-run campaign (docs/crash-campaign.md): six runs injected nothing, the twin still held
the earlier run's outage ("already has an active outage"), and those runs still counted.
"""

from __future__ import annotations

import json
from typing import Any

from qeaims.crash_campaign import CrashReport, KillRecord, _read_scenario
from qeaims.crash_checks import LedgerCheck


def _report(error: str, detected: int, isolated: int, restored: int) -> str:
    track: dict[str, Any] = {"step": "banking: inject-fault outage dc-primary", "node": "banking-dc-primary",
                             "attack": False, "error": error}
    return json.dumps({"faults": {"injected": 1, "detected": detected, "isolated": isolated, "restored": restored,
                                  "wrongful_isolations": 0}, "tracks": [track]})


def _record() -> KillRecord:
    return KillRecord(1, "chain", "anvil", "banking", "banking-fault", 3.0)


def test_a_refused_injection_is_not_a_valid_run() -> None:
    record = _record()
    nodes = _read_scenario(record, 0, _report("dc-primary already has an active outage; clear it first", 0, 0, 0), "")
    assert not record.injected and not record.valid and not record.scenario_ok
    assert record.scenario_note.startswith("nothing injected: dc-primary already has an active outage")
    assert nodes == ["banking-dc-primary"]


def test_a_fault_played_to_the_end_is_valid_and_passes_once_the_city_is_healthy() -> None:
    played, refused = _record(), _record()
    _read_scenario(played, 0, _report("", 1, 1, 1), "")
    _read_scenario(refused, 0, _report("no acknowledgement from the twin in time", 0, 0, 0), "")
    assert played.valid and played.detected and played.isolated and played.restored and played.scenario_ok
    played.healthy_after = refused.healthy_after = True
    report = CrashReport(2, 1, ["banking"], [played, refused], LedgerCheck(), [], {}, True)
    assert report.scenarios() == {"runs": 2, "injected": 1, "detected": 1, "isolated": 1, "restored": 1,
                                  "healthy_after": 2, "valid": 1, "passed": 1}
    assert report.as_json()["scenarios"]["passed"] == 1
    assert [k["valid"] for k in report.as_json()["kills"]] == [True, False]


def test_detected_but_not_isolated_is_valid_but_not_isolated() -> None:
    record = _record()
    _read_scenario(record, 0, _report("", 1, 0, 0), "")
    assert record.valid and record.detected and not record.isolated and not record.restored
