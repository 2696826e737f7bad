"""MQTT control packets (3.1.1 and 5.0) as a gateway sees them, reassembled from a byte stream.

References: MQTT Version 3.1.1 (OASIS Standard, 2014) and MQTT Version 5.0 (OASIS Standard, 2019),
chapters 2 (packet format) and 3 (the control packets). A packet is a fixed header, then a
variable header and a payload whose layout depends on the type::

    byte 1: packet type (bits 7-4) | flags (bits 3-0)
    Remaining Length: 1-4 bytes, 7 bits each, low group first, bit 7 = "more" (max 268,435,455)

What is extracted: CONNECT (protocol name and level, client id, username, clean-session, keep
alive; the password is never kept, only where it lies, so `without_secret` can leave it out of a
hash), CONNACK (session present, return code in 3.1.1 / reason code in 5.0), PUBLISH (topic, QoS, retain, dup, packet id, payload length), SUBSCRIBE / UNSUBSCRIBE
(packet id, topic filters), SUBACK (reason codes), DISCONNECT (5.0 reason code), the
acknowledgements' packet ids. MQTT 5 inserts properties (a varint length, then that many bytes)
in most variable headers; the parser skips them by their length, so it must know the level: the
client's stream learns it from CONNECT and the proxy hands it to the server's stream.

Flags that the specs fix (PUBREL, SUBSCRIBE, UNSUBSCRIBE: 0010; the others 0000 except PUBLISH),
QoS 3, a Remaining Length over 4 bytes, a string running past the packet, or a packet larger than
the gateway's limit raise `FrameError`, and only that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.errors import FrameError

__all__ = ["CONNACK", "CONNECT", "DISCONNECT", "PUBLISH", "SUBSCRIBE", "MqttPacket", "MqttStream",
           "connack_refused", "is_refusal", "parse_packet", "without_secret"]

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
         8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP",
         14: "DISCONNECT", 15: "AUTH"}
_FIXED_FLAGS = {PUBREL: 0b0010, SUBSCRIBE: 0b0010, UNSUBSCRIBE: 0b0010}
MAX_PACKET = 1 << 20  # the gateway's own limit (the city's payloads are far smaller; bus.mqtt.MAX_PAYLOAD)
# CONNACK codes that refuse the client's credentials: 3.1.1 (4 bad user name or password, 5 not
# authorised) and 5.0 (0x86 bad user name or password, 0x87 not authorised, 0x8C bad authentication method)
AUTH_REFUSALS_311 = frozenset({4, 5})
AUTH_REFUSALS_5 = frozenset({0x86, 0x87, 0x8C})


@dataclass(frozen=True, slots=True)
class MqttPacket:
    """One parsed control packet; fields a type does not have stay None / empty."""

    type: int
    flags: int
    level: int  # protocol level the packet was parsed under (3, 4 = 3.1.1, 5)
    length: int  # whole packet, fixed header included
    client_id: str | None = None
    username: str | None = None
    protocol_name: str | None = None
    clean_start: bool | None = None
    keep_alive: int | None = None
    return_code: int | None = None  # CONNACK (3.1.1 return code / 5.0 reason code), DISCONNECT (5.0)
    session_present: bool | None = None
    topic: str | None = None
    qos: int | None = None
    retain: bool | None = None
    dup: bool | None = None
    packet_id: int | None = None
    payload_len: int | None = None
    topics: tuple[str, ...] = ()
    codes: tuple[int, ...] = ()  # SUBACK / UNSUBACK reason codes
    password_at: tuple[int, int] | None = None  # CONNECT: where the password field lies in the packet's bytes

    @property
    def name(self) -> str:
        return NAMES.get(self.type, str(self.type))


def is_refusal(packet: MqttPacket) -> bool:
    """A CONNACK that refuses the client's authentication (not a busy server or a bad protocol level)."""
    if packet.type != CONNACK or packet.return_code is None:
        return False
    refusals = AUTH_REFUSALS_5 if packet.level == 5 else AUTH_REFUSALS_311
    return packet.return_code in refusals


def without_secret(packet: MqttPacket, raw: bytes) -> bytes:
    """`raw` without a CONNECT's password field (and its Remaining Length): what its evidence hash covers.

    A SHA-256 of a frame that holds a short password is a dictionary away from the password; the
    chain is public, so the password never goes into a hash that leaves the gateway.
    """
    if packet.password_at is None:
        return raw
    start, end = packet.password_at
    head = _header(raw)
    body_at = head[0] if head is not None else 1
    return raw[:1] + raw[body_at:start] + raw[end:]  # the Remaining Length too: it would tell the password's length


