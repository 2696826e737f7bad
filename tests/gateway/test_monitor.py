"""The monitor, policy and detection payload on synthetic observations: the edges the live tests cannot aim at."""

from __future__ import annotations

import json
import struct
import threading
from datetime import UTC, datetime, timedelta

import pytest

from gateway import Detection, GatewayError, Monitor, Observation, Policy, Profile, Source
from gateway.detection import MAX_PAYLOAD
from gateway.modbus_frames import ModbusFrame, parse_adu
from gateway.mqtt_frames import CONNECT, parse_packet, without_secret
from gateway.observation import frame_hash

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def request(tid: int, pdu: str, *, source: str = "10.0.0.2", conn: int = 1, at: float = 0.0) -> Observation:
    body = bytes.fromhex(pdu)
    raw = struct.pack(">HHHB", tid, 0, len(body) + 1, 1) + body
    frame = parse_adu(raw, "request")
    return Observation(kind="frame", protocol="modbus", sector="water", device="pump", source=Source(source),
                       connection=conn, wall=T0 + timedelta(seconds=at), mono=at, direction="request", frame=frame,
                       digest=frame_hash(raw), write=frame.is_write)


def response(tid: int, pdu: str, *, source: str = "10.0.0.2", conn: int = 1, at: float = 0.0) -> Observation:
    body = bytes.fromhex(pdu)
    raw = struct.pack(">HHHB", tid, 0, len(body) + 1, 1) + body
    return Observation(kind="frame", protocol="modbus", sector="water", device="pump", source=Source(source),
                       connection=conn, wall=T0 + timedelta(seconds=at), mono=at, direction="response",
                       frame=parse_adu(raw, "response"), digest=frame_hash(raw))


def trained(*extra: Observation) -> Profile:
    """A poller (10.0.0.2) reading holding 0+3 ten times a second and a SCADA (10.0.0.3) writing holding 0."""
    obs = []
    for i in range(100):
        obs.append(request(i + 1, "0300000003", at=i * 0.1))
        obs.append(response(i + 1, "0306000000000000", at=i * 0.1 + 0.01))
        if i % 10 == 0:
            obs.append(request(i + 1, "060000 05DC".replace(" ", ""), source="10.0.0.3", conn=2, at=i * 0.1))
    return Profile.learn([*obs, *extra], window_s=1.0)


def test_transaction_ids_wrapping_are_not_out_of_order() -> None:
    found: list[Detection] = []
    m = Monitor([trained()], on_detection=found.append)
    for k, tid in enumerate((0xFFFE, 0xFFFF, 0x0000, 0x0001)):
        m.observe(request(tid, "06000005DC", source="10.0.0.3", conn=9, at=20 + k))
    assert found == []
    m.observe(request(0xFFF0, "06000005DC", source="10.0.0.3", conn=9, at=30))  # behind by 17: a replay
    assert [d.attack for d in found] == ["replay"]


def test_one_attack_gives_one_detection_within_the_hold_off() -> None:
    found: list[Detection] = []
    m = Monitor([trained()], on_detection=found.append)
    for k in range(50):
        m.observe(request(k + 1, "0600010000", source="10.0.0.99", conn=5, at=20 + k * 0.01))
    assert [d.attack for d in found] == ["unknown-client"] and m.suppressed == 49
    assert found[0].first_seen_mono == 20  # the first malicious packet
    m.observe(request(99, "0600010000", source="10.0.0.99", conn=6, at=20 + 61))  # after the hold-off: again
    assert [d.attack for d in found] == ["unknown-client", "unknown-client"]


