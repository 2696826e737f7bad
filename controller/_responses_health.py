"""Healthcare responses: transfer a hospital to backup power, divert admissions, return after repair.

Targets are a hospital (``hospital-1``: power loss or an admission surge) or its equipment
(``hospital-1:generator|ats|o2-plant|ventilators``). A hospital without grid power goes to its
generator, which the automatic transfer switch normally does; when the ATS failed the plan does it
by hand, and when the generator cannot run (failed, no fuel) the hospital diverts new admissions.
A capacity loss (surge, oxygen plant, ventilators) diverts admissions: the twin sends each new
ambulance to the hospital with the most spare emergency-department spaces (then the most free beds
of the kind needed), when that is more than the diverting hospital's own; walk-ins still come
(`sectors.healthcare.twin`). Restoring keeps the
generator fuelled; reintegration returns to the grid and takes admissions again.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, FaultKind, Sector
from sectors._twin import UnknownAsset
from sectors.healthcare import HealthcareTwin
from sectors.healthcare.twin import EQUIPMENT

from ._responses_common import make_plan, require_repaired

__all__ = ["TWIN", "isolate_plan", "reintegrate_plan", "restore_plan"]

TWIN = HealthcareTwin
_S = Sector.HEALTHCARE
_POWER = ("generator", "ats")
_NONE, _GRID, _BACKUP = 0, 1, 2  # the power_source sensor's codes


def _split(twin: HealthcareTwin, target: str) -> tuple[str, str]:
    """(hospital, equipment or ""), raising UnknownAsset like the twin does."""
    hid, _, equipment = target.partition(":")
    if hid not in twin.hospitals or (equipment and equipment not in EQUIPMENT):
        raise UnknownAsset(f"no healthcare asset {target!r}: hospitals {', '.join(twin.hospitals)}, "
                           f"equipment <hospital>:{'|'.join(EQUIPMENT)}")
    return hid, equipment


def _values(twin: HealthcareTwin, hid: str) -> dict[str, float]:
    prefix = f"{hid}/"
    return {r.quantity: r.value for r in twin.readings() if r.sensor_id.startswith(prefix)}


def _free_elsewhere(twin: HealthcareTwin, hid: str) -> int:
    return sum(h.free(False) for other, h in twin.hospitals.items() if other != hid and h.accepting(False))


def _impact(twin: HealthcareTwin, hid: str) -> dict[str, float | int | str]:
    service, values = twin.service(), _values(twin, hid)
    return {
        "critical_at_risk": service.critical_at_risk,
        "waiting": service.waiting,
        "power_source": {_NONE: "none", _GRID: "grid", _BACKUP: "backup"}[int(values["power_source"])],
        "backup_fuel_h": round(values["backup_fuel_h"], 2),
        "free_beds_elsewhere": _free_elsewhere(twin, hid),
    }


def _can_run_generator(twin: HealthcareTwin, hid: str) -> bool:
    return f"{hid}:generator" not in twin.faults and _values(twin, hid)["backup_fuel_h"] > 0


def _divert(twin: HealthcareTwin, hid: str) -> list[ActuatorCommand]:
    return [] if _values(twin, hid)["diverting"] else [twin.command(f"{hid}/admissions", "divert")]


def isolate_plan(twin: HealthcareTwin, target: str) -> ResponsePlan:
    hid, equipment = _split(twin, target)
    values = _values(twin, hid)
    grid_lost = values["grid_available"] == 0.0
    commands: list[ActuatorCommand] = []
    if equipment in _POWER or (not equipment and twin.faults.get(target) is FaultKind.POWER_LOSS):
        if not grid_lost:
            reason = f"{hid} is on the grid; {target} matters only if the grid fails: nothing to switch now"
        elif values["power_source"] == _BACKUP:
            reason = f"{hid} already runs on its generator ({values['backup_fuel_h']:.1f} h of fuel)"
        elif _can_run_generator(twin, hid):
            commands.append(twin.command(f"{hid}/power", "backup"))
            reason = f"{hid} lost the grid and its automatic transfer did not happen: transfer to backup by hand"
        else:
            commands += _divert(twin, hid)
            reason = f"{hid} has no power and no usable generator: divert admissions to hospitals with capacity"
    else:
        commands += _divert(twin, hid)
        reason = (f"{target} cuts {hid}'s capacity: divert new admissions to the hospitals with free beds "
                  f"({_free_elsewhere(twin, hid)} now)")
    return make_plan(_S, target, "isolate", commands, _impact(twin, hid), reason)


def restore_plan(twin: HealthcareTwin, target: str) -> ResponsePlan:
    hid, _ = _split(twin, target)
    values = _values(twin, hid)
    spec_hours = twin.hospitals[hid].spec.backup_hours
    if values["power_source"] == _BACKUP and values["backup_fuel_h"] < spec_hours - 1e-6:
        command = twin.command(f"{hid}/power", "refuel", spec_hours - values["backup_fuel_h"])
        return make_plan(_S, target, "restore", (command,), _impact(twin, hid),
                         f"refuel {hid}'s generator to its {spec_hours:.0f} h tank while the grid is out")
    if values["power_source"] == _NONE:
        return make_plan(_S, target, "restore", _divert(twin, hid), _impact(twin, hid),
                         f"{hid} has no power: its admissions go to hospitals with capacity")
    return make_plan(_S, target, "restore", (), _impact(twin, hid),
                     f"{hid} is powered and its admissions are handled: nothing more to do")


def reintegrate_plan(twin: HealthcareTwin, target: str) -> ResponsePlan:
    hid, _ = _split(twin, target)
    require_repaired(_S, target, twin.faults)
    values = _values(twin, hid)
    commands: list[ActuatorCommand] = []
    if values["power_source"] != _GRID and values["grid_available"] == 1.0:
        commands.append(twin.command(f"{hid}/power", "restore"))
    still = [t for t in twin.faults if t == hid or t.startswith(f"{hid}:")]
    if values["diverting"] and not still:
        commands.append(twin.command(f"{hid}/admissions", "restore"))
    reason = f"{target} is repaired: {hid} back on the grid and admitting"
    if still:
        reason += f" (admissions stay diverted while {', '.join(sorted(still))} is faulted)"
    return make_plan(_S, target, "reintegrate", commands, _impact(twin, hid), reason)
