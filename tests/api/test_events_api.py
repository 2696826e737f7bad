"""`/events`: real events on a real Anvil, listed, filtered, paged, exported, and one with its evidence."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.audit_batch import batch_verifies
from tests.api._regulator import RegApi, build
from tests.conftest import Chain
from tests.support import opened_db


@pytest.fixture(scope="module")
def api(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegApi]:
    built = build(chain, tmp_path_factory.mktemp("events-api"))
    yield built
    built.client.close()


def _items(api: RegApi, token: str, **params: str | int) -> list[dict[str, object]]:
    response = api.get("/events", token, **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_filters_select_exactly_the_recorded_events(api: RegApi) -> None:
    auditor = api.tokens.auditor
    pump = _items(api, auditor, node=api.pump)
    assert [(e["kind"], e["oracle"], e["sector"], e["payload"]) for e in pump] == [
        ("anomaly", api.water, "water", {"pressure_bar": 0.4}), ("fault", api.water, "water", {"pressure_bar": 0.1})]
    assert pump[0]["batch"] == pump[1]["batch"] and pump[1]["seq"] == int(str(pump[0]["seq"])) + 1
    assert [e["kind"] for e in _items(api, auditor, node=api.pump, kind="fault")] == ["fault"]
    assert [e["kind"] for e in _items(api, auditor, node=api.feeder, sector="electricity")] == ["fault", "anomaly"]
    assert _items(api, auditor, node=api.feeder, sector="water") == []
    assert [e["node"] for e in _items(api, auditor, node=api.valve, oracle=api.water.upper().replace("0X", "0x"))] \
        == [api.valve]
    assert _items(api, auditor, node=api.valve, oracle=api.electricity) == []
    newest = _items(api, auditor, node=api.feeder, order="desc")
    assert [e["kind"] for e in newest] == ["anomaly", "fault"]
    # a period: since the fault's own time includes it; until a second before the first event excludes all
    fault = _items(api, auditor, node=api.feeder)[0]
    moment = str(fault["time"])
    assert {e["kind"] for e in _items(api, auditor, node=api.feeder, since=moment)} >= {"anomaly"}
    assert _items(api, auditor, node=api.feeder, since=moment, until=moment) != []
    from datetime import datetime
    before = int(datetime.fromisoformat(moment).timestamp()) - 1
    assert _items(api, auditor, node=api.feeder, until=before) == []
    assert len(_items(api, auditor, node=api.feeder, since=before)) == 2


def test_cursor_pages_are_stable_while_the_history_grows(api: RegApi) -> None:
    auditor = api.tokens.auditor
    node = api.pump
    first = api.get("/events", auditor, node=node, limit=1).json()
    assert len(first["items"]) == 1 and first["next_cursor"] == first["items"][0]["cursor"]
    api.record("water", [("maintenance", node, {"crew": 7})])  # recorded between two page reads
    second = api.get("/events", auditor, node=node, limit=1, cursor=first["next_cursor"]).json()
    third = api.get("/events", auditor, node=node, limit=1, cursor=second["next_cursor"]).json()
    paged = [p["items"][0]["kind"] for p in (first, second, third)]
    assert paged == ["anomaly", "fault", "maintenance"]
    assert third["next_cursor"] is None  # the last page says so
    whole = api.get("/events", auditor, node=node, limit=500).json()
    assert [e["kind"] for e in whole["items"]] == paged and whole["next_cursor"] is None
    # the same pages newest first
    down = api.get("/events", auditor, node=node, limit=2, order="desc").json()
    rest = api.get("/events", auditor, node=node, limit=2, order="desc", cursor=down["next_cursor"]).json()
    assert [e["kind"] for e in down["items"] + rest["items"]] == paged[::-1] and rest["next_cursor"] is None


def test_the_controllers_steps_belong_to_the_sector_they_act_on(api: RegApi) -> None:
    step = _items(api, api.tokens.auditor, node=api.valve, kind="isolation-applied")
    assert [(e["oracle"], e["sector"], e["recorder_sector"]) for e in step] == [(api.controller, "water", "control")]
    assert [e["kind"] for e in _items(api, api.tokens.auditor, sector="water", node=api.valve)] == [
        "repaired", "isolation-applied"]
    water = api.tokens.operator_water
    assert [e["kind"] for e in _items(api, water, node=api.valve)] == ["repaired", "isolation-applied"]
    assert [e["kind"] for e in _items(api, water, oracle=api.controller, limit=500)
            if e["node"] in (api.valve, api.line)] == ["isolation-applied"]
    assert _items(api, water, node=api.line) == []  # the controller's step in electricity is not water's
    plan = _items(api, api.tokens.operator_electricity, node=api.line)
    assert [(e["kind"], e["sector"]) for e in plan] == [("reroute-plan", "electricity")]
    one = f"/events/{plan[0]['block']}/{plan[0]['log_index']}"
    assert api.get(one, water).status_code == 403
    evidence = api.get(one, api.tokens.operator_electricity).json()
    assert evidence["verified"] is True and evidence["event"]["recorder_sector"] == "control"


def test_an_operator_reads_only_its_own_sector(api: RegApi) -> None:
    water = api.tokens.operator_water
    own = _items(api, water, limit=500)
    assert own and {e["sector"] for e in own} == {"water"}
    assert _items(api, water, node=api.feeder) == []  # another sector's node: nothing of it shows
    refused = api.get("/events", water, sector="electricity")
    assert refused.status_code == 403 and refused.json() == {
        "error": "an operator of water may not read electricity's detail"}
    feeder = _items(api, api.tokens.auditor, node=api.feeder)[0]
    one = f"/events/{feeder['block']}/{feeder['log_index']}"
    assert api.get(one, water).status_code == 403
    assert api.get(one, api.tokens.operator_electricity).status_code == 200
    assert api.get("/events/export", water, sector="electricity").status_code == 403
    assert api.get("/events").status_code == 401


def test_export_as_csv_and_json_is_an_attachment_of_the_same_events(api: RegApi) -> None:
    auditor = api.tokens.auditor
    listed = _items(api, auditor, node=api.feeder)
    as_csv = api.get("/events/export", auditor, node=api.feeder, format="csv")
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith('attachment; filename="qeaims-events-')
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(int(r["block"]), int(r["log_index"]), r["kind"], json.loads(r["payload"])) for r in rows] == [
        (e["block"], e["log_index"], e["kind"], e["payload"]) for e in listed]
    as_json = api.get("/events/export", api.tokens.governor, node=api.feeder, format="json")
    assert as_json.status_code == 200 and as_json.headers["x-event-count"] == "2"
    assert as_json.json() == listed
    own = api.get("/events/export", api.tokens.operator_water, format="json").json()
    assert own and {e["sector"] for e in own} == {"water"}


def test_one_event_carries_the_verification_of_its_batch(api: RegApi) -> None:
    auditor = api.tokens.auditor
    fault = _items(api, auditor, node=api.pump, kind="fault")[0]
    found = api.get(f"/events/{fault['block']}/{fault['log_index']}", auditor)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["event"] == fault and body["verified"] is True
    batch, key = body["batch"], body["key"]
    assert batch["batch_id"] == fault["batch"] and batch["oracle"] == api.water
    assert batch["first_seq"] <= fault["seq"] <= batch["last_seq"] and batch["count"] == 3
    assert batch["verifies"] is True and batch["reason"] == "" and batch["signature_bytes"] == 3309  # ML-DSA-65
    assert batch["tx"] == fault["tx"] and batch["block"] == fault["block"]
    assert key["epoch"] == batch["key_epoch"] and key["valid"] is True and key["key_hash"].startswith("0x")
    # the same answer as the audit's own check, asked of the API's index directly
    with opened_db(api.ctx.index_path) as db:
        assert batch_verifies(db, int(batch["batch_id"]), chain_id=api.chain.client.chain_id,
                              ledger=api.chain.deployment.event_ledger, registry=api.chain.deployment.registry)
    missing = api.get("/events/999999999/0", auditor)
    assert missing.status_code == 404
    assert missing.json() == {"error": "no recorded event at block 999999999, log index 0"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("path", "params", "says"), [
    ("/events", {"kind": "nonsense"}, "unknown event kind 'nonsense'"),
    ("/events", {"since": "garbage"}, "since 'garbage' is neither an ISO time"),
    ("/events", {"until": "99999999999999"}, "until '99999999999999' is neither"),
    ("/events", {"since": "2026-11-27", "until": "2026-11-26"}, "since is after until"),
    ("/events", {"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ("/events", {"limit": 501}, "limit: Input should be less than or equal to 500"),
    ("/events", {"cursor": "xyz"}, "cursor 'xyz' is not one this API gave"),
    ("/events", {"sector": "gas"}, "'gas' is not a sector"),
    ("/events", {"node": "pümp"}, "node 'pümp' is not a node name"),
    ("/events", {"oracle": "0xzz"}, "oracle '0xzz' is not an address"),
    ("/events", {"order": "sideways"}, "order: Input should be 'asc' or 'desc'"),
    ("/events/export", {"format": "xml"}, "format: Input should be 'csv' or 'json'"),
    ("/events/export", {"since": "yesterday"}, "since 'yesterday' is neither"),
    ("/events/-1/0", {}, "block: Input should be greater than or equal to 0"),
    ("/events/1/x", {}, "log_index: Input should be a valid integer"),
])
def test_bad_input_is_a_422_in_one_sentence_and_changes_nothing(api: RegApi, path: str, params: dict[str, str | int],
                                                                 says: str) -> None:
    before = _digest(api.ctx.index_path)
    response = api.get(path, api.tokens.auditor, **params)
    assert response.status_code == 422, response.text
    message = response.json()["error"]
    assert says in message and "\n" not in message and "Traceback" not in response.text
    assert _digest(api.ctx.index_path) == before
