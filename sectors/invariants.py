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

- it names the instruments its verdict rests on (`Violation.reads`: the level, the pump's own
  flow), apart from those it was only checked against (`Violation.checked`: the balance's other
  meters, a witness); an oracle treats a fault resting on a quarantined instrument as moot
  (`oracles.node.voting`), and one merely checked against a quarantined meter is still voted;
- a level rule is checked against the conservation of mass (`WellBalance`): the level may only
  move as the metered inflow minus the metered pump flows says. A level falsified by a step or a
  ramp, or a running pump reported stopped, breaks the balance, and the violation is then an
  instrument to distrust (`Violation.fault` False), not a failed pump: the level alone for a
  one-row step, otherwise every meter the balance read (`Violation.suspects`), since a biased
  inflow meter breaks it just as a ramped level does. A stop reported on the inflow meter as well
  (it fell by the pump's flow as the pump stopped) while the power meter shows a motor turning is
  a forgery too; an instrument missing or not finite leaves nothing to check, and fails no pump;
- margins hold the rules clear of the controller's scan, and a pump reported stopped must stay
  stopped, with the balance agreeing, for a second row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

__all__ = ["CLOCK", "BlockedSewer", "ConduitRating", "DryWeatherOverflow", "Imbalance", "Invariants",
           "LevelControlledPump", "StationPower", "Violation", "WellBalance", "Window", "manning_m3s"]

Window = Mapping[str, NDArray[np.float64]]
"""Sensor id → its recent values, oldest first (one value per report period, the newest last)."""

CLOCK = "clock/seconds_of_day"
"""A window's entry for its rows' time of day (seconds since the field's midnight, UTC), given by a
caller that knows when the newest row was stamped (`oracles.sector_model.SectorModel.broken_rules`):
a pump run by the clock is called for by the hour, which no instrument reads. A rule without it
stays silent."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which asset the physics says has failed, and on what evidence.

    `fault` False: the rule is broken, but the instruments it read contradict each other (the
    level moved other than the metered flows allow). `suspects` are the instruments any one of
    which may be the one that lies, `sensor` the first of them: one suspect is the instrument to
    distrust; several mean the rule alone cannot say which (`oracles.sector_model` lets the model
    pick one of them, or distrusts none).
    """

    asset: str  # the asset the rule names (the pump that should run)
    sensor: str  # the asset's own sensor that shows it (its run contact), or the first suspect
    reads: tuple[str, ...]  # the other instruments the verdict rests on (the wet-well level, the pump's flow)
    message: str  # in words an operator can read
    fault: bool = True
    checked: tuple[str, ...] = ()  # instruments it was only checked against (the balance's others, a witness)
    suspects: tuple[str, ...] = ()  # `fault` False: the instruments that may lie (`sensor` first)
    alert: bool = False  # one system's alarm that no second one confirms yet (see below)

    # An *alert* is what traffic-incident management calls detection before verification: one
    # system says the asset has failed (an AID camera's stopped vehicle, a signal controller
    # polled dark) and no second system has confirmed it yet. The oracle names it as an ANOMALY
    # of `asset` (`oracles.sector_model.SectorModel.assess`), which tells the operators at once
    # and moves nothing: no isolation is voted and no instrument is distrusted on an alert; the
    # rule's confirmed verdict (a FAULT, or an INTRUSION on the lone instrument) follows as before.


Invariants = Callable[[Window], list[Violation]]
"""A sector's rules: the recent window → the rules it breaks now (empty when all hold)."""


def _finite(series: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
    """`series` as floats, or None if it is missing or holds a value that is not finite (a NaN is
    rejected upstream, `core.messages.Reading`; here it counts as the instrument missing)."""
    if series is None:
        return None
    out = np.asarray(series, dtype=np.float64)
    return out if bool(np.all(np.isfinite(out))) else None


@dataclass(frozen=True)
class Imbalance:
    """A broken balance: why, and which of its instruments may be the one that lies."""

    why: str
    suspects: tuple[str, ...]


@dataclass(frozen=True)
class WellBalance:
    """Conservation of mass in a well of constant plan area: Δlevel = (Σ inflow − Σ outflow)·Δt / area.

    Instantaneous flows sampled once a row miss a pump starting or stopping between two samples,
    and flow meters disagree by a few per cent with the level over a storm's throughput, so the
    balance tolerates, per row, `row_m` (plus `per_change_m` for each pump that changed state in
    that row) and over the whole window `window_m` plus `per_change_m` per change plus
    `throughput_share` of the inflow volume (as level). The defaults hold over weeks of the twin's
    normal weather at a row a minute (largest normal residuals: 0.076 m in a row, 0.31 m over 31 rows).

    A window in which no pump ran is a pure integrator of its inflow: nothing is sampled mid-start,
    and its level may drift from the metered inflow volume only by the meter's calibration
    (`throughput_share`) and `idle_m`. A level ramped a little at a time, within `window_m` a window,
    would otherwise call for an idle pump after an hour or two (review finding 2).

    Which instrument lies: a level stepped in one row breaks one row and then agrees again, and is
    the level's own; a residual that persists (a missing or biased flow, a ramped level) fits a
    falsified level and a falsified flow meter alike, and every instrument is a suspect.
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
    idle_m: float = 0.01

    def sensors(self) -> tuple[str, ...]:
        return (self.level, *self.inflows, *self.outflows)

    def readable(self, window: Window) -> bool:
        """Whether every instrument the balance needs is reported, and finite, over the window."""
        return all(_finite(window.get(n)) is not None for n in (*self.sensors(), *self.statuses))

    def broken(self, window: Window, *, last_rows: int = 2) -> str | None:
        """Why the window's level disagrees with its metered flows, or None if it agrees (or cannot be checked)."""
        found = self.imbalance(window, last_rows=last_rows)
        return None if found is None else found.why

    def imbalance(self, window: Window, *, last_rows: int = 2) -> Imbalance | None:
        """How the window's level disagrees with its metered flows, or None if it agrees.

        None too if an instrument is missing or not finite: there is nothing to check against, and
        a caller must not take that for agreement (`readable`)."""
        series = [_finite(window.get(name)) for name in (self.level, *self.inflows, *self.outflows, *self.statuses)]
        if any(s is None for s in series):
            return None
        arrays = [s for s in series if s is not None]
        level = arrays[0]
        if len(level) < 2:
            return None
        k, n_out = len(self.inflows), len(self.outflows)
        q_in = np.sum(arrays[1:1 + k], axis=0)
        q_out = np.sum(arrays[1 + k:1 + k + n_out], axis=0)
        net = q_in - q_out
        residual = np.diff(level) - (net[1:] + net[:-1]) / 2.0 * self.row_s / self.area_m2
        changes = np.zeros(len(residual))
        running = np.zeros(len(level), dtype=bool)
        for status in arrays[1 + k + n_out:]:
            changes += np.abs(np.diff(status > 0.5).astype(np.float64))
            running |= status > 0.5
        throughput = float(np.sum(np.abs(q_in[1:]) + np.abs(q_in[:-1])) / 2.0 * self.row_s / self.area_m2)
        slack = self.idle_m if not bool(running.any()) else self.window_m + self.per_change_m * float(changes.sum())
        allowed = slack + self.throughput_share * throughput
        excess = np.abs(residual) - self.per_change_m * changes
        j = int(np.argmax(excess))
        # a step: one row breaks, and without it the window agrees (the level moved with the flows since)
        step = float(excess[j]) > self.row_m and abs(float(residual.sum() - residual[j])) <= allowed and \
            int(np.sum(excess > self.row_m)) == 1
        suspects = (self.level,) if step else self.sensors()
        recent = excess[max(len(residual) - last_rows, 0):]
        if float(recent.max()) > self.row_m:
            j = int(np.argmax(recent)) + max(len(residual) - last_rows, 0)
            return Imbalance(f"{self.level} moved {float(np.diff(level)[j]):+.3f} m in one row where the metered "
                             f"flows allow {float(np.diff(level)[j] - residual[j]):+.3f} m", suspects)
        total = float(residual.sum())
        if abs(total) > allowed:
            return Imbalance(f"{self.level} moved {float(level[-1] - level[0]):+.3f} m over {len(residual)} rows where "
                             f"the metered flows allow {float(level[-1] - level[0]) - total:+.3f} m", suspects)
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
    and `corroborated_rows` then suffice (`StationPower`). With `first_row`, a running pump's stop
    that the meter saw in the same row (its draw falling by the motor's share as the run contact
    opens and the flow goes to zero: two independent systems) is named in that row (`_dropped`).

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
    first_row: bool = False  # a running pump's stop that the power meter saw in the same row is named at once

    def _witness(self, window: Window) -> str:
        """What the station's power meter says of this pump's stop: "corroborated" (its motor draws
        nothing), "contradicted" (a motor turns that nothing reported) or "" (no meter, or unreadable)."""
        if self.power is None:
            return ""
        extra = self.power.unexplained(window, self.pump, self.corroborated_rows)
        if extra is None:
            return ""
        return "contradicted" if bool(np.any(extra > self.power.running_kw / 2)) else "corroborated"

    def _dropped(self, window: Window) -> bool:
        """Whether the newest row is a running pump's stop that two independent systems saw alike: the
        pump's own SCADA (run contact open and its flow meter at zero, where the row before it ran with
        flow) and the station's power meter, whose draw unexplained by the other pumps fell in that same
        row from this motor's share (`StationPower.running_kw` plus its flow's) to nothing. The meter
        samples the motor control centre at the row's instant, as the run contact does, so a real trip
        shows on both in the first row; one system alone reporting it still waits for its rows."""
        if not self.first_row or self.power is None:
            return False
        status, flow = _finite(window.get(f"{self.pump}/status")), _finite(window.get(f"{self.pump}/flow_m3s"))
        extra = self.power.unexplained(window, self.pump, 2)
        if status is None or flow is None or extra is None or len(status) < 2 or len(flow) < 2:
            return False
        ran = bool(status[-2] > 0.5) and float(flow[-2]) > self.flow_eps
        off = bool(status[-1] <= 0.5) and abs(float(flow[-1])) <= self.flow_eps
        motor = self.power.running_kw + self.power.kw_per_m3s * float(flow[-2])
        half = self.power.running_kw / 2
        return ran and off and abs(float(extra[-2]) - motor) <= half and float(extra[-1]) <= half

    def _forged_stop(self, window: Window, stop: int, witness: str) -> bool:
        """Whether a stop at row `stop` is reported on the inflow meter too: the trunk sewer's flow
        fell, in the rows since, by about what the pump had been pumping. The sewer upstream does not
        know the pump stopped; an attacker who reports it stopped and wants the balance to agree has to
        take its flow off the inflow as well (review finding 3). A storm's inflow can fall that fast on
        its own, so with a power meter this counts only when the meter, too, says a motor still turns."""
        if self.balance is None or stop < 1 or (self.power is not None and witness != "contradicted"):
            return False
        flows = [_finite(window.get(n)) for n in (*self.balance.inflows, f"{self.pump}/flow_m3s")]
        if any(f is None for f in flows):
            return False
        arrays = [f for f in flows if f is not None]
        q_in, pumped = np.sum(arrays[:-1], axis=0), float(arrays[-1][stop - 1])
        drop = float(q_in[stop - 1] - q_in[stop:].mean())
        return pumped > self.flow_eps and 0.5 * pumped <= drop <= 1.5 * pumped

    def check(self, window: Window) -> list[Violation]:
        level = _finite(window.get(self.level))
        status, flow = window.get(f"{self.pump}/status"), window.get(f"{self.pump}/flow_m3s")
        if level is None or status is None or flow is None:
            return []
        if self.balance is not None and not self.balance.readable(window):
            return []  # the level cannot be checked: no rule may fail a pump on it alone
        dropped = self._dropped(window)
        witness = "corroborated" if dropped else self._witness(window)
        rows = 1 if dropped else min(self.corroborated_rows, self.off_rows) if witness == "corroborated" \
            else self.off_rows
        if len(level) < rows + 1:
            return []
        off = (np.asarray(status) <= 0.5) & (np.abs(np.asarray(flow)) <= self.flow_eps)
        if not bool(np.all(off[-rows:])):
            return []  # running, or not reported stopped long enough for the level (or meter) to agree
        sign = 1.0 if self.rising else -1.0  # in "demand" terms, larger calls for the pump
        demand = sign * level
        past = "above" if self.rising else "below"
        message = ""
        ran = np.flatnonzero(~off[:-rows])
        if not dropped and float(demand[-rows:].min()) >= sign * self.start_m + self.margin_m:
            message = (f"{self.pump} is off while {self.level} has stood at {level[-1]:.2f} m, {past} its start "
                       f"level {self.start_m:.2f} m, for {rows} rows")
        elif ran.size and float(demand[int(ran[-1]):].min()) > sign * self.stop_m + self.stop_margin_m:
            message = (f"{self.pump} stopped with {self.level} at {level[-1]:.2f} m and stays off; the level "
                       f"has not come back to its stop level {self.stop_m:.2f} m since it last ran") if not dropped \
                else (f"{self.pump} stopped in the last row with {self.level} at {level[-1]:.2f} m, above its stop "
                      f"level {self.stop_m:.2f} m, and its motor's draw left the station's meter in the same row")
        if not message:
            return []
        own = (f"{self.pump}/status", f"{self.pump}/flow_m3s")
        reads: tuple[str, ...] = (self.level, own[1])
        checked: tuple[str, ...] = ()
        if witness == "corroborated" and self.power is not None:
            checked = (self.power.sensor,)
            message += " (its motor draws nothing on the station's meter)"
        if self.balance is not None:
            checked = tuple(n for n in dict.fromkeys((*self.balance.sensors(), *checked)) if n not in reads)
            meter = () if self.power is None else (self.power.sensor,)
            if ran.size and self._forged_stop(window, int(ran[-1]) + 1, witness):
                return [Violation(self.pump, own[0], (), f"{message}, but the inflow fell by the pump's own flow "
                                  "in the rows it stopped" + (" and its motor still draws" if meter else "")
                                  + ": the stop is reported, not real", fault=False, checked=(self.level,),
                                  suspects=(*own, *self.balance.inflows, *meter))]
            if not ran.size and witness == "contradicted":
                # off for the whole window while a motor turns that nothing reports: a stop older than the
                # window can no longer be weighed against the inflow, and one that was real was named
                # (after `off_rows`) while it could
                return [Violation(self.pump, own[0], (), f"{message}, but a motor draws on the station's meter "
                                  "that no running pump explains", fault=False, checked=(self.level,),
                                  suspects=(*own, *meter))]
            found = self.balance.imbalance(window)
            if found is not None:
                return [Violation(self.pump, found.suspects[0], (), f"{message}, but {found.why}: the instruments "
                                  "disagree", fault=False, checked=checked, suspects=found.suspects)]
        return [Violation(self.pump, own[0], reads, message, checked=checked)]


# -- gravity sewers: a blockage, and a combined sewer overflow in dry weather ----------------------

@dataclass(frozen=True)
class BlockedSewer:
    """A gravity sewer that carries its catchment's sanitary flow, read for a blockage.

    A town never stops flushing: a sewer below a populated catchment carries at least the night's
    sanitary flow (`base_m3s`), whatever the weather (rain only adds to it). A sewer whose meter has
    fallen, within the window, from a flow to below `dry_share` of that base for `rows` rows carries
    next to nothing: its flow–head relation is broken (the water backs up into the manholes above it),
    or its meter lies.

    Where the network has a witness apart from the meter, it must agree before the sewer is called
    blocked, and a meter it contradicts for `off_rows` rows is the suspect instead:

    - `carried`: the meters below that carry this sewer's flow on (and nothing else metered): a blocked
      sewer starves them, so their sum falls by at least `fell_share` of the flow that vanished (they
      drain what their pipes hold, so it falls over rows, not at once);
    - `head`: the level at the node above it: a blocked sewer's inflow piles up there, and the level
      rises by at least `rise_m` in the dry rows.

    A sewer below a manhole with its own unmetered catchment has neither (its node's residual moves
    with that catchment's flow as much as with the sewer's): its meter's dryness is the evidence.

    `after`: sewers downstream whose blockage starves this one of its outlet: its stop is then their
    backwater, and they are named. `fed`: the metered sewers that are all its node above receives: dry
    too, they leave it nothing to carry (a blockage above), and it is not judged.
    """

    conduit: str  # asset id, e.g. conduit:C3
    flow: str  # its flow meter
    base_m3s: float  # the least flow it carries in normal operation
    carried: tuple[str, ...] = ()
    head: str = ""
    fell_share: float = 0.1
    rise_m: float = 0.0025
    dry_share: float = 0.2
    rows: int = 2
    off_rows: int = 4
    after: tuple[BlockedSewer, ...] = ()
    fed: tuple[str, ...] = ()

    def _stopped(self, window: Window) -> tuple[int, float] | None:
        """(first row of the newest dry stretch, the flow of the row before it), or None."""
        q = _finite(window.get(self.flow))
        if q is None or len(q) < self.rows + 1:
            return None
        dry = q <= self.dry_share * self.base_m3s
        if not bool(np.all(dry[-self.rows:])):
            return None
        wet = np.flatnonzero(~dry)
        if not wet.size:
            return None  # dry for the whole window: older than the window (named while it could be)
        if self.fed:
            above = [_finite(window.get(n)) for n in self.fed]
            if any(x is None for x in above) or \
                    float(np.sum([x[-1] for x in above if x is not None])) <= self.dry_share * self.base_m3s:
                return None  # nothing arrives to carry (or it cannot be read): a blockage above, named there
        return int(wet[-1]) + 1, float(q[int(wet[-1])])

    def _witness(self, window: Window, start: int, carried: float) -> tuple[str, bool] | None:
        """What the witness shows since row `start` (its words, and whether it agrees), or None if
        there is none, or it cannot be read."""
        if self.carried:
            series = [_finite(window.get(n)) for n in self.carried]
            if any(x is None for x in series):
                return None
            below = np.sum([x for x in series if x is not None], axis=0)
            fell = float(below[start - 1] - below[-1])
            return (f"{' + '.join(self.carried)} fell {fell:.4f} m³/s since", fell >= self.fell_share * carried)
        if self.head:
            level = _finite(window.get(self.head))
            if level is None:
                return None
            rose = float(level[-1] - level[start - 1])
            return (f"{self.head} rose {rose:+.4f} m since", rose >= self.rise_m)
        return ("", True)

    def judge(self, window: Window) -> Violation | None:
        """This sewer's violation (a fault, or a meter to distrust), ignoring `after`."""
        stopped = self._stopped(window)
        if stopped is None:
            return None
        start, carried = stopped
        found = self._witness(window, start, carried)
        if found is None:
            return None
        said, agrees = found
        dry_rows = len(window[self.flow]) - start
        gone = (f"{self.flow} fell from {carried:.4f} to {float(window[self.flow][-1]):.4f} m³/s {dry_rows} rows ago, "
                f"below the {self.base_m3s:.4f} m³/s of sanitary flow it always carries")
        witnesses = (*self.carried, *((self.head,) if self.head else ()))
        if agrees:
            return Violation(self.conduit, self.flow, (self.flow,), f"{self.conduit} is blocked: {gone}"
                             + (f", and {said}" if said else ""), checked=witnesses)
        if dry_rows >= self.off_rows:
            return Violation(self.conduit, self.flow, (), f"{gone}, but {said}: the sewer still flows, the meter lies",
                             fault=False, checked=witnesses, suspects=(self.flow,))
        return None

    def check(self, window: Window) -> list[Violation]:
        if any(v is not None and v.fault for v in (below.judge(window) for below in self.after)):
            return []  # backwater from a blockage below: that one is named
        found = self.judge(window)
        return [] if found is None else [found]


def manning_m3s(depth_m: float, diameter_m: float, slope: float, n: float) -> float:
    """Manning's flow in a circular pipe running at `depth_m` (capped at full bore): A·R^(2/3)·S^(1/2)/n."""
    d = float(np.clip(depth_m, 0.0, diameter_m))
    if d <= 0.0:
        return 0.0
    theta = 2.0 * float(np.arccos(1.0 - 2.0 * d / diameter_m))
    area = diameter_m**2 / 8.0 * (theta - float(np.sin(theta)))
    perimeter = diameter_m * theta / 2.0
    return float(area * (area / perimeter) ** (2.0 / 3.0) * np.sqrt(slope) / n)


@dataclass(frozen=True)
class ConduitRating:
    """A sewer discharging freely: the depth at its inlet drives its flow (Manning), and the level meter
    there is read against it.

    While the sewer's outlet is free (the level below it, `tail`, stands under `tail_max_m`), it carries
    what the inlet depth drives; normal operation never carried under `low_share` of Manning's flow at
    the metered depth. A flowing sewer (not dry: `dry_m3s`; a dry one is `BlockedSewer`'s) under it,
    for `rows` rows, while the meters at the inlet node balance (what arrives, `inflow`, leaves through
    this sewer and the weir's `spill` within `agree_m3s`, so no water is piling up there) and the weir
    does not spill, carries all that arrives: the depth reported is not the depth there, and the level
    meter lies. `starved` is the same relation read for a fault: a sewer carrying under `low_share` of
    what the head drives is blocked (`DryWeatherOverflow` asks it of the interceptor below a weir).
    """

    conduit: str
    flow: str
    level: str  # depth at the inlet node
    tail: str  # depth below the outlet
    tail_max_m: float
    diameter_m: float
    slope: float
    n: float
    inflow: str
    spill: str
    low_share: float
    min_depth_m: float  # below it a trickle's depth says too little
    dry_m3s: float
    agree_m3s: float
    spill_eps: float = 1e-4
    rows: int = 2

    def _driven(self, window: Window) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
        """(depths, flows, the flows those depths drive) over the last `rows`, or None if the relation
        says nothing here (an instrument missing, backwater from below, a trickle)."""
        h, q, tail = (_finite(window.get(n)) for n in (self.level, self.flow, self.tail))
        if h is None or q is None or tail is None or len(h) < self.rows:
            return None
        h, q, tail = h[-self.rows:], q[-self.rows:], tail[-self.rows:]
        if float(tail.max()) >= self.tail_max_m or float(h.min()) < self.min_depth_m:
            return None
        return h, q, np.array([manning_m3s(float(d), self.diameter_m, self.slope, self.n) for d in h])

    def starved(self, window: Window) -> bool:
        found = self._driven(window)
        return found is not None and bool(np.all(found[1] < self.low_share * found[2]))

    def check(self, window: Window) -> list[Violation]:
        found = self._driven(window)
        inflow, spill = _finite(window.get(self.inflow)), _finite(window.get(self.spill))
        if found is None or inflow is None or spill is None:
            return []
        h, q, driven = found
        if not bool(np.all((q < self.low_share * driven) & (q > self.dry_m3s))):
            return []
        residual = q + spill[-self.rows:] - inflow[-self.rows:]
        if float(np.abs(residual).max()) > self.agree_m3s or bool(np.any(spill[-self.rows:] > self.spill_eps)):
            return []  # water piling up or spilling at the node: the head may be real (`DryWeatherOverflow`)
        return [Violation(self.conduit, self.level, (), f"{self.level} reads {float(h[-1]):.2f} m, which drives "
                          f"{float(driven[-1]):.3f} m³/s through {self.conduit}, but it carries {float(q[-1]):.4f} "
                          f"m³/s, all that arrives, and the weir does not spill: that depth is not there, the level "
                          "meter lies", fault=False, checked=(self.flow, self.inflow, self.spill),
                          suspects=(self.level,))]


@dataclass(frozen=True)
class DryWeatherOverflow:
    """A combined sewer overflow spilling with no rain: a fault, never weather.

    A CSO weir is set to spill only storm flow, many times the dry-weather flow; one that spills while
    the gauge has read no rain for the whole window and the flow arriving at the chamber (`inflow`)
    stands at dry-weather levels (`dry_inflow_m3s`) spills because something holds the flow back. It
    is named: the interceptor below the weir if it is blocked (`below`: gone dry, or carrying under
    what the chamber's depth drives), else the outfall itself (the weir or its chamber: a crest broken,
    a stop log gone). Not while the wet well the interceptor drains to stands above its inlet (`tail`):
    the station has failed, and its pump rules name it. The spill must show on two devices: its flow
    meter and the regulator's totaliser (`volume`), whose increments must account for at least
    `volume_share` of the metered spill; a spill the totaliser does not see is a meter that lies.
    """

    outfall: str  # asset id, e.g. outfall:CSO
    spill: str  # its flow meter
    volume: str  # its totaliser (m³)
    rain: str  # the rain gauge
    inflow: str  # flow arriving at the chamber
    dry_inflow_m3s: float
    tail: str
    tail_max_m: float
    row_s: float
    below: tuple[BlockedSewer | ConduitRating, ...] = ()
    volume_share: float = 0.5
    spill_eps: float = 1e-4
    rows: int = 2

    def check(self, window: Window) -> list[Violation]:
        series = [_finite(window.get(n)) for n in (self.rain, self.spill, self.volume, self.inflow, self.tail)]
        if any(x is None for x in series) or len(window[self.spill]) < self.rows + 1:
            return []
        rain, spill, volume, inflow, tail = (x for x in series if x is not None)
        if float(rain.max()) > 0.0 or float(inflow.max()) > self.dry_inflow_m3s:
            return []  # rain in the window, or storm flow still draining: the weir may spill
        if not bool(np.all(spill[-self.rows:] > self.spill_eps)) or float(tail[-self.rows:].max()) >= self.tail_max_m:
            return []
        said = (f"{self.outfall} spills {float(spill[-1]):.4f} m³/s with no rain in the window and "
                f"{float(inflow[-1]):.4f} m³/s arriving (dry weather)")
        metered = float(np.sum(spill[-self.rows - 1:-1] + spill[-self.rows:]) / 2.0 * self.row_s)
        totalised = float(volume[-1] - volume[-self.rows - 1])
        if totalised < self.volume_share * metered:
            return [Violation(self.outfall, self.spill, (), f"{said}, but its totaliser counted {totalised:.2f} m³ of "
                              f"the {metered:.2f} m³ metered: the spill is reported, not real", fault=False,
                              checked=(self.volume,), suspects=(self.spill,))]
        for rule in self.below:
            if isinstance(rule, ConduitRating) and rule.starved(window):
                return [Violation(rule.conduit, rule.flow, (rule.flow, rule.level), f"dry-weather overflow: {said}; "
                                  f"{rule.conduit} carries under {rule.low_share:.0%} of what {rule.level} drives: "
                                  "it is blocked", checked=(self.spill, self.volume, self.rain))]
            if isinstance(rule, BlockedSewer):
                found = rule.judge(window)
                if found is not None and found.fault:
                    return [replace(found, message=f"dry-weather overflow: {said}; {found.message}",
                                    checked=tuple(dict.fromkeys((*found.checked, self.spill, self.volume))))]
        return [Violation(self.outfall, self.spill, (self.spill,), f"dry-weather overflow: {said}, and no blockage "
                          "shows below the weir", checked=(self.volume, self.rain, self.inflow))]
