"""What the hospitals' instruments report, and how well the health network is serving patients.

Sensor ids are ``<hospital id>/<quantity>``. Counts are beds and patients; ``arrivals_per_h`` (patients
presenting, the emergency department's registrations) and ``admissions_per_h`` (patients given a bed,
the bed-management system's) are rates over the last two hours: demand is what a surge changes first,
long before beds run out, and two systems counting the same patients is how a real surge (both rise)
differs from a falsified count (one rises alone); ``power_source`` is a
code (0 none, 1 grid, 2 backup) so a detector sees a number; ``mci_prealert`` is the casualties
the ambulance service has pre-alerted the hospital to in a declared mass-casualty incident (0: none),
which the dispatch centre's own CAD reports too (``ambulance-hub/mci_<hospital>``); ICU sensors
exist only where there is an ICU. The service report is computed from the model, never from (possibly falsified) sensors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.messages import Reading, Sector

from ._hospital import Hospital, PowerSource

__all__ = ["HealthServiceReport", "dispatch_readings", "hospital_readings", "service_report"]


def _reading(asset: str, quantity: str, unit: str, value: float, at: datetime) -> Reading:
    return Reading(
        sector=Sector.HEALTHCARE, asset_id=asset, sensor_id=f"{asset}/{quantity}", quantity=quantity,
        unit=unit, value=float(value), timestamp=at,
    )


def hospital_readings(h: Hospital, now_s: float, at: datetime) -> list[Reading]:
    """Every sensor's true value for hospital ``h`` at simulated second ``now_s``."""
    s = h.spec
    values: list[tuple[str, str, float]] = [
        ("beds_occupied", "count", h.ward_occupied),
        ("bed_occupancy", "%", 100.0 * h.ward_occupied / s.beds),
        ("queue_length", "count", len(h.queue)),
        # the ED board: patients waiting to be seen, and the longest of their waits (`_ed`)
        ("ed_waiting", "count", len(h.ed_queue)),
        ("ed_longest_wait_min", "min", h.ed_longest_wait_s(now_s) / 60.0),
        ("arrivals_per_h", "1/h", h.rate(h.arrival_times, now_s)),
        ("admissions_per_h", "1/h", h.rate(h.admission_times, now_s)),
        ("longest_wait_min", "min", h.longest_wait_s(now_s) / 60.0),
        ("oxygen_m3", "m3", h.oxygen_m3),
        ("oxygen_use_m3h", "m3/h", h.oxygen_use_m3_per_h()),
        ("power_source", "code", int(h.source)),
        ("grid_available", "bool", float(h.grid_ok)),
        ("backup_fuel_h", "h", h.fuel_left_h(now_s)),
        ("diverting", "bool", float(h.diverting)),
        ("mci_prealert", "count", h.mci_casualties),
        # the oxygen plant's own controller (PLC): producing or not, a second system beside the
        # tank's gauge (`sectors.healthcare.rules`)
        ("o2_plant_running", "bool", float(h.o2_plant_ok and h.powered)),
    ]
    if s.icu_beds:
        values += [
            ("icu_occupied", "count", h.icu_occupied),
            ("icu_occupancy", "%", 100.0 * h.icu_occupied / s.icu_beds),
            ("icu_usable_beds", "count", h.usable_icu_beds),
            # the biomedical engineering system's count of ICU ventilators in service: the device
            # fleet's view, beside the bed management system's usable ICU beds
            ("ventilators_in_service", "count", float(np.floor(s.icu_beds * (1.0 - h.ventilators_failed) + 1e-9))),
        ]
    return [_reading(s.hospital_id, q, unit, v, at) for q, unit, v in values]


def dispatch_readings(dispatch: str, hospitals: Iterable[Hospital], at: datetime) -> list[Reading]:
    """The ambulance dispatch centre's CAD: per hospital, the casualties of a declared MCI it is sending there."""
    return [_reading(dispatch, f"mci_{h.spec.hospital_id}", "count", h.mci_casualties, at) for h in hospitals]


@dataclass(frozen=True)
class HealthServiceReport:
    """The health network's service now: who waits, who was sent elsewhere, who is at risk.

    ``critical_at_risk`` counts ICU patients without assured life support (no power, no oxygen or
    no working ventilator); ``diverted`` and ``admitted`` are totals since the twin started.
    ``waiting`` and ``longest_wait_min`` are admitted patients waiting for a bed; ``in_ed`` every
    patient in an ED (waiting to be seen, in treatment or waiting for a bed), ``ed_waiting`` those
    waiting to be seen; ``late_unseen`` those waiting past their triage target and ``late_for_bed``
    admitted patients waiting for a bed past the 4-hour standard (`sectors.healthcare._ed`).
    """

    at: datetime
    waiting: int
    longest_wait_min: float
    admitted: int
    diverted: int
    critical_at_risk: int
    on_backup: tuple[str, ...]
    without_power: tuple[str, ...]
    backup_hours_left: dict[str, float]
    full: tuple[str, ...]
    in_ed: int = 0
    ed_waiting: int = 0
    ed_longest_wait_min: float = 0.0
    late_unseen: int = 0
    late_for_bed: int = 0


def service_report(hospitals: Iterable[Hospital], now_s: float, at: datetime) -> HealthServiceReport:
    hs = list(hospitals)
    return HealthServiceReport(
        at=at,
        waiting=sum(len(h.queue) for h in hs),
        longest_wait_min=max((h.longest_wait_s(now_s) for h in hs), default=0.0) / 60.0,
        admitted=sum(h.admitted for h in hs),
        diverted=sum(h.diverted_out for h in hs),
        critical_at_risk=sum(h.critical_at_risk() for h in hs),
        on_backup=tuple(h.spec.hospital_id for h in hs if h.source is PowerSource.BACKUP),
        without_power=tuple(h.spec.hospital_id for h in hs if h.source is PowerSource.NONE),
        backup_hours_left={
            h.spec.hospital_id: h.fuel_left_h(now_s) for h in hs if h.source is PowerSource.BACKUP
        },
        full=tuple(h.spec.hospital_id for h in hs if h.free(False) == 0),
        in_ed=sum(len(h.ed_queue) + h.ed_in_bay for h in hs),
        ed_waiting=sum(len(h.ed_queue) for h in hs),
        ed_longest_wait_min=max((h.ed_longest_wait_s(now_s) for h in hs), default=0.0) / 60.0,
        late_unseen=sum(h.late(now_s)[0] for h in hs),
        late_for_bed=sum(h.late(now_s)[1] for h in hs),
    )
