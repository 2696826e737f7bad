"""The frame parsers on the specs' own examples, on streams cut anywhere, and on garbage (FrameError only)."""

from __future__ import annotations

import random
import struct

import pytest

from gateway.errors import FrameError
from gateway.modbus_frames import ModbusStream, exception_response, parse_adu
from gateway.mqtt_frames import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    PUBLISH,
    SUBSCRIBE,
    MqttStream,
    _varint,
    connack_refused,
    is_refusal,
    parse_packet,
)

pytestmark = pytest.mark.unit


def adu(tid: int, unit: int, pdu_hex: str) -> bytes:
    pdu = bytes.fromhex(pdu_hex)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


# --- Modbus: the PDU examples of the Modbus Application Protocol Specification V1.1b3 (section 6) ---

@pytest.mark.parametrize(("pdu", "direction", "expected"), [
    ("01 0013 0013", "request", {"function": 1, "address": 0x13, "quantity": 19}),              # 6.1 read coils
    ("01 03 CD6B05", "response", {"function": 1, "byte_count": 3}),
    ("03 006B 0003", "request", {"function": 3, "address": 107, "quantity": 3}),               # 6.3
    ("03 06 022B00000064", "response", {"function": 3, "byte_count": 6}),
    ("04 0008 0001", "request", {"function": 4, "address": 8, "quantity": 1}),                 # 6.4
    ("05 00AC FF00", "request", {"function": 5, "address": 172, "value": 0xFF00}),             # 6.5
    ("06 0001 0003", "request", {"function": 6, "address": 1, "value": 3}),                    # 6.6
    ("06 0001 0003", "response", {"function": 6, "address": 1, "value": 3}),
    ("0F 0013 000A 02 CD01", "request", {"function": 15, "address": 19, "quantity": 10}),      # 6.11
    ("10 0001 0002 04 000A0102", "request", {"function": 16, "address": 1, "quantity": 2}),    # 6.12
    ("10 0001 0002", "response", {"function": 16, "address": 1, "quantity": 2}),
    ("17 0003 0006 000E 0003 06 00FF00FF00FF", "request",                                       # 6.17
     {"function": 23, "read_address": 3, "read_quantity": 6, "address": 14, "quantity": 3}),
    ("17 0C 00FE0ACD00010003000D00FF", "response", {"function": 23, "byte_count": 12}),
    ("11", "request", {"function": 17}),                                                       # 6.13
    ("2B 0E 01 00", "request", {"function": 43, "mei_type": 14, "value": 1, "address": 0}),   # 6.21
    ("2B 0E 01 01 00 00 03 00 04 41424344 01 02 5859 02 03 312E30", "response", {"function": 43, "mei_type": 14}),
    ("81 02", "response", {"function": 1, "exception": 2}),                                    # 7, exception
])
def test_modbus_pdus_from_the_spec(pdu: str, direction: str, expected: dict[str, int]) -> None:
    frame = parse_adu(adu(7, 1, pdu.replace(" ", "")), direction)  # type: ignore[arg-type]
    assert frame.transaction_id == 7 and frame.unit_id == 1
    for name, value in expected.items():
        assert getattr(frame, name) == value, name


def test_write_and_identity_are_classified() -> None:
    assert parse_adu(adu(1, 1, "060001 0003".replace(" ", "")), "request").is_write
    mask = parse_adu(adu(1, 1, "16 0004 00F2 0025".replace(" ", "")), "request")  # 6.16 mask write register
    assert mask.is_write and mask.address == 4
    assert parse_adu(adu(1, 1, "08 0001 0000".replace(" ", "")), "request").is_write  # diagnostics: restart comms
    assert parse_adu(adu(1, 1, "41 0000"), "request").is_write  # a code nobody knows is not assumed harmless
    assert not parse_adu(adu(1, 1, "03006B0003"), "request").is_write
    assert parse_adu(adu(1, 1, "2B0E0100"), "request").is_identity
    assert parse_adu(adu(1, 1, "11"), "request").is_identity


@pytest.mark.parametrize("bad", [
    adu(1, 1, "03006B")[:-1] + b"",                     # MBAP length says more than there is
    struct.pack(">HHHB", 1, 5, 2, 1) + b"\x03",           # protocol id 5
    adu(1, 1, "030000 0000".replace(" ", "")),          # quantity 0
    adu(1, 1, "03 0000 007E".replace(" ", "")),         # quantity 126 > 125
    adu(1, 1, "10 0001 0002 03 000A01".replace(" ", "")),  # byte count does not fit the quantity
    adu(1, 1, "06 0001"),                               # single write cut short
    adu(1, 1, "00"),                                     # function 0
])
def test_malformed_adus_raise_frame_error(bad: bytes) -> None:
    with pytest.raises(FrameError):
        parse_adu(bad, "request")