def connack_refused(level: int) -> bytes:
    """The CONNACK a gateway sends a denied client: not authorised (3.1.1 code 5, 5.0 reason 0x87)."""
    if level == 5:
        return bytes([CONNACK << 4, 3, 0, 0x87, 0])  # no session, reason, empty properties
    return bytes([CONNACK << 4, 2, 0, 5])


class _Reader:
    """Bounds-checked reads over one packet's body; every overrun is a `FrameError`."""

    def __init__(self, data: bytes, at: int = 0) -> None:
        self.data, self.at = data, at

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def byte(self) -> int:
        if self.left < 1:
            raise FrameError("packet ends inside a field")
        self.at += 1
        return self.data[self.at - 1]

    def u16(self) -> int:
        return (self.byte() << 8) | self.byte()

    def raw(self, n: int) -> bytes:
        if n > self.left:
            raise FrameError("packet ends inside a field")
        self.at += n
        return self.data[self.at - n:self.at]

    def binary(self) -> bytes:
        return self.raw(self.u16())

    def string(self) -> str:
        try:
            return self.binary().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError("a string is not UTF-8") from exc

    def varint(self) -> int:
        value, used = _varint(self.data, self.at)
        self.at += used
        return value

    def properties(self, level: int) -> None:
        if level == 5:
            self.raw(self.varint())


