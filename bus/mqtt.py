"""The city's MQTT wire: the topic scheme, the payload codec and parser, and the embedded broker.

Twins and field gateways publish with it (`sectors.publish`), the oracles subscribe with it
(`oracles.ingest.mqtt.MqttSubscriber`), the controller's SCADA view reads it (`controller.scada`):
the format is defined once here, below all three.

Topic scheme (MQTT 3.1.1, one level per field, so a broker ACL can grant a device exactly its own
asset and an oracle exactly its own sector)::

    qeaims/<sector>/<asset_id>/<sensor_id>      one sensor's samples (a device)
    qeaims/<sector>/_batch/<gateway_id>         many sensors' samples (a field gateway, a twin)

- ``sector``: one of `core.messages.Sector` (``electricity``, ``water``, ``sewage``, ``healthcare``,
  ``transportation``, ``banking``); anything else is rejected.
- ``asset_id``: as `Reading.asset_id` (1–32 characters ``[A-Za-z0-9][A-Za-z0-9_.:-]*``, fits a bytes32).
- ``sensor_id``: 1–64 characters, no ``/`` (it is one topic level).

Payload: UTF-8 JSON, one sample as an object with exactly these keys, or a non-empty array of up to
`MAX_SAMPLES` of them (a gateway batching one sensor's samples)::

    {"quantity": "pressure_m", "unit": "m", "value": 41.7, "timestamp": "2026-11-26T05:00:00.250Z"}

- ``value``: a JSON number, finite (no NaN/Infinity tokens, no strings, no booleans).
- ``timestamp``: ISO-8601 *with* a UTC offset (``Z`` or ``+01:00``; a naive time is ambiguous across
  sites and rejected), at most ``max_future_s`` (default 300 s) ahead of the oracle's clock. Old
  timestamps are accepted: a device replaying its buffer after an outage is normal, and replay
  *attacks* are the detectors' business, not the transport's.
- Gateway batches: a substation or pump-station gateway that polls hundreds of sensors sends one
  message per poll rather than one per sensor (a broker's cost is per message: with one QoS 1
  message per reading, six twins' ~700 readings a round times four oracles a sector saturate the
  embedded broker). The topic's asset level is the reserved word ``_batch`` (an asset id starts
  alphanumeric, so it cannot collide), the last level names the gateway (1–64 characters), and each
  sample also carries ``"asset"`` and ``"sensor"`` with the rules of the two topic levels they stand
  for. The readings are exactly those the same samples would give on their own topics.
- A traced batch (what the twins send) wraps the array with the wall times its hops are measured by:
  ``{"samples": [...], "trace": {"stamped": 1764825600.25, "sent": 1764825600.31}}`` (POSIX seconds:
  when the gateway's poll completed, when it handed the message to its MQTT client). The trace
  changes nothing about the readings; the subscriber derives the per-hop latency from it
  (`oracles.ingest.latency`). A plain array stays valid: a field gateway need not trace.
- A message is all or nothing: one bad sample rejects the whole message, so a batch is never half
  stored. Payloads over `MAX_PAYLOAD` bytes are rejected unread.

A rejected message is counted in the sink and logged as one JSON line (`oracles.ingest.sink`, on
the subscriber's side); it never stops the subscriber. Publish with QoS 1: the subscriber acknowledges a message only after
it is in the sink, so a full sink slows publishers down instead of losing their readings.

Sessions, acknowledgement after storage and what amqtt does not redeliver: see the subscriber
(`oracles.ingest.mqtt`). The embedded broker binds 127.0.0.1 by default: it is the development and
demo broker; a site deployment runs its own broker with TLS and per-device credentials.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.errors import BrokerError
from pydantic import ValidationError

from bus.errors import IngestError, MessageRejected
from bus.loop_thread import LoopThread
from core.messages import Reading, Sector

__all__ = [
    "BATCH_LEVEL",
    "MAX_PAYLOAD",
    "MAX_SAMPLES",
    "TOPIC_ROOT",
    "EmbeddedBroker",
    "Trace",
    "batch_topic",
    "encode_batch",
    "encode_payload",
    "parse_message",
    "parse_traced",
    "sensor_key",
    "topic_filter",
    "topic_for",
    "traced",
    "wire_sensor",
]

TOPIC_ROOT = "qeaims"
MAX_PAYLOAD = 256 * 1024
MAX_SAMPLES = 1000
_KEYS = frozenset({"quantity", "unit", "value", "timestamp"})
_BATCH_KEYS = _KEYS | {"asset", "sensor"}
BATCH_LEVEL = "_batch"
SOURCE = "mqtt"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # readings are hashed with Unix-millisecond times


def topic_for(sector: Sector, asset_id: str, sensor_id: str) -> str:
    """The topic a device publishes one sensor's readings on."""
    return f"{TOPIC_ROOT}/{sector.value}/{asset_id}/{sensor_id}"


def topic_filter(sector: Sector | None = None) -> str:
    """The subscription for one sector's readings (an oracle), or every sector's (the supervisor)."""
    return f"{TOPIC_ROOT}/{'+' if sector is None else sector.value}/+/+"


