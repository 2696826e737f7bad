"""`/isolations`: the quorum's proposals with every vote judged as `qeaims audit verify` judges it (real chain)."""

from __future__ import annotations

import pytest

from chain.quorum import QuorumClient
from tests.api._ops import OpsCity, ops_city

pytestmark = pytest.mark.chain


@pytest.fixture
def ops(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpsCity:
    return ops_city(request, tmp_path_factory)


def test_proposals_with_tallies_agree_with_the_contract(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get("/api/v1/isolations", headers=tokens.header(tokens.auditor)).json()
    by = {p["id"]: p for p in body["items"]}
    assert sorted(by) == sorted({ops.isolation, ops.reintegration, ops.open_proposal, ops.quarantine})
    quorum = QuorumClient(ops.chain.client)
    for pid, p in by.items():  # the replay's state is the contract's
        assert p["state"] == quorum.view(pid).state, pid
    isolation = by[ops.isolation]
    assert (isolation["action"], isolation["target"], isolation["sector"]) == ("isolate", "pump-1", "water")
    assert (isolation["votes_for"], isolation["votes_not_counted"], isolation["required"]) == (3, 0, 3)
    assert isolation["executed_block"] is not None and isolation["findings"] == []
    pending = by[ops.open_proposal]
    assert (pending["state"], pending["votes_for"], pending["votes_not_counted"]) == ("open", 1, 1)
    assert pending["deadline"] > pending["opened"] and pending["executed_block"] is None
    assert by[ops.quarantine]["action"] == "quarantine" and by[ops.quarantine]["target"] == ops.quarantined
    water = client.get("/api/v1/isolations", headers=tokens.header(tokens.operator_water)).json()["items"]
    assert {p["sector"] for p in water} == {"water"} and ops.quarantine not in {p["id"] for p in water}
    executed = client.get("/api/v1/isolations", params={"state": "executed", "action": "isolate"},
                          headers=tokens.header(tokens.governor)).json()["items"]
    assert [p["id"] for p in executed] == [ops.isolation]
    page = client.get("/api/v1/isolations", params={"limit": 1}, headers=tokens.header(tokens.auditor)).json()
    after = client.get("/api/v1/isolations", params={"cursor": page["next_cursor"]},
                       headers=tokens.header(tokens.auditor)).json()
    assert [p["id"] for p in page["items"] + after["items"]] == [p["id"] for p in body["items"]]


def test_each_vote_with_its_validity(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get(f"/api/v1/isolations/{ops.open_proposal}", headers=tokens.header(tokens.operator_water)).json()
    good, forged = body["votes"]
    assert good["valid"] is True and good["why_not"] is None and good["oracle"] == body["proposer"]
    assert forged["oracle"] == ops.forged_voter and forged["valid"] is False
    assert forged["why_not"] == "its ML-DSA-65 signature does not verify over the ballot"
    assert all(v["choice"] == "for" and v["time"] and v["tx"].startswith("0x") for v in body["votes"])
    assert body["reason"] == "leak" and body["round"] == 1
    cited = client.get(f"/api/v1/isolations/{ops.isolation}", headers=tokens.header(tokens.auditor)).json()
    assert [e["kind"] for e in cited["evidence"]] == ["fault"] and cited["evidence"][0]["block"] is not None
    assert len(cited["votes"]) == 3 and all(v["valid"] for v in cited["votes"])


@pytest.mark.parametrize(("path", "code"), [
    ("/api/v1/isolations/999", 404), ("/api/v1/isolations/0", 422), ("/api/v1/isolations/one", 422),
    ("/api/v1/isolations?state=won", 422), ("/api/v1/isolations?action=destroy", 422),
    ("/api/v1/isolations?sector=gas", 404), ("/api/v1/isolations?sector=electricity", 403),
    ("/api/v1/isolations?cursor=1:2:3", 422)])
def test_bad_input_is_one_line(ops: OpsCity, path: str, code: int) -> None:
    answer = ops.client.get(path, headers=ops.tokens.header(ops.tokens.operator_water))
    assert answer.status_code == code, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]


def test_an_operator_may_not_read_another_sectors_proposal(ops: OpsCity) -> None:
    answer = ops.client.get(f"/api/v1/isolations/{ops.quarantine}", headers=ops.tokens.header(ops.tokens.operator_water))
    assert answer.status_code == 403
