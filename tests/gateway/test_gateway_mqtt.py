"""The gateway in front of a real Mosquitto that checks passwords, with real paho clients and raw MQTT bytes.

The broker is the city's (`bus.mosquitto.MosquittoBroker`) with anonymous access off and a password
file written by `mosquitto_passwd -b`, as a site runs it, so failed authentications are the
broker's own CONNACK refusals seen on the wire. The water sector's normal traffic (a pump-station
gateway publishing batches, an oracle subscribing, a SCADA sending pump commands) is learnt once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from gateway import Gateway, Monitor, ObservationLog, Policy, Profile, Source
from gateway.mqtt_frames import PUBLISH, MqttPacket, is_refusal, parse_packet
from tests.conftest import free_port
from tests.gateway.support import Clock, Sink, mqtt_publish, raw_mqtt, recv_exactly

pytestmark = [pytest.mark.city,
              pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")]

DEVICE = "broker-water"
BATCH, COMMAND = "qeaims/water/_batch/pump-gw-1", "qeaims/water/_cmd/pump-station-1"
USERS = {"pumpgw": "pw-pump", "oracle": "pw-oracle", "scada": "pw-scada"}
PUMPGW, SCADA, ORACLE, ATTACKER = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.50"


class PasswordBroker(MosquittoBroker):
    """The city's Mosquitto with passwords required (the password file made by mosquitto_passwd)."""

    def __init__(self, *, password_file: Path, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.password_file = password_file

    def config(self) -> str:
        return super().config().replace("allow_anonymous true",
                                        f"allow_anonymous false\npassword_file {self.password_file}")


def paho_client(port: int, ip: str, client_id: str, user: str, password: str,
                protocol: int = paho.MQTTv311) -> tuple[paho.Client, int]:
    """A connected paho client (3.1.1 unless told) from `ip`, and the CONNACK's reason code value."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)  # type: ignore[arg-type]
    c.username_pw_set(user, password)
    codes: list[int] = []
    done = threading.Event()

    def on_connect(_c: paho.Client, _u: object, _f: object, rc: object, _p: object = None) -> None:
        codes.append(int(getattr(rc, "value", rc)))  # type: ignore[call-overload]
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port, keepalive=30, bind_address=ip)
    c.loop_start()
    done.wait(5)
    return c, codes[0] if codes else -1


def close(c: paho.Client) -> None:
    c.disconnect()
    c.loop_stop()


class Normal:
    """The water sector's traffic through the gateway: batches every 50 ms, a pump command every 250 ms."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stop = threading.Event()
        self.sent = 0

    def __enter__(self) -> Normal:  # noqa: PYI034 - a context manager used only here
        self.oracle, rc = paho_client(self.port, ORACLE, "oracle-water-1", "oracle", USERS["oracle"])
        assert rc == 0
        self.oracle.subscribe("qeaims/water/+/+", qos=1)
        self.gw, rc = paho_client(self.port, PUMPGW, "pump-gw-1", "pumpgw", USERS["pumpgw"])
        assert rc == 0
        self.scada, rc = paho_client(self.port, SCADA, "scada-1", "scada", USERS["scada"])
        assert rc == 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            self.gw.publish(BATCH, b'[{"asset":"pump-station-1","sensor":"flow","value":12.5}]', qos=1)
            if n % 5 == 0:
                self.scada.publish(COMMAND, b'{"speed_rpm":1480}', qos=1)
            n += 1
            self.sent += 1
            self._stop.wait(0.05)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in (self.gw, self.scada, self.oracle):
            close(c)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Profile]]:
    home = tmp_path_factory.mktemp("mqtt-gateway")
    passwords = home / "passwords"
    for i, (user, password) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(passwords), user, password],
                       check=True, capture_output=True, timeout=30)
    passwords.chmod(0o600)
    broker = PasswordBroker(port=free_port(), data_dir=home / "broker", password_file=passwords).start()
    log = ObservationLog()
    gw = Gateway("127.0.0.1", broker.port, protocol="mqtt", sector="water", device=DEVICE, monitor=log).start()
    try:
        with Normal(gw.port):
            time.sleep(3.0)
        yield gw, Profile.learn(log.snapshot(), window_s=0.5)
    finally:
        gw.stop()
        broker.stop()


@pytest.fixture
def armed(city: tuple[Gateway, Profile]) -> Iterator[tuple[Gateway, Sink, Clock]]:
    gw, profile = city
    sink, clock = Sink(), Clock()
    gw.monitor = Monitor([profile], on_detection=sink)
    gw.policy = Policy(now=clock)
    yield gw, sink, clock


def test_the_learnt_profile(city: tuple[Gateway, Profile]) -> None:
    _, profile = city
    assert set(profile.clients) == {"pump-gw-1@pumpgw", "scada-1@scada", "oracle-water-1@oracle"}
    assert profile.clients["pump-gw-1@pumpgw"].publish == (BATCH,)
    assert profile.clients["scada-1@scada"].publish == (COMMAND,)
    assert profile.clients["oracle-water-1@oracle"].subscribe == ("qeaims/water/+/+",)


