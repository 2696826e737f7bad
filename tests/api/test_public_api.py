"""`/public/status`, `/public/availability` and `/public/incidents`: fed by a real broker, and nothing sensitive in any of it."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from api.app import create_app
from api.service_watch import HOUR_S, MINUTE_S, STALE_S, ServiceWatch, percent
from bus.mqtt import EmbeddedBroker
from chain.indexer import _SCHEMA
from chain.registry_history import sector_key
from core.config import Settings, load_settings
from core.messages import Sector
from sectors.plugin import plugin_of
from sectors.remote import svc_topic
from sectors.service import ServiceLevel, service_message
from tests.api.conftest import Tokens
from tests.conftest import free_port

API = "/api/v1"
PUBLIC = (f"{API}/public/status", f"{API}/public/availability", f"{API}/public/incidents")
FORBIDDEN_FIELD = re.compile(r"address|oracle|key|node|asset|payload|hash|signature|(^|_)tx(_|$)", re.IGNORECASE)


# --- what may not appear ----------------------------------------------------------------------------


def _sensitive_values() -> list[re.Pattern[str]]:
    """0x-hex (addresses, hashes, keys), every on-chain node's name and every drawn asset's id."""
    names: set[str] = set()
    for sector in Sector:
        plugin = plugin_of(sector)
        names |= {n.node for n in plugin.nodes}
        if plugin.network is not None:
            drawing = plugin.network()
            names |= {n.id for n in drawing.nodes} | {e.id for e in drawing.edges}
    words = [re.compile(rf"(?<![\w:-]){re.escape(name)}(?![\w:-])") for name in sorted(names)]
    return [re.compile(r"0x[0-9a-fA-F]{6,}"), *words]


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str | None, Any]]:
    """(path, key, leaf) for every key and leaf of a JSON body."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield path, str(key), None
            yield from _walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")
    else:
        yield path, None, value


def assert_nothing_sensitive(client: TestClient) -> int:
    """Every /public body: no field named like a secret or an id, no value that is one. Returns leaves seen."""
    patterns = _sensitive_values()
    seen = 0
    for url in PUBLIC:
        got = client.get(url)
        assert got.status_code == 200, (url, got.text)
        for path, key, leaf in _walk(got.json()):
            if key is not None:
                assert not FORBIDDEN_FIELD.search(key), f"{url}: field {path}.{key}"
                continue
            seen += 1
            for pattern in patterns:
                assert not pattern.search(str(leaf)), f"{url}: {path} = {leaf!r} matches {pattern.pattern}"
    return seen


def _schema_fields(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> Iterator[str]:
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _schema_fields(components[name], components, seen)
        return
    for key, inner in schema.get("properties", {}).items():
        yield key
        yield from _schema_fields(inner, components, seen)
    for word in ("items", "additionalProperties"):
        if isinstance(schema.get(word), dict):
            yield from _schema_fields(schema[word], components, seen)
    for word in ("anyOf", "allOf", "oneOf"):
        for inner in schema.get(word, []):
            yield from _schema_fields(inner, components, seen)


def test_public_schemas_name_nothing_sensitive(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _tokens = offline_app
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    public = {p: v for p, v in document["paths"].items() if p.startswith(f"{API}/public/")}
    assert set(public) == set(PUBLIC)
    fields: list[str] = []
    for operations in public.values():
        for operation in operations.values():
            assert "security" not in operation
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    fields += list(_schema_fields(media["schema"], components, set()))
    assert {"sector", "district", "state", "availability", "updated", "since", "text", "start", "step_s"} <= set(fields)
    bad = [f for f in fields if FORBIDDEN_FIELD.search(f)]
    assert not bad, bad


def test_without_the_watch_every_district_reads_no_data_yet(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _tokens = offline_app
    body = client.get(f"{API}/public/status").json()
    assert body["items"] and {i["state"] for i in body["items"]} == {"no data yet"}
    assert {(i["sector"], i["district"]) for i in body["items"]} == {
        (s.value, n.district) for s in Sector for n in plugin_of(s).nodes}
    assert all(i["availability"] is None and i["updated"] is None for i in body["items"])
    incidents = client.get(f"{API}/public/incidents").json()
    assert incidents["items"] == [] and "no data yet" in incidents["note"]
    series = client.get(f"{API}/public/availability?minutes=5").json()
    assert {i["sector"] for i in series["items"]} == {s.value for s in Sector} and series["step_s"] == 60
    assert all(i["availability"] == [None] * 5 for i in series["items"])
    start = datetime.fromisoformat(series["start"]).timestamp()
    assert start % 60 == 0 and time.time() - 5 * 60 <= start <= time.time()


@pytest.mark.parametrize("query", ["minutes=4", "minutes=1441", "minutes=ten", "minutes=1.5", "minutes="])
def test_availability_refuses_a_bad_window_in_one_line(offline_app: tuple[TestClient, Tokens], query: str) -> None:
    client, _tokens = offline_app
    got = client.get(f"{API}/public/availability?{query}")
    assert got.status_code == 422, got.text
    assert list(got.json()) == ["error"] and "minutes" in got.json()["error"] and "\n" not in got.json()["error"]
    assert client.get(f"{API}/public/availability?minutes=1440").status_code == 200


# --- the watch on a real broker -----------------------------------------------------------------------


def _following_app(tmp_path: Path, port: int) -> tuple[FastAPI, Settings]:
    settings = load_settings(home=tmp_path / "home", rpc_port=1)
    run = settings.home / "run"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"mqtt_port": port}))  # as `qeaims up` writes it
    return create_app(settings, follow=True), settings


