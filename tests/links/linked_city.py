"""A banking site with hybrid links for tests: its link files, a real KME and (optionally) Mosquitto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bus.mosquitto import MosquittoBroker
from bus.secure import SecureLinks, open_links
from core.messages import Reading, Sector
from links.channel import RotationPolicy
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

ORACLE = oracle_sae("banking", 1)


@contextmanager
def linked_city(home: Path, *, broker: bool = True) -> Iterator[tuple[Path, int]]:
    """(home, MQTT port): one banking oracle's links planned, the KME up, Mosquitto too unless `broker`
    is False (a test that kills and restarts its own)."""
    kme_port, mqtt_port = free_port(), free_port()
    files = LinkFiles.of(home)
    plan = city_plan(["banking"], oracles_per_sector=1, kme_url=f"https://127.0.0.1:{kme_port}", operations=False)
    prepare(files, plan)
    with ExitStack() as stack:
        stack.enter_context(KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state))
        if broker:
            stack.enter_context(MosquittoBroker(port=mqtt_port, data_dir=home / "broker"))
        yield home, mqtt_port


def sae_links(home: Path, sae: str, policy: RotationPolicy | None = None) -> SecureLinks:
    links = open_links(home, sae, policy=policy)
    assert links is not None
    return links


def start_oracle(home: Path, port: int, sink: ReadingSink, *,
                 policy: RotationPolicy | None = None) -> tuple[SecureLinks, MqttSubscriber]:
    """The banking oracle's links and its subscriber, started (its persistent session resumed)."""
    links = sae_links(home, ORACLE, policy)
    return links, MqttSubscriber(sink, port=port, sectors=[Sector.BANKING], client_id=ORACLE, links=links).start()


def restart_oracle_and_collect(home: Path, port: int, links: SecureLinks, oracle: MqttSubscriber, count: int,
                               timeout_s: float = 15.0) -> tuple[SecureLinks, MqttSubscriber, list[tuple[str, object]]]:
    """The oracle dies (what it held in memory is gone, nothing acknowledged), starts again and stores
    what the broker gives it: its new links and subscriber, and (asset, time) of each reading stored,
    once `count` arrived or `timeout_s` passed."""
    oracle.stop()
    links.close()
    stored = ReadingSink()
    links, oracle = start_oracle(home, port, stored)
    got: list[tuple[str, object]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got.extend((r.asset_id, r.timestamp) for r in stored.drain())
        time.sleep(0.02)
    return links, oracle, got


def publish_periods_held(home: Path, port: int, held: ReadingSink, periods: int = 5) -> list[Reading]:
    """The banking twin publishes `periods` report periods through its links; returns them once the oracle
    whose sink is `held` has opened every batch (it stores nothing yet, so it acknowledges nothing)."""
    twin_links = sae_links(home, twin_sae("banking"))
    try:
        with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, links=twin_links) as twin:
            sent = [r for _ in range(periods) for r in runner.advance()]
            twin.publish(sent)
            wait_until(lambda: len(held) == len(sent), 15, what="the oracle to open every batch")
    finally:
        twin_links.close()
    return sent
