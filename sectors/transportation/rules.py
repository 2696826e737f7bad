"""The road grid's incident rule (`sectors.invariants`): a camera's stopped vehicle, confirmed by a second system.

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
- anything else (one system alone, and no vehicles on the link or speeds in between): no verdict
  from this rule yet.

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

from sectors.invariants import Violation, Window

from .network import link_name, links

__all__ = ["CONTRADICT_ROWS", "FLOWING_KMH", "ROWS", "RULES", "STOPPED_KMH", "IncidentCamera", "invariants", "rules_for"]

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
        return []


def rules_for(names: Iterable[str]) -> tuple[IncidentCamera, ...]:
    return tuple(IncidentCamera(f"link:{n}", f"link:{n}/stopped_vehicle", f"link:{n}/cad_incident",
                                f"link:{n}/speed_kmh", f"link:{n}/density_veh_km") for n in names)


RULES = rules_for(link_name(a, b) for a, b, _ in links())


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks, for every link of the grid."""
    return [v for rule in RULES for v in rule.check(window)]
