"""The oracle's MQTT subscriber: validates the city's wire format (`bus.mqtt`) into a `ReadingSink`.

Sessions. Every client connects with a username (any name in development; the embedded broker
checks no passwords) because amqtt keeps no messages for anonymous sessions. An oracle's subscriber
uses a fixed client id and a persistent session (``clean_session=False``), so the broker queues its
sector's QoS 1 messages while the oracle is down and delivers them when it reconnects; and it
acknowledges a message only once its readings are stored (`ReadingSink.put_many(on_stored=...)`).
amqtt 0.12 does not redeliver a message that was delivered but never acknowledged when the session
resumes (Mosquitto does), so with the embedded broker the readings that were in the oracle's memory
at the instant it died, at most one drain interval's worth, are the only ones that can be lost.

A site deployment points `MqttSubscriber` at its own broker (host, port) with TLS and per-device
credentials; the subscriber does not care which broker it talks to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bus.errors import IngestError, MessageRejected
from bus.mqtt import SOURCE, Trace, parse_traced, topic_filter
from bus.secure import SecureLinks
from core.messages import Sector
from oracles.ingest.latency import HopLatency
from oracles.ingest.sink import ReadingSink

__all__ = ["MqttSubscriber"]


class MqttSubscriber:
    """Subscribes to the topic scheme on any MQTT broker and puts valid readings in a `ReadingSink`.

    paho runs the network loop on its own thread and reconnects by itself (resubscribing in
    `_on_connect`); `handle` is the whole message path and can be called without a broker.
    """

    def __init__(self, sink: ReadingSink, *, host: str = "127.0.0.1", port: int = 1883,
                 sectors: Iterable[Sector] | None = None, client_id: str = "", qos: int = 1,
                 max_future_s: float = 300.0, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 persistent: bool | None = None, links: SecureLinks | None = None) -> None:
        """`links`: read through the oracle's secure links (`bus.secure`), not the plaintext topics."""
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
        self.latency = HopLatency()  # per hop, from the batches' traces (`oracles.ingest.latency`)
        self.links = links
        self._reader = links.reader(client_id or "subscriber", self.filters) if links is not None else None

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
            readings, trace = parse_traced(topic, payload, now=self._now(), max_future_s=self.max_future_s)
        except MessageRejected as exc:
            self.sink.reject(source=SOURCE, reason=exc.reason, where=topic, detail=exc.detail)
            if ack is not None:
                ack()
            return 0
        except Exception as exc:  # noqa: BLE001 - a message must never kill paho's network thread
            # (an uncaught error there silenced the oracle for good, and the broker redelivered the
            # same message to every restart): whatever the parser did not foresee is a rejection too
            self.sink.reject(source=SOURCE, reason="unparsable", where=topic, detail=f"{type(exc).__name__}: {exc}")
            if ack is not None:
                ack()
            return 0
        if trace is not None and not self._plausible(trace):
            trace = None  # forged or skewed hop times say nothing about latency: the readings still count
        on_stored = ack if trace is None else self._timed(trace, self.latency.received(trace), ack)
        return len(readings) if self.sink.put_many(readings, source=SOURCE, on_stored=on_stored) else 0

    def _plausible(self, trace: Trace) -> bool:
        """Hop times within the accepted clock window of now, in order: else the trace is ignored (and counted)."""
        now = self._now().timestamp()
        if not (now - self.max_future_s - 86400.0 <= trace.stamped <= trace.sent <= now + self.max_future_s):
            self.latency.skewed += 1
            return False
        return True

    def _timed(self, trace: Trace, arrived: float, ack: Callable[[], None] | None) -> Callable[[], None]:
        """The acknowledgement of a traced batch, recording its store hop first."""
        def stored() -> None:
            self.latency.stored(trace, arrived)
            if ack is not None:
                ack()

        return stored

    # --- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused = f"connection refused: {reason}"
            return
        topics = self.links.subscriptions() if self.links is not None else self.filters
        client.subscribe([(t, self.qos) for t in topics])

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

        if self._reader is None:
            self.handle(message.topic, bytes(message.payload), ack)
            return
        topic = message.topic

        def refuse(reason: str, detail: str) -> None:
            self.sink.reject(source="link", reason=reason, where=topic, detail=detail)
            ack()

        def deliver(inner_topic: str, payload: bytes, settle: Callable[[], None]) -> None:
            self.handle(inner_topic, payload, settle)  # stored: the link's window moves, then the broker's ack

        self._reader.receive(topic, bytes(message.payload), deliver, refuse, ack)
