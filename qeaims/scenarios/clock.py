"""The two clocks a scenario reads: when each block was mined (wall) and what time it was in the city (field).

A city KPI is a field-time figure: "the fault was detected 40 s after it began" means 40 s of the
city's own clock, the clock the twins' physics runs on and their readings are stamped with. A
scenario run at ``--speed 30`` lives through 30 field seconds per wall second, so the software's
wall latency counts thirty-fold in the city, exactly as it would if the city's events really came
that fast. Reporting wall seconds of such a run against targets set in real-world time would flatter
the system by the speed factor; reporting field seconds keeps both runs honest and comparable: at
``--speed 1`` and ``--speed 30`` the field-time KPIs agree as long as the software keeps up.

`BlockStamps` stamps each block with the wall time it was first seen, polling the head ten times a
second on its own thread (a block's own timestamp is not used: a chain that mines several blocks a
second must give each a later second, so under load its clock runs ahead of the wall's).

`TwinClocks` maps a wall time to a sector's field time through what its twin published: every
report period the twin publishes its service level stamped with its clock (``qeaims-svc/<sector>``).
Between two such samples the field clock is interpolated at the measured rate, never past the next
sample; a twin that falls behind its speed therefore shows a slower field clock, and its lateness is
not hidden. With a scenario's `qeaims.scenarios.pacing.Pacemaker` (`paced_by`) the rate between
samples is the pace it ordered at each moment rather than a fixed speed. A field *onset* is the twin's own clock when it applied the injection (its acknowledgement
carries it), so onset and step are read on the same clock.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from datetime import datetime

from chain.rpc import RpcClient
from core.errors import QeaimsError

__all__ = ["BlockStamps", "TwinClocks"]

MAX_JUMP_S = 3600.0  # field seconds a twin's clock may run ahead of its pace between two samples
STALE_S = 30.0  # wall seconds past the last sample (beyond two of its gaps) after which no field time is read


class BlockStamps:
    """Wall time at which each block number was first seen, from a 10 Hz head poll on its own thread."""

    def __init__(self, rpc: RpcClient, *, interval_s: float = 0.1) -> None:
        self._rpc, self._interval = rpc, interval_s
        self._seen: dict[int, float] = {}
        self._head = -1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="block-stamps", daemon=True)

    def start(self) -> BlockStamps:
        self.poll()
        with self._lock:  # blocks before the start are history, not this run's: stamp none of them
            self._seen.clear()
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def poll(self) -> None:
        """Stamp every block up to the chain head that was not stamped yet with the wall clock now."""
        head = int(self._rpc.call("eth_blockNumber"), 16)
        now = time.time()
        with self._lock:
            for block in range(self._head + 1, head + 1):
                self._seen.setdefault(block, now)
            self._head = max(self._head, head)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.poll()
            except QeaimsError:  # the chain paused or restarted: the next poll stamps what it missed
                continue

    def when(self, block: int) -> float | None:
        """Wall time the block was first seen; None for one mined before `start` or not yet seen."""
        with self._lock:
            return self._seen.get(int(block))


class TwinClocks:
    """Per-sector (wall, field) samples from the twins' service messages, and the mapping between them."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._between: Callable[[float, float], float] = lambda a, b: (b - a) * speed
        self.rejected = 0  # samples refused for jumping far ahead of the twin's pace
        self._samples: dict[str, tuple[list[float], list[float]]] = {}  # sector → (walls, fields), wall-sorted
        self._lock = threading.Lock()

    def paced_by(self, field_between: Callable[[float, float], float]) -> None:
        """Read the field seconds between two wall times from a pace schedule (`Pacemaker.field_between`)
        instead of the fixed speed."""
        self._between = field_between

    def record(self, sector: str, wall: float, field: datetime) -> None:
        """One service message: at `wall` the sector's twin stood at `field` (its clock never runs back)."""
        value = field.timestamp()
        with self._lock:
            walls, fields = self._samples.setdefault(sector, ([], []))
            if fields and (value <= fields[-1] or wall < walls[-1]):
                return  # a repeated or reordered message says nothing new
            if fields and value - fields[-1] > MAX_JUMP_S + 4.0 * self.speed * (wall - walls[-1]):
                self.rejected += 1  # a clock far ahead of the pace it keeps (forged, or set wrong) would
                return  # freeze every genuine sample after it: it is not taken
            walls.append(wall)
            fields.append(value)

    def field_at(self, sector: str, wall: float) -> float | None:
        """The sector's field clock (POSIX seconds) at a wall time; None before its first sample."""
        with self._lock:
            walls, fields = self._samples.get(sector, ([], []))
            i = bisect.bisect_right(walls, wall) - 1
            if i < 0:
                return None
            estimate = fields[i] + self._between(walls[i], wall)
            if i + 1 < len(fields):
                return min(estimate, fields[i + 1])
            # past the last sample: extrapolate no further than two of the twin's gaps (a twin that
            # stopped publishing has no clock to read)
            gap = walls[i] - walls[i - 1] if i > 0 else 0.0
            return estimate if wall - walls[i] <= 2.0 * gap + STALE_S else None

    def rate(self, sector: str) -> float | None:
        """Field seconds per wall second the twin actually achieved (its speed, if it kept up)."""
        with self._lock:
            walls, fields = self._samples.get(sector, ([], []))
            if len(walls) < 2 or walls[-1] <= walls[0]:
                return None
            return (fields[-1] - fields[0]) / (walls[-1] - walls[0])
