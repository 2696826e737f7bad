"""When a crew or a technician is due: on the field's clock, with the wall clock as the fallback.

A crew's travel and repair are field durations (`controller.crews`). The controller used to turn
them into wall deadlines with the city's fixed speed (``clock() + seconds / speed``), which is wrong
as soon as the twins' pace changes while they run (a scenario slows the city to real time around
each fault, `sectors.pace`): a crew dispatched at 30x would arrive thirty times early in the
field. So a deadline is kept in field time, read from the sector's own clock (`FieldView.clock`:
the median of its sensors' newest stamps, which one forged reading cannot move), and is due at the
first report that shows the field past it, as a dispatcher learns of an arrival.

The wall deadline at the city's speed is kept beside it and is what decides when the controller
has no view of the field (a controller run without SCADA, as some tests do). A deadline made with a
field clock does not fall back to it (after a restart the view may not have heard from the sector
yet, and a deadline computed at 30x would send the crew thirty times early), but to `latest`: the
wall time at which the field must have got there even at real time, the slowest pace a scenario
orders. So a sector whose sensors fall silent (a dead data centre stops reporting, and the median
stamp stops with it) still gets its crew, late rather than never.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.messages import Sector
from sectors.pace import real_time

__all__ = ["Deadline", "FieldClock"]

FieldClock = Callable[[Sector], "float | None"]  # a sector's field time now (POSIX s), None if unknown


@dataclass(frozen=True)
class Deadline:
    wall: float  # POSIX wall seconds: the fixed-speed estimate
    field: float | None = None  # POSIX field seconds on the sector's clock, when it was known
    latest: float | None = None  # POSIX wall seconds by which even a real-time field is past it

    @classmethod
    def after(cls, seconds: float, *, sector: Sector, wall_now: float, speed: float,
              field_clock: FieldClock | None) -> Deadline:
        """`seconds` of field time from now."""
        field_now = field_clock(sector) if field_clock is not None else None
        if field_now is None:
            return cls(wall=wall_now + seconds / speed)
        return cls(wall=wall_now + seconds / speed, field=field_now + seconds,
                   latest=wall_now + seconds / real_time(speed))

    def passed(self, *, sector: Sector, wall_now: float, field_clock: FieldClock | None) -> bool:
        if self.field is None:
            return wall_now >= self.wall
        if self.latest is not None and wall_now >= self.latest:
            return True  # the field cannot have been slower than real time: its clock has gone quiet
        field_now = field_clock(sector) if field_clock is not None else None
        return field_now is not None and field_now >= self.field

    def as_fields(self) -> dict[str, float]:
        """The step's payload keys: ``due`` (wall) and, when known, ``due_field`` and ``due_latest``."""
        return {"due": self.wall, **({"due_field": self.field} if self.field is not None else {}),
                **({"due_latest": self.latest} if self.latest is not None else {})}

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Deadline:
        """Read back from a recorded step (`as_fields`); a step recorded before `due_field` existed is wall-only."""
        return cls(wall=float(body["due"]), field=_number(body.get("due_field")), latest=_number(body.get("due_latest")))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