def test_normal_traffic_raises_nothing(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    with Normal(gw.port) as normal:
        time.sleep(4.0)
    assert normal.sent > 40 and sink.found == []


def test_a_burst_of_failed_authentications(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    codes = []
    for i in range(6):  # guessing the SCADA's password
        s, connack = raw_mqtt(gw.port, ATTACKER, "scada-1", "scada", f"guess-{i}")
        codes.append(parse_packet(connack).return_code)
        s.close()
    assert codes == [5] * 6  # Mosquitto: not authorised
    d = sink.wait_for("auth-burst")
    assert d.source == Source(ATTACKER) and dict(d.counts)["refused"] == 5
    assert len(d.evidence) == 1  # five identical CONNECTs once the passwords are left out of the hashes


def test_a_burst_of_connects(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    for i in range(25):  # stolen credentials, a new session each time
        s, _ = raw_mqtt(gw.port, ATTACKER, f"probe-{i}", "pumpgw", USERS["pumpgw"])
        s.close()
    d = sink.wait_for("auth-burst")
    assert dict(d.counts)["connects"] == 20
    u = sink.wait_for("unknown-client")  # a client id the broker's profile never saw
    assert u.source.client_id == "probe-0" and u.source.username == "pumpgw"


def test_a_publish_to_a_topic_outside_the_clients_profile(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    c, rc = paho_client(gw.port, PUMPGW, "pump-gw-1", "pumpgw", USERS["pumpgw"])
    assert rc == 0
    c.publish(COMMAND, b'{"speed_rpm":3000}', qos=1).wait_for_publish(5)  # the telemetry gateway commanding a pump
    close(c)
    d = sink.wait_for("unprofiled-function")
    assert d.source == Source(PUMPGW, "pump-gw-1", "pumpgw") and COMMAND in d.detail
    assert sink.classes() == ["unprofiled-function"]


def test_a_command_replayed_on_another_connection(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    command = mqtt_publish(COMMAND, b'{"speed_rpm":1490}', packet_id=7)
    first, connack = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
    assert connack == b"\x20\x02\x00\x00"
    first.sendall(command)
    assert recv_exactly(first, 4) == b"\x40\x02\x00\x07"  # PUBACK
    first.close()
    time.sleep(0.1)
    assert sink.found == []
    second, _ = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
    second.sendall(command)  # the same bytes again
    recv_exactly(second, 4)
    second.close()
    d = sink.wait_for("replay")
    assert d.source.client_id == "scada-1" and sink.classes() == ["replay"]


def test_a_denied_client_id_gets_not_authorised_from_the_gateway(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, _, clock = armed
    change = gw.policy.deny(Source("*", client_id="scada-1"), until=clock.now + timedelta(minutes=5))
    assert change.changed and change.target == "* client=scada-1"
    s, connack = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
    assert connack == b"\x20\x02\x00\x05"  # refused by the gateway, the broker never saw it
    assert recv_exactly(s, 1) == b""  # and closed
    s.close()
    c, rc = paho_client(gw.port, PUMPGW, "pump-gw-1", "pumpgw", USERS["pumpgw"])
    assert rc == 0  # another identity passes
    close(c)
    clock.advance(301)
    s, connack = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
    assert connack == b"\x20\x02\x00\x00"
    s.close()


def test_quarantine_and_safe_mode_close_a_command_but_pass_telemetry(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, _, _ = armed
    for on, off in ((lambda: gw.policy.quarantine(DEVICE), lambda: gw.policy.release(DEVICE)),
                    (lambda: gw.policy.safe_mode(True), lambda: gw.policy.safe_mode(False))):
        assert on().changed
        s, _ = raw_mqtt(gw.port, PUMPGW, "pump-gw-1", "pumpgw", USERS["pumpgw"])
        s.sendall(mqtt_publish(BATCH, b"[]", packet_id=1))
        assert recv_exactly(s, 4) == b"\x40\x02\x00\x01"  # telemetry passes
        s.close()
        s, _ = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
        s.sendall(mqtt_publish(COMMAND, b'{"speed_rpm":0}', packet_id=2))
        assert recv_exactly(s, 4) == b""  # the command: connection closed, no PUBACK
        s.close()
        assert off().changed
        s, _ = raw_mqtt(gw.port, SCADA, "scada-1", "scada", USERS["scada"])
        s.sendall(mqtt_publish(COMMAND, b'{"speed_rpm":1480}', packet_id=3))
        assert recv_exactly(s, 4) == b"\x40\x02\x00\x03"
        s.close()


def test_mqtt_5_through_the_gateway_and_its_refusals(armed: tuple[Gateway, Sink, Clock]) -> None:
    """MQTT 5 (properties in CONNECT, CONNACK, PUBLISH) parsed live; a bad password is a refusal."""
    gw, _, _ = armed
    log = ObservationLog()
    gw.monitor = log
    c, rc = paho_client(gw.port, PUMPGW, "pump-gw-1", "pumpgw", USERS["pumpgw"], protocol=paho.MQTTv5)
    assert rc == 0
    c.publish(BATCH, b"[]", qos=1).wait_for_publish(5)
    close(c)
    bad, rc = paho_client(gw.port, ATTACKER, "x-1", "pumpgw", "wrong", protocol=paho.MQTTv5)
    close(bad)
    assert rc == 0x87  # Mosquitto says "not authorised" (0x87) rather than "bad user name or password" (0x86)
    seen = log.snapshot()
    assert not any(o.kind == "malformed" for o in seen)
    frames = [o.frame for o in seen if o.kind == "frame" and isinstance(o.frame, MqttPacket)]
    assert any(f.type == PUBLISH and f.level == 5 and f.topic == BATCH for f in frames)
    assert any(is_refusal(f) and f.level == 5 for f in frames)