def batch_topic(sector: Sector, gateway_id: str) -> str:
    """The topic a gateway publishes many sensors' samples on, in one message."""
    return f"{TOPIC_ROOT}/{sector.value}/{BATCH_LEVEL}/{gateway_id}"


def _sample_body(reading: Reading) -> dict[str, Any]:
    stamp = reading.timestamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"quantity": reading.quantity, "unit": reading.unit, "value": reading.value, "timestamp": stamp}


def encode_payload(reading: Reading) -> bytes:
    """The payload a device would publish for `reading` (for tests, the demo and device firmware authors)."""
    return json.dumps(_sample_body(reading)).encode()


def wire_sensor(reading: Reading) -> str:
    """The sensor's topic level: the twins name sensors ``bus-7/voltage_pu``, the wire ``voltage_pu``."""
    return reading.sensor_id.removeprefix(reading.asset_id + "/")


MAX_DEPTH = 8  # a traced batch is 3 levels deep (wrapper, array, sample)
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_STRUCTURE = b'[]{}"\\'  # all that decides nesting: brackets, and the quotes and escapes that hide some
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting(payload: bytes) -> int:
    """How deep the payload's arrays and objects nest (strings skipped), counted before parsing.

    web3's py_ecc raises the interpreter's recursion limit to 100,000 on import, so in an oracle
    `json.loads` of a 200 kB array nested 100,000 deep overflows the C stack and kills the process
    (a segmentation fault, not a RecursionError): one such message, redelivered to every restart,
    would silence a sector. Legitimate payloads nest three levels.
    """
    # dropping every other byte first (in C) leaves a tenth of a batch for the regex and the loop
    structure = payload.translate(None, _NOT_STRUCTURE)
    brackets = _STRINGS.sub(b"", structure).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
    return deepest


_TRACE_ROOM = 128  # bytes a trace wrapper adds to a batch, kept free under MAX_PAYLOAD


def encode_batch(readings: Sequence[Reading], *, stamped: float | None = None) -> list[bytes]:
    """Batch payloads for `readings` (one sector's), each within `MAX_SAMPLES` and `MAX_PAYLOAD`;
    with `stamped` (the wall time the poll completed), traced: wrapped with it and the time sent."""
    arrays: list[bytes] = []
    bodies: list[bytes] = []
    size, limit = 2, MAX_PAYLOAD - _TRACE_ROOM
    for r in readings:
        body = json.dumps({"asset": r.asset_id, "sensor": wire_sensor(r), **_sample_body(r)}).encode()
        if bodies and (len(bodies) == MAX_SAMPLES or size + len(body) + 1 > limit):
            arrays.append(b"[" + b",".join(bodies) + b"]")
            bodies, size = [], 2
        bodies.append(body)
        size += len(body) + 1
    if bodies:
        arrays.append(b"[" + b",".join(bodies) + b"]")
    return arrays if stamped is None else traced(arrays, stamped)


def traced(arrays: Sequence[bytes], stamped: float) -> list[bytes]:
    """Batch payloads (`encode_batch` without ``stamped``) wrapped with when the poll completed
    (`stamped`) and when they are sent (now): a batch resent later shows how late it is."""
    sent = time.time()
    return [b'{"samples": ' + array + f', "trace": {{"stamped": {stamped!r}, "sent": {sent!r}}}}}'.encode()
            for array in arrays]


@dataclass(frozen=True)
class Trace:
    """A traced batch's wall times (POSIX seconds): the poll completed, the message was sent."""

    stamped: float
    sent: float


def parse_message(topic: str, payload: bytes, *, now: datetime, max_future_s: float = 300.0) -> list[Reading]:
    """The readings in one message, or `MessageRejected` with a short reason tag and a readable detail."""
    return parse_traced(topic, payload, now=now, max_future_s=max_future_s)[0]


