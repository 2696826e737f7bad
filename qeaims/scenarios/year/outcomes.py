"""One fault's course in each world, as spans of service: what the year's KPIs are summed from.

Why spans: availability, unserved demand, water lost and recovery time are all integrals of the
service level over the time a fault disturbs it, so each fault is reduced to a few intervals, each
at a level measured on the twins (`levels`), between instants set by the crews (`dispatch`):

- **baseline** (automation off): ``faulted`` from the onset until the crew arrives, then
  ``manual`` (a water main's segment shut by hand) until the repair is done;
- **controller**: ``faulted`` for ``AUTO_RESPONSE_S``, then ``controlled`` (after its isolation and
  restoration plans) until the repair is done; or, when a prediction brought the crew before the
  failure, only ``controlled`` while the planned repair lasts (the fault never happens).

The twin is evaluated at the nearest of ``REPRESENTATIVE_HOURS`` of a representative day (demand
varies over the day; six hours cover it without a solve per fault hour).
"""

from __future__ import annotations

from dataclasses import dataclass

from qeaims.scenarios.year import assumptions as A
from qeaims.scenarios.year.dispatch import Visit
from qeaims.scenarios.year.faults import Fault
from qeaims.scenarios.year.levels import Levels, State, levels

__all__ = ["REPRESENTATIVE_HOURS", "Outcome", "Span", "baseline_outcome", "controller_outcome", "representative_hour"]

REPRESENTATIVE_HOURS = (2, 6, 10, 14, 18, 22)
_IMPACT = 1e-4  # an availability deficit below this is numerical noise, not an outage


def representative_hour(at_s: float) -> int:
    hour = (at_s / 3600.0) % 24
    return min(REPRESENTATIVE_HOURS, key=lambda h: min(abs(h - hour), 24 - abs(h - hour)))


@dataclass(frozen=True)
class Span:
    start_s: float
    end_s: float
    state: State
    normal: State

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def deficit(self) -> float:
        """Availability lost against the fault-free reference (never negative)."""
        return max(0.0, self.normal.availability - self.state.availability)

    @property
    def unserved(self) -> float:
        return max(0.0, self.state.unserved - self.normal.unserved)


@dataclass(frozen=True)
class Outcome:
    fault: Fault
    spans: tuple[Span, ...]
    averted: bool = False  # a preventive repair came first

    @property
    def outage_s(self) -> float:
        """Field seconds during which the fault (or its planned repair) kept any service below normal:
        the time until the last customer is back."""
        return sum(s.seconds for s in self.spans if s.deficit > _IMPACT)

    @property
    def weighted_outage_s(self) -> float:
        """The outage an affected unit of service saw on average: lost service × time over the most
        lost at once (CAIDI's customer-minutes over customers, for one fault). A restoration that
        brings most customers back in minutes shortens it even while a section waits for the crew."""
        peak = max((s.deficit for s in self.spans), default=0.0)
        if peak <= _IMPACT:
            return 0.0
        return sum(s.deficit * s.seconds for s in self.spans if s.deficit > _IMPACT) / peak

    def clipped(self, horizon_s: float) -> tuple[Span, ...]:
        return tuple(Span(s.start_s, min(s.end_s, horizon_s), s.state, s.normal) for s in self.spans
                     if s.start_s < horizon_s)


def _levels(fault: Fault, at_s: float) -> Levels:
    a = fault.asset
    return levels(a.sector, a.asset_id, a.kind, representative_hour(at_s))


def baseline_outcome(fault: Fault, visit: Visit) -> Outcome:
    lv = _levels(fault, fault.at_s)
    return Outcome(fault, (Span(fault.at_s, visit.arrived_s, lv.faulted, lv.normal),
                           Span(visit.arrived_s, visit.done_s, lv.manual, lv.normal)))


def controller_outcome(fault: Fault, visit: Visit) -> Outcome:
    if visit.job.preventive and visit.arrived_s <= fault.at_s:
        lv = _levels(fault, visit.arrived_s)
        return Outcome(fault, (Span(visit.arrived_s, visit.done_s, lv.controlled, lv.normal),), averted=True)
    lv = _levels(fault, fault.at_s)
    acted = fault.at_s + A.AUTO_RESPONSE_S
    return Outcome(fault, (Span(fault.at_s, acted, lv.faulted, lv.normal),
                           Span(acted, max(acted, visit.done_s), lv.controlled, lv.normal)))