def _rows(client: TestClient, sector: str) -> list[dict[str, Any]]:
    return [i for i in client.get(f"{API}/public/status").json()["items"] if i["sector"] == sector]


def _publish_until(client: TestClient, twin: paho.Client, level: float, state: str, timeout_s: float = 15.0) -> None:
    """Publish water's level as its twin does until the page shows `state` (the watch subscribes on connect)."""
    deadline = time.monotonic() + timeout_s
    message = service_message(Sector.WATER, datetime.now(UTC), ServiceLevel(level, 10, 0, {"leak_m3s": 0.1}))
    while time.monotonic() < deadline:
        twin.publish(svc_topic(Sector.WATER), json.dumps(message).encode(), qos=0)
        if all(r["state"] == state for r in _rows(client, "water")):
            return
        time.sleep(0.2)
    raise AssertionError(f"water never read {state}: {_rows(client, 'water')}")


def test_status_follows_the_twins_service_messages(tmp_path: Path) -> None:
    port = free_port()
    app, settings = _following_app(tmp_path, port)
    twin = paho.Client(CallbackAPIVersion.VERSION2, client_id="twin-water")
    twin.username_pw_set("twin-water")
    with EmbeddedBroker(port=port), TestClient(app) as client:
        watch = app.state.service_watch
        assert isinstance(watch, ServiceWatch)
        assert {r["state"] for r in _rows(client, "water")} == {"no data yet"}
        twin.connect("127.0.0.1", port)
        twin.loop_start()
        try:
            _publish_until(client, twin, 0.3, "outage")
            water = _rows(client, "water")
            assert {r["district"] for r in water} == {n.district for n in plugin_of("water").nodes}
            assert {r["availability"] for r in water} == {30.0}  # only 0.3 was ever reported
            assert all(r["updated"] is not None for r in water)
            assert {r["state"] for r in _rows(client, "electricity")} == {"no data yet"}
            incidents = client.get(f"{API}/public/incidents").json()["items"]
            texts = [i["text"] for i in incidents if i["sector"] == "water"]
            assert len(texts) == len(water) and all("30%" in t and " is out" in t for t in texts)
            assert all(i["since"] is not None for i in incidents)
            assert assert_nothing_sensitive(client) > 0
            series = {i["sector"]: i["availability"] for i in
                      client.get(f"{API}/public/availability").json()["items"]}
            assert len(series["water"]) == 60 and series["water"][-1] == 30.0
            assert set(series["electricity"]) == {None}
            _publish_until(client, twin, 1.0, "ok")
            assert all(30.0 <= r["availability"] <= 100.0 for r in _rows(client, "water"))
            held = [d.availability_hour for d in watch.snapshot() if d.sector == "water"]
            assert all(h is not None and 0.3 < h < 1.0 for h in held), held  # the hour holds both levels
            assert not [i for i in client.get(f"{API}/public/incidents").json()["items"] if i["sector"] == "water"]
        finally:
            twin.loop_stop()
            twin.disconnect()
    assert app.state.service_watch is None and not watch.connected.is_set()  # stopped with the app
    assert settings.home.exists()


