"""The road grid's rules (`sectors.invariants`): a camera's stopped vehicle, or a signal controller gone
dark, confirmed by a second system.

A signal outage is `DarkSignal`'s (the controller's health as the UTC centre polls it, against the
police dispatch's record and the junction's loops); a loop's speed held against its own flow and
density (q = k·v) is `LoopIdentity`'s, which also vouches for the speeds it bears out (`vouches`); the
rest of this note is the incident rule's.

A crash that blocks the lane (the grid's streets have one lane a way) is seen first by the link's
video automatic-incident-detection (AID) camera, ``link:A-B/stopped_vehicle``, within seconds. An
attacker who falsifies that one alarm must not get a healthy street closed, so the camera is
weighed against two different systems: the police dispatch's CAD record of the crash
(``link:A-B/cad_incident``, once the first call is taken: `sectors.transportation.twin.CAD_DELAY_S`)
and the link's loop detectors.

- camera alarm, and either the CAD's record or the loops' mean speed at most :data:`STOPPED_KMH` in
  each of the last :data:`ROWS` rows with vehicles on the link (traffic stands behind the stopped
  vehicle): an incident, a FAULT of the link, named as soon as the second system agrees;
- camera alarm alone for :data:`CONTRADICT_ROWS` rows, while the loops saw vehicles pass at
  :data:`FLOWING_KMH` or more in each of them: nothing blocks the lane, so the camera is the instrument to distrust
  (`Violation.fault` False: an INTRUSION on it, and the oracles quarantine it); the same for a CAD
  record that neither the camera nor the loops bear out;
- anything else (one system alone, and no vehicles on the link or speeds in between): an *alert*
  (`sectors.invariants.Violation.alert`): the oracles name the link in an ANOMALY in the row the
  alarm arrives — the incident is *detected*, in the sense of traffic-incident management's
  timeline (detection, then verification) — and nothing moves until a second system confirms it.

Why these numbers (`tests/sectors/test_transport_rules.py` keeps them honest): over three normal
morning peaks (seeds 1–3, 07:00–08:30, 30-second rows, every link) a loop's speed was at or below
10 km/h in a single row 4.6 % of the time with vehicles present (a platoon waiting at a red light),
but never in two rows running: the slowest two-row pair was 16.7 km/h.

What it does not stop: an attacker who falsifies two systems alike (the camera and the CAD, or the
camera and the loop's speed) has a street closed; a closure is reversible, and the controller
reopens the street once the incident is cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sectors.invariants import Violation, Window

from .network import ALL_WAY_STOP_VEH_S, BLOCK_M, DELTAN, SIGNALS, approaches, exits, link_name, links

__all__ = ["CONTRADICT_ROWS", "DARK_RULES", "FLOWING_KMH", "IDENTITY_DEFICIT_VEH", "IDENTITY_EXCESS_VEH",
           "IDENTITY_ROWS", "IDENTITY_RULES", "PASS_ROWS", "ROWS", "ROW_S", "RULES", "STANDSTILL_KMH",
           "STOPPED_KMH",
           "DarkSignal", "IncidentCamera", "LoopIdentity", "all_way_bound", "dark_rules_for", "identity_rules_for",
           "invariants", "loop_invariants", "rules_for", "vouches"]

STOPPED_KMH = 10.0
"""Mean speed at or below this in every one of the last :data:`ROWS` rows: traffic is standing."""
FLOWING_KMH = 30.0
"""Mean speed at or above this in every one of the last :data:`ROWS` rows: traffic passes freely."""
ROWS = 2
"""Rows the loops must stand over: one 60-second signal cycle at 30-second rows (a red light stops a
platoon for one row, never for a whole cycle)."""
CONTRADICT_ROWS = 3
"""Rows a lone alarm must have stood, with the loops seeing traffic pass in every one of them, before it
is called false: the row the crash happened in still shows the traffic from before it, and a 90 %
blockage still lets a platoon through now and then."""


@dataclass(frozen=True)
class IncidentCamera:
    """The rule for one link: its AID camera's alarm, the CAD's record, its loops' mean speed and density."""

    link: str  # ``link:A-B``
    camera: str
    cad: str
    speed: str
    density: str

    def sensors(self) -> tuple[str, str, str, str]:
        return self.camera, self.cad, self.speed, self.density

    def _loops(self, window: Window, rows: int = ROWS) -> str:
        """What the loops say over the last `rows` rows: "standing", "flowing" or "" (no evidence)."""
        speed = np.asarray(window[self.speed][-rows:], dtype=np.float64)
        density = np.asarray(window[self.density][-rows:], dtype=np.float64)
        if len(speed) < rows or not (np.all(np.isfinite(speed)) and np.all(np.isfinite(density))):
            return ""
        if not np.all(density > 0):
            return ""  # nobody on the link to see a stopped lane or free traffic by
        if np.all(speed <= STOPPED_KMH):
            return "standing"
        return "flowing" if np.all(speed >= FLOWING_KMH) else ""

    def check(self, window: Window) -> list[Violation]:
        if any(name not in window or not len(window[name]) for name in self.sensors()):
            return []
        camera, cad = float(window[self.camera][-1]) >= 0.5, float(window[self.cad][-1]) >= 0.5
        if not (camera or cad):
            return []
        loops = self._loops(window)
        if camera and cad:
            return [Violation(self.link, self.camera, (self.cad,),
                              f"{self.link}: the AID camera sees a stopped vehicle and the police dispatch has "
                              "the crash on record")]
        if camera and loops == "standing":
            return [Violation(self.link, self.camera, (self.speed, self.density),
                              f"{self.link}: the AID camera sees a stopped vehicle and traffic stands behind it "
                              f"(at most {STOPPED_KMH:.0f} km/h over the last {ROWS} rows)")]
        alone, other = (self.camera, self.cad) if camera else (self.cad, self.camera)
        stood = np.asarray(window[alone][-CONTRADICT_ROWS:], dtype=np.float64)
        if len(stood) == CONTRADICT_ROWS and np.all(stood >= 0.5) and self._loops(window, CONTRADICT_ROWS) == "flowing":
            return [Violation(self.link, alone, (other, self.speed, self.density),
                              f"{alone} reports a crash that {other} does not, and the loops saw traffic pass "
                              f"at {FLOWING_KMH:.0f} km/h or more in all {CONTRADICT_ROWS} rows since", fault=False)]
        return [Violation(self.link, alone, (), f"{alone} reports a crash on {self.link}, not yet confirmed by "
                          f"{other} or the loops", fault=False, alert=True)]


