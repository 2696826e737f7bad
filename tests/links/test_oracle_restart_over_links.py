"""An oracle killed with readings opened but not stored gets them again, through hybrid links.

The whole path of the crash campaign's oracle kill, with a real Mosquitto (it redelivers what was
not acknowledged to a persistent session), a real KME and a real twin: the oracle opens the twin's
envelopes and holds the readings in memory, dies before storing them, and its restart must take
the broker's redelivery instead of refusing it as a replay (`bus.secure.LinkReader`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mosquitto import mosquitto_executable
from bus.mqtt import wire_sensor
from core.messages import Sector
from links.plan import CONTROLLER_SAE, link_id_for, twin_sae
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from tests.links.linked_city import (
    linked_city,
    publish_periods_held,
    restart_oracle_and_collect,
    sae_links,
    start_oracle,
)
from tests.support import wait_until

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")

@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    with linked_city(tmp_path) as site:
        yield site


def test_readings_opened_but_not_stored_come_again_after_the_oracle_restarts(city: tuple[Path, int]) -> None:
    home, port = city
    held = ReadingSink()  # the dying oracle never stores (so never acknowledges) what it opens
    links, oracle = start_oracle(home, port, held)
    try:
        sent = publish_periods_held(home, port, held)
        links, oracle, got = restart_oracle_and_collect(home, port, links, oracle, len(sent))  # killed
        assert sorted(got) == sorted((r.asset_id, r.timestamp) for r in sent)
        assert oracle.sink.stats().rejected == {}  # nothing refused as a replay
    finally:
        oracle.stop()
        links.close()


def test_every_link_envelope_goes_at_qos_1_and_a_lagging_reader_loses_nothing(city: tuple[Path, int]) -> None:
    """A link's envelopes share one counter. Mosquitto sends a QoS 0 message at once but queues QoS 1
    ones behind a client's in-flight window (100), so a service level sent at QoS 0 down the
    controller's link passed the readings queued for a controller that lagged; past the replay window
    those would be refused (review s40b). Every envelope now goes at QoS 1, and the lagging reader
    gets every reading."""
    home, port = city
    tap = paho.Client(CallbackAPIVersion.VERSION2, client_id="tap", clean_session=True)
    qos: dict[int, int] = {}
    tap.on_message = lambda _c, _u, m: qos.__setitem__(m.qos, qos.get(m.qos, 0) + 1)
    tap.on_connect = lambda c, *_: c.subscribe(f"qlink/{link_id_for(twin_sae('banking'), CONTROLLER_SAE)}/+", 1)
    tap.connect("127.0.0.1", port)
    tap.loop_start()
    sink = ReadingSink()  # not drained yet: the controller lags, its in-flight window fills
    links = sae_links(home, CONTROLLER_SAE)
    reader = MqttSubscriber(sink, port=port, sectors=[Sector.BANKING], client_id=CONTROLLER_SAE, links=links).start()
    twin_links = sae_links(home, twin_sae("banking"))
    try:
        with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, links=twin_links) as twin:
            sent: list[object] = []
            for _ in range(150):
                readings = runner.advance()
                twin.publish(readings)
                twin.publish_service()
                sent.extend((r.asset_id, wire_sensor(r), r.timestamp) for r in readings)
            got: list[object] = []

            def arrived() -> bool:
                got.extend((r.asset_id, r.sensor_id, r.timestamp) for r in sink.drain())
                return len(got) >= len(sent)

            wait_until(arrived, 20, what="every reading to reach the lagging controller")
            wait_until(lambda: sum(qos.values()) >= 300, 10, what="the tap to see every envelope")
        assert sink.stats().rejected == {}
        assert sorted(got) == sorted(sent)  # type: ignore[type-var]
        assert set(qos) == {1}, f"envelopes by QoS: {qos}"
    finally:
        tap.disconnect()
        tap.loop_stop()
        reader.stop()
        links.close()
        twin_links.close()
