"""Webhooks: an alert recorded on a real chain reaches the operator's local receiver, signed with the
hook's secret; another sector's alert does not; a failing receiver is tried three times; bad URLs and
the wrong roles are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.live.messages import Message
from api.webhooks import SIGNATURE_HEADER, Dispatcher, HookStore
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.ids import to_bytes32
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
