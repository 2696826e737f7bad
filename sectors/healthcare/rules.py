"""The health network's rule (`sectors.invariants`): a mass-casualty incident declared by two systems is a surge.

When the ambulance service declares a mass-casualty incident (MCI) it pre-alerts the receiving
hospital with the casualties it expects to send (`sectors.healthcare.twin`). The dispatch centre's
CAD shows the declaration (``ambulance-hub/mci_<hospital>``) and so does the hospital's emergency
department board (``<hospital>/mci_prealert``), through a different system. So, in the newest row:

- both show casualties for a hospital: an admission surge at that hospital, a FAULT named at once,
  whatever the arrival counts say yet (they rise only as the casualties arrive, tens of minutes
  later; the response, diverting new admissions elsewhere, is worth most before they do);
- one shows them and the other does not: no MCI was declared to the hospital through both paths,
  so that instrument is the one to distrust (`Violation.fault` False: an INTRUSION on it, and the
  oracles quarantine it). Neither system ever shows casualties in normal operation.

An attacker must falsify both the CAD and the hospital's board, at once and alike, to have a
healthy hospital diverted; diversion is reversible and sends patients to hospitals with room.

A hospital's equipment is judged the same way, two systems against each other:

- **ventilators** (`VentilatorFleet`): the biomedical engineering system's count of ICU ventilators
  in service against the bed management system's usable ICU beds (each needs a ventilator). Both
  short: a ventilator failure, a FAULT on the hospital's ventilators. The fleet short alone, or the
  beds short alone while the hospital has power and oxygen: that instrument is distrusted. The
  model alone called a real failure a falsified bed count (an INTRUSION, never acted on);
- **the oxygen plant** (`OxygenPlant`): the plant controller's running signal against the tank's
  gauge. A plant that stopped while the hospital has power lets the tank fall at the rate the
  wards breathe; a running plant keeps it full. Stopped and falling: a FAULT on the oxygen plant,
  hours before the tank would run out (the model never saw it within ten minutes). Stopped and
  full over :data:`O2_ROWS` rows: the running signal lies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.messages import FaultKind, Reading
from sectors.invariants import Violation, Window
from sectors.plugin import FieldFault

from ._hospital import DEV_HOSPITALS, DISPATCH

__all__ = ["O2_DROP_M3", "O2_ROWS", "RULES", "MciPreAlert", "OxygenPlant", "VentilatorFleet", "field_fault",
           "invariants", "rules_for"]

MCI_ON = 0.5  # casualties: a count shown at all (neither system shows any in normal operation)
O2_ROWS = 3
"""Rows the oxygen rule looks back: the twin integrates oxygen every 60 s, so 30-s rows see the tank
move every other row; three rows always hold one move."""
O2_DROP_M3 = 0.01  # a tank gauge's resolution: in normal operation a running plant keeps the tank full


@dataclass(frozen=True)
class MciPreAlert:
    """The MCI rule for one hospital: `cad` and `board` are the two systems' casualty counts."""

    hospital: str
    cad: str
    board: str

    def sensors(self) -> tuple[str, str]:
        return self.cad, self.board

    def check(self, window: Window) -> list[Violation]:
        if self.cad not in window or self.board not in window or not len(window[self.cad]):
            return []
        cad, board = float(window[self.cad][-1]), float(window[self.board][-1])
        cad_on, board_on = cad >= MCI_ON, board >= MCI_ON
        if cad_on and board_on:
            return [Violation(self.hospital, self.board, (self.cad,),
                              f"{self.hospital}: mass-casualty incident declared, {board:g} casualties "
                              f"pre-alerted (dispatch: {cad:g})")]
        if cad_on != board_on:
            alone, other = (self.cad, self.board) if cad_on else (self.board, self.cad)
            return [Violation(self.hospital, alone, (other,),
                              f"{alone} shows an MCI ({max(cad, board):g} casualties) that {other} does not",
                              fault=False)]
        return []