def test_the_stream_splits_several_adus_and_joins_one_cut_anywhere() -> None:
    wire = adu(1, 1, "03000000 03".replace(" ", "")) + adu(2, 1, "0400000007") + adu(3, 1, "0600000005")
    for cut in range(1, len(wire)):
        stream = ModbusStream("request")
        got = stream.feed(wire[:cut]) + stream.feed(wire[cut:])
        assert [f.transaction_id for f, _ in got] == [1, 2, 3]
        assert b"".join(raw for _, raw in got) == wire and stream.pending == 0
    stream = ModbusStream("request")
    assert [f.function for f, _ in stream.feed(wire)] == [3, 4, 6]  # three in one segment
    for byte in wire:  # one byte a segment
        out = stream.feed(bytes([byte]))
        assert len(out) <= 1


def test_the_gateways_exception_answer_is_a_modbus_exception() -> None:
    request = parse_adu(adu(0x1234, 1, "0600010003"), "request")
    answer = parse_adu(exception_response(request, 1), "response")
    assert (answer.transaction_id, answer.unit_id, answer.function, answer.exception) == (0x1234, 1, 6, 1)


# --- MQTT: fixed header, Remaining Length (3.1.1 section 2.2.3 table 2.4) and the control packets ---

@pytest.mark.parametrize(("encoded", "value"), [
    ("00", 0), ("7F", 127), ("8001", 128), ("FF7F", 16_383), ("808001", 16_384), ("FFFF7F", 2_097_151),
    ("80808001", 2_097_152), ("FFFFFF7F", 268_435_455)])
def test_remaining_length_boundaries_from_the_spec(encoded: str, value: int) -> None:
    assert _varint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


def test_a_packet_whose_remaining_length_takes_two_bytes() -> None:
    body = s("qeaims/water/pump-station-1/flow") + b"x" * 200
    raw = bytes([PUBLISH << 4, len(body) & 0x7F | 0x80, len(body) >> 7]) + body
    stream = MqttStream()
    assert stream.feed(raw[:2]) == [] and stream.pending == 2  # the header is not complete yet
    (p, got), = stream.feed(raw[2:])
    assert got == raw and p.payload_len == 200 and p.length == len(raw)


def test_remaining_length_of_five_bytes_is_refused() -> None:
    with pytest.raises(FrameError):
        MqttStream().feed(bytes.fromhex("30FFFFFFFF01"))