# --- the ring and the hour, without a broker -----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_hour_is_time_weighted_and_refuses_what_is_not_a_level() -> None:
    clock = _Clock()
    watch = ServiceWatch({"water": ("North-West", "South-East")}, port=1, clock=clock)
    assert watch.record("water", 1.0)
    clock.now += HOUR_S / 2
    assert watch.record("water", 0.5, district="South-East")
    clock.now += HOUR_S / 2
    assert watch.record("water", 0.5, district="South-East")  # still half: the run of not-ok began before
    rows = {d.district: d for d in watch.snapshot()}
    assert rows["North-West"].availability_hour == pytest.approx(1.0) and rows["North-West"].state == "no recent data"
    assert rows["South-East"].availability_hour == pytest.approx(0.75)  # 1.0 for half the hour, 0.5 for half
    assert rows["South-East"].state == "degraded" and rows["South-East"].since == clock.now - HOUR_S / 2
    clock.now += 3 * HOUR_S  # only the newest level is left in the hour
    assert {d.district: d.availability_hour for d in watch.snapshot()}["South-East"] == pytest.approx(0.5)
    assert not watch.record("gas", 0.5)
    assert not watch.record("water", 1.5)
    assert not watch.record("water", float("nan"))
    assert not watch.record("water", 0.9, district="Atlantis")
    watch._on_message("qeaims-svc/water", b"not json")
    assert len(watch.snapshot()) == 2


def test_series_is_per_minute_time_weighted_and_holds_a_level_only_while_fresh() -> None:
    clock = _Clock()
    clock.now = 6_000_000.0  # a minute's start
    watch = ServiceWatch({"water": ("North-West", "South-East"), "banking": ("City-wide",)}, port=1, clock=clock)
    assert watch.record("water", 1.0)
    clock.now += 30
    assert watch.record("water", 0.5, district="South-East")  # half the minute at 1.0, half at 0.5
    clock.now += 30
    assert watch.record("water", 1.0)
    clock.now += MINUTE_S + 15  # a whole minute at 1.0, and a quarter of the next one under way
    start, series = watch.series(5)
    assert start == 6_000_000.0 - 2 * MINUTE_S
    assert series["banking"] == [None] * 5
    assert series["water"][:2] == [None, None]
    # the first minute: North-West 1.0 throughout, South-East 0.75: the sector is their mean
    assert series["water"][2] == pytest.approx((1.0 + 0.75) / 2)
    assert series["water"][3] == pytest.approx(1.0)
    assert series["water"][4] == pytest.approx(1.0)  # the minute under way, so far
    clock.now += STALE_S + 10 * MINUTE_S  # the twin stopped: its last level holds STALE_S, then nothing is known
    start, series = watch.series(20)
    # the last level (at the second minute's start) held ten minutes, to the end of the twelfth
    assert series["water"][-12:] == [None] * 12
    assert series["water"][-13] == pytest.approx(1.0)
    assert start == clock.now // MINUTE_S * MINUTE_S - 19 * MINUTE_S


def test_percent_never_rounds_up_to_whole() -> None:
    assert percent(1.0) == 100.0
    assert percent(0.99996) == 99.99
    assert percent(0.999) == 99.9
    assert percent(0.3) == 30.0


# --- incidents from the chain's index ----------------------------------------------------------------