def _last(window: Window, sensor: str, n: int = 1) -> list[float] | None:
    """The newest `n` values of `sensor`, oldest first; None if missing, short or not finite."""
    series = window.get(sensor)
    if series is None or len(series) < n:
        return None
    out = [float(v) for v in series[-n:]]
    return out if all(math.isfinite(v) for v in out) else None


@dataclass(frozen=True)
class VentilatorFleet:
    """ICU ventilators in service (biomedical engineering) against usable ICU beds (bed management)."""

    hospital: str
    icu_beds: int

    def check(self, window: Window) -> list[Violation]:
        h = self.hospital
        vents, beds = _last(window, f"{h}/ventilators_in_service"), _last(window, f"{h}/icu_usable_beds")
        power, oxygen = _last(window, f"{h}/power_source"), _last(window, f"{h}/oxygen_m3")
        if vents is None or beds is None:
            return []
        fleet_short, beds_short = vents[-1] < self.icu_beds - 0.5, beds[-1] < self.icu_beds - 0.5
        if fleet_short and beds_short and beds[-1] <= vents[-1] + 0.5:
            return [Violation(f"{h}:ventilators", f"{h}/ventilators_in_service", (f"{h}/icu_usable_beds",),
                              f"{h}: {self.icu_beds - vents[-1]:g} of {self.icu_beds} ICU ventilators out of service, "
                              f"and only {beds[-1]:g} ICU beds usable")]
        if fleet_short and not beds_short:
            return [Violation(h, f"{h}/ventilators_in_service", (f"{h}/icu_usable_beds",),
                              f"{h}/ventilators_in_service reports {vents[-1]:g} of {self.icu_beds} while every ICU "
                              "bed is usable", fault=False)]
        supplied = power is not None and power[-1] > 0.5 and oxygen is not None and oxygen[-1] > 0
        if beds_short and not fleet_short and supplied:
            return [Violation(h, f"{h}/icu_usable_beds", (f"{h}/ventilators_in_service",),
                              f"{h}/icu_usable_beds reports {beds[-1]:g} of {self.icu_beds} with every ventilator in "
                              "service, power and oxygen", fault=False)]
        return []


@dataclass(frozen=True)
class OxygenPlant:
    """The oxygen plant's running signal against the tank's gauge, while the hospital has power."""

    hospital: str

    def check(self, window: Window) -> list[Violation]:
        h = self.hospital
        running, tank = _last(window, f"{h}/o2_plant_running", O2_ROWS), _last(window, f"{h}/oxygen_m3", O2_ROWS)
        power = _last(window, f"{h}/power_source")
        if running is None or tank is None or power is None or power[-1] < 0.5 or running[-1] >= 0.5:
            return []  # no power: the plant stops with the hospital (a power loss, not the plant's)
        fell = tank[0] - tank[-1]
        if fell >= O2_DROP_M3:
            return [Violation(f"{h}:o2-plant", f"{h}/o2_plant_running", (f"{h}/oxygen_m3",),
                              f"{h}: the oxygen plant stopped and the tank fell {fell:.2f} m3 in {O2_ROWS - 1} rows")]
        if max(running) < 0.5 and fell <= 0:
            return [Violation(h, f"{h}/o2_plant_running", (f"{h}/oxygen_m3",),
                              f"{h}/o2_plant_running reports the plant stopped while the tank holds", fault=False)]
        return []


def rules_for(hospitals: Iterable[str], dispatch: str) -> tuple[MciPreAlert, ...]:
    return tuple(MciPreAlert(h, f"{dispatch}/mci_{h}", f"{h}/mci_prealert") for h in hospitals)


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks, for the development city's hospitals."""
    return [v for rule in (*RULES, *EQUIPMENT_RULES) for v in rule.check(window)]


RULES = rules_for((h.hospital_id for h in DEV_HOSPITALS), DISPATCH)
EQUIPMENT_RULES: tuple[VentilatorFleet | OxygenPlant, ...] = (
    *(VentilatorFleet(h.hospital_id, h.icu_beds) for h in DEV_HOSPITALS if h.icu_beds),
    *(OxygenPlant(h.hospital_id) for h in DEV_HOSPITALS),
)


