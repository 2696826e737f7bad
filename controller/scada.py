"""The controller's view of the field: the latest reading of every sensor, as the devices publish it.

An ADMS locates a fault from SCADA (which switch tripped, which buses went dark), not from the
verdict that raised the alarm; the verdict may name the feeder as a whole. `FieldView` subscribes
to the readings' topics (``qeaims/<sector>/<asset>/<sensor>``, the same ones the oracles read) and
keeps the newest value per sensor, with sensor ids in the twins' ``<asset>/<sensor>`` form.

A reading's stamp is its sender's word, and the twins' clock is not the wall clock (it may lag it
by months, or run at 30×), so no bound against the wall stops a reading stamped ahead: one forged
reading stamped a month ahead would stay "newest" for its sensor, and set the sector's field time
the planner models a surge at, until the field's clock caught up. So the view keeps each sensor's
last few arrivals, takes the sector's *field clock* as the median of its sensors' newest stamps
(one sensor, or a few, cannot move it; a late or replayed reading moves nothing), and believes of each sensor the newest arrival no
more than :data:`AHEAD_S` ahead of that clock. An honest sector whose clock jumps (a twin resumed
later) moves its median with it and is believed at once.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from datetime import UTC, datetime, timedelta

from bus.client import NamedClient
from bus.errors import MessageRejected
from bus.mqtt import parse_message, sensor_key, topic_filter
from bus.secure import SecureLinks
from core.messages import Reading, Sector

__all__ = ["AHEAD_S", "FieldView"]

AHEAD_S = 600.0
"""How far ahead of its sector's field clock a reading may be stamped and be believed (field s): ten
times the slowest SCADA report period (60 s), so a sensor reporting a period early, or a sector whose
sensors report at different periods, is never doubted; a reading stamped within it is at most ten
minutes' pinning."""
_KEPT = 8  # arrivals kept per sensor: a forged one ages out after this many honest ones


class FieldView(NamedClient):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 1883, client_id: str = "controller-scada",
                 links: SecureLinks | None = None) -> None:
        super().__init__(client_id, host=host, port=port, settle_s=0.2, links=links)
        self._listen([(topic_filter(), 0)], self._on_message)
        self._latest: dict[tuple[Sector, str], deque[Reading]] = {}  # each sensor's last arrivals
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
                kept = self._latest.setdefault((r.sector, key), deque(maxlen=_KEPT))
                kept.append(r.model_copy(update={"sensor_id": key}))

    def clock(self, sector: Sector) -> float | None:
        """The sector's field clock (POSIX s): the median of its sensors' newest stamps (see the
        module's note); None before any reading of it. Crews and technicians are due on it
        (`controller.deadlines`)."""
        with self._lock:
            held = [kept for (s, _), kept in self._latest.items() if s is sector and kept]
            return self._median_clock(held).timestamp() if held else None

    @staticmethod
    def _median_clock(held: list[deque[Reading]]) -> datetime:
        return statistics.median_low(max(r.timestamp for r in kept) for kept in held)

    def readings(self, sector: Sector) -> list[Reading]:
        """The newest believable reading of every sensor of `sector` seen so far (see the module's note)."""
        with self._lock:
            held = [kept for (s, _), kept in self._latest.items() if s is sector and kept]
            if not held:
                return []
            clock = self._median_clock(held)
            bound = clock + timedelta(seconds=AHEAD_S)
            out = []
            for kept in held:
                believed = [r for r in kept if r.timestamp <= bound]
                if believed:
                    out.append(max(believed, key=lambda r: r.timestamp))
            return out
