"""Physics rules a sector's readings must obey, whatever a learned model thinks of them.

A learned detector judges a row by how far it lies from normal operation; a rule of the plant
says what *cannot* be, in one row: a lift-station pump in automatic control whose wet well stands
above its start level must run. The top BATADAL entries won on exactly such rules (a pump
reported off with flow through it, tank levels that do not match the net inflow). A violation is
a fault the oracle names at once (`oracles.sector_model.SectorModel.assess`), where the model
needs a stretch of rows to be sure.

A rule reads several instruments; an attacker who falsifies one of them (the wet-well level)
could make a healthy pump look failed. So every violation names the sensors it *relied on*
(`reads`), and the oracle calls it an intrusion instead when the model finds one of those alone
explains the row's deviation (`oracles.detect.classify`). Rules hold margins beyond the plant's
own control bands so ordinary transients (the PLC's one-minute scan) never break them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Invariants", "LevelControlledPump", "Violation", "Window"]

Window = Mapping[str, NDArray[np.float64]]
"""Sensor id → its recent values, oldest first (one value per report period, the newest last)."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which asset the physics says has failed, and on what evidence."""

    asset: str  # the asset the rule names (the pump that should run)
    sensor: str  # the asset's own sensor that shows it (its run contact)
    reads: tuple[str, ...]  # the other instruments the rule relied on (the wet-well level)
    message: str  # in words an operator can read


Invariants = Callable[[Window], list[Violation]]
"""A sector's rules: the recent window → the rules it breaks now (empty when all hold)."""


@dataclass(frozen=True)
class LevelControlledPump:
    """A pump its controller runs by a level with hysteresis, and the two rules that follow from it.

    The controller starts the pump when `level` passes `start_m` and stops it only when the level
    has come back to `stop_m`. `rising` says which way starts it: a lift station's wet well rising
    (start above), a water tank draining (start below). So a pump that is off (run contact open
    *and* no flow):

    - while the level has stood `margin_m` past its start level for two rows has failed (the
      controller scanned in between and would have started it);
    - after it ran, although the level has not come within `stop_margin_m` of its stop level
      since, has failed: nothing in automatic control stops it there.

    An operator's or the controller's own stop breaks the second rule too; the oracle treats a
    deviation the controller commanded as moot before any vote (`oracles.node.voting`).
    """

    pump: str  # asset id, e.g. pump:P1
    level: str  # sensor id of the controlling level
    start_m: float
    stop_m: float
    rising: bool  # True: starts when the level rises past start_m; False: when it falls past it
    margin_m: float
    stop_margin_m: float
    flow_eps: float = 1e-4  # below this (m³/s) a pump is not pumping

    def check(self, window: Window) -> list[Violation]:
        level = window.get(self.level)
        status, flow = window.get(f"{self.pump}/status"), window.get(f"{self.pump}/flow_m3s")
        if level is None or status is None or flow is None or len(level) < 2:
            return []
        if status[-1] > 0.5 or abs(flow[-1]) > self.flow_eps:
            return []  # running
        sign = 1.0 if self.rising else -1.0  # in "demand" terms, larger calls for the pump
        demand = sign * np.asarray(level, dtype=np.float64)
        past = "above" if self.rising else "below"
        if float(demand[-2:].min()) >= sign * self.start_m + self.margin_m:
            return [Violation(self.pump, f"{self.pump}/status", (self.level,),
                              f"{self.pump} is off while {self.level} has stood at {level[-1]:.2f} m, {past} its "
                              f"start level {self.start_m:.2f} m, for two rows")]
        ran = np.flatnonzero(np.asarray(status[:-1]) > 0.5)
        if ran.size and float(demand[int(ran[-1]):].min()) > sign * self.stop_m + self.stop_margin_m:
            return [Violation(self.pump, f"{self.pump}/status", (self.level,),
                              f"{self.pump} stopped with {self.level} at {level[-1]:.2f} m; it has not come back "
                              f"to its stop level {self.stop_m:.2f} m since it last ran")]
        return []