def _index_with_isolations(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)
    rows = [
        (10, 0, "pump-1", 1, 2, 1_700_000_000),  # isolated, still
        (11, 0, "feeder-2", 1, 2, 1_700_000_100),  # isolated, then back
        (12, 0, "feeder-2", 2, 1, 1_700_000_200),
        (13, 0, "hospital-2", 1, 3, 1_700_000_300),  # under repair
    ]
    for block, log_index, node, before, after, stamp in rows:
        args = {"node": sector_key(node), "from": before, "to": after, "statusEpoch": 2}
        db.execute("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (block, log_index, "0x" + "ab" * 32, stamp, "0x" + "cd" * 20, "NodeStatusChanged", json.dumps(args)))
    db.commit()
    db.close()


def test_incidents_from_on_chain_isolations_in_plain_words(offline_app: tuple[TestClient, Tokens]) -> None:
    client, _tokens = offline_app
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    _index_with_isolations(ctx.index_path)
    items = client.get(f"{API}/public/incidents").json()["items"]
    assert sorted((i["sector"], i["district"]) for i in items) == [("healthcare", "North-East"), ("water", "North-West")]
    texts = {i["sector"]: i["text"] for i in items}
    assert texts["water"] == "A pump station in North-West is out of service after a detected fault."
    assert texts["healthcare"] == "A hospital in North-East is being repaired."
    assert {i["since"] for i in items} == {"2023-11-14T22:13:20Z", "2023-11-14T22:18:20Z"}
    assert assert_nothing_sensitive(client) > 0


# --- through the city's secure links -------------------------------------------------------------------


def test_the_watch_reads_a_real_twin_through_the_operations_links(tmp_path: Path) -> None:
    """As `qeaims up` runs it with links: the banking twin seals its service messages to the operations
    SAE; the watch opens that SAE's links from the home (`bus.secure.open_links`) and reads them."""
    from bus.secure import open_links
    from links.files import LinkFiles
    from links.kme.server import KmeServer
    from links.pki import DevPki
    from links.plan import city_plan, twin_sae
    from links.site import prepare
    from sectors.publish import TwinPublisher
    from sectors.runner import open_twin
    from tests.support import wait_until

    kme_port, mqtt_port = free_port(), free_port()
    home = tmp_path / "home"
    files = LinkFiles.of(home)
    plan = city_plan(["banking"], oracles_per_sector=1, kme_url=f"https://127.0.0.1:{kme_port}")
    prepare(files, plan)
    settings = load_settings(home=home, rpc_port=1)
    (home / "run").mkdir(parents=True)
    (home / "run" / "status.json").write_text(json.dumps({"mqtt_port": mqtt_port}))
    app = create_app(settings, follow=True)
    with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state), \
            EmbeddedBroker(port=mqtt_port), TestClient(app) as client:
        watch = app.state.service_watch
        assert isinstance(watch, ServiceWatch) and watch.links is not None  # the operations SAE's links
        twin_links = open_links(home, twin_sae("banking"))
        assert twin_links is not None
        try:
            with open_twin(Sector.BANKING) as runner, \
                    TwinPublisher(runner, port=mqtt_port, speed=1e6, links=twin_links) as twin:
                stop = threading.Event()

                def shown() -> bool:
                    twin.run(stop, steps=1)
                    return all(r["state"] != "no data yet" for r in _rows(client, "banking"))

                wait_until(shown, 30, what="banking's service on the public page", interval_s=0.2)
            banking = _rows(client, "banking")
            assert {r["state"] for r in banking} == {"ok"} and all(r["availability"] > 99.0 for r in banking)
            assert assert_nothing_sensitive(client) > 0
        finally:
            twin_links.close()
            if twin_links.kme is not None:
                twin_links.kme.close()  # type: ignore[attr-defined]


def test_the_watch_sae_is_the_one_the_plan_sends_service_messages_to() -> None:
    from api.routers.public import WATCH_SAE
    from links.plan import DASHBOARD_SAE, city_plan, twin_sae

    plan = city_plan(["water"], oracles_per_sector=1)
    carried = [link for link in plan.links if link.slave == WATCH_SAE and link.master == twin_sae("water")]
    assert WATCH_SAE == DASHBOARD_SAE and carried
    assert [link.master_to_slave for link in carried] == [(svc_topic(Sector.WATER),)]
    assert all(link.slave_to_master == () for link in carried)  # it hears, and sends nothing back
