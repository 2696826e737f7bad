"""`/indicators`, `/countermeasures`: recounted threat intelligence from the API's index of a real chain."""

from __future__ import annotations

import pytest

from tests.api._ops import OpsCity, ops_city

pytestmark = pytest.mark.chain


@pytest.fixture
def ops(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpsCity:
    return ops_city(request, tmp_path_factory)


def test_indicators_by_state(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get("/api/v1/indicators", headers=tokens.header(tokens.operator_electricity)).json()
    states = {i["id"]: i["state"] for i in body["items"] if i["state"] != "not-counted"}
    assert states[ops.in_force] == "in-force" and states[ops.withdrawn] == "withdrawn"
    assert states[ops.expired] == "expired"
    assert sorted(states.values()) == ["expired", "in-force", "in-force", "withdrawn"]  # + the key fingerprint
    withdrawn = next(i for i in body["items"] if i["id"] == ops.withdrawn)
    assert withdrawn["withdrawn_block"] > withdrawn["published_block"] and withdrawn["withdrawal_reason"]
    live = next(i for i in body["items"] if i["id"] == ops.in_force)
    assert (live["kind"], live["value"], live["source_sector"]) == ("source-address", "10.66.0.1", "water")
    assert live["matching"] == 3 and live["required"] == 3 and len(live["evidence"]) == 3
    [forged] = [i for i in body["items"] if i["state"] == "not-counted"]
    assert forged["value"] == "eng-ws-9" and "REPAIR_ROLE" in forged["why_not_counted"]
    only = client.get("/api/v1/indicators", params={"state": "in-force", "sector": "banking"},
                      headers=tokens.header(tokens.auditor)).json()["items"]
    assert [(i["kind"], i["value"]) for i in only] == [("key-fingerprint", ops.old_fingerprint)]
    first = client.get("/api/v1/indicators", params={"limit": 2}, headers=tokens.header(tokens.auditor)).json()
    rest = client.get("/api/v1/indicators", params={"cursor": first["next_cursor"]},
                      headers=tokens.header(tokens.auditor)).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in body["items"]]


def test_countermeasures_in_force_per_sector(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    [measure] = client.get("/api/v1/countermeasures", headers=tokens.header(tokens.operator_water)).json()["items"]
    assert (measure["id"], measure["type"], measure["sector"], measure["devices"], measure["indicators"]) == \
        (ops.countermeasure, "quarantine-device", "water", ["plc-7"], [ops.in_force])
    assert measure["applied"] is not None
    assert client.get("/api/v1/countermeasures", headers=tokens.header(tokens.operator_electricity)).json() == \
        {"items": [], "next_cursor": None}
    refused = client.get("/api/v1/countermeasures", params={"sector": "water"},
                         headers=tokens.header(tokens.operator_electricity))
    assert refused.status_code == 403


@pytest.mark.parametrize(("path", "code"), [
    ("/api/v1/indicators?state=active", 422), ("/api/v1/indicators?sector=gas", 404),
    ("/api/v1/indicators?limit=-1", 422), ("/api/v1/countermeasures?sector=gas", 404),
    ("/api/v1/countermeasures?cursor=x", 422)])
def test_bad_input_is_one_line(ops: OpsCity, path: str, code: int) -> None:
    answer = ops.client.get(path, headers=ops.tokens.header(ops.tokens.auditor))
    assert answer.status_code == code, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