def rules_for(names: Iterable[str]) -> tuple[IncidentCamera, ...]:
    return tuple(IncidentCamera(f"link:{n}", f"link:{n}/stopped_vehicle", f"link:{n}/cad_incident",
                                f"link:{n}/speed_kmh", f"link:{n}/density_veh_km") for n in names)


RULES = rules_for(link_name(a, b) for a, b, _ in links())

ROW_S = 30.0
"""The loops' report period (`sectors.transportation.plugin`'s ``report_period_s``): a row's flow in
veh/h counts the vehicles of these seconds."""
PASS_ROWS = 4
"""Rows over which a junction's throughput is held against what an all-way stop can pass (see
`DarkSignal`): two signal cycles. Over three normal morning peaks (seeds 1–3, 07:00–08:30, 30-second
rows, every signalised junction: 2,124 windows) a working junction passed 36 vehicles in 4 rows on
average, and no more than an all-way stop can (:func:`all_way_bound`, 23.75) in 4–13 % of the
windows: its platoons of 5 cross in bunches and a quiet minute happens. Over 2 rows that share was
too large for a lone flag to be judged soon; over 4 a falsified flag is judged in its fourth row
most of the time, and a row or two later otherwise."""
STANDSTILL_KMH = 5.0
"""An approach whose loops read at most this mean speed, with vehicles on it, is at a standstill.
Over the same 2,124 normal windows, a junction that passed no more than an all-way stop can while
one of its approaches stood still in each of the 4 rows never happened (nor with one platoon more
allowed); at the incident rule's :data:`STOPPED_KMH` (10) it happened twice (junction n22, seeds 1
and 3: a red light and a quiet minute), so the stricter standstill is the one used. On a dark
junction the approaches queue within 2–4 rows and this names it from the 4th to the 10th row after
the outage (the same seeds, every junction): later than the dispatch's record, which it backs up."""
_STEP_S = 5.0  # the twin's uxsim step (`sectors.transportation.twin.STEP_S`): the junction's capacity accrues per step


