"""A twin's sensors on the wire: each report period, every reading is published over MQTT.

This is exactly what a field gateway does (`oracles/ingest/mqtt.py` has the topic scheme), so an
oracle cannot tell a twin from a site: both arrive through the broker, one topic per sensor,
QoS 1. The twin's clock runs `speed` times faster than the wall clock (1 = real time); its
timestamps are the twin's own, so a day of simulated operation can be replayed in minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from oracles.ingest import IngestError
from oracles.ingest.mqtt import encode_payload, topic_for
from qeaims.errors import ConfigError
from qeaims.messages import Reading
from sectors.runner import TwinRunner

__all__ = ["TwinPublisher"]


class TwinPublisher:
    def __init__(self, runner: TwinRunner, *, host: str = "127.0.0.1", port: int = 1883, speed: float = 1.0,
                 client_id: str = "") -> None:
        if not speed > 0:
            raise ConfigError(f"speed must be positive, got {speed}")
        self.runner, self.host, self.port, self.speed = runner, host, port, speed
        self._client = paho.Client(CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"twin-{runner.sector.value}", clean_session=True)
        self._client.username_pw_set(client_id or f"twin-{runner.sector.value}")
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self.published = 0
        self.steps = 0

    def connect(self, timeout_s: float = 10.0) -> Self:
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
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *_: object) -> None:
        self.close()

    def publish(self, readings: Sequence[Reading], timeout_s: float = 30.0) -> int:
        """Publish readings (QoS 1) and wait until the broker acknowledged the last of them."""
        last: paho.MQTTMessageInfo | None = None
        for r in readings:
            # the asset is its own topic level: `bus-7/voltage_pu` travels as .../bus-7/voltage_pu
            sensor = r.sensor_id.removeprefix(r.asset_id + "/")
            last = self._client.publish(topic_for(r.sector, r.asset_id, sensor), encode_payload(r), qos=1)
        if last is not None:
            try:
                last.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:  # paho: not connected / queue refused
                raise IngestError(f"lost the MQTT broker at {self.host}:{self.port}: {exc}") from exc
            if not last.is_published():
                raise IngestError(f"the MQTT broker at {self.host}:{self.port} acknowledged nothing for {timeout_s} s")
        self.published += len(readings)
        return len(readings)

    def run(self, stop: threading.Event, *, steps: int | None = None,
            on_step: Callable[[list[Reading]], None] | None = None) -> None:
        """Advance the twin one report period at a time, publishing each snapshot, until `stop` or `steps`.

        A lost broker ends the run with `IngestError` (the supervisor restarts the twin, which resumes
        its clock from `on_step`'s record) rather than buffering an unbounded backlog here.
        """
        period_wall = self.runner.period_s / self.speed
        next_at = time.monotonic()
        while not stop.is_set() and (steps is None or self.steps < steps):
            readings = self.runner.advance()
            self.publish(readings)
            self.steps += 1
            if on_step is not None:
                on_step(readings)
            next_at += period_wall
            stop.wait(max(0.0, next_at - time.monotonic()))