def s(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def packet(first: int, body: bytes) -> bytes:
    assert len(body) < 128
    return bytes([first, len(body)]) + body


def test_connect_311_with_username_and_password() -> None:
    body = s("MQTT") + bytes([4, 0b11000010]) + struct.pack(">H", 60) + s("pump-scada") + s("scada") + s("secret")
    p = parse_packet(packet(CONNECT << 4, body))
    assert (p.type, p.level, p.client_id, p.username, p.clean_start, p.keep_alive) == \
        (CONNECT, 4, "pump-scada", "scada", True, 60)
    assert "secret" not in repr(p)  # the password is never kept


def test_connect_5_with_properties_and_a_will() -> None:
    props = bytes([5, 0x11, 0, 0, 0, 30])  # session expiry interval 30
    will = bytes([0]) + s("qeaims/last-will") + s("gone")
    body = s("MQTT") + bytes([5, 0b10000110]) + struct.pack(">H", 10) + props + s("oracle-1") + will + s("oracle")
    stream = MqttStream()
    (p, _), = stream.feed(packet(CONNECT << 4, body))
    assert (p.level, p.client_id, p.username) == (5, "oracle-1", "oracle") and stream.level == 5


def test_connack_return_codes_and_refusals() -> None:
    assert parse_packet(bytes([CONNACK << 4, 2, 1, 0])).session_present
    refused = parse_packet(bytes([CONNACK << 4, 2, 0, 5]))
    assert refused.return_code == 5 and is_refusal(refused)
    assert not is_refusal(parse_packet(bytes([CONNACK << 4, 2, 0, 3])))  # server unavailable: not about auth
    v5 = parse_packet(bytes([CONNACK << 4, 3, 0, 0x86, 0]), level=5)
    assert v5.return_code == 0x86 and is_refusal(v5)
    assert is_refusal(parse_packet(connack_refused(4))) and is_refusal(parse_packet(connack_refused(5), level=5))


def test_publish_qos_topic_and_packet_id() -> None:
    p = parse_packet(packet(PUBLISH << 4 | 0b1011, s("qeaims/water/_cmd/pump") + b"\x00\x2a" + b"{}"))
    assert (p.topic, p.qos, p.retain, p.dup, p.packet_id, p.payload_len) == ("qeaims/water/_cmd/pump", 1, True, True,
                                                                              42, 2)
    q0 = parse_packet(packet(PUBLISH << 4, s("a/b") + b"xyz"))
    assert q0.packet_id is None and q0.payload_len == 3
    v5 = parse_packet(packet(PUBLISH << 4 | 2, s("a") + b"\x00\x01" + bytes([3, 1, 1, 0]) + b"p"), level=5)
    assert v5.packet_id == 1 and v5.payload_len == 1
    with pytest.raises(FrameError):
        parse_packet(packet(PUBLISH << 4 | 0b0110, s("a")))  # QoS 3


def test_subscribe_disconnect_and_fixed_flags() -> None:
    p = parse_packet(packet(SUBSCRIBE << 4 | 2, b"\x00\x05" + s("qeaims/water/+/+") + b"\x01" + s("x/#") + b"\x00"))
    assert p.packet_id == 5 and p.topics == ("qeaims/water/+/+", "x/#")
    with pytest.raises(FrameError):
        parse_packet(packet(SUBSCRIBE << 4, b"\x00\x05" + s("a") + b"\x00"))  # flags must be 0010
    assert parse_packet(bytes([DISCONNECT << 4, 0])).type == DISCONNECT
    assert parse_packet(bytes([DISCONNECT << 4, 1, 0x8E]), level=5).return_code == 0x8E
    with pytest.raises(FrameError):
        parse_packet(bytes([DISCONNECT << 4, 1, 0]))  # 3.1.1 DISCONNECT has no body


def test_mqtt_stream_cut_anywhere() -> None:
    connect = packet(CONNECT << 4, s("MQTT") + bytes([4, 2]) + b"\x00\x3c" + s("c1"))
    wire = connect + packet(PUBLISH << 4 | 2, s("t/1") + b"\x00\x01" + b"v") + bytes([0xC0, 0]) + bytes([0xE0, 0])
    for cut in range(1, len(wire)):
        stream = MqttStream()
        got = stream.feed(wire[:cut]) + stream.feed(wire[cut:])
        assert [p.name for p, _ in got] == ["CONNECT", "PUBLISH", "PINGREQ", "DISCONNECT"]


# --- fuzz: random and mutated bytes never raise anything but FrameError ---

SEEDS_MODBUS = [adu(1, 1, "0300000003"), adu(2, 1, "1000010002040A0B0C0D"), adu(3, 1, "2B0E0100"),
                adu(4, 1, "170003000600 0E000306 00FF00FF00FF".replace(" ", ""))]
SEEDS_MQTT = [packet(CONNECT << 4, s("MQTT") + bytes([4, 0xC2]) + b"\x00\x3c" + s("c") + s("u") + s("p")),
              packet(PUBLISH << 4 | 2, s("t/1") + b"\x00\x01" + b"v"), bytes([CONNACK << 4, 2, 0, 5])]


def _mutations(rng: random.Random, seeds: list[bytes], n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.3:
            out.append(rng.randbytes(rng.randint(0, 300)))
        else:
            data = bytearray(rng.choice(seeds) * rng.randint(1, 3))
            for _ in range(rng.randint(1, 4)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[:rng.randint(0, len(data))]
            out.append(bytes(data))
    return out


def test_fuzz_never_raises_anything_but_frame_error() -> None:
    rng = random.Random(18)
    for data in _mutations(rng, SEEDS_MODBUS, 20_000):
        for direction in ("request", "response"):
            try:
                parse_adu(data, direction)  # type: ignore[arg-type]
            except FrameError:
                pass
            try:
                ModbusStream(direction).feed(data)  # type: ignore[arg-type]
            except FrameError:
                pass
    for data in _mutations(rng, SEEDS_MQTT, 20_000):
        for level in (3, 4, 5):
            try:
                parse_packet(data, level)
            except FrameError:
                pass
            try:
                stream = MqttStream(level)
                cut = rng.randint(0, len(data))
                stream.feed(data[:cut])
                stream.feed(data[cut:])
            except FrameError:
                pass
