"""How late readings reach an oracle, hop by hop, from the traces twins put on their batches (`bus.mqtt.Trace`).

A reading is *stamped* when its gateway's poll completes (for a twin: the moment its step returned
the snapshot). From there it crosses four hops, each measured in wall seconds on this machine's
clock (twins, broker and oracles share it in the one-machine city; across machines it needs NTP):

- ``publish``: stamped → sent (encoding, and the secure link's sealing when links are on);
- ``broker``: sent → received by the oracle's MQTT client (the broker and both network stacks);
- ``store``: received → committed to the oracle's telemetry store (the sink's queue and the commit);
- ``total``: stamped → stored, what "readings reach every oracle within a second" is about.

`HopLatency` keeps the last `window` samples per hop and gives nearest-rank percentiles; the oracle
logs them as an ``ingest-latency`` line every `report_every_s` (`qeaims ps --latency` shows the latest).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from bus.mqtt import Trace

__all__ = ["HOPS", "HopLatency"]

HOPS = ("publish", "broker", "store", "total")


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class HopLatency:
    """Rolling per-hop latencies of traced batches (thread-safe: paho's thread and the store's)."""

    def __init__(self, window: int = 2000) -> None:
        self._hops: dict[str, deque[float]] = {hop: deque(maxlen=window) for hop in HOPS}
        self._lock = threading.Lock()
        self.batches = 0
        self.skewed = 0  # traces ignored: hop times out of order or far from this machine's clock

    def received(self, trace: Trace, at: float | None = None) -> float:
        """A traced batch arrived: record its first two hops; returns the arrival time for `stored`."""
        now = time.time() if at is None else at
        with self._lock:
            self._hops["publish"].append(max(0.0, trace.sent - trace.stamped))
            self._hops["broker"].append(max(0.0, now - trace.sent))
            self.batches += 1
        return now

    def stored(self, trace: Trace, received: float, at: float | None = None) -> None:
        """The batch's readings are committed: record the last hop and the whole way."""
        now = time.time() if at is None else at
        with self._lock:
            self._hops["store"].append(max(0.0, now - received))
            self._hops["total"].append(max(0.0, now - trace.stamped))

    def summary(self) -> dict[str, Any]:
        """p50/p95/max per hop in seconds (None before any traced batch), and how many batches."""
        with self._lock:
            hops = {hop: list(values) for hop, values in self._hops.items()}
            batches = self.batches
        out: dict[str, Any] = {"batches": batches, "skewed": self.skewed}
        for hop, values in hops.items():
            out[hop] = {"p50": _rounded(_quantile(values, 0.5)), "p95": _rounded(_quantile(values, 0.95)),
                        "max": _rounded(max(values) if values else None)}
        return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
