"""Crews over the year: every work order goes through `controller.crews.CrewPool`, the live controller's pool.

Why an event loop around the pool: over a year, two faults can need a sector's crews at once, and
the second waits; that wait is part of the recovery time in both worlds (with and without the
controller), so it must be simulated, not assumed away. Travel and repair times are the pool's own
(`Assignment`, from each sector plug-in); a preventive visit that finds nothing (a false alarm)
takes ``INSPECTION_S`` on site instead of a repair. When a crew frees up, corrective work goes
before preventive work, then the oldest request first.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from controller.crews import CrewPool
from core.messages import Sector
from qeaims.scenarios.year import assumptions as A

__all__ = ["Job", "Visit", "dispatch"]


@dataclass(frozen=True)
class Job:
    key: str
    sector: Sector
    requested_s: float
    preventive: bool = False
    inspection_only: bool = False  # a false alarm: the crew inspects and finds nothing


@dataclass(frozen=True)
class Visit:
    job: Job
    crew: str
    started_s: float  # the crew leaves
    arrived_s: float
    done_s: float

    @property
    def crew_s(self) -> float:
        return self.done_s - self.started_s


def dispatch(jobs: Sequence[Job], *, crews_per_sector: int = A.CREWS_PER_SECTOR) -> dict[str, Visit]:
    """Every job's visit, in a world with ``crews_per_sector`` crews per sector."""
    pool = CrewPool(per_sector=crews_per_sector)
    pending = sorted(jobs, key=lambda j: (j.requested_s, j.key))
    waiting: list[Job] = []
    running: list[tuple[float, str]] = []  # (done_s, key)
    out: dict[str, Visit] = {}
    i = 0
    while i < len(pending) or running:
        next_request = pending[i].requested_s if i < len(pending) else float("inf")
        if running and running[0][0] <= next_request:
            now, key = heapq.heappop(running)
            pool.release(key)
        else:
            now = next_request
            waiting.append(pending[i])
            i += 1
        waiting.sort(key=lambda j: (j.preventive, j.requested_s, j.key))
        for job in list(waiting):
            got = pool.assign(job.sector, job.key)
            if got is None:
                continue
            waiting.remove(job)
            work = A.INSPECTION_S if job.inspection_only else got.repair_s
            visit = Visit(job, got.crew, now, now + got.travel_s, now + got.travel_s + work)
            out[job.key] = visit
            heapq.heappush(running, (visit.done_s, job.key))
    return out
