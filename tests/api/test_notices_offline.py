"""Notices with no chain: nothing is stored without its event, and a stored notice is never shown as
verified when the chain cannot be read (the public page still answers)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from api.notices import NoticeStore, new_notice
from tests.api.conftest import Tokens


def _store(client: TestClient) -> Path:
    return Path(client.app.state.ctx.api_dir)  # type: ignore[attr-defined]


def test_a_notice_is_not_stored_when_its_event_cannot_be_recorded(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    refused = client.post("/api/v1/notices", json={"audience": "public", "sector": "water", "district": "north",
                                                   "text": "Boil water."}, headers=tokens.header(tokens.operator_water))
    assert refused.status_code == 503 and list(refused.json()) == ["error"]
    path = _store(client) / "notices.sqlite"
    assert not path.exists() or sqlite3.connect(path).execute("SELECT COUNT(*) FROM notices").fetchone()[0] == 0


def test_without_a_chain_a_stored_notice_is_shown_but_not_verified(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _ = offline_app
    stored = NoticeStore(_store(client)).add(new_notice(audience="public", sector="water", district="north",
                                                        text="Boil water.", author="ops-water"))
    got = client.get("/api/v1/notices")
    assert got.status_code == 200, got.text
    [item] = got.json()["items"]
    assert item["id"] == stored.id and item["verified"] is False and "cannot be read" in item["reason"]
