"""A named MQTT client that connects, retries for a while, and cleans up: what every component shares.

Twins, the controller's commander and its SCADA view all talk to the broker the same way: a client
id that is also the username (the broker keeps no sessions for anonymous clients, see `mqtt`),
the network loop on paho's thread, a bounded wait for the broker to come up, one `error:` line if
it never does. Subclasses set their callbacks on `self._client` and extend `connect` if they must.
"""

from __future__ import annotations

import time
from typing import Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from core.errors import ConfigError

__all__ = ["NamedClient"]


class NamedClient:
    def __init__(self, client_id: str, *, host: str = "127.0.0.1", port: int = 1883, settle_s: float = 0.0) -> None:
        """`settle_s`: a pause after connecting, so subscriptions made in `on_connect` are in place."""
        self.host, self.port, self.client_id, self.settle_s = host, port, client_id, settle_s
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        self._client.username_pw_set(client_id)

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
