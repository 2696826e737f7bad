"""`/nodes`: the registry's nodes and a node's lifecycle, from the API's own index of a real chain."""

from __future__ import annotations

import pytest

from chain.quorum import QuorumClient
from keys.ids import to_bytes32
from tests.api._ops import OpsCity, ops_city

pytestmark = pytest.mark.chain


@pytest.fixture
def ops(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> OpsCity:
    return ops_city(request, tmp_path_factory)


def test_nodes_with_their_on_chain_status_and_sector_scoping(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    every = client.get("/api/v1/nodes", params={"limit": 500}, headers=tokens.header(tokens.auditor)).json()
    by = {n["node"]: n for n in every["items"]}
    quorum = QuorumClient(ops.chain.client)
    assert len(by) == 24 and every["next_cursor"] is None
    for name in ("pump-1", "pump-2", "feeder-1", "dc-primary"):  # the index agrees with the contract
        assert by[name]["status"] == quorum.node_status(to_bytes32(name)), name
    assert by["pump-1"]["status_epoch"] == 4 and by["pump-1"]["since_block"] > by["pump-1"]["added_block"]
    assert (by["treatment-1"]["sector"], by["treatment-1"]["kind"], by["treatment-1"]["criticality"]) == \
        ("water", "treatment-plant", 5)
    assert by["pump-1"]["depends_on"] == ["feeder-1"] and by["feeder-1"]["depends_on"] == []
    water = client.get("/api/v1/nodes", headers=tokens.header(tokens.operator_water)).json()["items"]
    assert {n["sector"] for n in water} == {"water"} and len(water) == 4  # an operator's own sector by default
    refused = client.get("/api/v1/nodes", params={"sector": "electricity"}, headers=tokens.header(tokens.operator_water))
    assert refused.status_code == 403 and refused.json() == {"error": "an operator of water may not read electricity's detail"}
    first = client.get("/api/v1/nodes", params={"limit": 5}, headers=tokens.header(tokens.governor)).json()
    rest = client.get("/api/v1/nodes", params={"limit": 500, "cursor": first["next_cursor"]},
                      headers=tokens.header(tokens.governor)).json()
    assert [n["node"] for n in first["items"] + rest["items"]] == [n["node"] for n in every["items"]]
    assert rest["next_cursor"] is None and len(first["items"]) == 5


def test_a_nodes_lifecycle_says_what_changed_it(ops: OpsCity) -> None:
    client, tokens = ops.client, ops.tokens
    body = client.get("/api/v1/nodes/pump-1", headers=tokens.header(tokens.operator_water)).json()
    assert [s["status"] for s in body["timeline"]] == ["active", "isolated", "repairing", "active"]
    assert body["timeline"][0]["cause"] == "added to the registry"
    assert body["timeline"][1]["cause"] == f"isolation quorum: proposal {ops.isolation} executed"
    assert body["timeline"][2]["cause"].startswith("repair begun by ")
    assert body["timeline"][3]["cause"] == f"isolation quorum: proposal {ops.reintegration} executed"
    assert [s["status_epoch"] for s in body["timeline"]] == [1, 2, 3, 4]
    assert all(s["time"] is not None and s["tx"].startswith("0x") for s in body["timeline"])
    by_id = client.get(f"/api/v1/nodes/0x{to_bytes32('pump-1').hex()}", headers=tokens.header(tokens.auditor)).json()
    assert by_id == body


@pytest.mark.parametrize(("path", "code"), [
    ("/api/v1/nodes/pump-9", 404), ("/api/v1/nodes/" + "x" * 33, 422), ("/api/v1/nodes/p%C3%BCmp", 422),
    ("/api/v1/nodes?sector=gas", 404), ("/api/v1/nodes?status=broken", 422), ("/api/v1/nodes?limit=0", 422),
    ("/api/v1/nodes?cursor=abc", 422), ("/api/v1/nodes/feeder-1", 403)])
def test_bad_input_is_one_line(ops: OpsCity, path: str, code: int) -> None:
    answer = ops.client.get(path, headers=ops.tokens.header(ops.tokens.operator_water))
    assert answer.status_code == code, answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    assert ops.client.get("/api/v1/nodes").status_code == 401
