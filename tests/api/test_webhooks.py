"""Webhooks: an alert recorded on a real chain reaches the operator's local receiver, signed with the
hook's secret; another sector's alert does not; a notice an operator posts for the healthcare providers
reaches the healthcare operator's hook and stream, and not the water operator's; a failing receiver is
tried three times; bad URLs and the wrong roles are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import TokenStore
from api.live.messages import Message
from api.webhooks import SIGNATURE_HEADER, Dispatcher, HookStore
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.api._live import SseClient, serving
from tests.api.conftest import Tokens, make_tokens
from tests.conftest import Chain, free_port
from tests.support import oracle, recorder, wait_until


@dataclass
class Receiver:
    url: str
    status: int = 200
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local http.server that keeps every POST (headers, body) and answers `receiver.status`."""
    port = free_port()
    box = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            box.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def _valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], expected)


def test_an_alert_on_the_chain_reaches_the_operators_hook_signed(fresh_chain: Chain, receiver: Receiver) -> None:
    chain = fresh_chain
    app = create_app(chain.settings, follow=True)
    tokens = make_tokens(chain.settings.home / "api")
    with TestClient(app) as client:  # the lifespan runs the follower
        made = client.post("/api/v1/webhooks", json={"url": receiver.url},
                           headers=tokens.header(tokens.operator_water))
        assert made.status_code == 201, made.text
        hook = made.json()
        assert hook["sector"] == "water" and len(hook["secret"]) >= 40
        wait_until(lambda: app.state.follower.cursor is not None, 20, what="the follower's first sync")

        for sector, kind in (("electricity", "fault"), ("water", "telemetry-root"), ("water", "intrusion")):
            rec = recorder(chain.client, chain.settings, oracle(chain.settings, sector, 1))
            rec.record(kind_by_name(kind), to_bytes32("plc-4"), canonical_payload({"verdict": kind, "score": 9.5}))
            rec.outbox.close()
        wait_until(lambda: receiver.got, 10, what="the webhook delivery")
        assert client.get("/api/v1/webhooks", headers=tokens.header(tokens.operator_water)).json()["items"][0] \
            .keys() == {"id", "sector", "url", "label", "created"}  # the secret is never shown again

        scrape = client.get("/metrics", headers=tokens.header(tokens.auditor)).text
        assert 'qeaims_webhook_deliveries_total{result="delivered"} 1.0' in scrape
        age = next(line for line in scrape.splitlines() if line.startswith("qeaims_follower_sync_age_seconds "))
        assert 0 <= float(age.split()[1]) < 5  # the follower is syncing

    (headers, body), = receiver.got  # one: the electricity fault and the water telemetry root are not for it
    assert _valid(hook["secret"], headers, body)
    assert not _valid(hook["secret"] + "x", headers, body)
    sent = json.loads(body)
    assert sent["hook"] == hook["id"] and sent["topic"] == "alert"
    assert sent["alert"]["kind"] == "intrusion" and sent["alert"]["sector"] == "water"
    assert sent["alert"]["payload"] == {"verdict": "intrusion", "score": 9.5}
    assert sent["cursor"] == sent["alert"]["cursor"]


