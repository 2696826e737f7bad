"""Physics rules a sector's readings must obey, whatever a learned model thinks of them.

A learned detector judges a row by how far it lies from normal operation; a rule of the plant
says what *cannot* be: a lift-station pump in automatic control whose wet well stands above its
start level must run. The top BATADAL entries won on exactly such rules (a pump reported off with
flow through it, tank levels that do not match the net inflow). A broken rule is a fault the
oracle names at once (`oracles.sector_model.SectorModel.assess`), where a model needs a stretch
of rows to be sure.

A rule reads instruments, and an attacker who falsifies them could make a healthy pump look
failed — and have it voted out of service in a row, past every defence the model has. So a rule
never stands on the instruments it judges alone:

- it names every instrument it relied on (`Violation.reads`); an oracle treats a fault whose
  evidence includes a quarantined instrument as moot (`oracles.node.voting`);
- a level rule is checked against the conservation of mass (`WellBalance`): the level may only
  move as the metered inflow minus the metered pump flows says. A level falsified by a step or a
  ramp, or a running pump reported stopped, breaks the balance, and the violation is then an
  instrument to distrust (`Violation.fault` False), not a failed pump;
- margins hold the rules clear of the controller's scan, and a pump reported stopped must stay
  stopped, with the balance agreeing, for a second row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Invariants", "LevelControlledPump", "StationPower", "Violation", "WellBalance", "Window"]

Window = Mapping[str, NDArray[np.float64]]
"""Sensor id → its recent values, oldest first (one value per report period, the newest last)."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which asset the physics says has failed, and on what evidence.

    `fault` False: the rule is broken, but the instruments it read contradict each other (the
    level moved other than the metered flows allow); `sensor` is then the instrument to distrust.
    """

    asset: str  # the asset the rule names (the pump that should run)
    sensor: str  # the asset's own sensor that shows it (its run contact), or the instrument to distrust
    reads: tuple[str, ...]  # every other instrument the rule relied on (the wet-well level, the flows)
    message: str  # in words an operator can read
    fault: bool = True


Invariants = Callable[[Window], list[Violation]]
"""A sector's rules: the recent window → the rules it breaks now (empty when all hold)."""


@dataclass(frozen=True)
class WellBalance:
    """Conservation of mass in a well of constant plan area: Δlevel = (Σ inflow − Σ outflow)·Δt / area.

    Instantaneous flows sampled once a row miss a pump starting or stopping between two samples,
    and flow meters disagree by a few per cent with the level over a storm's throughput, so the
    balance tolerates, per row, `row_m` (plus `per_change_m` for each pump that changed state in
    that row) and over the whole window `window_m` plus `per_change_m` per change plus
    `throughput_share` of the inflow volume (as level). The defaults hold over weeks of the twin's
    normal weather at a row a minute (largest normal residuals: 0.076 m in a row, 0.31 m over 31 rows).
    """

    level: str
    inflows: tuple[str, ...]
    outflows: tuple[str, ...]
    statuses: tuple[str, ...]  # run contacts of the pumps behind the outflows (their changes excuse a residual)
    area_m2: float
    row_s: float
    row_m: float = 0.1
    window_m: float = 0.1
    per_change_m: float = 0.08
    throughput_share: float = 0.04

    def sensors(self) -> tuple[str, ...]:
        return (self.level, *self.inflows, *self.outflows)

    def broken(self, window: Window, *, last_rows: int = 2) -> str | None:
        """Why the window's level disagrees with its metered flows, or None if it agrees."""
        series = [window.get(name) for name in (self.level, *self.inflows, *self.outflows, *self.statuses)]
        if any(s is None for s in series):
            return None  # a sensor the balance needs is not reported: nothing to check it against
        level = np.asarray(series[0], dtype=np.float64)
        if len(level) < 2:
            return None
        k = len(self.inflows)
        q_in = np.sum([np.asarray(s, dtype=np.float64) for s in series[1:1 + k]], axis=0)
        q_out = np.sum([np.asarray(s, dtype=np.float64) for s in series[1 + k:1 + k + len(self.outflows)]], axis=0)
        net = q_in - q_out
        residual = np.diff(level) - (net[1:] + net[:-1]) / 2.0 * self.row_s / self.area_m2
        changes = np.zeros(len(residual))
        for status in series[1 + k + len(self.outflows):]:
            changes += np.abs(np.diff(np.asarray(status, dtype=np.float64) > 0.5).astype(np.float64))
        recent = slice(max(len(residual) - last_rows, 0), None)
        worst = np.abs(residual[recent]) - self.per_change_m * changes[recent]
        if float(worst.max()) > self.row_m:
            j = int(np.argmax(worst)) + recent.indices(len(residual))[0]
            return (f"{self.level} moved {float(np.diff(level)[j]):+.3f} m in one row where the metered flows "
                    f"allow {float(np.diff(level)[j] - residual[j]):+.3f} m")
        throughput = float(np.sum(np.abs(q_in[1:]) + np.abs(q_in[:-1])) / 2.0 * self.row_s / self.area_m2)
        allowed = self.window_m + self.per_change_m * float(changes.sum()) + self.throughput_share * throughput
        total = float(residual.sum())
        if abs(total) > allowed:
            return (f"{self.level} moved {float(level[-1] - level[0]):+.3f} m over {len(residual)} rows where the "
                    f"metered flows allow {float(level[-1] - level[0]) - total:+.3f} m")
        return None


