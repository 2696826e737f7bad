"""`GET /sectors` and `GET /sectors/{sector}/network` over an app with no chain (the drawings need none)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.sectors import BUILTIN, DISTRICTS
from sectors.plugin import plugin_of
from tests.api.conftest import Tokens

API = "/api/v1"


def test_sector_list_for_readers_and_an_operators_own(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    every = client.get(f"{API}/sectors", headers=tokens.header(tokens.auditor))
    assert every.status_code == 200
    items = {i["sector"]: i for i in every.json()["items"]}
    assert set(items) == set(BUILTIN)
    for name, item in items.items():
        plugin = plugin_of(name)
        assert item["nodes"] == len(plugin.nodes)
        assert set(item["districts"]) == {n.district for n in plugin.nodes}
        assert set(item["districts"]) <= set(DISTRICTS) and item["drawn"] is True
    own = client.get(f"{API}/sectors", headers=tokens.header(tokens.operator_water)).json()["items"]
    assert [i["sector"] for i in own] == ["water"]
    anonymous = client.get(f"{API}/sectors")
    assert anonymous.status_code == 401 and set(anonymous.json()) == {"error"}


def test_network_drawing_and_its_access(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    got = client.get(f"{API}/sectors/water/network", headers=tokens.header(tokens.operator_water))
    assert got.status_code == 200
    body = got.json()
    markers = {n["id"]: n for n in body["nodes"] if n["marker"]}
    assert set(markers) == {n.node for n in plugin_of("water").nodes}
    assert all(markers[n.node]["district"] == n.district for n in plugin_of("water").nodes)
    ids = {n["id"] for n in body["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in body["edges"])
    assert {e["anchor"] for e in body["edges"] if e["id"] == "pump:335"} == {"pump-2"}
    other = client.get(f"{API}/sectors/electricity/network", headers=tokens.header(tokens.operator_water))
    assert other.status_code == 403 and "water" in other.json()["error"]
    governor = client.get(f"{API}/sectors/electricity/network", headers=tokens.header(tokens.governor))
    assert governor.status_code == 200 and any(n["id"] == "bus-33" for n in governor.json()["nodes"])


def test_unknown_sector_is_a_404_in_one_sentence(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    got = client.get(f"{API}/sectors/gas/network", headers=tokens.header(tokens.auditor))
    assert got.status_code == 404
    error = got.json()["error"]
    assert "gas" in error and "\n" not in error and "Traceback" not in error
    assert client.get(f"{API}/sectors/water/network").status_code == 401
