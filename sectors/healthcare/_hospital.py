"""One hospital as a capacity + queue model: its emergency department (`_ed`), beds, ICU beds, oxygen, power.

Why a hand-kept bed pool rather than ``simpy.Resource``: a ventilator failure must *shrink* ICU
capacity without evicting the patients already in it, and a ``Resource`` cannot change capacity.
simpy still drives time (arrivals, discharges, generator run-out); this class only holds state
and the admission rule, so the twin can route a patient between hospitals (diversion).

Assumptions (defaults in :data:`DEV_HOSPITALS`, sized for ~80 % occupancy at steady state:
arrivals per hour x mean stay = 0.8 x beds):

- lengths of stay are exponential (memoryless, so the patients present at t = 0 get the same
  distribution for their remaining stay and the model starts in steady state, no warm-up);
- an ICU patient breathes 0.6 m3/h of oxygen (10 L/min), a ward patient 0.024 m3/h on average
  (a fifth of them on 2 L/min); the on-site oxygen plant needs power;
- the generator carries the whole hospital for ``backup_hours`` of fuel; without any power the
  hospital admits nobody and every ICU patient is a critical load at risk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from sectors._twin import InvalidFault, TwinError

from . import _ed

__all__ = ["DEV_HOSPITALS", "DISPATCH", "RATE_WINDOW_S", "Hospital", "HospitalSpec", "Patient", "PowerSource"]

RATE_WINDOW_S = 7200.0
"""Arrival and admission rates are counted over the last two hours.

A surge is a rise in a Poisson rate, and telling it from chance takes evidence that accumulates
with time: at a couple of arrivals an hour, a one-hour count is too noisy (a tripled rate is
often within normal luck), a two-hour count separates a tripled rate from normal within about
two hours, and a longer window would only make the count slower to rise and to fall back.
"""


class PowerSource(IntEnum):
    """What feeds the hospital now; the value is what the ``power_source`` sensor reports."""

    NONE = 0
    GRID = 1
    BACKUP = 2


@dataclass(frozen=True)
class HospitalSpec:
    """Fixed facts about one hospital (rates per hour, stays in hours, oxygen in m3)."""

    hospital_id: str
    beds: int
    icu_beds: int
    ward_arrivals_per_h: float
    icu_arrivals_per_h: float
    ward_stay_h: float
    icu_stay_h: float
    oxygen_capacity_m3: float
    oxygen_plant_m3_per_h: float
    backup_hours: float
    water_storage_hours: float
    initial_occupancy: float = 0.8
    o2_icu_m3_per_h: float = 0.6
    o2_ward_m3_per_h: float = 0.024
    ed_bays: int = 0  # staffed ED treatment spaces; 0: sized for its attendances (`_ed.sized_bays`)

    def __post_init__(self) -> None:
        numbers = {k: v for k, v in vars(self).items() if k != "hospital_id"}
        bad = [k for k, v in numbers.items() if not np.isfinite(v) or v < 0]
        if bad:
            raise TwinError(f"hospital {self.hospital_id!r}: {', '.join(bad)} must be finite and >= 0")
        if self.beds < 1 or self.ward_stay_h <= 0 or (self.icu_beds and self.icu_stay_h <= 0):
            raise TwinError(f"hospital {self.hospital_id!r} needs beds >= 1 and positive lengths of stay")
        if self.initial_occupancy > 1:
            raise TwinError(f"hospital {self.hospital_id!r}: initial_occupancy is a fraction (0..1)")


DEV_HOSPITALS: tuple[HospitalSpec, ...] = (  # ED spaces sized by `_ed.sized_bays` (23, 17, 8)
    HospitalSpec("hospital-1", 300, 30, 2.22, 0.333, 108.0, 72.0, 2000.0, 30.0, 24.0, 8.0),
    HospitalSpec("hospital-2", 200, 20, 1.48, 0.222, 108.0, 72.0, 1500.0, 20.0, 12.0, 6.0),
    HospitalSpec("clinic-1", 20, 0, 0.67, 0.0, 24.0, 24.0, 100.0, 1.0, 4.0, 4.0),
)
"""The development city's hospitals, on-chain ids from ``chain.consortium.NODES``."""

