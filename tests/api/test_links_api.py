"""`/links`: the secure links as `qeaims link status --json` shows them, against a real KME; 404 on plaintext."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from links.files import LinkFiles
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import city_plan
from links.site import prepare
from tests.api.conftest import Tokens
from tests.conftest import free_port
from tests.support import run_main


def test_plaintext_city_has_no_links_to_show(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    answer = client.get("/api/v1/links", headers=tokens.header(tokens.auditor))
    assert answer.status_code == 404 and answer.json()["error"].startswith("this city runs plaintext links")
    assert client.get("/api/v1/links").status_code == 401


def test_links_as_the_command_shows_them(offline_app: tuple[TestClient, Tokens],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    client, tokens = offline_app
    home = client.app.state.ctx.settings.home  # type: ignore[attr-defined]
    port = free_port()
    files = LinkFiles.of(home)
    plan = city_plan(["water", "electricity"], oracles_per_sector=1, kme_url=f"https://127.0.0.1:{port}")
    prepare(files, plan)
    auth = tokens.header(tokens.auditor)
    down = client.get("/api/v1/links", headers=auth).json()  # the KME is not running: said so, states unknown
    assert down["kme_error"] and {r["qkd_state"] for r in down["links"]} == {"unknown"}
    with KmeServer(plan, DevPki(files.pki), port=port, state_path=files.kme_state) as kme:
        for link in plan.links:
            kme.supply.run_block(link.link_id)
        body = client.get("/api/v1/links", headers=auth).json()
        code, out, _ = run_main(capsys, "--home", str(home), "link", "status", "--json")
    assert code == 0 and not body["kme_error"]
    command = json.loads(out)
    moving = ("keys_available", "qber")  # the KME runs blocks between the two reads; the rest is the same
    for row in command["links"]:
        for key in moving:
            row.pop(key)
    api_rows = [{k: v for k, v in r.items() if k not in moving} for r in body["links"]]
    assert api_rows == command["links"] and body["kme"] == command["kme"]
    assert {r["qkd_state"] for r in body["links"]} == {"secure"} and len(body["links"]) == len(plan.links)
    assert all(0.0 < r["qber"] < 0.06 and r["keys_available"] > 0 for r in body["links"])
    for endpoint in files.endpoints.glob("*.json"):  # no SAE's private key in the answer
        for value in json.loads(endpoint.read_text()).values():
            if isinstance(value, str) and len(value) >= 64:
                assert value not in json.dumps(body)
    water = client.get("/api/v1/links", headers=tokens.header(tokens.operator_water)).json()["links"]
    assert water and all("twin-water" in (r["master"], r["slave"]) for r in water)
    assert len(water) == len([link for link in plan.links if link.master == "twin-water"])
    other = client.get("/api/v1/links", params={"sector": "electricity"}, headers=tokens.header(tokens.operator_water))
    assert other.status_code == 403
    assert client.get("/api/v1/links", params={"sector": "gas"}, headers=auth).status_code == 404
