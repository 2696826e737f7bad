"""The KME over real HTTPS (uvicorn, TLS client certificates), fed by the real simulated QKD pairs.

One server for the module (a water sector: twin → 2 oracles, controller, operations); the restart
test and the throughput bench start their own. Raw httpx clients check the standard's status codes
and Error bodies; `KmeClient` is checked as the SAEs use it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from links.kme.bench import kme_throughput
from links.kme.client import KmeClient, KmeError
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import LinkPlan, LinkSpec, city_plan
from tests.conftest import free_port
from tests.support import wait_until

pytestmark = pytest.mark.city

TWIN, ORACLE1, ORACLE2 = "twin-water", "oracle-water-1", "oracle-water-2"
STRANGER = "stranger"  # a certificate of the right CA, for an SAE the plan does not know


@dataclass
class Kme:
    server: KmeServer
    plan: LinkPlan
    pki: DevPki
    url: str

    def raw(self, sae_id: str | None, *, pki: DevPki | None = None) -> httpx.Client:
        """An httpx client with `sae_id`'s certificate (None: no certificate), trusting the KME's CA."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_path))
        if sae_id is not None:
            cert, key = (pki or self.pki).client_paths(sae_id)
            context.load_cert_chain(str(cert), str(key))
        return httpx.Client(base_url=self.url, verify=context, timeout=10.0)

    def client(self, sae_id: str) -> KmeClient:
        return KmeClient(self.url, sae_id, self.pki)


@pytest.fixture(scope="module")
def kme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kme]:
    home = tmp_path_factory.mktemp("kme")
    port = free_port()
    plan = city_plan(["water"], oracles_per_sector=2, kme_url=f"https://127.0.0.1:{port}")
    pki = DevPki(home / "pki")
    pki.ensure_client(STRANGER)
    with KmeServer(plan, pki, port=port, state_path=home / "kme-state.json") as server:
        wait_until(lambda: all(server.store.available_bytes(link.link_id) >= 1024 for link in plan.links), 30.0,
                   what="the first QKD keys of every link")
        yield Kme(server, plan, pki, plan.kme_url)


