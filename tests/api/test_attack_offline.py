"""Attacks that need no chain (the api-attack review); each was a finding, now fixed (branch api-fix).

- finding 3: `GET /kpis/reports/{name}` hands any operator the whole report a scenario run wrote, with
  every sector's faulted nodes, oracle addresses and wire detections: an operator reads other sectors'
  detail through it;
- finding 4: the `^...$` patterns checked with Python's `re.match` accept a trailing newline (`$` matches
  before a final "\\n"): a governor name from a token, a proposal's node or reason, and a notice event's
  id, digest and sector pass checks that say they are plain names;
- finding 5: a notice event whose payload repeats a key (JSON allows it; parsers differ on which one
  wins) is judged well formed, so two readers of the same on-chain bytes can see two different ids.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import TokenStore
from api.errors import install_error_handlers
from api.routers.governance import _GOVERNOR
from chain.deploy import REPAIR_ROLE
from chain.indexer import _SCHEMA
from chain.notices import NOTICE, notice_records
from core.errors import ConfigError
from core.kpi_reports import write_report
from keys.errors import KeystoreCorrupt
from tests.api.conftest import Tokens

ELECTRICITY_ORACLE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
CONTROL_ROOM = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _scenario_report() -> dict[str, Any]:
    """What `qeaims.scenarios.report.build_report` writes, cut to the parts naming other sectors."""
    return {"scenario": "storm-day", "speed": 60.0, "faults": {"injected": 2, "detected": 2},
            "tracks": [{"step": "water pipe-break pipe:159", "node": "pump-1", "subject": "water"},
                       {"step": "electricity line-trip line:7", "node": "feeder-2", "subject": "electricity"}],
            "byzantine": [{"node": "feeder-2", "oracle": ELECTRICITY_ORACLE}],
            "wire": {"watched": ["electricity", "water"], "by_sector": {"electricity": 4}},
            "audit": {"events": 12, "invalid": [{"oracle": ELECTRICITY_ORACLE, "seq": 7, "batch": 3, "block": 40,
                                                 "reason": "its batch signature does not verify"}]},
            "kpis": {"field": {"detection_p95_s": 30.0}, "availability": {"water": 0.99, "electricity": 0.97}}}


def test_an_operator_does_not_read_another_sectors_detail_through_a_kpi_report(
        offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    home = client.app.state.ctx.settings.home  # type: ignore[attr-defined]
    write_report(home, "storm-day", _scenario_report(), at=datetime(2026, 12, 6, 10, tzinfo=UTC))
    auditor = client.get("/api/v1/kpis/reports/storm-day-20261206T100000Z", headers=tokens.header(tokens.auditor))
    assert auditor.status_code == 200 and ELECTRICITY_ORACLE in auditor.text  # the report is there, whole
    got = client.get("/api/v1/kpis/reports/storm-day-20261206T100000Z", headers=tokens.header(tokens.operator_water))
    assert got.status_code == 403 or (ELECTRICITY_ORACLE not in got.text and "feeder-2" not in got.text), got.text
    assert got.json()["error"].startswith("an operator's token may not do this"), got.text  # refused, in good English


def test_a_governor_name_with_a_trailing_newline_is_not_a_keystore_name(offline_app: tuple[TestClient, Tokens]) -> None:
    """Finding 4, fixed: a token cannot name the governor 'water\\n' (api/auth.py TokenEntry), and the
    router's own check (`_GOVERNOR`, \\Z-anchored) would refuse it too."""
    client, _ = offline_app
    store = TokenStore(client.app.state.ctx.api_dir)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="names the governor's keystore file"):
        store.add("governor", "gov-nl", governor="water\n")
    assert _GOVERNOR.match("water\n") is None and _GOVERNOR.match("water") is not None


