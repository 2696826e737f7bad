"""The healthcare twin: hospitals as capacity + queue models on a simpy clock.

simpy schedules the discrete events (Poisson arrivals, discharges, the generator running out of
fuel) so that they happen at their exact simulated second, whatever step size the caller uses: a
run stepped minute by minute and one stepped in a single day give the same patients. Oxygen is
integrated by a once-a-minute process (its rate changes only when occupancy does).

Asset ids: hospitals use their on-chain ids (``hospital-1``); equipment inside one is
``<hospital>:<equipment>`` with equipment ``generator``, ``ats`` (automatic transfer switch),
``o2-plant`` or ``ventilators``. Actuators: ``<hospital>/power`` (backup, restore, refuel [hours])
and ``<hospital>/admissions`` (divert, restore); they and the power transfers they drive are in
`sectors.healthcare._actuators`.

An admission surge is demand, not a breakdown: nothing in the hospital fails, more patients come.
It is still the hospital's problem to report and the city's to act on, because its emergency
department (`sectors.healthcare._ed`: triage, staffed treatment spaces, then home or a bed) runs
out of spaces and patients wait past their triage target while other EDs have room, and the one
remedy the network has is the one a fault on a hospital triggers: divert its ambulances to
hospitals with capacity (`controller._responses_health`).
So the oracles call it a FAULT *on that hospital*.

The surge this twin makes is the sudden kind, a mass-casualty incident (MCI) in the hospital's
catchment (the storm's): arrivals multiply by the surge factor, and the ambulance service, as MCI
protocols require, declares it at once and pre-alerts the receiving hospital with the casualties
it expects to send, `MCI_HORIZON_H` hours of the extra demand. Two systems show that declaration
at the same moment: the dispatch centre's CAD (asset ``ambulance-hub``, sensor
``ambulance-hub/mci_<hospital>``) and the hospital's emergency-department board
(``<hospital>/mci_prealert``). That is how a hospital learns of an MCI in minutes; a Poisson count
of a couple of arrivals an hour cannot show a tripled rate in less than hours. The healthcare rule
(`sectors.healthcare.rules`) calls the surge when both agree; one of them alone is an instrument
to distrust. The slow kind of surge (an epidemic wave) has no declaration and is left to the
arrival and admission counts (``arrivals_per_h``, ``admissions_per_h``, rising together hours
before occupancy does), which the learned model watches.

Patients are ED attendances (the hospital's emergency admissions over the share admitted), each
with a triage category, a treatment time, and a bed (ward or ICU) if admitted. A diverting
hospital sends each ambulance patient to the other hospital that can take them (powered, not
diverting, an ICU bed for an ICU patient) with the most spare ED spaces, when that is more than its
own; walk-ins still come to it, as they do to a hospital on ambulance diversion.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import simpy

from core.messages import ActuatorCommand, AttackKind, FaultKind, Reading, Sector
from sectors._twin import (
    Attack,
    InvalidAttack,
    InvalidCommand,
    InvalidFault,
    MeasurementAttacks,
    TwinError,
    TwinEvent,
    UnknownAsset,
)

from ._actuators import HospitalActuators
from ._hospital import DEV_HOSPITALS, DISPATCH, Hospital, HospitalSpec, Patient, PowerSource
from ._report import HealthServiceReport, dispatch_readings, hospital_readings, service_report

__all__ = ["DEFAULT_START", "DISPATCH", "EQUIPMENT", "MCI_HORIZON_H", "HealthcareTwin"]

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
EQUIPMENT = ("generator", "ats", "o2-plant", "ventilators")
_TICK_S = 60.0
_DEFAULT_SURGE = 3.0
MCI_HORIZON_H = 2.0
"""An MCI pre-alert announces the extra casualties of this many hours of the raised demand (at least one)."""


class HealthcareTwin(HospitalActuators):
    """A city's hospitals: ``step``/``advance`` the clock, read ``readings()``, act with ``apply``.

    ``seed`` fixes every arrival and length of stay; ``hospitals`` defaults to :data:`DEV_HOSPITALS`.
    """

    sector = Sector.HEALTHCARE

    def __init__(
        self,
        hospitals: Sequence[HospitalSpec] = DEV_HOSPITALS,
        *,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        history: int = 1440,
    ) -> None:
        if not hospitals:
            raise TwinError("a healthcare twin needs at least one hospital")
        ids = [h.hospital_id for h in hospitals]
        if len(set(ids)) != len(ids):
            raise TwinError(f"hospital ids must be unique: {ids}")
        if start.tzinfo is None:
            raise TwinError("start must be timezone-aware (UTC)")
        self.start = start
        self.env = simpy.Environment()
        self.hospitals: dict[str, Hospital] = {
            spec.hospital_id: Hospital(spec, np.random.default_rng([seed, i])) for i, spec in enumerate(hospitals)
        }
        self._faults: dict[str, FaultKind] = {}
        self._events: list[TwinEvent] = []
        self._attacks = MeasurementAttacks(history=history)
        self._arrivals: dict[str, simpy.Process] = {}
        self._generators: dict[str, simpy.Process] = {}
        for i, (hid, h) in enumerate(self.hospitals.items()):
            prime = np.random.default_rng([seed, i, 1])
            h.prime_rates(prime)
            for patient in h.initial_patients():
                h.take_bed(patient)
                self.env.process(self._stay(h, patient))
            for patient in h.initial_ed(prime):
                h.ed_in_bay += 1
                self.env.process(self._treatment(h, patient))
            self._arrivals[hid] = self.env.process(self._arrival_process(h))
        self.env.process(self._oxygen_process())
        self._true: list[Reading] = []
        self._refresh()
        self._attacks.record(self._true)

    # --- clock and sensors -------------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return float(self.env.now)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.now_s)

    @property
    def events(self) -> tuple[TwinEvent, ...]:
        return tuple(self._events)

    @property
    def faults(self) -> dict[str, FaultKind]:
        """Active physical faults by target asset id."""
        return dict(self._faults)

    @property
    def attacks(self) -> dict[str, Attack]:
        return self._attacks.active

    def step(self, t: datetime) -> list[Reading]:
        """Run the hospitals up to ``t``; returns what the sensors report then."""
        if t.tzinfo is None:
            raise TwinError("step needs a timezone-aware datetime")
        until = (t - self.start).total_seconds()
        if until < self.now_s:
            raise TwinError(f"the twin's clock is at {self.now.isoformat()}; it cannot step back to {t.isoformat()}")
        if until > self.now_s:
            self.env.run(until=until)
        self._refresh()
        self._attacks.record(self._true)
        return self.readings()

    def advance(self, seconds: float = 60.0) -> list[Reading]:
        """:meth:`step` to ``now + seconds``."""
        if not np.isfinite(seconds) or seconds < 0:
            raise TwinError(f"advance needs a finite, non-negative number of seconds, not {seconds}")
        return self.step(self.now + timedelta(seconds=seconds))

    def readings(self) -> list[Reading]:
        """What the sensors report now: true values, except where an attack falsifies them."""
        return self._attacks.apply(self._true)

    def true_readings(self) -> list[Reading]:
        """The model as it is (for scoring detectors, never for the oracles)."""
        return list(self._true)

    def sensor_ids(self) -> list[str]:
        return [r.sensor_id for r in self._true]

    def service(self) -> HealthServiceReport:
        return service_report(self.hospitals.values(), self.now_s, self.now)

    # --- simpy processes -----------------------------------------------------------------------
    def _arrival_process(self, h: Hospital) -> Generator[simpy.Event, Any, None]:
        """Poisson arrivals; a rate change interrupts the wait and the gap is redrawn (memoryless)."""
        while True:
            rate = h.arrival_rate_per_s()
            try:
                yield self.env.timeout(float(h.rng.exponential(1.0 / rate))) if rate > 0 else self.env.event()
            except simpy.Interrupt:
                continue
            self._arrive(h, h.new_patient(self.now_s))

    def _stay(self, h: Hospital, patient: Patient) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(patient.stay_s)
        h.release_bed(patient)
        self._admit(h)

    def _oxygen_process(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(_TICK_S)
            for hid, h in self.hospitals.items():
                if h.integrate_oxygen(_TICK_S):
                    self._log("oxygen-exhausted", hid)

    # --- patient flow ----------------------------------------------------------------------------
    def _arrive(self, h: Hospital, patient: Patient) -> None:
        """A patient reaches an ED. A diverting hospital's ambulances go to the other hospital that can
        take the patient with the most spare ED spaces (then the most free beds of their kind), when it
        has more than the diverting one (the patient is seen sooner there); a walk-in comes to the
        hospital they chose, diverting or not (see `_ed`)."""
        if h.diverting and patient.ambulance:
            others = [o for o in self.hospitals.values() if o is not h and o.takes_ambulance(patient)]
            target = max(others, key=lambda o: (o.ed_spare(), o.free(patient.icu)), default=None)
            if target is not None and (target.ed_spare() > h.ed_spare() or not h.powered):
                h.diverted_out += 1
                target.diverted_in += 1
                h = target
        h.record(h.arrival_times, self.now_s)
        h.ed_queue.append(patient)
        self._admit(h)

    def _treatment(self, h: Hospital, patient: Patient) -> Generator[simpy.Event, Any, None]:
        """Treatment in an ED space; then home, or to a bed (boarding in the space until one is free)."""
        yield self.env.timeout(patient.treat_s)
        if patient.admit:
            h.queue.append(patient)
        else:
            h.ed_in_bay -= 1
        self._admit(h)

    def _admit(self, h: Hospital) -> None:
        """Move everyone who can move: boarders to free beds (freeing their ED space), then the ED's
        queue into free spaces."""
        for patient in h.admissible():
            h.take_bed(patient)
            if patient.seen_s is not None:
                h.ed_in_bay -= 1
            h.admitted += 1
            h.record(h.admission_times, self.now_s)
            h.total_wait_s += self.now_s - patient.arrived_s
            self.env.process(self._stay(h, patient))
        for patient in h.to_treat():
            h.record_seen(patient, self.now_s)
            h.ed_in_bay += 1
            self.env.process(self._treatment(h, patient))

    # --- faults ----------------------------------------------------------------------------------
    def inject_fault(self, kind: FaultKind, target: str, *, severity: float | None = None) -> TwinEvent:
        """Break something from now on.

        * ADMISSION_SURGE on a hospital: arrivals multiply by ``severity`` (default 3); demand, not
          damage (see the module docstring).
        * POWER_LOSS on a hospital: the grid feed is lost; the ATS moves it to the generator (if
          both work), which runs for its fuel hours; otherwise the hospital has no power.
        * EQUIPMENT_FAILURE on ``<hospital>:generator|ats|o2-plant|ventilators``; for ventilators
          ``severity`` is the fraction of ICU beds that lose theirs (default 0.5).
        """
        if target in self._faults:
            raise InvalidFault(f"{target} already has an active {self._faults[target].value}; clear it first")
        hid, equipment = self._split(target)
        h = self.hospitals[hid]
        detail = kind.value
        if kind is FaultKind.ADMISSION_SURGE and not equipment:
            factor = _DEFAULT_SURGE if severity is None else float(severity)
            if not np.isfinite(factor) or not 1.0 < factor <= 20.0:
                raise InvalidFault(f"an admission surge factor must be in (1, 20], not {severity}")
            h.surge = factor
            h.mci_casualties = max(1, round((factor - 1.0) * h.ed_attendances_per_h() * MCI_HORIZON_H))
            self._arrivals[hid].interrupt()
            detail += f" x{factor} (MCI declared: {h.mci_casualties} casualties pre-alerted)"
        elif kind is FaultKind.POWER_LOSS and not equipment:
            h.grid_ok = False
            if h.source is PowerSource.GRID and not (h.ats_ok and self._to_backup(h, "automatic transfer")):
                self._leave_backup(h, PowerSource.NONE, "grid lost, no automatic transfer")
        elif kind is FaultKind.EQUIPMENT_FAILURE and equipment:
            detail += " " + self._break(h, equipment, severity)
        else:
            raise InvalidFault(
                f"{kind.value} on {target!r}: use admission-surge or power-loss on a hospital, "
                f"equipment-failure on <hospital>:{'|'.join(EQUIPMENT)}"
            )
        self._faults[target] = kind
        event = self._log("fault", target, detail)
        self._refresh()
        return event

    def _break(self, h: Hospital, equipment: str, severity: float | None) -> str:
        if equipment == "generator":
            h.generator_ok = False
            if h.source is PowerSource.BACKUP:
                self._leave_backup(h, PowerSource.GRID if h.grid_ok else PowerSource.NONE, "generator failed")
            return equipment
        return h.set_equipment(equipment, working=False, severity=severity)

    def clear_fault(self, target: str) -> tuple[TwinEvent, ...]:
        """Repair ``target``. When the grid returns the ATS transfers back to it (the retransfer every
        hospital ATS does); a repaired generator does not start until power is lost or commanded."""
        kind = self._faults.pop(target, None)
        if kind is None:
            raise InvalidFault(f"{target!r} has no active fault to clear (active: {sorted(self._faults) or 'none'})")
        before = len(self._events)
        hid, equipment = self._split(target)
        h = self.hospitals[hid]
        self._log("repaired", target, kind.value)
        if kind is FaultKind.ADMISSION_SURGE:
            h.surge = 1.0
            h.mci_casualties = 0  # the MCI is stood down
            self._arrivals[hid].interrupt()
        elif kind is FaultKind.POWER_LOSS:
            h.grid_ok = True
            self._leave_backup(h, PowerSource.GRID, "grid restored")
        elif equipment == "generator":
            h.generator_ok = True
        else:
            h.set_equipment(equipment, working=True)
        self._admit(h)
        self._refresh()
        return tuple(self._events[before:])

    # --- attacks -----------------------------------------------------------------------------------
    def inject_attack(
        self,
        kind: AttackKind,
        sensor_id: str,
        *,
        magnitude: float | None = None,
        rate_per_hour: float | None = None,
        window: int | None = None,
        command: ActuatorCommand | None = None,
    ) -> Attack:
        """Falsify ``sensor_id`` (bias/drift/replay/frozen), or for SPOOFED_COMMAND carry out the
        forged ``command`` and freeze ``sensor_id`` at what it showed, hiding the change."""
        shown = {r.sensor_id: r.value for r in self.readings()}
        if sensor_id not in shown:
            raise InvalidAttack(f"no sensor {sensor_id!r} in the healthcare twin (e.g. hospital-1/bed_occupancy)")
        if kind is AttackKind.SPOOFED_COMMAND:
            if command is None:
                raise InvalidAttack("a spoofed-command attack needs command=ActuatorCommand(...)")
            if command.sector is not Sector.HEALTHCARE:
                raise InvalidCommand(f"{command.sector.value} command sent to the healthcare twin")
            self._execute(command.asset_id, command.actuator_id, command.action, command.value, origin="spoofed")
            attack = self._attacks.freeze(sensor_id, at=self.now, kind=kind, value=shown[sensor_id])
            self._refresh()
        elif kind is AttackKind.FROZEN:
            attack = self._attacks.freeze(sensor_id, at=self.now, value=shown[sensor_id])
        else:
            attack = self._attacks.inject(
                kind, sensor_id, at=self.now, magnitude=magnitude, rate_per_hour=rate_per_hour, window=window
            )
        self._log("attack", sensor_id, kind.value)
        return attack

    def clear_attack(self, sensor_id: str) -> None:
        """Stop falsifying ``sensor_id`` (a spoofed command's effect stays until commanded back)."""
        self._attacks.clear(sensor_id)
        self._log("attack-cleared", sensor_id)

    # --- internals ---------------------------------------------------------------------------------
    def _split(self, target: str) -> tuple[str, str]:
        hid, _, equipment = target.partition(":")
        if hid not in self.hospitals:
            raise UnknownAsset(f"no hospital {hid!r}; hospitals: {', '.join(self.hospitals)}")
        if equipment and equipment not in EQUIPMENT:
            raise UnknownAsset(f"{hid} has no equipment {equipment!r}; equipment: {', '.join(EQUIPMENT)}")
        return hid, equipment

    def _refresh(self) -> None:
        """Re-read the true sensor values (only a clock step records them as attack history)."""
        at = self.now
        self._true = [r for h in self.hospitals.values() for r in hospital_readings(h, self.now_s, at)]
        self._true += dispatch_readings(DISPATCH, self.hospitals.values(), at)

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        event = TwinEvent(self.now, kind, asset, detail)
        self._events.append(event)
        return event