def all_way_bound(rows: int) -> float:
    """The most vehicles a dark junction (an all-way stop) can pass in `rows` rows.

    The twin's all-way stop passes :data:`~.network.ALL_WAY_STOP_VEH_S` a second, a platoon of
    :data:`~.network.DELTAN` cars at a time once that much capacity has accrued (uxsim's node
    capacity), and may hold at most one platoon's worth plus one step's accrual at the start of the
    window: no more than this can pass however long the queues, and a dark junction that counts more
    is not dark."""
    return ALL_WAY_STOP_VEH_S * (rows * ROW_S + _STEP_S) + DELTAN


@dataclass(frozen=True)
class DarkSignal:
    """The rule for one signalised junction: its controller's health against the police dispatch and the loops.

    A traffic signal gone dark (a power cut at its cabinet, a controller fault that drops it to
    dark) is seen by the urban traffic control (UTC) centre's poll of the controller in the same
    second: ``node:nRC/controller_ok`` reads 0. An attacker who falsifies that one flag must not
    have traffic diverted from a working junction, so it is weighed against two other systems:
    the police dispatch's CAD record of the dark signal (``node:nRC/cad_signal_out``, once the first
    driver's call is taken, `sectors.transportation.twin.CAD_DELAY_S`), and the loops on the
    junction's exits, which count every vehicle that passes it.

    - controller dark and the CAD's record: the signal is out, a FAULT of the junction, named in the
      row the record arrives (the second row at 30-second rows);
    - controller dark and the loops: over the last :data:`PASS_ROWS` rows the junction passed no more
      than an all-way stop can (:func:`all_way_bound`) while vehicles stood still on one of its
      approaches in every row (:data:`STANDSTILL_KMH`): a FAULT too, for a dark signal nobody has
      called in yet (the 4th to the 10th row);
    - one system alone for :data:`PASS_ROWS` rows while the junction passed more vehicles than an
      all-way stop can pass in that time: the junction is not dark, and the lone flag is the
      instrument to distrust (`Violation.fault` False: an INTRUSION on it, quarantined, and no
      traffic is diverted);
    - anything else (one system alone over quiet traffic): an alert, an ANOMALY naming the
      junction that moves nothing (`sectors.invariants.Violation.alert`), until the above decide.

    Not in the first row: the flag is alone there (the CAD needs its minute), and the loops cannot
    tell a dark junction from a working one in 30 seconds: an all-way stop may pass two platoons in
    a row (:func:`all_way_bound` of one row is 10.25 vehicles), and a working junction passed 9 on
    average, 0 to 35, and no more than that in 74 % of its rows (the normal peaks of :data:`PASS_ROWS`).

    Thresholds are fixed by the junction's physics (the all-way stop's capacity: in the field, that
    of the junction's geometry; here the twin's, :data:`~.network.ALL_WAY_STOP_VEH_S`) and chosen on
    normal mornings only (:data:`PASS_ROWS`, :data:`STANDSTILL_KMH`); the outages only showed how
    soon they name one.

    What it does not stop: an attacker who falsifies both the flag and the dispatch's record has
    traffic diverted from a working junction (a diversion is advice, and is lifted when the crew
    finds the signal working); one who falsifies the flag while a crash downstream holds the
    junction's traffic at a standstill may too, and the diversion then sends traffic away from a
    jammed junction, which does no harm.
    """

    node: str  # ``node:nRC``
    health: str
    cad: str
    exits: tuple[str, ...]  # the flow sensors of the links leaving the junction
    speeds: tuple[str, ...]  # the approaches' mean speed
    densities: tuple[str, ...]  # the approaches' density

    def sensors(self) -> tuple[str, ...]:
        return self.health, self.cad, *self.exits, *self.speeds, *self.densities

    def passed(self, window: Window, rows: int = PASS_ROWS) -> float | None:
        """Vehicles that passed the junction over the last `rows` rows (None: too few rows, or one not finite)."""
        flows = np.asarray([window[name][-rows:] for name in self.exits], dtype=np.float64)
        if flows.shape[1] < rows or not np.all(np.isfinite(flows)):
            return None
        return float(flows.sum()) * ROW_S / 3600.0

    def _standing(self, window: Window, rows: int = PASS_ROWS) -> bool:
        """Whether in each of the last `rows` rows vehicles stood still on one of the junction's approaches
        (:data:`STANDSTILL_KMH`), as they queue on every approach of a dark junction."""
        speed = np.asarray([window[name][-rows:] for name in self.speeds], dtype=np.float64)
        density = np.asarray([window[name][-rows:] for name in self.densities], dtype=np.float64)
        if speed.shape[1] < rows or not (np.all(np.isfinite(speed)) and np.all(np.isfinite(density))):
            return False
        return bool(np.all(np.any((speed <= STANDSTILL_KMH) & (density > 0), axis=0)))

    def check(self, window: Window) -> list[Violation]:
        if any(name not in window or not len(window[name]) for name in self.sensors()):
            return []
        dark, called = float(window[self.health][-1]) < 0.5, float(window[self.cad][-1]) >= 0.5
        if not (dark or called):
            return []
        if dark and called:
            return [Violation(self.node, self.health, (self.cad,),
                              f"{self.node}: the UTC centre's poll shows its signal controller dark and the police "
                              "dispatch has the dark signal on record")]
        passed = self.passed(window)
        bound = all_way_bound(PASS_ROWS)
        loops = (*self.exits, *self.speeds, *self.densities)
        if dark and passed is not None and passed <= bound and self._standing(window):
            return [Violation(self.node, self.health, loops,
                              f"{self.node}: the UTC centre's poll shows its signal controller dark, and the junction "
                              f"passed {passed:.0f} vehicles in {PASS_ROWS} rows, no more than an all-way stop can "
                              f"({bound:.0f}), while traffic stood on its approaches")]
        alone, other = (self.health, self.cad) if dark else (self.cad, self.health)
        flagged = np.asarray(window[alone][-PASS_ROWS:], dtype=np.float64)
        lone = flagged < 0.5 if alone == self.health else flagged >= 0.5
        says = "its controller dark" if dark else "a dark signal"
        if len(flagged) == PASS_ROWS and np.all(lone) and passed is not None and passed > bound:
            return [Violation(self.node, alone, (other, *self.exits),
                              f"{alone} reports {says} that {other} does not, and the junction passed {passed:.0f} "
                              f"vehicles in the {PASS_ROWS} rows since, more than an all-way stop can ({bound:.0f})",
                              fault=False, suspects=(alone,))]
        return [Violation(self.node, alone, (), f"{alone} reports {says} at {self.node}, not yet confirmed by "
                          f"{other} or the junction's loops", fault=False, alert=True)]


