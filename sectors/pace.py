"""The city's pace: how many field seconds the twins live through per wall second, changeable while they run.

A twin runs at its ``--speed`` (`sectors.publish.TwinPublisher`). A scenario that wants honest
field-time KPIs from a sped-up city slows every twin to real time around each fault (virtual time,
as co-simulation does it; `docs/field-time.md`): processing that takes a wall second then costs one
field second, as it would in the city, while the quiet hours between faults still fly by.

The order travels on each twin's simulation topic (``qeaims-sim/<sector>``, `sectors.remote`: the
topic scenarios already break things through, carried by the secure links where they run) as a
`PaceOrder` (``"op": "pace"``): a pace and the wall time until which it holds. A twin takes an
order the moment it arrives, not at its next step as other controls (a 60-second sewage period at
30x would apply it two wall seconds late, a minute of field time), and falls back to its own speed
when the order expires. The expiry is what makes a slow window safe: a scenario command that dies
in one leaves the city at real time for at most `ORDER_TTL_S`, not for ever. The sender renews the
order while the window lasts (`ORDER_RENEW_S`), which also reaches a twin restarted meanwhile.

The order's wall expiry is read against each twin's own wall clock: on one machine that is the
same clock; across machines it needs the clocks synchronised (NTP), as the ledger's stamps do.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["MAX_PACE", "ORDER_RENEW_S", "ORDER_TTL_S", "Pace", "PaceOrder", "is_pace", "pace_order", "parse_pace", "real_time"]

ORDER_TTL_S = 20.0  # wall seconds an order holds unless renewed
ORDER_RENEW_S = 5.0  # how often a sender renews a standing order (four renewals may be lost)
MAX_PACE = 100_000.0  # as the twins' --speed option


def real_time(speed: float) -> float:
    """The pace of a real-time window for a city whose twins run at `speed`: real time, or the city's own
    speed if that is slower. No order is ever slower, which is what lets a deadline in field time
    (`controller.deadlines`) bound itself in wall time."""
    return min(1.0, speed)


class PaceOrder(BaseModel):
    """Run at `pace` field seconds per wall second until the wall time `until` (POSIX seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["pace"] = "pace"
    pace: float = Field(gt=0, le=MAX_PACE)
    until: float = Field(ge=0)
    reason: str = Field(default="", max_length=200)


def is_pace(payload: bytes) -> bool:
    """Is this simulation-topic message a pace order (to be taken at once) rather than a control?"""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("op") == "pace"


def parse_pace(payload: bytes) -> PaceOrder:
    """The order in a ``qeaims-pace`` message; `ValueError` naming the first thing wrong with it."""
    try:
        return PaceOrder.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"not a pace order: {'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None


class Pace:
    """A twin's current pace: its own speed, or the standing order while it has not expired.

    Thread-safe: orders arrive on the MQTT thread and the stepping thread reads them.
    """

    def __init__(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._order: PaceOrder | None = None
        self._lock = threading.Lock()

    def take(self, order: PaceOrder) -> None:
        with self._lock:
            self._order = order

    def now(self, wall: float | None = None) -> float:
        """Field seconds per wall second at `wall` (default: now)."""
        at = time.time() if wall is None else wall
        with self._lock:
            order = self._order
        return order.pace if order is not None and at < order.until else self.speed


def pace_order(pace: float, *, hold_s: float = ORDER_TTL_S, reason: str = "", now: float | None = None) -> bytes:
    """A ``qeaims-pace`` payload: `pace` for `hold_s` wall seconds from now (0: end the standing order)."""
    start = time.time() if now is None else now
    return PaceOrder(pace=pace, until=start + hold_s, reason=reason).model_dump_json().encode()
