"""An oracle killed with readings opened but not stored gets them again, through hybrid links.

The whole path of the crash campaign's oracle kill, with a real Mosquitto (it redelivers what was
not acknowledged to a persistent session), a real KME and a real twin: the oracle opens the twin's
envelopes and holds the readings in memory, dies before storing them, and its restart must take
the broker's redelivery instead of refusing it as a replay (`bus.secure.LinkReader`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from bus.mqtt import wire_sensor
from bus.secure import SecureLinks, open_links
from core.messages import Sector
from links.files import LinkFiles
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import city_plan, oracle_sae, twin_sae
from links.site import prepare
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from tests.conftest import free_port
from tests.support import wait_until

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")

ORACLE = oracle_sae("banking", 1)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    kme_port, mqtt_port = free_port(), free_port()
    files = LinkFiles.of(tmp_path)
    plan = city_plan(["banking"], oracles_per_sector=1, kme_url=f"https://127.0.0.1:{kme_port}", operations=False)
    prepare(files, plan)
    with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state), \
            MosquittoBroker(port=mqtt_port, data_dir=tmp_path / "broker"):
        yield tmp_path, mqtt_port


def _links(home: Path, sae: str) -> SecureLinks:
    links = open_links(home, sae)
    assert links is not None
    return links


def _oracle(home: Path, port: int, sink: ReadingSink) -> tuple[SecureLinks, MqttSubscriber]:
    links = _links(home, ORACLE)
    return links, MqttSubscriber(sink, port=port, sectors=[Sector.BANKING], client_id=ORACLE, links=links).start()


def test_readings_opened_but_not_stored_come_again_after_the_oracle_restarts(city: tuple[Path, int]) -> None:
    home, port = city
    held = ReadingSink()  # the dying oracle never stores (so never acknowledges) what it opens
    links, oracle = _oracle(home, port, held)
    twin_links = _links(home, twin_sae("banking"))
    try:
        with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, links=twin_links) as twin:
            sent = [r for _ in range(5) for r in runner.advance()]
            twin.publish(sent)
            wait_until(lambda: len(held) == len(sent), 15, what="the oracle to open every batch")
            oracle.stop()  # killed: what it held in memory is gone, nothing was acknowledged
            links.close()
            stored = ReadingSink()
            links, oracle = _oracle(home, port, stored)
            got: list[tuple[str, object]] = []

            def arrived() -> bool:
                got.extend((r.asset_id, r.timestamp) for r in stored.drain())
                return len(got) >= len(sent)

            wait_until(arrived, 15, what="the broker's redelivery to be stored")
        assert sorted(got) == sorted((r.asset_id, r.timestamp) for r in sent)
        assert oracle.sink.stats().rejected == {}  # nothing refused as a replay
    finally:
        oracle.stop()
        links.close()
        twin_links.close()


def test_a_lagging_oracle_loses_nothing_to_a_service_level_that_overtakes_its_queue(city: tuple[Path, int]) -> None:
    """Mosquitto sends a QoS 0 message at once but queues QoS 1 ones behind a client's in-flight window
    (100). When the twin's service level went QoS 0 down the same link as its QoS 1 readings, it
    overtook the readings queued for an oracle that lagged, its higher counter moved the replay window,
    and the readings that came after it were refused as replays (and acknowledged away): the crash
    campaign's oracle kills lost hundreds of periods this way once a restarted oracle had a backlog."""
    home, port = city
    sink = ReadingSink()  # not drained yet: the oracle lags, its in-flight window fills
    links, oracle = _oracle(home, port, sink)
    twin_links = _links(home, twin_sae("banking"))
    try:
        with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, links=twin_links) as twin:
            sent: list[object] = []
            for _ in range(150):
                readings = runner.advance()
                twin.publish(readings)
                sent.extend((r.asset_id, wire_sensor(r), r.timestamp) for r in readings)
            twin.publish_service()  # the service level after the 150th period
            got: list[object] = []

            def arrived() -> bool:
                got.extend((r.asset_id, r.sensor_id, r.timestamp) for r in sink.drain())
                return len(got) >= len(sent)

            try:
                wait_until(arrived, 15, what="every reading to reach the lagging oracle")
            finally:
                refused = sink.stats().rejected
        assert not refused, f"refused: {refused}"
        assert sorted(got) == sorted(sent)  # type: ignore[type-var]
    finally:
        oracle.stop()
        links.close()
        twin_links.close()