def dark_rules_for(nodes: Iterable[str]) -> tuple[DarkSignal, ...]:
    return tuple(DarkSignal(f"node:{n}", f"node:{n}/controller_ok", f"node:{n}/cad_signal_out",
                            tuple(f"link:{x}/flow_veh_h" for x in exits(n)),
                            tuple(f"link:{a}/speed_kmh" for a in approaches(n)),
                            tuple(f"link:{a}/density_veh_km" for a in approaches(n))) for n in nodes)


DARK_RULES = dark_rules_for(SIGNALS)


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks, for every link and every signalised junction of the grid."""
    return [*(v for rule in RULES for v in rule.check(window)), *(v for dark in DARK_RULES for v in dark.check(window))]


IDENTITY_ROWS = 10
"""Rows (five minutes at 30-second rows) over which a loop's flow is held against its density × speed
(`LoopIdentity`): long enough for platoons of :data:`~.network.DELTAN` cars to average out and for a
speed falsified by 20 km/h to show, short enough to name it within the attribution's ten-minute watch."""
IDENTITY_EXCESS_VEH = 10.0
"""Vehicles a loop may count entering its link, over :data:`IDENTITY_ROWS` rows, beyond what its density
× speed carried along the link and what the link can still hold at the end (`LoopIdentity`). Over three
normal morning peaks (seeds 1–3, 07:00–08:30, 30-second rows, every link: 24,480 windows) the excess
was at most 6.5 vehicles (99.9th percentile 5.0): the twin's speed is averaged over uxsim steps and an
empty step counts at free flow, and platoons enter in fives. Two platoons is the bound. Checked after
the choice: seeds 0, 4 and 5 reached 7.5, and crashes (severity 0.5, 0.95 and 1 on ``n11-n12`` and
``n13-n12``, seeds 1–3) 7.1, on any link."""
IDENTITY_DEFICIT_VEH = 6.0
"""Vehicles a loop's density × speed may carry along its link, over :data:`IDENTITY_ROWS` rows, beyond
those its flow counted entering and those already on the link before (`LoopIdentity`). Over the same
24,480 normal windows the deficit was at most 2.7 vehicles (seeds 0, 4, 5: 2.5; the crashes: 3.4, a
blocked link emptying); a platoon and a little more is the bound. A speed falsified high breaks it."""
_LINK_KM = BLOCK_M / 1000.0
_ROW_H = ROW_S / 3600.0