def parse_traced(topic: str, payload: bytes, *, now: datetime,
                 max_future_s: float = 300.0) -> tuple[list[Reading], Trace | None]:
    """`parse_message`, and the batch's trace if it carries one."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT or not parts[3]:
        raise MessageRejected("topic", f"expected {TOPIC_ROOT}/<sector>/<asset_id>/<sensor_id>")
    _, sector_name, asset_id, sensor_id = parts
    batched = asset_id == BATCH_LEVEL
    if batched and len(sensor_id) > 64:
        raise MessageRejected("topic", "a gateway id is 1-64 characters")
    try:
        sector = Sector(sector_name)
    except ValueError:
        raise MessageRejected("sector", f"unknown sector {sector_name!r}") from None
    if len(payload) > MAX_PAYLOAD:
        raise MessageRejected("too-large", f"{len(payload)} bytes > {MAX_PAYLOAD}")
    if _nesting(payload) > MAX_DEPTH:
        raise MessageRejected("json", f"nested deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageRejected("json", str(exc)) from None
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, arrays nested 100k deep
        raise MessageRejected("json", f"unreadable JSON ({type(exc).__name__})") from None
    trace = None
    if batched and isinstance(body, dict) and "samples" in body:
        body, trace = body["samples"], _trace(body)
    samples = body if isinstance(body, list) else [body]
    if not samples or len(samples) > MAX_SAMPLES:
        raise MessageRejected("json", f"an array must hold 1..{MAX_SAMPLES} samples, not {len(samples)}")
    latest = now + timedelta(seconds=max_future_s)
    if not batched:
        return [_sample(sector, asset_id, sensor_id, sample, i, latest, _KEYS) for i, sample in enumerate(samples)], None
    return [_sample(sector, *_batch_names(sample, i), sample, i, latest, _BATCH_KEYS)
            for i, sample in enumerate(samples)], trace


def _trace(wrapper: dict[str, Any]) -> Trace:
    trace = wrapper.get("trace")
    if set(wrapper) != {"samples", "trace"} or not isinstance(trace, dict) or set(trace) != {"stamped", "sent"}:
        raise MessageRejected("fields", 'a traced batch is {"samples": [...], "trace": {"stamped": s, "sent": s}}')
    values = [trace["stamped"], trace["sent"]]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        raise MessageRejected("value", "trace times must be finite JSON numbers")
    try:
        times = [float(v) for v in values]  # a JSON integer too large for a float raises here
    except OverflowError:
        times = [math.inf]
    if not all(math.isfinite(t) for t in times):
        raise MessageRejected("value", "trace times must be finite JSON numbers")
    return Trace(times[0], times[1])


_TOPIC_RESERVED = frozenset("/+#")  # characters a topic level cannot hold


def _batch_names(sample: Any, index: int) -> tuple[str, str]:
    """A batch sample's asset and sensor, held to the rules of the topic levels they replace."""
    if not isinstance(sample, dict) or set(sample) != _BATCH_KEYS:
        return "", ""  # `_sample` reports the wrong shape or keys
    asset, sensor = sample.get("asset"), sample.get("sensor")
    if not isinstance(asset, str) or asset == BATCH_LEVEL or not isinstance(sensor, str) or not sensor \
            or not _TOPIC_RESERVED.isdisjoint(sensor):
        raise MessageRejected("fields", f"sample {index}: asset and sensor must be topic-level strings, "
                                        f"got {asset!r} and {sensor!r}")
    return asset, sensor


def _sample(sector: Sector, asset_id: str, sensor_id: str, sample: Any, index: int, latest: datetime,
            keys: frozenset[str]) -> Reading:
    at = f"sample {index}: "
    if not isinstance(sample, dict) or set(sample) != keys:
        got = sorted(sample) if isinstance(sample, dict) else type(sample).__name__
        raise MessageRejected("fields", f"{at}expected keys {sorted(keys)}, got {got}")
    value = sample["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageRejected("value", f"{at}value must be a JSON number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise MessageRejected("value", f"{at}value {value} is not finite")
    stamp = sample["timestamp"]
    try:
        moment = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise MessageRejected("timestamp", f"{at}{stamp!r} is not an ISO-8601 time with a UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = EPOCH - timedelta(days=1)
    if moment < EPOCH:
        raise MessageRejected("timestamp", f"{at}{stamp} is before 1970: no clock reports that")
    if moment > latest:
        raise MessageRejected("timestamp", f"{at}{stamp} is in the future")
    try:
        return Reading(sector=sector, asset_id=asset_id, sensor_id=sensor_id, quantity=sample["quantity"],
                       unit=sample["unit"], value=float(value), timestamp=moment)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MessageRejected("invalid", at + problems) from None


class EmbeddedBroker:
    """An amqtt MQTT 3.1.1 broker on its own loop thread; `start` returns once it listens."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, max_connections: int = 256,
                 allow_anonymous: bool = False) -> None:
        self.host, self.port = host, port
        self._config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": max_connections}},
            # Only the auth plugin: no $SYS publisher (a timer task) and no per-packet logging plugins.
            # Without anonymous sessions a client must name itself, and its persistent session is kept.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": allow_anonymous}},
        }
        self._thread = LoopThread(f"mqtt-broker-{port}")
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout_s: float = 5.0) -> Self:
        if self._broker is not None:
            return self
        self._thread.start()

        async def boot() -> Broker:
            broker = Broker(self._config)
            await broker.start()
            return broker

        try:
            self._broker = self._thread.run(boot(), timeout_s)
        except (BrokerError, OSError, IngestError) as exc:  # amqtt wraps bind failures in BrokerError
            self._thread.stop(timeout_s)
            raise IngestError(f"MQTT broker could not listen on {self.host}:{self.port}: {exc}") from exc
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect every client, close the listener and end the loop thread."""
        broker, self._broker = self._broker, None
        if broker is not None:
            try:
                self._thread.run(broker.shutdown(), timeout_s)
            finally:
                self._thread.stop(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def sensor_key(reading: Reading) -> str:
    """``"<asset>/<sensor>"``, the name a model's column has, however the sensor was named on the wire.

    The twins name sensors ``bus-7/voltage_pu``; on MQTT the asset is its own topic level, so the
    same sensor arrives as asset ``bus-7``, sensor ``voltage_pu``. Both map to one column.
    """
    return f"{reading.asset_id}/{reading.sensor_id.removeprefix(reading.asset_id + '/')}"
