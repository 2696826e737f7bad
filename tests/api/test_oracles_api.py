"""`/oracles`: keys, rotations (one answering an indicator), quarantines, from the API's index of a real chain."""

from __future__ import annotations

import pytest

from chain.rotation import key_fingerprint
from tests.api._ops import OpsCity, ops_city
from tests.support import oracle

pytestmark = pytest.mark.chain


@pytest.fixture
def ops(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpsCity:
    return ops_city(request, tmp_path_factory)


def test_the_list_says_sector_epoch_fingerprint_and_quarantine(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get("/api/v1/oracles", params={"sector": "electricity"}, headers=tokens.header(tokens.auditor)).json()
    by = {o["address"]: o for o in body["items"]}
    assert len(by) == 4 and {o["sector"] for o in by.values()} == {"electricity"}
    now = oracle(ops.chain.settings, "electricity", 4)  # the keystore after its rotation
    rotated = by[ops.rotated]
    assert (rotated["key_epoch"], rotated["key_fingerprint"], rotated["key_trusted"]) == \
        (2, key_fingerprint(now.pq_public_key), True)
    assert by[ops.quarantined]["quarantined"] is True and by[ops.quarantined]["status"] == "quarantined"
    assert sum(o["quarantined"] for o in by.values()) == 1
    only = client.get("/api/v1/oracles", params={"quarantined": "true"}, headers=tokens.header(tokens.governor)).json()
    assert [o["address"] for o in only["items"]] == [ops.quarantined]
    own = client.get("/api/v1/oracles", headers=tokens.header(tokens.operator_water)).json()["items"]
    assert len(own) == 4 and {o["sector"] for o in own} == {"water"}


def test_one_oracle_keys_rotation_answering_the_indicator_and_quarantines(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get(f"/api/v1/oracles/{ops.rotated}", headers=tokens.header(tokens.operator_electricity)).json()
    assert [(k["epoch"], k["trusted"]) for k in body["keys"]] == [(1, True), (2, True)]
    assert body["keys"][0]["fingerprint"] == ops.old_fingerprint and body["keys"][0]["named_by_indicator"]
    assert body["keys"][1]["named_by_indicator"] is None and body["rotation_owed"] is False
    [rotation] = body["rotations"]
    assert (rotation["from_epoch"], rotation["to_epoch"]) == (1, 2)
    assert rotation["answers_indicator"] == body["keys"][0]["named_by_indicator"]
    assert rotation["block"] == body["keys"][0]["rotated_block"] == body["keys"][1]["block"]
    quarantined = client.get(f"/api/v1/oracles/{ops.quarantined.lower()}", headers=tokens.header(tokens.auditor)).json()
    [change] = quarantined["quarantines"]
    assert change["status"] == "quarantined" and change["cause"] == f"isolation quorum: proposal {ops.quarantine} executed"
    assert quarantined["rotations"] == [] and quarantined["address"] == ops.quarantined


@pytest.mark.parametrize(("path", "code"), [
    ("/api/v1/oracles/0x" + "ab" * 20, 404), ("/api/v1/oracles/0x1234", 422), ("/api/v1/oracles/water-1", 422),
    ("/api/v1/oracles?sector=gas", 404), ("/api/v1/oracles?quarantined=perhaps", 422),
    ("/api/v1/oracles?sector=electricity", 403), ("/api/v1/oracles?limit=501", 422)])
def test_bad_input_is_one_line(ops: OpsCity, path: str, code: int) -> None:
    answer = ops.client.get(path, headers=ops.tokens.header(ops.tokens.operator_water))
    assert answer.status_code == code, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]


def test_an_operator_may_not_read_another_sectors_oracle(ops: OpsCity) -> None:
    answer = ops.client.get(f"/api/v1/oracles/{ops.rotated}", headers=ops.tokens.header(ops.tokens.operator_water))
    assert answer.status_code == 403 and "electricity" in answer.json()["error"]