@dataclass(frozen=True)
class LoopIdentity:
    """A loop station's speed against its own flow and density: the fundamental identity of traffic flow.

    A loop reports, over each 30-second period, the vehicles it counted entering its link (flow q,
    veh/h), their density on it (k, veh/km) and their mean speed (v, km/h); q = k·v is what traffic
    flow *is*. How exactly the twin keeps it: its speed and density are means of uxsim's per-step
    link state (`sectors.transportation.twin`), so k·v is the vehicles carried along the link per
    hour, exactly so in a period the link is never empty (an empty step counts at free flow, which
    can only make k·v larger), while q counts entries at the link's head: the two differ by what the
    link stores. Over :data:`IDENTITY_ROWS` rows, with E the vehicles counted entering and C = Σ k·v·Δt
    those carried along the link,

        − (vehicles on the link before the window) ≤ E − C ≤ (vehicles on it at the end),

    and a link holds at the end of a row no more than its mean over the row plus the row's entries
    (k·L + q·Δt). A speed falsified low makes C too small and breaks the right-hand side by
    20 km/h × k × Δt a row (a 20 km/h lie at 10 veh/km: 1.7 vehicles a row); one falsified high
    breaks the left. The margins (:data:`IDENTITY_EXCESS_VEH`, :data:`IDENTITY_DEFICIT_VEH`) were
    chosen on normal mornings only.

    Which instrument lies: the speed is named alone (`Violation.fault` False, one suspect: an
    INTRUSION on it, quarantined) only if the flow and the density are each possible in every row
    of the window: a density is never negative, and a vehicle counted entering is on the link for at
    least one step of the period (it needs 36 s to cross at 50 km/h), so a flow with a density of 0
    cannot be (never on the normal peaks of seeds 0–5, 51,840 link-rows). A flow or density falsified
    by a constant fails that check whenever the link empties (a quarter of the rows of ``n11-n12`` on
    the normal peaks of seeds 1–3): a negative density is the density's own lie (named alone); a flow
    counted onto an empty link is the flow's or the density's, never the speed's, and the model may
    pick one of the two (`oracles.sector_model.SectorModel._distrust`) or neither (an anomaly, which
    moves nothing). A closure forged with its flow frozen (a spoofed command) is such a case. Not
    before 11 rows, nor while a value is missing or not finite: nothing to judge.

    What it does not stop: an attacker who falsifies two of q, k, v consistently. A lower speed with a
    density raised to keep k·v (a queue on a free street) keeps the identity; the flow's continuity
    through the junctions would not see it either (storage is what the density claims). A flow and
    a speed lowered together (k·v = q still) hide traffic, and are seen only by the flow's continuity
    with the loops of the links around it, which this rule does not check: at the six junctions with
    no demand of their own (n11, n12, n21, n22, n03, n30) the vehicles counted out of a junction over
    10 rows missed those counted in, less what its approaches stored (their densities' change), by up
    to ±20 vehicles on the same normal peaks (period-mean densities of four approaches say little of
    what they hold at the window's ends), twice this rule's margin: too loose to witness a flow. A flow raised, or a density
    lowered, only while vehicles are on the link breaks the identity as a low speed does, and has
    the healthy speed named: the lie then stands, and the speed is quarantined with it.
    """

    link: str  # ``link:A-B``
    flow: str
    density: str
    speed: str

    def sensors(self) -> tuple[str, str, str]:
        return self.flow, self.density, self.speed

    def _series(self, window: Window) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None:
        """The last :data:`IDENTITY_ROWS` + 1 rows of q, k, v (None: too few, or a value not finite)."""
        rows = IDENTITY_ROWS + 1
        out = [np.asarray(window[name][-rows:], dtype=np.float64) if name in window else np.zeros(0)
               for name in self.sensors()]
        if any(len(s) < rows or not np.all(np.isfinite(s)) for s in out):
            return None
        return out[0], out[1], out[2]

    def residuals(self, window: Window) -> tuple[float, float] | None:
        """(excess, deficit) in vehicles over the window: entries beyond what k·v carried and the link
        holds at the end, and what k·v carried beyond the entries and what the link held before."""
        series = self._series(window)
        if series is None:
            return None
        q, k, v = series
        entered = float(q[1:].sum()) * _ROW_H
        carried = float((k[1:] * v[1:]).sum()) * _ROW_H
        held_end = float(k[-1]) * _LINK_KM + float(q[-1]) * _ROW_H
        held_before = float(k[0]) * _LINK_KM + float(q[0]) * _ROW_H
        return entered - carried - held_end, carried - entered - held_before

    def holds(self, window: Window) -> bool:
        """Whether q = k·v holds over the window within the normal margins (False: cannot be judged)."""
        found = self.residuals(window)
        return found is not None and found[0] <= IDENTITY_EXCESS_VEH and found[1] <= IDENTITY_DEFICIT_VEH

    def check(self, window: Window) -> list[Violation]:
        found = self.residuals(window)
        series = self._series(window)
        if found is None or series is None:
            return []
        excess, deficit = found
        if excess <= IDENTITY_EXCESS_VEH and deficit <= IDENTITY_DEFICIT_VEH:
            return []
        q, k, v = series
        suspects: tuple[str, ...]
        if bool(np.any(k < 0)):
            suspects, lone = (self.density,), f"; {self.density} read below zero in the window, which no density can"
        elif bool(np.any((q > 0) & (k <= 0))):
            suspects, lone = (self.flow, self.density), (f"; {self.flow} counted vehicles onto the link in a row its "
                                                         f"density shows nobody on it: the flow or the density lies")
        else:
            suspects, lone = (self.speed,), ""
        entered, carried = float(q[1:].sum()) * _ROW_H, float((k[1:] * v[1:]).sum()) * _ROW_H
        if excess > IDENTITY_EXCESS_VEH:
            why = (f"its flow counted {entered:.0f} vehicles entering in the last {IDENTITY_ROWS} rows and its "
                   f"density × speed carried only {carried:.0f} along the link: {excess:.0f} more entered than "
                   f"the link could still hold (at most {IDENTITY_EXCESS_VEH:.0f} on normal mornings)")
        else:
            why = (f"its density × speed carried {carried:.0f} vehicles along the link in the last "
                   f"{IDENTITY_ROWS} rows, {deficit:.0f} more than its flow counted entering and the link "
                   f"held before (at most {IDENTITY_DEFICIT_VEH:.0f} on normal mornings)")
        return [Violation(self.link, suspects[0], tuple(n for n in self.sensors() if n != suspects[0]),
                          f"{self.link}'s loop breaks q = k·v (its speed reads {float(v[-1]):.0f} km/h): {why}{lone}",
                          fault=False, suspects=suspects)]


