"""Energy efficiency: a day of feeder losses with the controller's minimum-loss reconfiguration vs the fixed base topology.

Why a day of hours: losses follow the square of the load, and the daily load profile moves the
best configuration, so one snapshot would over- or under-state the saving. Two electricity twins
run the same day (same seed, same loads): one keeps the base topology (tie switches open); the
other, every hour, takes `controller.electricity.min_loss_configuration` — the controller's own
planner (branch exchange on its fast model, each plan re-checked with pandapower within voltage
and loading limits) — and applies its commands. Losses are the twins' pandapower losses, held
over each hour. The year's figure is the day's saving times 365 (the profile is one weekday; a
seasonal load shape is left out, see docs/year.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.electricity import min_loss_configuration
from core.messages import Sector
from sectors.runner import open_twin

__all__ = ["EnergyDay", "feeder_day"]


@dataclass(frozen=True)
class EnergyDay:
    base_kwh: float  # feeder losses over the day, base topology
    controlled_kwh: float  # the same day with hourly minimum-loss reconfiguration
    switching_ops: int  # switch operations the controller sent over the day
    hours: int

    @property
    def saved_kwh(self) -> float:
        return self.base_kwh - self.controlled_kwh

    @property
    def saved_share(self) -> float:
        return self.saved_kwh / self.base_kwh if self.base_kwh > 0 else 0.0


def feeder_day(*, seed: int = 0, hours: int = 24) -> EnergyDay:
    """Losses over ``hours`` hours from the twin's start (a Monday midnight), each way."""
    base_kwh = controlled_kwh = 0.0
    ops = 0
    with open_twin(Sector.ELECTRICITY, seed=seed) as base, open_twin(Sector.ELECTRICITY, seed=seed) as ctl:
        for hour in range(hours):
            if hour:
                base.advance(3600)
                ctl.advance(3600)
            plan = min_loss_configuration(ctl.twin)
            for command in plan.commands:
                ctl.twin.apply(command)
            ops += len(plan.commands)
            base_kwh += base.twin.total_losses_kw()
            controlled_kwh += ctl.twin.total_losses_kw()
    return EnergyDay(base_kwh, controlled_kwh, ops, hours)
