"""The city's MQTT links through hybrid channels: a real broker, a real KME over HTTPS, a real twin.

What the broker (and anyone subscribed to ``#``) sees is ciphertext only; the oracles and the
controller get every reading; tampered, replayed and truncated envelopes are refused and counted,
and nothing of the legitimate stream is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker
from bus.secure import SecureLinks, data_topic, handshake_topic, open_links
from controller.commander import Commander
from controller.scada import FieldView
from core.messages import Sector
from links.files import LinkFiles
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import CONTROLLER_SAE, city_plan, link_id_for, oracle_sae, twin_sae
from links.site import prepare
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.publish import TwinPublisher
from sectors.remote import SimControl
from sectors.runner import open_twin
from tests.conftest import free_port
from tests.support import wait_until

ORACLES = 2


@dataclass
class Site:
    home: Path
    files: LinkFiles
    mqtt_port: int


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    kme_port, mqtt_port = free_port(), free_port()
    files = LinkFiles.of(tmp_path)
    plan = city_plan(["water"], oracles_per_sector=ORACLES, kme_url=f"https://127.0.0.1:{kme_port}", operations=False)
    prepare(files, plan)
    with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state), \
            EmbeddedBroker(port=mqtt_port):
        yield Site(tmp_path, files, mqtt_port)


class Tap:
    """A raw MQTT client subscribed to everything: what the broker and the wire see."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="tap", clean_session=True)
        self.client.username_pw_set("tap")
        self.client.on_connect = lambda c, *_: c.subscribe("#", 0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, _c: object, _u: object, m: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((m.topic, bytes(m.payload)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]

    def inject(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Drainer:
    """What an oracle's loop does to its sink, enough for the broker: take the readings (acknowledging them)."""

    def __init__(self, sink: ReadingSink) -> None:
        self.sink, self.taken = sink, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.sink.wait(0.05):
                self.taken += len(self.sink.drain())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _links(site: Site, sae: str) -> SecureLinks:
    links = open_links(site.home, sae)
    assert links is not None
    return links


def test_the_broker_sees_only_ciphertext_and_every_reader_gets_every_reading(site: Site) -> None:
    tap = Tap(site.mqtt_port)
    sinks = [ReadingSink() for _ in range(ORACLES)]
    drainers = [Drainer(sink) for sink in sinks]
    oracle_links = [_links(site, oracle_sae("water", i + 1)) for i in range(ORACLES)]
    subscribers = [MqttSubscriber(sink, port=site.mqtt_port, sectors=[Sector.WATER],
                                  client_id=oracle_sae("water", i + 1), links=links).start()
                   for i, (sink, links) in enumerate(zip(sinks, oracle_links, strict=True))]
    controller_links = _links(site, CONTROLLER_SAE)
    twin_links = _links(site, twin_sae("water"))
    try:
        with FieldView(port=site.mqtt_port, links=controller_links) as view, \
                open_twin(Sector.WATER) as runner, \
                TwinPublisher(runner, port=site.mqtt_port, speed=1e6, links=twin_links) as twin:
            stop = threading.Event()
            twin.run(stop, steps=3)
            sent = twin.published
            wait_until(lambda: all(d.taken >= sent for d in drainers), 20, what="every reading at every oracle")
            assert all(d.taken == sent for d in drainers)  # each reading once
            wait_until(lambda: len(view.readings(Sector.WATER)) > 0, 10, what="the controller's SCADA view")
        names = {r.sensor_id for r in view.readings(Sector.WATER)}
        assert names, "the controller saw no reading"
        # the wire: only link topics, and no field name, unit, sensor or asset in any payload
        assert tap.messages, "the tap saw nothing"
        assert all(t.startswith("qlink/") for t, _ in tap.messages), {t for t, _ in tap.messages}
        plain_words = [b"quantity", b"timestamp", b"pressure", b'"value"', b"unit"]
        plain_words += [n.split("/")[-1].encode() for n in list(names)[:20] if len(n.split("/")[-1]) > 4]
        for topic, payload in tap.messages:
            if topic.endswith("/hs"):
                continue  # handshakes are public by design: ids, epochs, KEM ciphertexts
            for word in plain_words:
                assert word not in payload, f"{word!r} in clear on {topic}"
    finally:
        for drainer in drainers:
            drainer.close()
        for sub in subscribers:
            sub.stop()
        for links in (*oracle_links, controller_links, twin_links):
            links.close()
        tap.close()


def test_tampered_replayed_and_truncated_envelopes_are_refused_and_nothing_legitimate_is_lost(site: Site) -> None:
    tap = Tap(site.mqtt_port)
    sink = ReadingSink()
    drainer = Drainer(sink)
    oracle_links = _links(site, oracle_sae("water", 1))
    link_id = link_id_for(twin_sae("water"), oracle_sae("water", 1))
    subscriber = MqttSubscriber(sink, port=site.mqtt_port, sectors=[Sector.WATER],
                                client_id=oracle_sae("water", 1), links=oracle_links, persistent=False).start()
    twin_links = _links(site, twin_sae("water"))
    topic = data_topic(link_id, twin_sae("water"))
    try:
        with open_twin(Sector.WATER) as runner, \
                TwinPublisher(runner, port=site.mqtt_port, speed=1e6, links=twin_links) as twin:
            stop = threading.Event()
            twin.run(stop, steps=2)
            wait_until(lambda: len(tap.on(topic)) >= 2, 10, what="two envelopes on the oracle's link")
            first = tap.on(topic)[0]
            ahead = first[:8] + (10**6).to_bytes(8, "big")  # a counter the receiver has not seen yet
            tap.inject(topic, first)  # replayed
            tap.inject(topic, ahead + first[16:])  # the header altered (the counter is in the associated data)
            mid = len(first) // 2
            tap.inject(topic, ahead + first[16:mid] + bytes([first[mid] ^ 0x40]) + first[mid + 1:])  # body altered
            tap.inject(topic, first[:10])  # truncated
            stats = oracle_links.stats[link_id]
            wait_until(lambda: sum(stats.snapshot()["refused"].values()) >= 4, 10, what="four refusals")
            twin.run(stop, steps=4)  # the legitimate stream goes on after the attack (two more periods)
            sent = twin.published
            wait_until(lambda: stats.snapshot()["opened"] >= 4, 10, what="every legitimate envelope opened")
            wait_until(lambda: drainer.taken >= sent, 10, what="every legitimate reading")
        refused = stats.snapshot()["refused"]
        assert refused.get("replay", 0) == 1 and refused.get("tamper", 0) == 2 and refused.get("truncated", 0) == 1, \
            refused
        assert stats.snapshot()["opened"] == len(tap.on(topic)) - 4  # every legitimate envelope, once
        assert drainer.taken == sent > 0  # nothing lost, nothing twice
        assert sink.stats().rejected.get("link") == 4
    finally:
        drainer.close()
        subscriber.stop()
        oracle_links.close()
        twin_links.close()
        tap.close()


def test_commands_and_answers_cross_the_controller_link(site: Site) -> None:
    controller_links = _links(site, CONTROLLER_SAE)
    twin_links = _links(site, twin_sae("water"))
    tap = Tap(site.mqtt_port)
    try:
        with open_twin(Sector.WATER) as runner, \
                TwinPublisher(runner, port=site.mqtt_port, speed=2000.0, links=twin_links,
                              decisions=lambda _c: "no decision in this test") as twin, \
                Commander(port=site.mqtt_port, links=controller_links) as commander:
            stop = threading.Event()
            thread = threading.Thread(target=twin.run, args=(stop,), daemon=True)
            thread.start()
            try:
                wait_until(lambda: controller_links.status()[link_id_for(twin_sae("water"), CONTROLLER_SAE)]["epoch"],
                           10, what="the controller's session")
                ack = commander.control(Sector.WATER, SimControl(op="clear-fault", target="no-such-pipe"),
                                        timeout_s=15)
            finally:
                stop.set()
                thread.join(10)
        assert not ack.ok and ack.what == "clear-fault  no-such-pipe" and ack.error, ack
        assert any(t == handshake_topic(link_id_for(twin_sae("water"), CONTROLLER_SAE)) for t, _ in tap.messages)
        assert not any(t.startswith("qeaims-") for t, _ in tap.messages)
    finally:
        controller_links.close()
        twin_links.close()
        tap.close()
