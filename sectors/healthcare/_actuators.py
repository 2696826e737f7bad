"""The hospitals' actuators, and the power transfers they drive (part of `sectors.healthcare.twin`).

Actuators: ``<hospital>/power`` (backup, restore, refuel [hours]) and ``<hospital>/admissions``
(divert, restore). A transfer to the backup generator starts its fuel clock (a simpy process that
leaves the hospital without power when the fuel runs out); a transfer away from it stops the clock
and keeps the fuel left. The faults (`HealthcareTwin.inject_fault`, `clear_fault`) make the same
transfers, as a hospital's automatic transfer switch does.

`HospitalActuators` is a base class of `HealthcareTwin`, so that the twin's module keeps the clock,
the patient flow, the faults and the attacks, and this one what can be switched.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand, TwinEvent, UnknownAsset

from ._hospital import Hospital, PowerSource

__all__ = ["HospitalActuators"]

_ACTIONS = {"power": ("backup", "restore", "refuel"), "admissions": ("divert", "restore")}


class HospitalActuators:
    """Power transfers and actuator commands of `HealthcareTwin`, which provides what is declared here."""

    env: simpy.Environment
    hospitals: dict[str, Hospital]
    _generators: dict[str, simpy.Process]
    _events: list[TwinEvent]

    @property
    def now_s(self) -> float:
        raise NotImplementedError  # the twin's simpy clock (`HealthcareTwin.now_s`)

    def _log(self, kind: str, asset: str, detail: str = "") -> TwinEvent:
        raise NotImplementedError  # `HealthcareTwin._log`

    def _admit(self, h: Hospital) -> None:
        raise NotImplementedError  # `HealthcareTwin._admit`

    def _refresh(self) -> None:
        raise NotImplementedError  # `HealthcareTwin._refresh`

    # --- power ------------------------------------------------------------------------------------
    def _generator_run(self, h: Hospital, hours: float) -> Generator[simpy.Event, Any, None]:
        try:
            yield self.env.timeout(hours * 3600.0)
        except simpy.Interrupt:
            return
        h.fuel_h, h.backup_since, h.source = 0.0, None, PowerSource.NONE
        self._log("backup-exhausted", h.spec.hospital_id, "generator out of fuel: hospital degraded")

    def _to_backup(self, h: Hospital, why: str) -> bool:
        if not h.generator_ok or h.fuel_h <= 0:
            return False
        if h.source is not PowerSource.BACKUP:
            h.source, h.backup_since = PowerSource.BACKUP, self.now_s
            self._generators[h.spec.hospital_id] = self.env.process(self._generator_run(h, h.fuel_h))
            self._log("transfer", h.spec.hospital_id, f"to backup generator ({why}), {h.fuel_h:.1f} h of fuel")
        return True

    def _leave_backup(self, h: Hospital, to: PowerSource, why: str) -> None:
        if h.source is PowerSource.BACKUP:
            h.fuel_h = h.fuel_left_h(self.now_s)
            h.backup_since = None
            proc = self._generators.pop(h.spec.hospital_id, None)
            if proc is not None and proc.is_alive:
                proc.interrupt()
        if h.source is not to:
            h.source = to
            self._log("transfer", h.spec.hospital_id, f"to {to.name.lower()} ({why})")
        self._admit(h)

    # --- actuators -------------------------------------------------------------------------------
    def actuators(self) -> dict[str, tuple[str, ...]]:
        """Every actuator id → the actions it accepts."""
        return {f"{hid}/{name}": acts for hid in self.hospitals for name, acts in _ACTIONS.items()}

    def command(self, actuator_id: str, action: str, value: float | None = None, decision_ref: str = "") -> ActuatorCommand:
        """A well-formed command for ``actuator_id`` (e.g. ``hospital-1/power``)."""
        return ActuatorCommand(
            sector=Sector.HEALTHCARE, asset_id=actuator_id.split("/")[0], actuator_id=actuator_id,
            action=action, value=value, decision_ref=decision_ref,
        )

    def apply(self, command: ActuatorCommand) -> tuple[TwinEvent, ...]:
        """Carry out ``command`` now; returns the events it caused."""
        if command.sector is not Sector.HEALTHCARE:
            raise InvalidCommand(f"{command.sector.value} command sent to the healthcare twin")
        before = len(self._events)
        self._execute(command.asset_id, command.actuator_id, command.action, command.value, origin="command")
        self._refresh()
        return tuple(self._events[before:])

    def _execute(self, asset: str, actuator: str, action: str, value: float | None, *, origin: str) -> None:
        acts = self.actuators()
        if actuator not in acts:
            raise UnknownAsset(f"no healthcare actuator {actuator!r}; e.g. {next(iter(acts))}")
        hid, name = actuator.split("/")
        if asset != hid:
            raise InvalidCommand(f"actuator {actuator!r} does not belong to {asset!r}")
        if action not in acts[actuator]:
            raise InvalidCommand(f"{actuator} accepts {', '.join(acts[actuator])}, not {action!r}")
        h = self.hospitals[hid]
        if name == "admissions":
            h.diverting = action == "divert"
            self._log("admissions", hid, f"{action} ({origin})")
            self._admit(h)
        elif action == "backup":
            if not self._to_backup(h, origin):
                raise InvalidCommand(f"{hid} cannot transfer to backup: generator failed or out of fuel")
        elif action == "restore":
            if not h.grid_ok:
                raise InvalidCommand(f"{hid} cannot return to the grid: its grid feed is still lost")
            self._leave_backup(h, PowerSource.GRID, origin)
        else:
            hours = h.spec.backup_hours if value is None else float(value)
            if not np.isfinite(hours) or hours <= 0:
                raise InvalidCommand(f"refuel needs a positive number of hours of fuel, not {value}")
            on_backup = h.source is PowerSource.BACKUP
            if on_backup:
                self._leave_backup(h, PowerSource.NONE, "refuelling")
            h.fuel_h = min(h.spec.backup_hours, h.fuel_h + hours)
            self._log("refuelled", hid, f"{h.fuel_h:.1f} h of fuel ({origin})")
            if on_backup:
                self._to_backup(h, "refuelled")
