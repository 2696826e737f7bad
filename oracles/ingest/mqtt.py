"""Readings over MQTT: an embedded broker the supervisor starts, and the subscriber that validates them.

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
- A message is all or nothing: one bad sample rejects the whole message, so a batch is never half
  stored. Payloads over `MAX_PAYLOAD` bytes are rejected unread.

A rejected message is counted in the sink and logged as one JSON line (`oracles.ingest.sink`); it
never stops the subscriber. Publish with QoS 1: the subscriber acknowledges a message only after
it is in the sink, so a full sink slows publishers down instead of losing their readings.

Sessions. Every client connects with a username (any name in development; the embedded broker
checks no passwords) because amqtt keeps no messages for anonymous sessions. An oracle's subscriber
uses a fixed client id and a persistent session (``clean_session=False``), so the broker queues its
sector's QoS 1 messages while the oracle is down and delivers them when it reconnects; and it
acknowledges a message only once its readings are stored (`ReadingSink.put_many(on_stored=...)`).
amqtt 0.12 does not redeliver a message that was delivered but never acknowledged when the session
resumes (Mosquitto does), so with the embedded broker the readings that were in the oracle's memory
at the instant it died, at most one drain interval's worth, are the only ones that can be lost.

The embedded broker binds 127.0.0.1 by default: it is the development and demo broker. A site deployment points `MqttSubscriber` at its own broker (host, port) with TLS
and per-device credentials; the subscriber does not care which broker it talks to.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import paho.mqtt.client as paho
from amqtt.broker import Broker
from amqtt.errors import BrokerError
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from core.messages import Reading, Sector
from oracles.ingest._errors import IngestError, MessageRejected
from oracles.ingest._loop import LoopThread
from oracles.ingest.sink import ReadingSink

__all__ = [
    "BATCH_LEVEL",
    "MAX_PAYLOAD",
    "MAX_SAMPLES",
    "TOPIC_ROOT",
    "EmbeddedBroker",
    "MqttSubscriber",
    "batch_topic",
    "encode_batch",
    "encode_payload",
    "parse_message",
    "topic_filter",
    "topic_for",
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


def encode_batch(readings: Sequence[Reading]) -> list[bytes]:
    """Batch payloads for `readings` (one sector's), each within `MAX_SAMPLES` and `MAX_PAYLOAD`."""
    payloads: list[bytes] = []
    bodies: list[bytes] = []
    size = 2
    for r in readings:
        body = json.dumps({"asset": r.asset_id, "sensor": wire_sensor(r), **_sample_body(r)}).encode()
        if bodies and (len(bodies) == MAX_SAMPLES or size + len(body) + 1 > MAX_PAYLOAD):
            payloads.append(b"[" + b",".join(bodies) + b"]")
            bodies, size = [], 2
        bodies.append(body)
        size += len(body) + 1
    if bodies:
        payloads.append(b"[" + b",".join(bodies) + b"]")
    return payloads


def parse_message(topic: str, payload: bytes, *, now: datetime, max_future_s: float = 300.0) -> list[Reading]:
    """The readings in one message, or `MessageRejected` with a short reason tag and a readable detail."""
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
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageRejected("json", str(exc)) from None
    samples = body if isinstance(body, list) else [body]
    if not samples or len(samples) > MAX_SAMPLES:
        raise MessageRejected("json", f"an array must hold 1..{MAX_SAMPLES} samples, not {len(samples)}")
    latest = now + timedelta(seconds=max_future_s)
    if not batched:
        return [_sample(sector, asset_id, sensor_id, sample, i, latest, _KEYS) for i, sample in enumerate(samples)]
    return [_sample(sector, *_batch_names(sample, i), sample, i, latest, _BATCH_KEYS)
            for i, sample in enumerate(samples)]


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


class MqttSubscriber:
    """Subscribes to the topic scheme on any MQTT broker and puts valid readings in a `ReadingSink`.

    paho runs the network loop on its own thread and reconnects by itself (resubscribing in
    `_on_connect`); `handle` is the whole message path and can be called without a broker.
    """

    def __init__(self, sink: ReadingSink, *, host: str = "127.0.0.1", port: int = 1883,
                 sectors: Iterable[Sector] | None = None, client_id: str = "", qos: int = 1,
                 max_future_s: float = 300.0, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 persistent: bool | None = None) -> None:
        """`client_id` names the session; with one, the session is persistent unless `persistent=False`."""
        self.sink, self.host, self.port, self.qos = sink, host, port, qos
        chosen = sorted(set(sectors)) if sectors is not None else None
        self.filters = [topic_filter(s) for s in chosen] if chosen else [topic_filter()]
        self.max_future_s = max_future_s
        self._now = now
        keep = bool(client_id) if persistent is None else persistent
        if keep and not client_id:
            raise IngestError("a persistent MQTT session needs a client id")
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not keep,
                                   manual_ack=True)
        self._client.username_pw_set(client_id or "qeaims-subscriber")
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._refused = ""
        self.received = 0

    def start(self, timeout_s: float = 5.0) -> Self:
        """Connect and subscribe; returns once the broker granted the subscriptions, or raises `IngestError`."""
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise IngestError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._subscribed.wait(0.05):
            if self._refused or time.monotonic() > deadline:
                self.stop()
                why = self._refused or f"no subscription granted within {timeout_s} s"
                raise IngestError(f"MQTT broker at {self.host}:{self.port}: {why}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def handle(self, topic: str, payload: bytes, ack: Callable[[], None] | None = None) -> int:
        """Validate one message and queue its readings; returns how many were queued (0: rejected).

        `ack` runs once the readings are stored (a rejected message is acknowledged at once: sent
        again, it would be rejected again).
        """
        self.received += 1
        try:
            readings = parse_message(topic, payload, now=self._now(), max_future_s=self.max_future_s)
        except MessageRejected as exc:
            self.sink.reject(source=SOURCE, reason=exc.reason, where=topic, detail=exc.detail)
            if ack is not None:
                ack()
            return 0
        return len(readings) if self.sink.put_many(readings, source=SOURCE, on_stored=ack) else 0

    # --- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused = f"connection refused: {reason}"
            return
        client.subscribe([(f, self.qos) for f in self.filters])

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._refused = f"subscription refused: {[str(r) for r in reasons]}"
        else:
            self._subscribed.set()

    def _on_message(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        mid, qos = message.mid, message.qos

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        self.handle(message.topic, bytes(message.payload), ack)