def test_a_client_that_repeats_writes_across_connections_is_not_a_replay() -> None:
    repeats = [request(1, "06000005DC", source="10.0.0.4", conn=c, at=c * 0.5) for c in range(10, 14)]
    profile = trained(*repeats)
    assert profile.clients["10.0.0.4"].repeats_writes and not profile.clients["10.0.0.3"].repeats_writes
    found: list[Detection] = []
    m = Monitor([profile], on_detection=found.append)
    for c in range(20, 23):
        m.observe(request(1, "06000005DC", source="10.0.0.4", conn=c, at=30 + c))
    assert found == []
    m.observe(request(1, "06000005DC", source="10.0.0.3", conn=30, at=60))  # the SCADA never did: replay
    m.observe(request(1, "06000005DC", source="10.0.0.3", conn=31, at=61))
    assert [d.attack for d in found] == ["replay"]


def test_detections_go_to_the_queue_without_a_callback() -> None:
    m = Monitor([trained()])
    m.observe(request(1, "0600010000", source="10.0.0.99", at=20))
    (d,) = m.drain()
    assert d.attack == "unknown-client" and m.drain() == []


def test_the_payload_is_canonical_and_bounded_whatever_the_attacker_sends() -> None:
    huge = Source("10.0.0.9", client_id="x" * 60_000, username="u" * 60_000)
    d = Detection(attack="register-scan", protocol="mqtt", sector="water", device="pump", source=huge,
                  first_seen_wall=T0, first_seen_mono=1.0, detected_wall=T0, detected_mono=1.5,
                  evidence=tuple(frame_hash(bytes([i % 256, i // 256])) for i in range(500)),
                  counts=(("frames", 500),), detail="d" * 10_000)
    data = d.payload()
    body = json.loads(data)
    assert len(data) <= MAX_PAYLOAD and body["evidence"]["omitted"] > 0
    assert len(body["evidence"]["sha256"]) + body["evidence"]["omitted"] == 500
    assert data == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()  # canonical
    assert body["first_seen"] == "2026-12-06T06:00:00.000Z" and len(body["source"]["client_id"]) == 128


def test_a_connects_evidence_hash_leaves_the_password_out() -> None:
    def connect(password: bytes) -> bytes:
        body = b"\x00\x04MQTT\x04\xc2\x00\x3c" + b"\x00\x01c" + b"\x00\x01u" + struct.pack(">H", len(password)) + password
        return bytes([CONNECT << 4, len(body)]) + body

    a, b = connect(b"secret"), connect(b"guess")
    pa, pb = parse_packet(a), parse_packet(b)
    assert without_secret(pa, a) == without_secret(pb, b) and b"secret" not in without_secret(pa, a)


def test_policy_changes_say_what_changed_and_entries_expire() -> None:
    now = [T0]
    policy = Policy(now=lambda: now[0])
    first = policy.deny("10.0.0.9", T0 + timedelta(seconds=60))
    again = policy.deny("10.0.0.9", T0 + timedelta(seconds=120))
    assert first.changed and again.before == first.after and again.changed
    assert policy.denied(Source("10.0.0.9", "any-client")) == Source("10.0.0.9")
    assert policy.denied(Source("10.0.0.8")) is None
    assert not policy.release("pump").changed and policy.quarantine("pump").changed
    assert policy.refuses_writes("pump", "modbus:pump") == "quarantine"
    assert policy.refuses_writes("other", "modbus:other") is None
    assert policy.safe_mode(True, "modbus:other").changed
    assert policy.refuses_writes("other", "modbus:other") == "safe-mode"
    assert policy.refuses_writes("third", "mqtt:third") is None  # safe mode is per gateway
    now[0] = T0 + timedelta(seconds=120)  # in force while now < until
    assert policy.denied(Source("10.0.0.9")) is None and not policy.lift("10.0.0.9").changed
    with pytest.raises(GatewayError, match="no time zone"):
        policy.deny("10.0.0.9", datetime(2027, 1, 1))  # naive: refused, and nothing changed
    assert policy.deny_entries() == {}


def test_policy_is_safe_under_threads() -> None:
    policy = Policy()
    until = datetime.now(UTC) + timedelta(hours=1)

    def hammer(k: int) -> None:
        for i in range(500):
            policy.deny(f"10.{k}.0.{i % 50}", until)
            policy.denied(Source(f"10.{k}.0.{i % 7}"))
            if i % 3 == 0:
                policy.lift(f"10.{k}.0.{i % 50}")

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(entry.address.startswith("10.") for entry in policy.deny_entries())


def test_frames_in_observations_are_parsed_not_raw() -> None:
    obs = request(1, "0300000003")
    assert isinstance(obs.frame, ModbusFrame) and obs.digest is not None and len(obs.digest) == 64


def test_a_spray_of_sources_does_not_grow_the_monitor_without_bound() -> None:
    m = Monitor([trained()], on_detection=lambda d: None)
    for k in range(20_000):  # one probe each from 20,000 addresses, a second apart
        m.observe(request(k % 65_536, "0300000003", source=f"10.{k // 65_536}.{k // 256 % 256}.{k % 256}", conn=k,
                          at=100.0 + k))
    assert len(m._windows) < 5_000 and len(m._last) < 5_000


def test_a_tee_feeds_a_log_and_a_monitor_and_a_profile_can_be_replaced() -> None:
    from gateway import ObservationLog, Tee
    found: list[Detection] = []
    m, log = Monitor([], on_detection=found.append), ObservationLog()
    tee = Tee(log, m)
    tee.observe(request(1, "0600010000", source="10.0.0.99", at=20))
    assert len(log) == 1 and found == []  # no profile for the device: no profile-based class
    m.set_profile(trained())
    tee.observe(request(2, "0600010000", source="10.0.0.99", at=21))
    assert [d.attack for d in found] == ["unknown-client"]


def _mqtt(packet: bytes, *, client: str = "twin-water", at: float = 0.0) -> Observation:
    return Observation(kind="frame", protocol="mqtt", sector="water", device="broker-water",
                       source=Source("127.0.0.1", client_id=client, username=client), connection=1,
                       wall=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=at), mono=at, direction="request",
                       frame=parse_packet(packet), digest=frame_hash(packet))


def test_a_declared_interface_allows_its_topics_and_nothing_else() -> None:
    """A twin's acknowledgement or service notice never came in training (no command, no service change); its
    declared interface allows exactly those topics, for that client only, and no wildcard widens it."""
    from gateway import Interface
    from tests.gateway.support import mqtt_publish

    learnt = Profile.learn([_mqtt(mqtt_publish("qeaims/water/_batch/twin-water", b"{}", k + 1), at=k) for k in range(20)],
                           window_s=5.0)
    twin = "twin-water@twin-water"
    found: list[Detection] = []
    bare = Monitor([learnt], on_detection=found.append)
    bare.observe(_mqtt(mqtt_publish("qeaims/water/_ack", b"{}", 30), at=30))
    assert [d.attack for d in found] == ["unprofiled-function"]  # learnt alone, the first acknowledgement alarms

    declared = learnt.with_interfaces(Interface(client=twin, publish=("qeaims/water/_ack", "qeaims/water/_svc")))
    found.clear()
    m = Monitor([declared], on_detection=found.append)
    m.observe(_mqtt(mqtt_publish("qeaims/water/_ack", b"{}", 31), at=31))
    m.observe(_mqtt(mqtt_publish("qeaims/water/_svc", b"{}", 32), at=32))
    assert found == []
    m.observe(_mqtt(mqtt_publish("qeaims/water/_ack/extra", b"{}", 33), at=33))  # not a declared topic
    m.observe(_mqtt(mqtt_publish("qeaims/water/_ack", b"{}", 34), client="other", at=34))  # not the declared client
    assert [d.attack for d in found] == ["unprofiled-function", "unknown-client"]
    assert declared.knows(twin) and not declared.knows("other@other")
    assert Profile.model_validate_json(declared.model_dump_json()) == declared  # saved and loaded with the profile
    with pytest.raises(ValueError):
        Interface(client="")