def _varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    """(value, bytes used) of the Variable Byte Integer at `at`."""
    value, shift = 0, 0
    for i in range(4):
        if at + i >= len(data):
            raise FrameError("packet ends inside a variable byte integer")
        b = data[at + i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i + 1
        shift += 7
    raise FrameError("a variable byte integer is longer than 4 bytes")


def _header(data: bytes | bytearray) -> tuple[int, int] | None:
    """(bytes of the fixed header, remaining length), or None if the header is not complete yet."""
    value, shift = 0, 0
    for i in range(1, 5):
        if i >= len(data):
            return None
        b = data[i]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return i + 1, value
        shift += 7
    raise FrameError("Remaining Length is longer than 4 bytes")


def parse_packet(packet: bytes, level: int = 4) -> MqttPacket:
    """Parse exactly one control packet under protocol `level`; `FrameError` if it is not one."""
    head = _header(packet)
    if head is None or head[0] + head[1] != len(packet):
        raise FrameError(f"Remaining Length does not match a packet of {len(packet)} bytes")
    kind, flags = packet[0] >> 4, packet[0] & 0x0F
    if kind == 0:
        raise FrameError("packet type 0 is reserved")
    if kind != PUBLISH and flags != _FIXED_FLAGS.get(kind, 0):
        raise FrameError(f"{NAMES[kind]}: flags {flags:04b} are reserved")
    if kind == AUTH and level != 5:
        raise FrameError("AUTH exists only in MQTT 5")
    body = _Reader(packet, head[0])
    base = {"type": kind, "flags": flags, "level": level, "length": len(packet)}
    fields = _BODY[kind](body, flags, level) if kind in _BODY else {}
    if kind in (PINGREQ, PINGRESP) and body.left:
        raise FrameError(f"{NAMES[kind]} has no body")
    return MqttPacket(**{**base, **fields})  # type: ignore[arg-type]


def _connect(r: _Reader, _flags: int, _level: int) -> dict[str, object]:
    name = r.string()
    level = r.byte()
    if (name, level) not in (("MQTT", 4), ("MQTT", 5), ("MQIsdp", 3)):
        raise FrameError(f"CONNECT: protocol {name!r} level {level} is not MQTT 3.1, 3.1.1 or 5")
    flags = r.byte()
    if flags & 0x01 or (flags >> 3) & 0x03 == 3:
        raise FrameError("CONNECT: reserved flag set or will QoS 3")
    keep_alive = r.u16()
    r.properties(level)
    client_id = r.string()
    if flags & 0x04:  # will: properties (5), topic, payload
        r.properties(level)
        r.string()
        r.binary()
    username = r.string() if flags & 0x80 else None
    secret = None
    if flags & 0x40:
        start = r.at
        r.binary()  # password: checked for shape, never kept
        secret = (start, r.at)
    return {"level": level, "protocol_name": name, "clean_start": bool(flags & 0x02), "keep_alive": keep_alive,
            "client_id": client_id, "username": username, "password_at": secret}


def _connack(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    ack = r.byte()
    if ack & 0xFE:
        raise FrameError("CONNACK: reserved acknowledge flags set")
    code = r.byte()
    if level == 5 and r.left:
        r.properties(level)
    return {"session_present": bool(ack & 1), "return_code": code}


def _publish(r: _Reader, flags: int, level: int) -> dict[str, object]:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise FrameError("PUBLISH: QoS 3")
    topic = r.string()
    packet_id = r.u16() if qos else None
    r.properties(level)
    return {"topic": topic, "qos": qos, "retain": bool(flags & 1), "dup": bool(flags & 8), "packet_id": packet_id,
            "payload_len": r.left}


def _ack(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    packet_id = r.u16()
    code = r.byte() if level == 5 and r.left else None
    if level == 5 and r.left:
        r.properties(level)
    return {"packet_id": packet_id, "return_code": code}


def _subscribe(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    packet_id = r.u16()
    r.properties(level)
    topics: list[str] = []
    while r.left:
        topics.append(r.string())
        r.byte()  # requested QoS / subscription options
    if not topics:
        raise FrameError("SUBSCRIBE with no topic filter")
    return {"packet_id": packet_id, "topics": tuple(topics)}


def _unsubscribe(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    packet_id = r.u16()
    r.properties(level)
    topics: list[str] = []
    while r.left:
        topics.append(r.string())
    if not topics:
        raise FrameError("UNSUBSCRIBE with no topic filter")
    return {"packet_id": packet_id, "topics": tuple(topics)}


def _suback(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    packet_id = r.u16()
    r.properties(level)
    return {"packet_id": packet_id, "codes": tuple(r.raw(r.left))}


def _disconnect(r: _Reader, _flags: int, level: int) -> dict[str, object]:
    if level != 5:
        if r.left:
            raise FrameError("DISCONNECT has no body before MQTT 5")
        return {}
    code = r.byte() if r.left else 0
    if r.left:
        r.properties(level)
    return {"return_code": code}


_BODY = {CONNECT: _connect, CONNACK: _connack, PUBLISH: _publish, PUBACK: _ack, PUBREC: _ack, PUBREL: _ack,
         PUBCOMP: _ack, SUBSCRIBE: _subscribe, SUBACK: _suback, UNSUBSCRIBE: _unsubscribe, UNSUBACK: _suback,
         DISCONNECT: _disconnect}


class MqttStream:
    """Reassembles control packets from TCP segments of one direction of one connection.

    `level` starts at 4 (3.1.1) and follows the CONNECT this stream sees; the proxy copies it to the
    other direction's stream. `FrameError` on a packet that cannot be MQTT; the stream is then unusable.
    """

    def __init__(self, level: int = 4, max_packet: int = MAX_PACKET) -> None:
        self.level = level
        self.max_packet = max_packet
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[tuple[MqttPacket, bytes]]:
        self._buffer += chunk
        out: list[tuple[MqttPacket, bytes]] = []
        while self._buffer:
            try:
                head = _header(self._buffer)
            except FrameError:
                self._buffer.clear()
                raise
            if head is None:
                break
            size = head[0] + head[1]
            if size > self.max_packet:
                self._buffer.clear()
                raise FrameError(f"a {size}-byte packet exceeds the gateway's limit of {self.max_packet}")
            if len(self._buffer) < size:
                break
            raw = bytes(self._buffer[:size])
            del self._buffer[:size]
            level = self.level
            if raw[0] >> 4 == CONNECT:
                level = _connect_level(raw)
            packet = parse_packet(raw, level)
            if packet.type == CONNECT:
                self.level = packet.level
            out.append((packet, raw))
        return out


def _connect_level(raw: bytes) -> int:
    """The protocol level a CONNECT declares (parse it under its own level)."""
    head = _header(raw)
    if head is None:
        raise FrameError("CONNECT ends inside its fixed header")
    at = head[0]
    if at + 2 > len(raw):
        raise FrameError("CONNECT ends inside its protocol name")
    name_len = int(struct.unpack_from(">H", raw, at)[0])
    where = at + 2 + name_len
    if where >= len(raw):
        raise FrameError("CONNECT ends before its protocol level")
    return raw[where]
