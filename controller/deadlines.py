"""When a crew or a technician is due: on the field's clock, with the wall clock as the fallback.

A crew's travel and repair are field durations (`controller.crews`). The controller used to turn
them into wall deadlines with the city's fixed speed (``clock() + seconds / speed``), which is wrong
as soon as the twins' pace changes while they run (a scenario slows the city to real time around
each fault, `sectors.pace`): a crew dispatched at 30x would arrive thirty times early in the
field. So a deadline is kept in field time, read from the sector's own clock (`FieldView.clock`:
the median of its sensors' newest stamps, which one forged reading cannot move), and is due at the
first report that shows the field past it, as a dispatcher learns of an arrival.

The wall deadline is kept beside it and is what decides when the controller has no view of the
field (a controller run without SCADA, as some tests do). A deadline made with a field clock waits
for that clock: after a restart the view may not have heard from the sector yet, and the wall
deadline, computed at a pace that may no longer hold, would send the crew early.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.messages import Sector

__all__ = ["Deadline", "FieldClock"]

FieldClock = Callable[[Sector], "float | None"]  # a sector's field time now (POSIX s), None if unknown


@dataclass(frozen=True)
class Deadline:
    wall: float  # POSIX wall seconds: the fixed-speed estimate
    field: float | None = None  # POSIX field seconds on the sector's clock, when it was known

    @classmethod
    def after(cls, seconds: float, *, sector: Sector, wall_now: float, speed: float,
              field_clock: FieldClock | None) -> Deadline:
        """`seconds` of field time from now."""
        field_now = field_clock(sector) if field_clock is not None else None
        return cls(wall=wall_now + seconds / speed, field=None if field_now is None else field_now + seconds)

    def passed(self, *, sector: Sector, wall_now: float, field_clock: FieldClock | None) -> bool:
        if self.field is None:
            return wall_now >= self.wall
        field_now = field_clock(sector) if field_clock is not None else None
        return field_now is not None and field_now >= self.field

    def as_fields(self) -> dict[str, float]:
        """The step's payload keys: ``due`` (wall) and, when known, ``due_field``."""
        return {"due": self.wall, **({"due_field": self.field} if self.field is not None else {})}

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Deadline:
        """Read back from a recorded step (`as_fields`); a step recorded before `due_field` existed is wall-only."""
        field = body.get("due_field")
        return cls(wall=float(body["due"]), field=float(field) if isinstance(field, int | float) else None)
