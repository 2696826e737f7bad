"""The controller's view of the field: the latest reading of every sensor, as the devices publish it.

An ADMS locates a fault from SCADA (which switch tripped, which buses went dark), not from the
verdict that raised the alarm; the verdict may name the feeder as a whole. `FieldView` subscribes
to the readings' topics (``qeaims/<sector>/<asset>/<sensor>``, the same ones the oracles read) and
keeps the newest value per sensor, with sensor ids in the twins' ``<asset>/<sensor>`` form.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from bus.client import NamedClient
from bus.errors import MessageRejected
from bus.mqtt import parse_message, sensor_key, topic_filter
from bus.secure import SecureLinks
from core.messages import Reading, Sector

__all__ = ["FieldView"]


class FieldView(NamedClient):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, client_id: str = "controller-scada",
                 links: SecureLinks | None = None) -> None:
        super().__init__(client_id, host=host, port=port, settle_s=0.2, links=links)
        self._listen([(topic_filter(), 0)], self._on_message)
        self._latest: dict[tuple[Sector, str], Reading] = {}
        self._lock = threading.Lock()

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            readings = parse_message(topic, payload, now=datetime.now(UTC),
                                     max_future_s=10**9)
        except MessageRejected:
            return  # the oracles count and log bad messages; the view just ignores them
        with self._lock:
            for r in readings:
                key = sensor_key(r)
                held = self._latest.get((r.sector, key))
                if held is None or held.timestamp <= r.timestamp:
                    self._latest[(r.sector, key)] = r.model_copy(update={"sensor_id": key})

    def readings(self, sector: Sector) -> list[Reading]:
        """The newest reading of every sensor of `sector` seen so far."""
        with self._lock:
            return [r for (s, _), r in self._latest.items() if s is sector]