@dataclass(frozen=True)
class StationPower:
    """A pumping station's power meter, read as a witness of which pumps' motors turn.

    The meter is a device apart from the pumps' run contacts and flow meters (the motor control
    centre's), so a pump its run contact and flow meter report stopped, while the meter draws what
    the running pumps alone cannot explain, may have been reported stopped falsely. The meter never
    decides alone: it only lets a stop that it corroborates be named sooner
    (`LevelControlledPump.corroborated_rows`); one that it contradicts waits for the full
    `LevelControlledPump.off_rows`, when the mass balance has seen enough to say which instrument lies.
    """

    sensor: str
    aux_kw: float  # the station's own load while powered
    running_kw: float  # a turning motor's draw at no flow
    kw_per_m3s: float  # and per m³/s it lifts
    pumps: tuple[str, ...]  # every pump on the meter (asset ids)

    def unexplained(self, window: Window, without: str, rows: int) -> NDArray[np.float64] | None:
        """Per row of the last `rows`, the draw the station's load and the *other* pumps reported
        running do not explain (None if an instrument is missing or not finite)."""
        measured = window.get(self.sensor)
        if measured is None or len(measured) < rows:
            return None
        expected = np.full(rows, self.aux_kw)
        for pump in self.pumps:
            if pump == without:
                continue
            status, flow = window.get(f"{pump}/status"), window.get(f"{pump}/flow_m3s")
            if status is None or flow is None:
                return None
            on = np.asarray(status[-rows:], dtype=np.float64) > 0.5
            expected = expected + on * (self.running_kw + self.kw_per_m3s * np.asarray(flow[-rows:], dtype=np.float64))
        out = np.asarray(measured[-rows:], dtype=np.float64) - expected
        return out if bool(np.all(np.isfinite(out))) else None