DISPATCH = "ambulance-hub"
"""The ambulance dispatch centre's asset id (its on-chain node): its CAD reports the MCIs it declared."""


@dataclass
class Patient:
    """An emergency patient: triage category, whether they need a bed (and an ICU one), how they came.

    ``seen_s`` is when treatment started in the ED (None while waiting to be seen; the patients in
    bed at t = 0 never came through it).
    """

    pid: int
    icu: bool
    arrived_s: float
    stay_s: float
    triage: int = 3
    admit: bool = True
    ambulance: bool = False
    treat_s: float = 0.0
    seen_s: float | None = None


class Hospital:
    """Live state of one hospital. Time is simulated seconds (the twin's simpy clock)."""

    def __init__(self, spec: HospitalSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        self.rng = rng
        self.ward_occupied = 0
        self.icu_occupied = 0
        self.queue: deque[Patient] = deque()  # admitted patients waiting in the ED for a bed (boarding)
        self.ed_queue: list[Patient] = []  # patients waiting to be seen
        self.ed_in_bay = 0  # treatment spaces taken (patients in treatment or boarding)
        self.ed_bays = spec.ed_bays or _ed.sized_bays(self.ed_attendances_per_h())
        self.oxygen_m3 = spec.oxygen_capacity_m3
        self.grid_ok = True
        self.source = PowerSource.GRID
        self.fuel_h = spec.backup_hours
        self.backup_since: float | None = None
        self.generator_ok = True
        self.ats_ok = True
        self.o2_plant_ok = True
        self.ventilators_failed = 0.0  # fraction of ICU beds without a working ventilator
        self.surge = 1.0
        self.mci_casualties = 0  # casualties EMS has pre-alerted this hospital to in a declared MCI (0: none)
        self.diverting = False
        self.admitted = 0
        self.diverted_out = 0
        self.diverted_in = 0
        self.total_wait_s = 0.0
        self.seen = 0  # ED patients whose treatment started, since the twin started
        self.seen_late = 0  # ... of whom past their triage target (the AIHW's "seen on time" complement)
        self._next_pid = 0
        # arrival and admission times (simulated s) within the last RATE_WINDOW_S: the ED board's counts
        self.arrival_times: deque[float] = deque()
        self.admission_times: deque[float] = deque()

    # --- demand ----------------------------------------------------------------------------------
    def prime_rates(self, rng: np.random.Generator) -> None:
        """Fill the rate windows with the arrivals of the hour(s) before t = 0 (steady state).

        The beds start at steady-state occupancy; the counts must too, or every fresh twin would
        report a demand that climbs from zero for its first RATE_WINDOW_S, a start-up transient a
        detector would learn as normal and an oracle would see on every restart. `rng` is not the
        hospital's own, so a seed's patients stay the ones it had before these counts existed.
        """
        for times, per_h in ((self.arrival_times, self.ed_attendances_per_h()),
                             (self.admission_times, self.total_arrivals_per_h())):
            n = int(rng.poisson(per_h * RATE_WINDOW_S / 3600.0))
            times.extend(sorted(float(t) for t in rng.uniform(-RATE_WINDOW_S, 0.0, size=n)))

    def record(self, times: deque[float], now_s: float) -> None:
        times.append(now_s)
        self.rate(times, now_s)

    @staticmethod
    def rate(times: deque[float], now_s: float) -> float:
        """Events per hour over the last RATE_WINDOW_S (older ones are dropped)."""
        while times and times[0] <= now_s - RATE_WINDOW_S:
            times.popleft()
        return len(times) * 3600.0 / RATE_WINDOW_S

    # --- capacity --------------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self.source is not PowerSource.NONE

    @property
    def usable_icu_beds(self) -> int:
        """ICU beds that can take a patient: each needs a ventilator, oxygen and power."""
        if not self.powered or self.oxygen_m3 <= 0:
            return 0
        return int(np.floor(self.spec.icu_beds * (1.0 - self.ventilators_failed) + 1e-9))

    def free(self, icu: bool) -> int:
        if not self.powered:
            return 0
        if icu:
            return max(0, self.usable_icu_beds - self.icu_occupied)
        return max(0, self.spec.beds - self.ward_occupied)

    def accepting(self, icu: bool) -> bool:
        """Could a diverted patient of this kind be admitted here now, ahead of nobody waiting?"""
        return not self.diverting and self.free(icu) > 0 and not any(p.icu == icu for p in self.queue)

    def total_arrivals_per_h(self) -> float:
        """Normal emergency admissions (ward and ICU) per hour, before any surge."""
        return self.spec.ward_arrivals_per_h + self.spec.icu_arrivals_per_h

    def ed_attendances_per_h(self) -> float:
        """Normal ED attendances per hour: the admissions are :data:`_ed.ADMITTED_SHARE` of them."""
        return self.total_arrivals_per_h() / _ed.ADMITTED_SHARE

    def arrival_rate_per_s(self) -> float:
        return self.ed_attendances_per_h() * self.surge / 3600.0

    def new_patient(self, now_s: float) -> Patient:
        """The next attendance: an MCI casualty with probability (surge - 1) / surge (the surge's share)."""
        casualty = bool(self.rng.random() < (self.surge - 1.0) / self.surge)
        return self._attendance(self.rng, now_s, casualty)

    def _attendance(self, rng: np.random.Generator, now_s: float, casualty: bool) -> Patient:
        total = self.total_arrivals_per_h()
        triage = 1 + int(rng.choice(len(_ed.SHARES), p=_ed.SHARES))
        admit = bool(rng.random() < _ed.ADMITTED_SHARE)
        icu = admit and total > 0 and bool(rng.random() < self.spec.icu_arrivals_per_h / total)
        by_ems = rng.random() < (_ed.MCI_AMBULANCE_SHARE if casualty else _ed.AMBULANCE_SHARE)
        mean_h = self.spec.icu_stay_h if icu else self.spec.ward_stay_h
        self._next_pid += 1
        return Patient(self._next_pid, icu, now_s, float(rng.exponential(mean_h * 3600.0)), triage, admit,
                       bool(by_ems), _ed.treatment_s(rng))

    def initial_ed(self, rng: np.random.Generator) -> list[Patient]:
        """The patients in treatment at t = 0 (steady state: a Poisson number of mean attendances x
        mean treatment time, at most the spaces, each with the treatment left of one met at random).

        `rng` is the priming one (`prime_rates`), so that the ED's start does not shift a seed's arrivals.
        """
        n = min(self.ed_bays, int(rng.poisson(self.ed_attendances_per_h() * _ed.TREAT_H)))
        out = [self._attendance(rng, 0.0, False) for _ in range(n)]
        for patient in out:
            patient.seen_s, patient.treat_s = 0.0, _ed.treatment_left_s(rng)
        return out

    def _patient(self, icu: bool, now_s: float) -> Patient:
        mean_h = self.spec.icu_stay_h if icu else self.spec.ward_stay_h
        self._next_pid += 1
        return Patient(self._next_pid, icu, now_s, float(self.rng.exponential(mean_h * 3600.0)))

    # --- emergency department --------------------------------------------------------------------
    def ed_free(self) -> int:
        """Treatment spaces free now (none without power)."""
        return max(0, self.ed_bays - self.ed_in_bay) if self.powered else 0

    def ed_spare(self) -> int:
        """Free spaces left once everyone waiting is seen (negative: a queue)."""
        return self.ed_free() - len(self.ed_queue)

    def takes_ambulance(self, patient: Patient) -> bool:
        """Could a diverted ambulance bring ``patient`` here: powered, not diverting itself, and with
        an ICU bed for a patient who needs one (how crowded its ED is, the twin weighs)."""
        return self.powered and not self.diverting and (not patient.icu or self.free(True) > 0)

    def to_treat(self) -> list[Patient]:
        """Take from the ED queue everyone a space can take now: resuscitation at once, the others
        by triage category, then arrival (see `_ed`)."""
        if not self.powered:
            return []
        order = sorted(self.ed_queue, key=lambda p: (p.triage, p.arrived_s, p.pid))
        free = self.ed_free()
        out = []
        for patient in order:
            if patient.triage == 1 or free > 0:
                free -= patient.triage != 1
                out.append(patient)
        for patient in out:
            self.ed_queue.remove(patient)
        return out

    def record_seen(self, patient: Patient, now_s: float) -> None:
        patient.seen_s = now_s
        self.seen += 1
        self.seen_late += now_s - patient.arrived_s > _ed.TARGET_S[patient.triage]

    def late(self, now_s: float) -> tuple[int, int]:
        """(patients waiting to be seen past their triage target, admitted patients waiting for a bed
        past the 4-hour standard): the ED's care not delivered on time now."""
        unseen = sum(1 for p in self.ed_queue if now_s - p.arrived_s > _ed.TARGET_S[p.triage])
        boarding = sum(1 for p in self.queue if now_s - p.arrived_s > _ed.BED_WAIT_STANDARD_S)
        return unseen, boarding

    def ed_longest_wait_s(self, now_s: float) -> float:
        return max((now_s - p.arrived_s for p in self.ed_queue), default=0.0)

    def initial_patients(self) -> list[Patient]:
        """The patients in bed at t = 0 (steady state, remaining stays drawn afresh)."""
        n_ward = round(self.spec.beds * self.spec.initial_occupancy)
        n_icu = round(self.spec.icu_beds * self.spec.initial_occupancy)
        return [self._patient(False, 0.0) for _ in range(n_ward)] + [self._patient(True, 0.0) for _ in range(n_icu)]

    def take_bed(self, patient: Patient) -> None:
        if patient.icu:
            self.icu_occupied += 1
        else:
            self.ward_occupied += 1

    def release_bed(self, patient: Patient) -> None:
        if patient.icu:
            self.icu_occupied -= 1
        else:
            self.ward_occupied -= 1

    def admissible(self) -> list[Patient]:
        """Take from the queue, in arrival order, every patient a free bed of their kind can take."""
        out: list[Patient] = []
        free = {True: self.free(True), False: self.free(False)}
        for patient in list(self.queue):
            if free[patient.icu] > 0:
                free[patient.icu] -= 1
                self.queue.remove(patient)
                out.append(patient)
        return out

    def set_equipment(self, equipment: str, *, working: bool, severity: float | None = None) -> str:
        """Break or repair the ATS, the oxygen plant or the ventilators (``severity``: the fraction
        of ICU beds losing their ventilator, default 0.5); returns what broke, for the event log."""
        if equipment == "ats":
            self.ats_ok = working
        elif equipment == "o2-plant":
            self.o2_plant_ok = working
        elif working:
            self.ventilators_failed = 0.0
        else:
            loss = 0.5 if severity is None else float(severity)
            if not np.isfinite(loss) or not 0.0 < loss <= 1.0:
                raise InvalidFault(f"a ventilator failure severity is the fraction lost (0, 1], not {severity}")
            self.ventilators_failed = loss
            return f"{loss:.0%} of ICU ventilators"
        return equipment

    # --- oxygen and power -------------------------------------------------------------------------
    def oxygen_use_m3_per_h(self) -> float:
        return self.icu_occupied * self.spec.o2_icu_m3_per_h + self.ward_occupied * self.spec.o2_ward_m3_per_h

    def integrate_oxygen(self, dt_s: float) -> bool:
        """Advance the oxygen stock by ``dt_s``; True when it has just run out."""
        plant = self.spec.oxygen_plant_m3_per_h if self.o2_plant_ok and self.powered else 0.0
        before = self.oxygen_m3
        level = before + (plant - self.oxygen_use_m3_per_h()) * dt_s / 3600.0
        self.oxygen_m3 = min(self.spec.oxygen_capacity_m3, max(0.0, level))
        return before > 0 and self.oxygen_m3 == 0

    def fuel_left_h(self, now_s: float) -> float:
        if self.source is PowerSource.BACKUP and self.backup_since is not None:
            return max(0.0, self.fuel_h - (now_s - self.backup_since) / 3600.0)
        return self.fuel_h

    def critical_at_risk(self) -> int:
        """ICU patients whose life support is not assured: no power, no oxygen, or no ventilator."""
        if not self.powered or self.oxygen_m3 <= 0:
            return self.icu_occupied
        return max(0, self.icu_occupied - self.usable_icu_beds)

    def longest_wait_s(self, now_s: float) -> float:
        return max((now_s - p.arrived_s for p in self.queue), default=0.0)