def test_a_damaged_governor_keystore_is_a_403_that_names_no_server_path(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    settings = client.app.state.ctx.settings  # type: ignore[attr-defined]
    keystore = settings.keystore_dir / "governors" / "broken.json"
    keystore.parent.mkdir(parents=True, exist_ok=True)
    keystore.write_text("{not json")
    token = TokenStore(client.app.state.ctx.api_dir).add("governor", "gov-broken", governor="broken")  # type: ignore[attr-defined]
    refused = client.post("/api/v1/governance/proposals", json={"kind": "set-cap", "cap": 5, "passphrase": "x" * 12},
                          headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert "broken's keystore on this server is unusable" in error and str(settings.home) not in error, error
    assert "keystores" not in error, error


def test_a_keystore_error_reaching_the_error_handler_names_no_server_path() -> None:
    """Any keystore error an endpoint lets through (the control room's, a governor's) is a 403 naming the
    file, not the directory the server keeps it in."""
    app = FastAPI()
    install_error_handlers(app)
    where = Path("/srv/qeaims-secret/keystores/controller.json")

    @app.get("/boom")
    def boom() -> None:
        raise KeystoreCorrupt(where, "it is not valid JSON")

    got = TestClient(app).get("/boom")
    assert got.status_code == 403 and got.json() == {"error": "keystore controller.json is unusable: it is not valid JSON"}


@pytest.mark.parametrize("field", ["node", "reason"])
def test_a_proposals_name_with_a_trailing_newline_is_a_422(offline_app: tuple[TestClient, Tokens], field: str) -> None:
    client, tokens = offline_app
    body = {"kind": "force-isolate", "node": "pump-1", "reason": "storm", "passphrase": "x" * 12, field: "pump-1\n"}
    refused = client.post("/api/v1/governance/proposals", json=body, headers=tokens.header(tokens.governor))
    assert refused.status_code == 422 and field in refused.json()["error"], refused.text


def _payload(**changes: str) -> dict[str, str]:
    return {"id": "a" * 32, "sha256": "b" * 64, "audience": "public", "sector": "water", **changes}


def _index_with_notice(payload: bytes, *, roles: tuple[tuple[int, int, str], ...] = ((1, 0, "RoleGranted"),),
                       at: tuple[int, int] = (2, 0)) -> sqlite3.Connection:
    """A hand-made index (the indexer's own schema): the control room's REPAIR_ROLE changes at `roles`
    ((block, log_index, RoleGranted|RoleRevoked)) and it records one notice event with these payload bytes
    at `at`."""
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    for block, log_index, event in roles:
        db.execute("INSERT INTO logs VALUES (?, ?, ?, 1, 'IsolationQuorum', ?, ?)",
                   (block, log_index, f"0x{block:064x}", event,
                    json.dumps({"role": "0x" + REPAIR_ROLE.hex(), "account": CONTROL_ROOM, "sender": CONTROL_ROOM})))
    db.execute("INSERT INTO events(oracle, seq, kind, node, batch_id, payload, block, log_index, tx_hash, timestamp) "
               "VALUES (?, 1, ?, ?, 1, ?, ?, ?, ?, 2)", (CONTROL_ROOM.lower(), NOTICE, "0x" + "00" * 32, payload,
                                                          *at, "0x" + "22" * 32))
    return db


def _plain() -> bytes:
    return json.dumps(_payload(), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("roles,at,counts", [
    (((3, 0, "RoleGranted"),), (2, 0), False),  # granted only after it recorded
    (((1, 0, "RoleGranted"), (3, 0, "RoleRevoked")), (2, 0), True),  # revoked after: what it recorded stands
    (((1, 0, "RoleGranted"), (2, 0, "RoleRevoked")), (2, 1), False),  # revoked earlier in the same block
    (((1, 0, "RoleGranted"), (2, 0, "RoleRevoked"), (2, 2, "RoleGranted")), (2, 1), False),  # back only after
])
def test_a_notice_counts_only_if_its_recorder_held_repair_role_at_its_position(
        roles: tuple[tuple[int, int, str], ...], at: tuple[int, int], counts: bool) -> None:
    """Holds (checked here, no fix needed): the role is judged at the event's own position, so a role
    gained later does not reach back and a role lost later does not undo what was recorded."""
    [record] = notice_records(_index_with_notice(_plain(), roles=roles, at=at), invalid_events=[])
    assert record.counts == counts, record.reason


def test_a_control_room_notice_with_a_plain_payload_counts() -> None:  # the control for the one below
    [record] = notice_records(_index_with_notice(_plain()), invalid_events=[])
    assert record.counts, record.reason


def test_a_notice_payload_that_repeats_a_key_does_not_count() -> None:
    raw = ('{"audience":"public","id":"' + "a" * 32 + '","id":"' + "c" * 32 + '","sector":"water","sha256":"'
           + "b" * 64 + '"}')
    first_wins = json.loads(raw, object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert first_wins["id"] != json.loads(raw)["id"]  # two readers of the same bytes, two ids
    [record] = notice_records(_index_with_notice(raw.encode()), invalid_events=[])
    assert not record.counts


@pytest.mark.parametrize("field,value", [("id", "a" * 32 + "\n"), ("sha256", "b" * 64 + "\n"), ("sector", "water\n")])
def test_a_notice_field_with_a_trailing_newline_does_not_count(field: str, value: str) -> None:
    raw = json.dumps(_payload(**{field: value}), sort_keys=True, separators=(",", ":")).encode()
    [record] = notice_records(_index_with_notice(raw), invalid_events=[])
    assert not record.counts
