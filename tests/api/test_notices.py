"""Crisis notices through the API, on a real Anvil: a posted notice verifies against the digest the control
room recorded; a notice altered or inserted in the store, or vouched for by an event anyone but the control
room recorded, or by an event whose batch signature does not verify, or by a second event for its id, does not.

The module has its own chain: several tests leave events the audit must flag, which the session chain's
other tests must not see."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenStore
from api.notices import Notice
from chain.audit_history import verify_chain_history
from chain.control_room import record_as_control_room
from chain.deploy import dev_controller
from chain.node import stop_anvil
from chain.notices import NOTICE, notice_payload
from chain.recorder import canonical_payload
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.conftest import Chain, make_chain
from tests.support import oracle, recorder

pytestmark = pytest.mark.chain


@dataclass
class Api:
    chain: Chain
    http: TestClient
    tokens: dict[str, str]

    def as_(self, who: str | None) -> dict[str, str]:
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}

    def post(self, who: str, **body: Any) -> Any:
        return self.http.post("/api/v1/notices", json={"audience": "public", "sector": "water", "district": "north",
                                                       "text": "Boil water before drinking.", **body},
                              headers=self.as_(who))

    def listed(self, who: str | None = None, **query: Any) -> dict[str, dict[str, Any]]:
        got = self.http.get("/api/v1/notices", params={"limit": 500, **query}, headers=self.as_(who))
        assert got.status_code == 200, got.text
        return {item["id"]: item for item in got.json()["items"]}

    def store(self) -> sqlite3.Connection:
        return sqlite3.connect(self.chain.settings.home / "api" / "notices.sqlite", isolation_level=None)

    def insert(self, notice: Notice) -> None:
        with self.store() as db:
            db.execute("INSERT INTO notices(id, audience, sector, district, text, created, author) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (notice.id, notice.audience, notice.sector, notice.district,
                                                        notice.text, notice.created, notice.author))

    def sync(self) -> None:
        self.http.app.state.ctx.sync()  # type: ignore[attr-defined]

    def audit_reasons(self) -> list[str]:
        """What the full audit finds in the API's own index (the notices' rule is `chain.notices`)."""
        self.sync()
        db = sqlite3.connect(self.chain.settings.home / "api" / "index.sqlite")
        try:
            report = verify_chain_history(db, chain_id=self.chain.client.chain_id,
                                          ledger=self.chain.deployment.event_ledger,
                                          registry=self.chain.deployment.registry)
        finally:
            db.close()
        return [str(i["reason"]) for i in report.invalid]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    chain = make_chain(tmp_path_factory.mktemp("api-notices") / "home")
    try:
        store = TokenStore(chain.settings.home / "api")
        tokens = {"auditor": store.add("auditor", "audit-1"),
                  "water": store.add("operator", "ops-water", sector="water"),
                  "electricity": store.add("operator", "ops-electricity", sector="electricity"),
                  "healthcare": store.add("operator", "ops-healthcare", sector="healthcare"),
                  "governor": store.add("governor", "gov-water", governor="water")}
        http = TestClient(create_app(chain.settings, follow=False), raise_server_exceptions=False)
        yield Api(chain, http, tokens)
    finally:
        stop_anvil(chain.settings)


def _one_sentence(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def _forged(like: Notice, **changes: Any) -> Notice:
    return Notice(**{**like.__dict__, "n": 0, **changes})


def _as_notice(item: dict[str, Any]) -> Notice:
    return Notice(**{k: item[k] for k in ("id", "audience", "sector", "district", "text", "created", "author")})


def test_a_posted_notice_verifies_and_anyone_can_recompute_its_digest(api: Api) -> None:
    posted = api.post("water", text="Low pressure in the north district until 18:00.")
    assert posted.status_code == 201, posted.text
    mine = posted.json()
    assert mine["verified"] and mine["reason"] is None and mine["author"] == "ops-water"
    assert mine["event"]["oracle"] == dev_controller(api.chain.settings).address.lower()
    public = api.listed()[mine["id"]]  # no token: the public audience, verified, without the event's location
    assert public["verified"] and public["event"] is None
    assert hashlib.sha256(public["canonical"].encode()).hexdigest() == public["sha256"] == public["onchain_sha256"]
    assert not any(mine["id"] in reason for reason in api.audit_reasons())


def test_a_notice_altered_in_the_store_does_not_verify(api: Api) -> None:
    mine = api.post("water", text="Water is safe to drink again.").json()
    with api.store() as db:
        db.execute("UPDATE notices SET text = ? WHERE id = ?", ("Water is NOT safe to drink.", mine["id"]))
    shown = api.listed("auditor")[mine["id"]]
    assert not shown["verified"] and "does not hash to the SHA-256 recorded on-chain" in shown["reason"]
    assert shown["onchain_sha256"] == mine["sha256"] != shown["sha256"]
    with api.store() as db:  # the audience too is bound, by the digest and by the event's own field
        db.execute("UPDATE notices SET text = ?, audience = 'banking' WHERE id = ?", (mine["text"], mine["id"]))
    assert "the chain records it for audience public" in api.listed("auditor")[mine["id"]]["reason"]


def test_a_notice_inserted_without_an_event_or_under_another_notices_event_does_not_verify(api: Api) -> None:
    genuine = _as_notice(api.post("water", text="Pumps restarted.").json())
    inserted = _forged(genuine, id="ab" * 16, text="Evacuate the north district.")
    copied = _forged(genuine, id="cd" * 16)  # a genuine notice's text under another id: its event does not carry over
    api.insert(inserted)
    api.insert(copied)
    listed = api.listed()
    for notice in (inserted, copied):
        assert not listed[notice.id]["verified"]
        assert "no notice event for this id" in listed[notice.id]["reason"]
    assert listed[genuine.id]["verified"]


def test_an_event_recorded_by_an_oracle_not_the_control_room_does_not_vouch_for_a_notice(api: Api) -> None:
    forged = _forged(_as_notice(api.post("water").json()), id="ef" * 16, text="Hospitals: divert to the south.")
    api.insert(forged)
    intruder = oracle(api.chain.settings, "water", 1)  # an Active oracle: the ledger takes any kind from it
    payload = notice_payload(id=forged.id, canonical=forged.canonical(), audience=forged.audience,
                             sector=forged.sector)
    recorder(api.chain.client, api.chain.settings, intruder).record(NOTICE, to_bytes32("water"),
                                                                    canonical_payload(payload))
    api.sync()
    shown = api.listed("auditor")[forged.id]
    assert not shown["verified"] and "does not hold REPAIR_ROLE" in shown["reason"]
    assert any(forged.id in r and "REPAIR_ROLE" in r for r in api.audit_reasons())


def test_a_second_event_for_a_notice_id_does_not_count_even_from_the_control_room(api: Api) -> None:
    first = _as_notice(api.post("water", text="Curfew lifted.").json())
    rewritten = _forged(first, text="Curfew extended.")
    payload = notice_payload(id=first.id, canonical=rewritten.canonical(), audience=first.audience,
                             sector=first.sector)
    record_as_control_room(api.chain.settings, "notice", "water", payload)
    with api.store() as db:
        db.execute("UPDATE notices SET text = ? WHERE id = ?", (rewritten.text, first.id))
    api.sync()
    shown = api.listed("auditor")[first.id]
    assert not shown["verified"] and shown["onchain_sha256"] == first.sha256  # the first event is the notice
    assert any(first.id in r and "recorded again" in r for r in api.audit_reasons())


def test_an_event_whose_batch_signature_does_not_verify_does_not_vouch_for_a_notice(api: Api) -> None:
    forged = _forged(_as_notice(api.post("water").json()), id="0f" * 16, text="Banks closed tomorrow.")
    api.insert(forged)
    controller = dev_controller(api.chain.settings)
    api.chain.reconnect()  # the API sent from the controller's account with clients of its own
    client = api.chain.client
    seq = int(client.call1("EventLedger", "lastSeq", controller.address)) + 1
    payload = notice_payload(id=forged.id, canonical=forged.canonical(), audience=forged.audience,
                             sector=forged.sector)
    batch = sign_batch(controller, chain_id=client.chain_id, ledger=api.chain.deployment.event_ledger,
                       events=[EventToSign(seq=seq, kind=NOTICE, node=to_bytes32("water"),
                                           payload=canonical_payload(payload))])
    broken = bytes([batch.pq_signature[0] ^ 0xFF]) + batch.pq_signature[1:]
    client.transact(controller.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch, broken)
    api.sync()
    shown = api.listed("auditor")[forged.id]
    assert not shown["verified"] and "batch signature does not verify" in shown["reason"]


def test_who_may_post_and_read(api: Api) -> None:
    assert "operator of electricity may not post water's" in _one_sentence(api.post("electricity"), 403)
    assert "needs: operator, governor" in _one_sentence(api.post("auditor"), 403)
    assert _one_sentence(api.http.post("/api/v1/notices", json={"audience": "public", "sector": "water",
                                                                "district": "n", "text": "t"}), 401)
    assert "audience" in _one_sentence(api.post("water", audience="everyone"), 422)
    assert "sector" in _one_sentence(api.post("governor", sector="gas"), 422)

    for_hospitals = api.post("governor", audience="healthcare", sector="electricity",
                             text="Feeder 2 off from 14:00; hospitals on backup power.")
    assert for_hospitals.status_code == 201, for_hospitals.text
    nid = for_hospitals.json()["id"]
    assert nid not in api.listed()  # anonymous: the public audience only
    assert "need a token" in _one_sentence(api.http.get("/api/v1/notices", params={"audience": "healthcare"}), 401)
    assert api.listed("healthcare")[nid]["verified"]  # addressed to its sector
    assert api.listed("electricity", audience="healthcare")[nid]["verified"]  # about its sector
    assert nid not in api.listed("water")  # neither
    assert nid in api.listed("auditor", sector="electricity", district="north")
    assert "cursor" in _one_sentence(api.http.get("/api/v1/notices", params={"cursor": "x"}), 422)
    first = api.http.get("/api/v1/notices", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"] is not None
    after = api.http.get("/api/v1/notices", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert after["items"][0]["id"] != first["items"][0]["id"]


def test_a_notice_deleted_from_the_store_is_listed_as_missing(api: Api) -> None:
    gone = api.post("water", text="Shelter at the north school.").json()
    kept = api.post("water", text="Shelter at the south school.").json()
    with api.store() as db:
        db.execute("DELETE FROM notices WHERE id = ?", (gone["id"],))
    missing = api.http.get("/api/v1/notices/missing", headers=api.as_("auditor"))
    assert missing.status_code == 200, missing.text
    found = {m["id"]: m for m in missing.json()["items"]}
    assert gone["id"] in found and kept["id"] not in found
    assert found[gone["id"]]["onchain_sha256"] == gone["sha256"]
    assert gone["id"] not in {m["id"] for m in api.http.get(
        "/api/v1/notices/missing", headers=api.as_("electricity")).json()["items"]}  # another sector's
    assert _one_sentence(api.http.get("/api/v1/notices/missing"), 401)
