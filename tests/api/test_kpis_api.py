"""`/kpis`: the reports `qeaims scenario run` wrote, read back with their targets; names cannot leave the directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.errors import ConfigError
from core.kpi_reports import list_reports, read_report, reports_dir, write_report
from tests.api.conftest import Tokens

TARGETS: dict[str, Any] = {  # the shape qeaims/scenarios/report.py:TARGETS has; the API copies what a report holds
    "unit": "field seconds (the city's clock)",
    "brief": {"detection_time_s": {"current": [720, 1680], "future": [60, 180]},
              "cross_system_response_s": {"future": 720}, "uptime": 0.99998},
    "acceptance": {"detection_p95_s": 60, "cross_system_response_p95_s": 180},
}


def _report(scenario: str, detection: float) -> dict[str, Any]:
    return {"scenario": scenario, "speed": 60.0, "targets": TARGETS, "faults": {"injected": 3, "detected": 3},
            "audit": {"events": 12, "invalid": []},
            "kpis": {"clock": "field seconds: from the onset on the faulty twin's clock",
                     "field": {"detection_p95_s": detection, "isolation_p95_s": None,
                               "cross_system_response_p95_s": 95.5},
                     "wall": {"detection_p95_s": detection / 60, "isolation_p95_s": None,
                              "cross_system_response_p95_s": 1.6},
                     "availability": {"water": 0.9981}, "baseline": {"availability": {"water": 0.97}}}}


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_reports_are_written_atomically_under_the_scheme(tmp_path: Path) -> None:
    path = write_report(tmp_path, "storm-day", {"x": 1}, at=_at("20261206T101500Z"))
    assert path == reports_dir(tmp_path) / "storm-day-20261206T101500Z.json"
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in reports_dir(tmp_path).iterdir()] == [path.name]  # no temporary file left
    (reports_dir(tmp_path) / "notes.txt").write_text("not a report")
    assert [f.name for f in list_reports(tmp_path)] == ["storm-day-20261206T101500Z"]
    with pytest.raises(ConfigError, match="not a report's name"):
        read_report(tmp_path, "../storm-day-20261206T101500Z")
    with pytest.raises(ConfigError, match="scenario's name"):
        write_report(tmp_path, "../../etc", {})


def test_latest_report_per_scenario_beside_its_targets(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    home = client.app.state.ctx.settings.home  # type: ignore[attr-defined]
    write_report(home, "storm-day", _report("storm-day", 80.0), at=_at("20261206T100000Z"))
    write_report(home, "storm-day", _report("storm-day", 42.0), at=_at("20261206T110000Z"))
    write_report(home, "feeder-fault", _report("feeder-fault", 30.0), at=_at("20261206T090000Z"))
    write_report(home, "year", {"seed": 1, "sectors": {"banking": {}}}, at=_at("20261206T120000Z"))
    body = client.get("/api/v1/kpis", headers=tokens.header(tokens.operator_water)).json()
    by = {item["scenario"]: item for item in body["items"]}
    assert sorted(by) == ["feeder-fault", "storm-day", "year"]
    storm = by["storm-day"]
    assert storm["name"] == "storm-day-20261206T110000Z" and storm["audit_ok"] is True  # the later of the two
    detection = next(f for f in storm["figures"] if f["figure"] == "detection_p95_s")
    assert detection["value"] == 42.0 and detection["target"] == 60 and detection["unit"] == TARGETS["unit"]
    assert detection["brief"] == {"current": [720, 1680], "future": [60, 180]} and detection["wall_s"] == 0.7
    cross = next(f for f in storm["figures"] if f["figure"] == "cross_system_response_p95_s")
    assert cross["target"] == 180 and cross["brief"] == {"future": 720}
    water = next(f for f in storm["figures"] if f["figure"] == "availability_water")
    assert water["value"] == 0.9981 and water["brief"] == 0.99998 and water["automation_off"] == 0.97
    assert storm["clock"].startswith("field seconds")
    assert by["year"]["figures"] == [] and by["year"]["targets"] is None  # no targets: nothing invented


def test_report_list_pages_and_one_report_reads_back(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    home = client.app.state.ctx.settings.home  # type: ignore[attr-defined]
    for hour in range(10, 15):
        write_report(home, "storm-day", _report("storm-day", float(hour)), at=_at(f"20261206T{hour}0000Z"))
    auth = tokens.header(tokens.auditor)
    first = client.get("/api/v1/kpis/reports", params={"limit": 2}, headers=auth).json()
    assert [i["name"] for i in first["items"]] == ["storm-day-20261206T100000Z", "storm-day-20261206T110000Z"]
    rest = client.get("/api/v1/kpis/reports", params={"limit": 10, "cursor": first["next_cursor"]}, headers=auth).json()
    assert [i["name"][-7:-5] for i in rest["items"]] == ["12", "13", "14"] and rest["next_cursor"] is None
    one = client.get("/api/v1/kpis/reports/storm-day-20261206T130000Z", headers=auth)
    assert one.status_code == 200 and one.json()["report"]["kpis"]["field"]["detection_p95_s"] == 13.0
    missing = client.get("/api/v1/kpis/reports/storm-day-20261206T230000Z", headers=auth)
    assert missing.status_code == 404 and missing.json() == {"error": "there is no report storm-day-20261206T230000Z"}


@pytest.mark.parametrize("name", ["..%2F..%2Fapi%2Ftokens", "...", "storm..day-20261206T100000Z",
                                  "%2E%2E%2Fstorm-day-20261206T100000Z", "storm-day-20261206T100000Z.json",
                                  "Storm-day-20261206T100000Z", "storm-day-2026120"])
def test_a_name_that_is_not_a_reports_never_reaches_the_disk(offline_app: tuple[TestClient, Tokens],
                                                             name: str) -> None:
    client, tokens = offline_app
    home = client.app.state.ctx.settings.home  # type: ignore[attr-defined]
    write_report(home, "storm-day", _report("storm-day", 1.0), at=_at("20261206T100000Z"))
    answer = client.get(f"/api/v1/kpis/reports/{name}", headers=tokens.header(tokens.auditor))
    assert answer.status_code in (404, 422), answer.text  # a slash splits the path: no route (404)
    assert "error" in answer.json() and "report" not in answer.json() and "sha256" not in answer.text
    if "%2F" not in name:
        assert answer.status_code == 422


def test_bad_query_values_and_no_token(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    auth = tokens.header(tokens.auditor)
    assert client.get("/api/v1/kpis").status_code == 401
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "12:3"}, {"scenario": "../x"}):
        answer = client.get("/api/v1/kpis/reports", params=params, headers=auth)
        assert answer.status_code == 422 and answer.json()["error"].count("\n") == 0, (params, answer.text)
    assert client.get("/api/v1/kpis", headers=auth).json() == {"items": []}  # no run yet: nothing, not an error