def _error(answer: httpx.Response, status: int) -> str:
    """The standard's Error body of a refusal with `status`; returns its message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) <= {"message", "details"} and isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def test_status(kme: Kme) -> None:
    with kme.raw(TWIN) as twin:
        body = twin.get(f"/api/v1/keys/{ORACLE1}/status").json()
    assert body["master_SAE_ID"] == TWIN and body["slave_SAE_ID"] == ORACLE1
    assert body["key_size"] == 256 and body["stored_key_count"] >= 32 and body["max_SAE_ID_count"] == 0
    assert body["min_key_size"] <= 256 <= body["max_key_size"] and body["max_key_per_request"] >= 1
    assert body["max_key_count"] >= body["stored_key_count"]
    assert body["status_extension"]["qkd_state"] == "secure"
    assert body["status_extension"]["distance_km"] == 12.0
    with kme.client(TWIN) as twin_client:
        assert twin_client.status(ORACLE1).slave_SAE_ID == ORACLE1


def test_keys_by_get_and_post_reach_exactly_the_two_ends_once(kme: Kme) -> None:
    with kme.raw(TWIN) as twin, kme.raw(ORACLE1) as oracle, kme.raw(ORACLE2) as other:
        got = twin.get(f"/api/v1/keys/{ORACLE1}/enc_keys", params={"number": 2, "size": 128})
        assert got.status_code == 200, got.text
        keys = got.json()["keys"]
        assert len(keys) == 2 and len({k["key_ID"] for k in keys}) == 2
        # the other oracle of the same master cannot have them: not keys of its link
        message = _error(other.get(f"/api/v1/keys/{TWIN}/dec_keys", params={"key_ID": keys[0]["key_ID"]}), 400)
        assert "key_ID" in message
        first = oracle.get(f"/api/v1/keys/{TWIN}/dec_keys", params={"key_ID": keys[0]["key_ID"]})
        assert first.status_code == 200 and first.json()["keys"] == [keys[0]]
        second = oracle.post(f"/api/v1/keys/{TWIN}/dec_keys", json={"key_IDs": [{"key_ID": keys[1]["key_ID"]}]})
        assert second.json()["keys"] == [keys[1]]
        # consumed: a second fetch is refused, by GET and by POST
        _error(oracle.get(f"/api/v1/keys/{TWIN}/dec_keys", params={"key_ID": keys[0]["key_ID"]}), 400)
        _error(oracle.post(f"/api/v1/keys/{TWIN}/dec_keys", json={"key_IDs": [{"key_ID": keys[1]["key_ID"]}]}),
               400)
        # the master cannot fetch its own key as a slave
        _error(twin.get(f"/api/v1/keys/{ORACLE1}/dec_keys", params={"key_ID": keys[0]["key_ID"]}), 401)

        posted = twin.post(f"/api/v1/keys/{ORACLE1}/enc_keys", json={"number": 3, "size": 512}).json()["keys"]
        assert len(posted) == 3
        defaulted = twin.post(f"/api/v1/keys/{ORACLE1}/enc_keys").json()["keys"]
        assert len(defaulted) == 1
    with kme.client(ORACLE1) as slave:
        fetched = slave.dec_keys(TWIN, [k["key_ID"] for k in posted + defaulted])
    assert [len(k.key) for k in fetched] == [64, 64, 64, 32]
    assert [k.key_ID for k in fetched] == [k["key_ID"] for k in posted + defaulted]


def test_client_keys_match(kme: Kme) -> None:
    with kme.client(TWIN) as master, kme.client("controller") as slave:
        keys = master.enc_keys("controller", number=4, size=256)
        assert slave.dec_keys(TWIN, [k.key_ID for k in keys]) == keys
        assert all(len(k.key) == 32 for k in keys) and len({k.key for k in keys}) == 4
        assert "bits>" in repr(keys[0])  # a key never shows in a log
        with pytest.raises(KmeError) as again:
            slave.dec_keys(TWIN, [keys[0].key_ID])
    assert again.value.status == 400


@pytest.mark.parametrize(("sae", "method", "path", "kwargs", "status", "says"), [
    (TWIN, "GET", "/api/v1/keys/nobody/status", {}, 401, "no SAE 'nobody'"),
    (TWIN, "GET", "/api/v1/keys/nobody/enc_keys", {}, 401, "no SAE 'nobody'"),
    (ORACLE1, "GET", "/api/v1/keys/nobody/dec_keys", {"params": {"key_ID": "x"}}, 401, "no SAE 'nobody'"),
    (STRANGER, "GET", f"/api/v1/keys/{ORACLE1}/status", {}, 401, "no SAE"),
    (ORACLE1, "GET", f"/api/v1/keys/{TWIN}/enc_keys", {}, 401, "not the master"),  # wrong direction
    (ORACLE2, "GET", f"/api/v1/keys/{ORACLE1}/dec_keys", {"params": {"key_ID": "x"}}, 401, "not the master"),
    (TWIN, "GET", f"/api/v1/keys/{ORACLE1}/enc_keys", {"params": {"size": 100}}, 400, "multiple of 8"),
    (TWIN, "GET", f"/api/v1/keys/{ORACLE1}/enc_keys", {"params": {"size": 8192}}, 400, "multiple of 8"),
    (TWIN, "GET", f"/api/v1/keys/{ORACLE1}/enc_keys", {"params": {"number": 17}}, 400, "max_key_per_request"),
    (TWIN, "GET", f"/api/v1/keys/{ORACLE1}/enc_keys", {"params": {"number": 0}}, 400, "max_key_per_request"),
    (TWIN, "GET", f"/api/v1/keys/{ORACLE1}/enc_keys", {"params": {"number": "many"}}, 400, "number"),
    (TWIN, "POST", f"/api/v1/keys/{ORACLE1}/enc_keys", {"json": {"number": 1, "additional_slave_SAE_IDs":
                                                                [ORACLE2]}}, 400, "max_SAE_ID_count is 0"),
    (TWIN, "POST", f"/api/v1/keys/{ORACLE1}/enc_keys", {"json": {"size": "big"}}, 400, "size"),
    (TWIN, "POST", f"/api/v1/keys/{ORACLE1}/enc_keys", {"content": b"{not json",
                                                        "headers": {"content-type": "application/json"}}, 400,
     "malformed"),
    (ORACLE1, "GET", f"/api/v1/keys/{TWIN}/dec_keys", {"params": {"key_ID": "no-such-key"}}, 400, "key_ID"),
    (ORACLE1, "GET", f"/api/v1/keys/{TWIN}/dec_keys", {}, 400, "key_ID"),
    (ORACLE1, "POST", f"/api/v1/keys/{TWIN}/dec_keys", {"json": {"key_IDs": []}}, 400, "key_IDs"),
    (ORACLE1, "POST", f"/api/v1/keys/{TWIN}/dec_keys", {"json": {"key_IDs": [{"key_ID": "nope"}]}}, 400,
     "key_ID"),
    (TWIN, "GET", "/api/v1/nothing-here", {}, 404, "Not Found"),
    (TWIN, "POST", "/api/v1/links/twin-water~oracle-water-1/eavesdropper",
     {"json": {"kind": "pns", "fraction": 0.5}}, 403, "operations"),
    ("operations", "POST", "/api/v1/links/twin-water~oracle-water-1/eavesdropper",
     {"json": {"kind": "sniffing", "fraction": 0.5}}, 400, "kind"),
    ("operations", "DELETE", "/api/v1/links/no~link/eavesdropper", {}, 400, "no link"),
])
def test_refusals_are_the_standards_errors(kme: Kme, sae: str, method: str, path: str, kwargs: dict[str, Any],
                                           status: int, says: str) -> None:
    with kme.raw(sae) as client:
        message = _error(client.request(method, path, **kwargs), status)
    assert says in message


def test_no_certificate_or_another_cas_cannot_connect(kme: Kme, tmp_path: Path) -> None:
    with kme.raw(None) as anonymous, pytest.raises(httpx.TransportError):
        anonymous.get(f"/api/v1/keys/{ORACLE1}/status")
    foreign = DevPki(tmp_path / "foreign")
    foreign.ensure_client(TWIN)  # the same name, signed by another CA
    with kme.raw(TWIN, pki=foreign) as impostor, pytest.raises(httpx.TransportError):
        impostor.get(f"/api/v1/keys/{ORACLE1}/status")
    (tmp_path / "foreign" / "ca.pem").write_bytes(kme.pki.ca_path.read_bytes())  # trusts the KME, foreign cert
    with KmeClient(kme.url, TWIN, foreign) as client, pytest.raises(KmeError) as refused:
        client.status(ORACLE1)
    assert refused.value.status == 0 and "cannot reach the KME" in str(refused.value)


def test_links_are_shown_to_their_ends_and_the_watchers(kme: Kme) -> None:
    with kme.client(ORACLE1) as oracle, kme.client("controller") as controller, \
            kme.client("operations") as ops:
        mine = oracle.links()
        assert [s.link_id for s in mine] == [f"{TWIN}~{ORACLE1}"]
        assert mine[0].state in ("secure", "compromised") and mine[0].blocks >= 1
        assert mine[0].last_block is not None and "qber" in mine[0].last_block
        assert mine[0].eavesdropper is None
        assert {s.link_id for s in controller.links()} == {link.link_id for link in kme.plan.links}
        assert len(ops.links()) == len(kme.plan.links)
        with pytest.raises(KmeError) as forbidden:
            controller.set_eavesdropper(f"{TWIN}~{ORACLE1}", "pns", 0.5)
    assert forbidden.value.status == 403


def test_eavesdropper_compromises_the_link_then_clearing_restores_it(kme: Kme) -> None:
    link_id = f"{TWIN}~{ORACLE2}"
    with kme.client(TWIN) as master, kme.client(ORACLE2) as slave, kme.client("operations") as ops:
        pending = master.enc_keys(ORACLE2)  # delivered to the master only when Eve comes
        state = ops.set_eavesdropper(link_id, "intercept-resend", 1.0)
        assert state.eavesdropper == {"kind": "intercept-resend", "fraction": 1.0}
        wait_until(lambda: master.status(ORACLE2).status_extension["qkd_state"] == "compromised",  # type: ignore[index]
                   20.0, what="the link to be found compromised", interval_s=0.1)
        seen = next(s for s in ops.links() if s.link_id == link_id)
        assert seen.state == "compromised" and seen.alarms and seen.alarm_count >= 1
        assert seen.keys_available == 0
        with pytest.raises(KmeError) as refused:
            master.enc_keys(ORACLE2)
        assert refused.value.status == 503 and "compromised" in refused.value.message
        with pytest.raises(KmeError) as discarded:
            slave.dec_keys(TWIN, [pending[0].key_ID])
        assert discarded.value.status == 503 and "discarded" in discarded.value.message
        # the other links are not affected
        assert master.enc_keys(ORACLE1)

        ops.clear_eavesdropper(link_id)
        wait_until(lambda: next(s for s in ops.links() if s.link_id == link_id).state == "secure", 30.0,
                   what="the link to be restored", interval_s=0.1)
        wait_until(lambda: master.status(ORACLE2).stored_key_count > 0, 30.0, what="new keys", interval_s=0.1)
        fresh = master.enc_keys(ORACLE2)
        assert slave.dec_keys(TWIN, [fresh[0].key_ID]) == fresh


def test_a_key_given_to_the_master_survives_a_restart(tmp_path: Path) -> None:
    plan = LinkPlan(links=(LinkSpec(master="alpha", slave="beta", distance_km=10.0),))
    pki, state = DevPki(tmp_path / "pki"), tmp_path / "kme-state.json"
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with KmeServer(plan, pki, port=port, state_path=state) as server:
        wait_until(lambda: server.store.available_bytes("alpha~beta") >= 64, 30.0, what="keys")
        with KmeClient(url, "alpha", pki) as master:
            keys = master.enc_keys("beta", number=2)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with KmeServer(plan, pki, port=port, state_path=state, refill=False), KmeClient(url, "beta", pki) as slave:
        assert slave.dec_keys("alpha", [k.key_ID for k in keys]) == keys
        with pytest.raises(KmeError) as again:
            slave.dec_keys("alpha", [keys[0].key_ID])
        assert again.value.status == 400
        with KmeClient(url, "alpha", pki) as master, pytest.raises(KmeError) as empty:
            master.enc_keys("beta")  # no refill: the pool was not kept, and nothing makes more
        assert empty.value.status == 503


def test_a_stop_does_not_wait_for_an_idle_keep_alive_client(tmp_path: Path) -> None:
    """An SAE that keeps its connection open and idle (as every KmeClient does between keys) must not
    hold the KME's stop: an idle TLS connection closes only when its client answers the close_notify."""
    import time

    plan = LinkPlan(links=(LinkSpec(master="alpha", slave="beta", distance_km=10.0),))
    pki, port = DevPki(tmp_path / "pki"), free_port()
    server = KmeServer(plan, pki, port=port, state_path=tmp_path / "kme-state.json", refill=False).start()
    with KmeClient(f"https://127.0.0.1:{port}", "alpha", pki) as master:
        master.status("beta")  # the connection stays open, idle
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
    assert took < 5.0, f"the KME took {took:.1f} s to stop beside an idle client"


def test_throughput_bench() -> None:
    result = kme_throughput(0.5, port=free_port())
    assert result["keys"] > 0 and result["keys_per_s"] > 0 and result["qkd_blocks"] >= 1
