"""The links on the chain: every session's key ids and epoch, every QKD alarm, nothing twice, no forgery.

A real Anvil with the development consortium, a real KME over HTTPS, a real broker; the controller's
`LinkWatch` records from the handshakes it reads and the KME states it polls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus.client import NamedClient
from bus.mqtt import EmbeddedBroker
from bus.secure import SecureLinks, handshake_topic, open_links
from chain.deploy import dev_controller
from controller.link_watch import KEY_ROTATION, QKD_ALARM, LinkWatch
from links.channel import initiate
from links.endpoint import Directory, EndpointKeys
from links.files import LinkFiles
from links.kme.client import KmeClient
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import OPERATIONS_SAE, LinkPlan, city_plan, link_id_for, oracle_sae, twin_sae
from links.site import prepare
from tests.conftest import free_port
from tests.oracles.test_oracle_node import ledger_events
from tests.support import recorder, wait_until


@dataclass
class Site:
    home: Path
    files: LinkFiles
    plan: LinkPlan
    mqtt_port: int


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    kme_port, mqtt_port = free_port(), free_port()
    files = LinkFiles.of(tmp_path)
    plan = city_plan(["water"], oracles_per_sector=1, kme_url=f"https://127.0.0.1:{kme_port}")
    prepare(files, plan)
    with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state), \
            EmbeddedBroker(port=mqtt_port):
        yield Site(tmp_path, files, plan, mqtt_port)


class _Master(NamedClient):
    def __init__(self, port: int, links: SecureLinks) -> None:
        super().__init__("twin-water", port=port, settle_s=0.2, links=links)


def _rotations(chain, link_id: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [p for _, _, p in ledger_events(chain, "key-rotation") if p.get("link") == link_id]


def test_sessions_and_qkd_alarms_go_on_chain_once_and_forged_handshakes_do_not(chain, site: Site) -> None:  # type: ignore[no-untyped-def]
    controller = dev_controller(chain.settings)
    rec = recorder(chain.client, chain.settings, controller)
    links = open_links(site.home, twin_sae("water"))
    assert links is not None
    tapped = link_id_for(twin_sae("water"), oracle_sae("water", 1))
    kme = KmeClient(site.plan.kme_url, "controller", DevPki(site.files.pki))
    watch = LinkWatch(plan=site.plan, directory=Directory.load(site.files.directory), kme=kme,
                      port=site.mqtt_port).start()
    try:
        with _Master(site.mqtt_port, links) as master:
            mine = {link.link_id for link in site.plan.for_sae(twin_sae("water"))}
            wait_until(lambda: watch.record(rec) or {p["link"] for _, _, p in ledger_events(chain, "key-rotation")}
                       >= mine, 30, what="the first sessions on-chain", interval_s=0.3)
            first = _rotations(chain, tapped)
            assert len(first) == 1 and first[0]["epoch"] >= 1 and first[0]["master"] == twin_sae("water")
            assert "key" not in json.dumps(first[0]).replace("key_ids", "")  # ids, never key material

            # a handshake signed by someone else is refused, not recorded
            forger = EndpointKeys.generate(twin_sae("water"))
            peer = Directory.load(site.files.directory).get(oracle_sae("water", 1))
            forged, _ = initiate(tapped, 999, forger, peer, qkd_key=None, qkd_key_ids=())
            master._publish_raw(handshake_topic(tapped), forged.to_bytes(), 1, False)
            wait_until(lambda: watch.record(rec) or watch.refused >= 1, 10, what="the forgery refused")
            assert not any(p["epoch"] == 999 for p in _rotations(chain, tapped))

            # Eve on the fibre: the KME's statistics catch her, the alarm and the fallback session go on-chain
            with KmeClient(site.plan.kme_url, OPERATIONS_SAE, DevPki(site.files.pki)) as ops:
                ops.set_eavesdropper(tapped, "intercept-resend", 0.25)
                try:
                    wait_until(lambda: watch.poll() or watch.record(rec) or any(
                        p.get("link") == tapped and p.get("type") == "link-compromised"
                        for _, _, p in ledger_events(chain, "qkd-alarm")), 60, what="link-compromised on-chain",
                        interval_s=0.5)
                    wait_until(lambda: watch.record(rec) or any(p["mode"] == "pq-fallback"
                                                                for p in _rotations(chain, tapped)),
                               30, what="the fallback session on-chain", interval_s=0.5)
                finally:
                    ops.clear_eavesdropper(tapped)
                wait_until(lambda: watch.poll() or watch.record(rec) or any(
                    p.get("link") == tapped and p.get("type") == "link-restored"
                    for _, _, p in ledger_events(chain, "qkd-alarm")), 90, what="link-restored on-chain",
                    interval_s=0.5)
                wait_until(lambda: watch.record(rec) or _rotations(chain, tapped)[-1]["mode"] == "hybrid", 30,
                           what="a hybrid session again", interval_s=0.5)
        time.sleep(0.5)
        watch.record(rec)  # whatever the master did up to its last moment
        alarm = next(p for _, _, p in ledger_events(chain, "qkd-alarm")
                     if p.get("link") == tapped and p.get("type") == "link-compromised")
        assert alarm["alarms"] and "response" in alarm
    finally:
        watch.close()
        links.close()
        kme.close()

    # a restarted controller sees the retained handshakes again and records nothing twice (a session
    # the master started in its last moments, after the old watch's final record, is new, not a repeat)
    again = LinkWatch(plan=site.plan, directory=Directory.load(site.files.directory),
                      kme=KmeClient(site.plan.kme_url, "controller", DevPki(site.files.pki)),
                      port=site.mqtt_port).start()
    try:
        wait_until(lambda: again._inbox.qsize() >= 1, 10, what="the retained handshakes")
        again.poll()
        again.record(rec)
        assert again.record(rec) == []
    finally:
        again.close()
    sessions = [(p["link"], p["epoch"]) for _, _, p in ledger_events(chain, "key-rotation") if "link" in p]
    assert len(sessions) == len(set(sessions))
    compromised = [p for _, _, p in ledger_events(chain, "qkd-alarm")
                   if p.get("link") == tapped and p.get("type") == "link-compromised"]
    assert len(compromised) == 1
    assert KEY_ROTATION != QKD_ALARM