def field_fault(readings: Sequence[Reading], asset: str) -> FieldFault | None:
    """What the field shows at a hospital the quorum isolated (`SectorPlugin.field_fault`): an
    admission surge when both systems show an MCI declared for it, as the rule names one; its
    ventilators when both the device fleet and the usable ICU beds are short; its oxygen plant when
    the plant stopped under power and the tank is below full; None otherwise, and the hospital's
    name decides (a power loss).

    Without it the controller planned every hospital isolation as a power loss: the storm day's
    surge at hospital-2 found the model's hospital on its generator, "nothing to switch", and no
    admission was diverted. Both systems are asked, as the rules ask them: one falsified board
    cannot turn a power loss's plan into a diversion.

    A verdict that names a piece of equipment (``hospital-2:o2-plant``) already tells the kind: the
    field only confirms it (with its severity), never replaces it. A declared MCI at the same hospital
    turned an oxygen plant's verdict into the whole hospital's surge, and the crew's repair then
    cleared a fault at ``hospital-2`` that did not exist while the plant stayed broken.
    """
    shown = _shown(readings, asset.partition(":")[0])
    if ":" in asset and (shown is None or shown.asset != asset):
        return None  # the verdict named the equipment: its name decides
    return shown


def _shown(readings: Sequence[Reading], hospital: str) -> FieldFault | None:
    """What the field shows at `hospital`: a declared MCI, its ventilators or its oxygen plant."""
    latest = {r.sensor_id: r.value for r in readings}
    rule = next((r for r in RULES if r.hospital == hospital), None)
    if rule is not None and latest.get(rule.cad, 0.0) >= MCI_ON and latest.get(rule.board, 0.0) >= MCI_ON:
        return FieldFault(FaultKind.ADMISSION_SURGE, hospital)
    spec = next((h for h in DEV_HOSPITALS if h.hospital_id == hospital), None)
    if spec is None:
        return None
    vents, beds = latest.get(f"{hospital}/ventilators_in_service"), latest.get(f"{hospital}/icu_usable_beds")
    if spec.icu_beds and vents is not None and beds is not None and vents < spec.icu_beds - 0.5 \
            and beds < spec.icu_beds - 0.5:
        return FieldFault(FaultKind.EQUIPMENT_FAILURE, f"{hospital}:ventilators", severity=1.0 - vents / spec.icu_beds)
    if latest.get(f"{hospital}/o2_plant_running", 1.0) < 0.5 and latest.get(f"{hospital}/power_source", 0.0) >= 0.5 \
            and latest.get(f"{hospital}/oxygen_m3", spec.oxygen_capacity_m3) < spec.oxygen_capacity_m3 - O2_DROP_M3:
        return FieldFault(FaultKind.EQUIPMENT_FAILURE, f"{hospital}:o2-plant")
    return None


RECEIVING = ("arrivals_per_h", "admissions_per_h", "queue_length", "longest_wait_min", "ed_waiting",
             "ed_longest_wait_min", "beds_occupied",
             "bed_occupancy", "icu_occupied", "icu_occupancy")
"""A hospital's load sensors: they rise when another hospital's admissions are diverted to it."""


def diverted_to(sensor: str, commanded: Mapping[str, str]) -> str | None:
    """Why a hospital's load reads high: another hospital's admissions diverted by the controller
    (`SectorPlugin.commanded_effect`). The diverted patients go to the hospitals with free beds, as
    they should; a FAULT voted on the receiving hospital for them would take it out of service too
    (the storm day's diversion at hospital-2 had hospital-1 isolated that way). A declared MCI at
    the receiving hospital still names it: its rule rests on the CAD and the board, not on arrivals."""
    hospital, _, quantity = sensor.partition("/")
    if quantity not in RECEIVING:
        return None
    for asset, what in commanded.items():
        if asset != hospital and what.startswith(f"{asset}/admissions divert"):
            return f"{asset}'s admissions are diverted ({what})"
    return None
