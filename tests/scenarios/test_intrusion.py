"""`qeaims scenario run intrusion --json`, whole, on its private chain: every attack it plays is detected and
on-chain within seconds, the clean window (maintenance included) raises nothing, water's indicator reaches
every other sector's gateway within the 5 s goal, the attacked pump refuses commands (its readings flowing)
until the control room lifts its quarantine, and electricity refuses the stolen identity."""

from __future__ import annotations

import json

from bus.mosquitto import mosquitto_executable
from tests.conftest import run_cli


def test_the_intrusion_scenario(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    env = {**os.environ, "QEAIMS_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    result = run_cli(["scenario", "run", "intrusion", "--json"], env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    played = {a: e for a, e in report["attacks"].items() if e["attempts"]}
    expected = {"unknown-client", "register-scan", "unprofiled-function", "replay", "rate"}
    if mosquitto_executable() is not None:
        expected.add("auth-burst")  # healthcare's broker path, a real Mosquitto with passwords
    assert set(played) == expected
    assert all(e["detected_pct"] == 100.0 for e in played.values()), played
    assert all(e["field_s_max"] < 5.0 for e in played.values()), played
    assert report["false_positives"] == 0
    assert report["cross_sector_blocked"] is True
    assert report["propagation_samples"] >= 2 and report["propagation_p95_s"] <= 5.0
    published = {(i["kind"], i["value"], i["source_sector"]) for i in report["indicators"]}
    assert {("source-address", "127.0.1.66", "banking"), ("source-address", "127.0.2.9", "water")} <= published
    cross = next(s for s in report["steps"] if s["step"].startswith("3."))
    assert cross["setting_unchanged"] and cross["indicator_enforced_before"]
    quarantine = next(s for s in report["steps"] if s["step"].startswith("2b."))
    assert quarantine["quarantined"] and quarantine["write_refused"] and quarantine["reads_pass"]
    assert quarantine["lifted"] and quarantine["write_passes_after_lift"]
