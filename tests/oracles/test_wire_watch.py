"""The city's wire watch (`oracles.wire_watch`, `qeaims up --wire-watch`): a sector's gateway on its twin's path.

A banking host runs the gateway in front of a real broker and two oracles. The twin connects through
it; the gateway learns the twin's profile from its first seconds, saves it, and from then on each
oracle's own monitor judges the traffic: the twin's declared acknowledgement topic is normal though
training never saw it, a publish outside the profile is recorded on-chain by each oracle under its
own key, sent by its node's loop. A restarted watch loads the saved profile instead of relearning.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bus.mqtt import EmbeddedBroker
from core.errors import ConfigError
from core.messages import Sector
from oracles.node import NodeOptions
from oracles.process import OracleProcessOptions, run_oracle_host
from oracles.training import save_model, train_sector
from oracles.wire_watch import SectorWireWatch, _Learning, profile_path, twin_interface
from qeaims.supervisor import plan, wire_ports
from sectors.publish import TwinPublisher
from sectors.remote import ack_topic
from sectors.runner import open_twin
from tests.conftest import free_port, run_cli
from tests.oracles.test_oracle_node import ledger_events
from tests.support import oracle, wait_until

LEARN_S = 3.0


def _wire_events(chain) -> list[tuple[str, dict[str, object]]]:  # type: ignore[no-untyped-def]
    return [(o.lower(), p) for o, _, p in ledger_events(chain, "intrusion") if "wire" in p]


@pytest.mark.chain
def test_the_host_gateway_learns_the_twin_then_each_oracle_records_what_leaves_its_profile(
        fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain  # the intrusion events name 127.0.0.1: kept off the shared chain
    model_file = save_model(train_sector(Sector.BANKING, rows=240), tmp_path / "banking.joblib")
    broker, wire = free_port(), free_port()
    options = OracleProcessOptions(mqtt_port=broker, model=model_file, node=NodeOptions(batch_size=64, max_age_s=0.5),
                                   wire_port=wire, wire_learn_s=LEARN_S)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def host() -> None:
        try:
            run_oracle_host(chain.settings, Sector.BANKING, [1, 2], options, stop=stop, on_ready=ready.set)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    addresses = {oracle(chain.settings, "banking", i).address.lower() for i in (1, 2)}
    saved = profile_path(chain.settings.home, Sector.BANKING)
    with EmbeddedBroker(port=broker), open_twin(Sector.BANKING, seed=5) as twin:
        thread = threading.Thread(target=host)
        thread.start()
        try:
            wait_until(ready.is_set, 90, what="the host's oracles subscribed")
            with TwinPublisher(twin, port=wire) as publisher:  # through the gateway, as `qeaims up --wire-watch` does
                def publish_until(done) -> None:  # type: ignore[no-untyped-def]
                    while not done():
                        publisher.publish(twin.advance())
                        stop.wait(0.2)
                publish_until(saved.is_file)  # the learning window: the twin's own traffic
                publisher._client.publish(ack_topic(Sector.BANKING), b"{}", qos=1).wait_for_publish(5)  # declared
                for _ in range(5):
                    publisher.publish(twin.advance())
                publisher._client.publish("qeaims/banking/dc-primary/breaker", b"open", qos=1).wait_for_publish(5)
                wait_until(lambda: {o for o, _ in _wire_events(chain)} == addresses, 60,
                           what="both oracles' intrusion events on-chain", interval_s=0.3)
        finally:
            stop.set()
            thread.join(60)
    assert not thread.is_alive() and errors == []
    events = _wire_events(chain)
    assert len(events) == 2  # one detection each: the acknowledgement and the readings raised nothing
    for _, body in events:
        wire_body = body["wire"]
        assert isinstance(wire_body, dict) and wire_body["class"] == "unprofiled-function"
        assert "breaker" in str(wire_body["detail"]) and body["sector"] == "banking"
    profile = SectorWireWatch(chain.settings, Sector.BANKING, broker=("127.0.0.1", broker), listen_port=0)
    profile.start()  # a restarted host loads what was learnt; it never relearns from later traffic
    try:
        assert profile.profile is not None and profile._learning is None
        assert "twin-banking@twin-banking" in profile.profile.clients
        assert profile.profile.interfaces == (twin_interface(Sector.BANKING),)
    finally:
        profile.stop()


@pytest.mark.chain
def test_a_damaged_saved_profile_is_one_clear_error(chain) -> None:  # type: ignore[no-untyped-def]
    path = profile_path(chain.settings.home, Sector.SEWAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"version": 1, "protocol": "mqtt"')
    try:
        with pytest.raises(ConfigError, match="delete it to learn the profile again"):
            SectorWireWatch(chain.settings, Sector.SEWAGE, broker=("127.0.0.1", 1), listen_port=0).start()
    finally:
        path.unlink()


def test_the_plan_puts_each_twin_behind_its_sectors_gateway() -> None:
    sectors = [Sector.WATER, Sector.BANKING]
    components = {c.name: c.args for c in plan(sectors, oracles_per_sector=4, mqtt_port=1883, speed=15.0,
                                               wire_learn_field_s=3600.0)}
    ports = wire_ports(sectors, 1883)
    assert len(set(ports.values())) == 2 and 1883 not in ports.values()
    for sector in sectors:
        oracles, twin = components[f"oracles-{sector.value}"], components[f"twin-{sector.value}"]
        assert oracles[oracles.index("--wire-port") + 1] == str(ports[sector])
        assert oracles[oracles.index("--wire-learn-s") + 1] == "240"  # an hour of field time at 15x
        assert twin[twin.index("--mqtt-port") + 1] == str(ports[sector])
        assert components["controller"][components["controller"].index("--mqtt-port") + 1] == "1883"
    plain = {c.name: c.args for c in plan(sectors, oracles_per_sector=4, mqtt_port=1883, speed=15.0)}
    assert all("--wire-port" not in args for args in plain.values())
    with pytest.raises(ConfigError, match="no room for the gateways"):
        wire_ports(sectors, 65530)


def test_wire_options_that_cannot_work_are_one_error_line(tmp_path: Path) -> None:
    env = {"QEAIMS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    same = run_cli(["oracles", "--sector", "water", "--mqtt-port", "1883", "--wire-port", "1883"], env)
    assert same.returncode != 0 and same.stderr.strip().splitlines()[-1].startswith("error:")
    assert "broker's port" in same.stderr and "Traceback" not in same.stderr
    high = run_cli(["--port", str(free_port()), "up", "--wire-watch", "--mqtt-port", "65530"], env)
    assert high.returncode != 0 and "no room for the gateways" in high.stderr and "Traceback" not in high.stderr
    assert not (tmp_path / "home" / "run").exists()  # said before anything started


def test_a_stranger_during_the_learning_window_is_not_learnt(tmp_path: Path) -> None:
    """Review s35, finding 4: whoever connected while the gateway learnt was written into the profile, command
    topic and all. Only the twin's own traffic is learnt now; anyone else stays unknown."""
    from datetime import UTC, datetime, timedelta

    from core.config import load_settings
    from gateway import Observation, Source
    from gateway.mqtt_frames import parse_packet
    from gateway.observation import frame_hash
    from sectors.remote import cmd_topic
    from tests.gateway.support import mqtt_publish

    watch = SectorWireWatch(load_settings(home=tmp_path / "home"), Sector.WATER, broker=("127.0.0.1", 1),
                            listen_port=0, learn_s=3.0)
    watch._learning = _Learning()  # what `start` does when no profile is saved

    def seen(client: str, topic: str, at: float) -> Observation:
        raw = mqtt_publish(topic, b"{}", int(at * 10) + 1)
        return Observation(kind="frame", protocol="mqtt", sector="water", device="broker-water",
                           source=Source("127.0.0.1", client_id=client, username=client), connection=1 if client ==
                           "twin-water" else 2, wall=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=at), mono=at,
                           direction="request", frame=parse_packet(raw), digest=frame_hash(raw))

    twin_topic = twin_interface(Sector.WATER).publish[0]
    for k in range(8):
        watch.observe(seen("twin-water", twin_topic, k * 0.5))
        if k == 2:
            watch.observe(seen("mallory", cmd_topic(Sector.WATER), 1.1))
    assert watch.profile is not None and profile_path(watch.settings.home, Sector.WATER).is_file()
    assert set(watch.profile.clients) == {"twin-water@twin-water"}
    assert not watch.profile.knows("mallory@mallory")
