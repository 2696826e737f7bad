"""A named MQTT client that connects, retries for a while, and cleans up: what every component shares.

Twins, the controller's commander and its SCADA view all talk to the broker the same way: a client
id that is also the username (the broker keeps no sessions for anonymous clients, see `mqtt`),
the network loop on paho's thread, a bounded wait for the broker to come up, one `error:` line if
it never does. Subclasses name what they read with `_listen` and send with `_send`; with `links`
(`bus.secure.SecureLinks`) both go through the SAE's hybrid channels and the broker sees only
ciphertext, without the subclass knowing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bus.secure import SecureLinks
from core.errors import ConfigError
from core.logs import log_line

__all__ = ["NamedClient"]


class NamedClient:
    def __init__(self, client_id: str, *, host: str = "127.0.0.1", port: int = 1883, settle_s: float = 0.0,
                 links: SecureLinks | None = None) -> None:
        """`settle_s`: a pause after connecting, so subscriptions made in `on_connect` are in place."""
        self.host, self.port, self.client_id, self.settle_s = host, port, client_id, settle_s
        self.links = links
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self._client.username_pw_set(client_id)
        self.connects = 0
        """Connections the broker accepted; more than one means it was lost and found again (a broker
        that restarted may have lost what it acknowledged: `sectors.sent_log`)."""
        self._on_connected: Callable[[paho.Client], object] | None = None
        self._client.on_connect = self._connected

    def _connected(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            return
        self.connects += 1
        if self._on_connected is not None:
            self._on_connected(client)

    def _listen(self, filters: Sequence[tuple[str, int]], handler: Callable[[str, bytes], None]) -> None:
        """Subscribe to `filters` on every (re)connect and hand each message (topic, payload) to
        `handler`, on paho's thread. Through links, the client subscribes to its SAE's link topics
        and gets the inner messages that match `filters`; refused envelopes are counted and logged."""
        if self.links is None:
            self._on_connected = lambda c: c.subscribe(list(filters))
            self._client.on_message = lambda _c, _u, m: handler(m.topic, bytes(m.payload))
            return
        links = self.links
        reader = links.reader(self.client_id, [f for f, _ in filters])

        def refuse(reason: str, detail: str) -> None:
            log_line("qeaims.links", "envelope-refused", client=self.client_id, reason=reason, detail=detail)

        self._on_connected = lambda c: c.subscribe([(t, 1) for t in links.subscriptions()])
        def deliver(topic: str, payload: bytes, settle: Callable[[], None]) -> None:
            try:
                handler(topic, payload)
            finally:
                settle()  # handed on is all this client does with a message

        self._client.on_message = lambda _c, _u, m: reader.receive(m.topic, bytes(m.payload), deliver, refuse)

    def _send(self, topic: str, payload: bytes, qos: int = 0) -> paho.MQTTMessageInfo | None:
        """Publish one message (through links: one envelope per link that carries it, a handshake first
        where one is due); returns the last message's info, None if no link carries the topic."""
        if self.links is None:
            return self._client.publish(topic, payload, qos=qos)
        last = None
        for outer, body, retain in self.links.seal(topic, payload):
            # every envelope at QoS 1: a link's envelopes share one counter, and a QoS 0 one would pass
            # the QoS 1 ones a broker queues behind a lagging reader's in-flight window (review s40b)
            last = self._client.publish(outer, body, qos=1, retain=retain)
        return last

    def _publish_raw(self, topic: str, payload: bytes, qos: int, retain: bool) -> Any:
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def connect(self, timeout_s: float = 10.0) -> Self:
        """Connect (retrying while the broker starts, up to `timeout_s`) and start the network loop."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._client.connect(self.host, self.port, keepalive=30)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise ConfigError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from exc
                time.sleep(0.2)
        self._client.loop_start()
        if self.links is not None:
            self.links.attach_publisher(self._publish_raw)
            for topic, payload, retain in self.links.handshakes():
                self._client.publish(topic, payload, qos=1, retain=retain)
            self.links.start()
        if self.settle_s:
            time.sleep(self.settle_s)
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()