@dataclass(frozen=True)
class LevelControlledPump:
    """A pump its controller runs by a level with hysteresis, and the two rules that follow from it.

    The controller starts the pump when `level` passes `start_m` and stops it only when the level
    has come back to `stop_m`. `rising` says which way starts it: a lift station's wet well rising
    (start above), a water tank draining (start below). So a pump that is off (run contact open
    *and* no flow):

    - for `off_rows` rows while the level has stood `margin_m` past its start level has failed
      (the controller scanned in between and would have started it);
    - for `off_rows` rows after it ran, although the level has not come within `stop_margin_m`
      of its stop level since, has failed: nothing in automatic control stops it there.

    Several rows off, not one: a running pump falsely reported stopped shows in the balance only
    once enough of its flow has gone missing from the metered outflow (two minute rows; four rows
    at 30 s). A station `power` meter that shows the motor drawing nothing corroborates the stop,
    and `corroborated_rows` then suffice (`StationPower`).

    With a `balance`, a broken rule counts only if the level agrees with the metered flows;
    otherwise the level (or a flow meter) is what is wrong. `margin_m` should exceed what the
    balance lets a level drift unnoticed in a quiet well (`WellBalance.window_m`): a falsified
    level then cannot call for an idle healthy pump without breaking the balance.

    A stop the controller commanded (its lockout of a failed pump) breaks the second rule too; it
    is commanded only once the node is isolated, when a further vote is moot.
    """

    pump: str  # asset id, e.g. pump:P1
    level: str  # sensor id of the controlling level
    start_m: float
    stop_m: float
    rising: bool  # True: starts when the level rises past start_m; False: when it falls past it
    margin_m: float
    stop_margin_m: float
    flow_eps: float = 1e-4  # below this (m³/s) a pump is not pumping
    balance: WellBalance | None = None
    off_rows: int = 2  # rows a pump must be reported off before a rule may call it failed
    power: StationPower | None = None
    corroborated_rows: int = 2  # fewer rows suffice when the power meter shows its motor not turning

    def _rows_needed(self, window: Window) -> tuple[int, bool]:
        """How many rows off make a failure here, and whether the power meter corroborated the stop."""
        if self.power is None:
            return self.off_rows, False
        extra = self.power.unexplained(window, self.pump, self.corroborated_rows)
        if extra is None or bool(np.any(extra > self.power.running_kw / 2)):
            return self.off_rows, False  # no witness, or a motor turns that nothing reported: wait
        return min(self.corroborated_rows, self.off_rows), True

    def check(self, window: Window) -> list[Violation]:
        level = window.get(self.level)
        status, flow = window.get(f"{self.pump}/status"), window.get(f"{self.pump}/flow_m3s")
        if level is None or status is None or flow is None:
            return []
        rows, witnessed = self._rows_needed(window)
        if len(level) < rows + 1 or not bool(np.all(np.isfinite(np.asarray(level[-rows:], dtype=np.float64)))):
            return []
        off = (np.asarray(status) <= 0.5) & (np.abs(np.asarray(flow)) <= self.flow_eps)
        if not bool(np.all(off[-rows:])):
            return []  # running, or not reported stopped long enough for the level (or meter) to agree
        sign = 1.0 if self.rising else -1.0  # in "demand" terms, larger calls for the pump
        demand = sign * np.asarray(level, dtype=np.float64)
        past = "above" if self.rising else "below"
        message = ""
        if float(demand[-rows:].min()) >= sign * self.start_m + self.margin_m:
            message = (f"{self.pump} is off while {self.level} has stood at {level[-1]:.2f} m, {past} its start "
                       f"level {self.start_m:.2f} m, for {rows} rows")
        else:
            ran = np.flatnonzero(~off[:-rows])
            if ran.size and float(demand[int(ran[-1]):].min()) > sign * self.stop_m + self.stop_margin_m:
                message = (f"{self.pump} stopped with {self.level} at {level[-1]:.2f} m and stays off; the level "
                           f"has not come back to its stop level {self.stop_m:.2f} m since it last ran")
        if not message:
            return []
        reads: tuple[str, ...] = (self.level, f"{self.pump}/flow_m3s")
        if witnessed and self.power is not None:
            reads = (*reads, self.power.sensor)
            message += " (its motor draws nothing on the station's meter)"
        if self.balance is not None:
            reads = tuple(dict.fromkeys((*reads, *self.balance.sensors())))
            why = self.balance.broken(window)
            if why is not None:
                return [Violation(self.pump, self.level, reads, f"{message}, but {why}: the instruments disagree",
                                  fault=False)]
        return [Violation(self.pump, f"{self.pump}/status", reads, message)]

