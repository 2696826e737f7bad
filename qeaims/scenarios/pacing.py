"""Virtual time for a scenario: the city at its speed while nothing happens, at real time around each fault.

At ``--speed 30`` a wall second of processing (reading → oracle → chain) is thirty field seconds, so
a sped-up run reports detection and response times that a city living at real time would never see
(`docs/field-time.md`). Co-simulation answers this with virtual time, and so does the scenario
runner: the `Pacemaker` orders every twin to real time (`sectors.pace`) from shortly before each
injection until the fault is settled, and back to the city's speed after. The field-time KPIs of a
fault are then made of real-time processing at any ``--speed``, while the quiet hours between faults
still pass thirty times faster.

When a fault is settled (`settled`): restored around (the last step the report's KPIs read), or
quarantined for an attack, or it failed to inject; and never later than `WINDOW_CAP_S` field
seconds after its onset, so a fault that is never detected does not hold a storm day at real time
for hours. The window opens `LEAD_S` field seconds before the injection is due, so a backlog the
city built at its speed drains first and the fault meets a city keeping up, as a real one does.

The pacemaker also keeps the pace schedule it ordered (`field_between`): the scenario's own clock
(when each step is due, in field seconds since the play began) and `TwinClocks`' mapping from a
block's wall time to field time both integrate it, since a fixed speed no longer holds.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sectors.pace import ORDER_RENEW_S, ORDER_TTL_S, pace_order, real_time

__all__ = ["LEAD_S", "WINDOW_CAP_S", "Pacemaker"]

LEAD_S = 30.0
"""Field seconds before an injection is due at which the city slows to real time: at 30x it is one
wall second, enough for the oracles to drain what they were behind on (their p95 lag on two cores
is under 0.2 s when keeping up)."""
WINDOW_CAP_S = 600.0
"""Field seconds after an onset after which a fault no longer holds the city at real time: three
times the response target (180 s) and twice the storm day's slowest restoration (298 s, issue 16's
sixth note), so every step the KPIs read falls inside it when the system works at all."""


@dataclass
class Pacemaker:
    """Orders the twins' pace and remembers the schedule it ordered.

    `send` delivers one ``qeaims-pace`` payload to every twin (`controller.commander.Commander.pace`).
    With `enabled` False the city stays at `speed` throughout (the schedule is then constant), which
    is how a run is compared with one made before virtual time existed.
    """

    send: Callable[[bytes], None]
    speed: float
    enabled: bool = True
    clock: Callable[[], float] = time.time
    _walls: list[float] = field(default_factory=list)  # when each pace began (wall POSIX s), sorted
    _paces: list[float] = field(default_factory=list)
    _sent: float = float("-inf")
    _windows: list[list[float | None]] = field(default_factory=list)  # [start, end] wall, end None while open
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def real_time(self) -> float:
        """The pace of a slow window (`sectors.pace.real_time`)."""
        return real_time(self.speed)

    def start(self, wall: float | None = None) -> None:
        """Begin the schedule at the city's speed (ending any order a dead run may have left)."""
        now = self.clock() if wall is None else wall
        with self._lock:
            self._walls, self._paces, self._windows = [now], [self.speed], []
        if self.enabled:
            self.send(pace_order(self.speed, hold_s=0.0, reason="scenario start: the city's own speed", now=now))

    def hold(self, slow: bool, reason: str = "") -> None:
        """Called every tick: keep (renew) or open a real-time window with `slow`, else close any."""
        if not self.enabled or self.real_time >= self.speed:
            return  # a city at real time (or slower) has nothing to slow
        now = self.clock()
        is_slow = self.slowed(now)
        if slow and (not is_slow or now - self._sent >= ORDER_RENEW_S):
            self.send(pace_order(self.real_time, hold_s=ORDER_TTL_S, reason=reason, now=now))
            self._sent = now
            if not is_slow:
                self._change(now, self.real_time)
                self._windows.append([now, None])
        elif not slow and is_slow:
            self.send(pace_order(self.speed, hold_s=0.0, reason="settled: back to the city's speed", now=now))
            self._change(now, self.speed)
            self._windows[-1][1] = now

    def stop(self) -> None:
        """End any window (the play is over, or failed): the city returns to its speed at once."""
        if self.enabled and self._windows and self._windows[-1][1] is None:
            now = self.clock()
            self.send(pace_order(self.speed, hold_s=0.0, reason="scenario over", now=now))
            self._change(now, self.speed)
            self._windows[-1][1] = now

    def _change(self, wall: float, pace: float) -> None:
        with self._lock:
            self._walls.append(wall)
            self._paces.append(pace)

    def slowed(self, wall: float) -> bool:
        """Is a real-time window open at `wall`?"""
        return self.pace_at(wall) != self.speed

    def pace_at(self, wall: float) -> float:
        """The pace ordered at a wall time (the city's speed before the schedule began)."""
        with self._lock:
            i = bisect.bisect_right(self._walls, wall) - 1
            return self._paces[i] if i >= 0 else self.speed

    def field_between(self, start: float, end: float) -> float:
        """Field seconds the schedule lets pass between two wall times (negative if `end` < `start`)."""
        if end < start:
            return -self.field_between(end, start)
        with self._lock:
            walls, paces = list(self._walls), list(self._paces)
        total, at = 0.0, start
        i = bisect.bisect_right(walls, start) - 1
        while at < end:
            pace = paces[i] if i >= 0 else self.speed
            upto = min(end, walls[i + 1]) if i + 1 < len(walls) else end
            total += (upto - at) * pace
            at, i = upto, i + 1
        return total

    def wall_after(self, start: float, field_s: float) -> float:
        """The wall time at which `field_s` field seconds will have passed since `start`, if the
        current pace holds from now on (for deadlines: how long to wait for a twin's answer)."""
        now = self.clock()
        done = self.field_between(start, now)
        return now + max(0.0, field_s - done) / self.pace_at(now)

    def windows(self, started: float) -> list[dict[str, float | None]]:
        """The real-time windows so far, in field seconds since `started` (an open one has no end)."""
        with self._lock:
            spans = [list(w) for w in self._windows]
        return [{"from_s": round(self.field_between(started, float(a)), 1) if a is not None else None,
                 "to_s": None if b is None else round(self.field_between(started, float(b)), 1)}
                for a, b in spans]
