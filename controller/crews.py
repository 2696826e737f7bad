"""Repair crews as simulated agents: a few per sector, each busy for travel plus repair time.

Durations are in the twins' simulated seconds (the controller converts them with the city's speed)
and are planning figures, not measurements: a distribution-line crew takes about half an hour to
reach a site and two hours for a section repair; a water main repair is a day's work; and so on
(`REPAIR_S`, from each sector's plug-in). When every crew of a sector is busy, the isolation with the most critical node gets
the next free one (`CrewPool.assign` is called in priority order by the controller).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.messages import Sector
from sectors.plugin import by_sector

__all__ = ["REPAIR_S", "TRAVEL_S", "Assignment", "CrewPool"]

TRAVEL_S: Mapping[Sector, float] = by_sector(lambda p: p.crew_travel_s)
REPAIR_S: Mapping[Sector, float] = by_sector(lambda p: p.crew_repair_s)


@dataclass(frozen=True)
class Assignment:
    crew: str
    travel_s: float
    repair_s: float

    @property
    def total_s(self) -> float:
        return self.travel_s + self.repair_s


@dataclass
class CrewPool:
    per_sector: int = 2
    busy: dict[str, str] = field(default_factory=dict)  # crew id → the job (proposal) it works on

    def crews(self, sector: Sector) -> list[str]:
        return [f"{sector.value}-crew-{i}" for i in range(1, self.per_sector + 1)]

    def assign(self, sector: Sector, job: str) -> Assignment | None:
        """A free crew of `sector` for `job`, or None if all are busy (the job waits its turn)."""
        for crew in self.crews(sector):
            if self.busy.get(crew) in (None, job):
                self.busy[crew] = job
                return Assignment(crew, TRAVEL_S[sector], REPAIR_S[sector])
        return None

    def release(self, job: str) -> None:
        for crew, held in list(self.busy.items()):
            if held == job:
                del self.busy[crew]

    def hold(self, crew: str, job: str) -> None:
        """Mark `crew` busy with `job` (a controller resuming work it had dispatched before a restart)."""
        self.busy[crew] = job