def identity_rules_for(names: Iterable[str]) -> tuple[LoopIdentity, ...]:
    return tuple(LoopIdentity(f"link:{n}", f"link:{n}/flow_veh_h", f"link:{n}/density_veh_km",
                              f"link:{n}/speed_kmh") for n in names)


IDENTITY_RULES = identity_rules_for(link_name(a, b) for a, b, _ in links())


def loop_invariants(window: Window) -> list[Violation]:
    """Every link's loop identity (`LoopIdentity`) that the newest row breaks."""
    return [v for rule in IDENTITY_RULES for v in rule.check(window)]


def vouches(window: Window) -> frozenset[str]:
    """The loops' speeds whose own flow and density bear them out (q = k·v holds over the window,
    `LoopIdentity.holds`): the model alone may not call one of them falsified.

    On a normal peak (seed 1, the attribution's 07:00 run, rows 92–94) the transport model, then trained
    on three peaks, scored 1.73 against its threshold of 1.53 and found ``link:n12-n13/speed_kmh`` alone
    explained 82 % of the deviation: an INTRUSION on a loop that read 50 km/h on an empty street (its
    density 0 in two of the three rows, 6.7 veh/km in the third), and would have been quarantined. Its flow and density agreed with it (the identity held well within its margins).
    A speed falsified enough to matter breaks the identity, and is then no longer vouched for (and
    `LoopIdentity` names it)."""
    return frozenset(rule.speed for rule in IDENTITY_RULES if rule.holds(window))