def test_a_notice_for_the_healthcare_providers_reaches_their_hook_and_stream(fresh_chain: Chain,
                                                                           receiver: Receiver) -> None:
    """The electricity operator posts for `healthcare`: the healthcare operator's hook (signed) and stream get
    it, as does the electricity operator's hook (the notice is about its sector); the water operator's do
    not. The same payload recorded by an electricity oracle instead of the control room reaches no provider."""
    chain = fresh_chain
    api_dir = chain.settings.home / "api"
    tokens = make_tokens(api_dir)
    health = TokenStore(api_dir).add("operator", "ops-health", sector="healthcare")
    app = create_app(chain.settings, follow=True)
    with serving(app) as url, httpx.Client(base_url=url + "/api/v1", timeout=30) as http:
        hooks = {}
        for name, token in (("healthcare", health), ("water", tokens.operator_water),
                            ("electricity", tokens.operator_electricity)):
            made = http.post("/webhooks", json={"url": receiver.url}, headers=tokens.header(token))
            assert made.status_code == 201, made.text
            hooks[made.json()["id"]] = (name, made.json()["secret"])
        wait_until(lambda: app.state.follower.cursor is not None, 20, what="the follower's first sync")
        with SseClient(url, tokens.header(health), {"topics": "notice"}) as health_stream, \
                SseClient(url, tokens.header(tokens.operator_water), {"topics": "notice"}) as water_stream:
            forged = {"id": "ab" * 16, "sha256": "cd" * 32, "audience": "healthcare", "sector": "electricity"}
            rec = recorder(chain.client, chain.settings, oracle(chain.settings, "electricity", 1))
            rec.record(kind_by_name("notice"), to_bytes32("feeder-1"), canonical_payload(forged))
            rec.outbox.close()
            posted = http.post("/notices", json={"audience": "healthcare", "sector": "electricity",
                                                 "district": "north", "text": "Feeder 1 off until 18:00."},
                               headers=tokens.header(tokens.operator_electricity))
            assert posted.status_code == 201, posted.text
            notice = posted.json()
            (heard,) = health_stream.take(1)
            assert heard.event == "notice" and heard.data["notice"]["id"] == notice["id"]
            assert heard.data["notice"] == {"id": notice["id"], "sha256": notice["sha256"],
                                            "audience": "healthcare", "sector": "electricity"}
            assert health_stream.quiet(0.5) == [] and water_stream.quiet(0) == []
            wait_until(lambda: len(receiver.got) >= 3, 10, what="the webhook deliveries")
            time.sleep(0.5)  # nothing more comes

    got: dict[str, list[dict[str, object]]] = {}
    for headers, body in receiver.got:
        name, secret = hooks[headers["x-qeaims-hook"]]
        assert _valid(secret, headers, body)
        sent = json.loads(body)
        assert sent["topic"] == "notice" and "alert" not in sent
        got.setdefault(name, []).append(sent["notice"]["notice"])
    assert got.keys() == {"healthcare", "electricity"}  # not water
    assert [n["id"] for n in got["healthcare"]] == [notice["id"]]  # not the electricity oracle's
    assert sorted(str(n["id"]) for n in got["electricity"]) == sorted([notice["id"], forged["id"]])


def test_a_failing_receiver_is_tried_three_times(tmp_path: pytest.TempPathFactory, receiver: Receiver) -> None:
    receiver.status = 500
    store = HookStore(tmp_path)  # type: ignore[arg-type]
    store.add("water", receiver.url, "ops-water")
    dispatcher = Dispatcher(store, backoff_s=(0.01,))
    dispatcher.offer(Message("event", {"kind": "anomaly"}, "5:0", "water"))  # not an alert: never sent
    dispatcher.offer(Message("alert", {"kind": "anomaly"}, "5:0", "water"))
    wait_until(lambda: dispatcher.stats.failed, 10, what="the delivery to give up")
    dispatcher.stop()
    assert len(receiver.got) == 3 and dispatcher.stats.delivered == 0
    assert len({json.loads(body)["delivery"] for _, body in receiver.got}) == 1  # one delivery, retried


def test_the_hooks_file_is_private(tmp_path: pytest.TempPathFactory) -> None:
    store = HookStore(tmp_path)  # type: ignore[arg-type]
    store.add("water", "https://ops.example/alerts", "ops-water")
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("url", ["ftp://ops.example/x", "not a url", "http://", "https://user:pw@ops.example/",
                                 "javascript:alert(1)", "http://ops.example:99999/"])
def test_a_bad_url_is_422(offline_app: tuple[TestClient, Tokens], url: str) -> None:
    client, tokens = offline_app
    refused = client.post("/api/v1/webhooks", json={"url": url}, headers=tokens.header(tokens.operator_water))
    assert refused.status_code == 422 and refused.json()["error"].startswith("url: ")


def test_only_an_operator_manages_its_own_sectors_hooks(offline_app: tuple[TestClient, Tokens]) -> None:
    client, tokens = offline_app
    url = {"url": "https://ops.example/alerts"}
    assert client.post("/api/v1/webhooks", json=url).status_code == 401
    assert client.post("/api/v1/webhooks", json=url, headers=tokens.header(tokens.auditor)).status_code == 403
    other = client.post("/api/v1/webhooks", json={**url, "sector": "electricity"},
                        headers=tokens.header(tokens.operator_water))
    assert other.status_code == 403
    made = client.post("/api/v1/webhooks", json=url, headers=tokens.header(tokens.operator_water)).json()
    power = client.get("/api/v1/webhooks", headers=tokens.header(tokens.operator_electricity)).json()
    assert power == {"items": [], "next_cursor": None}
    listed = client.get("/api/v1/webhooks", headers=tokens.header(tokens.auditor)).json()["items"]
    assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
    gone = f"/api/v1/webhooks/{made['id']}"
    assert client.delete(gone, headers=tokens.header(tokens.operator_electricity)).status_code == 403
    assert client.delete(gone, headers=tokens.header(tokens.operator_water)).status_code == 204
    assert client.delete(gone, headers=tokens.header(tokens.operator_water)).status_code == 404
