"""Sewage responses at lift station PS1: start the standby by hand, divert to ST1.

The station has one duty and one standby pump (about 0.37 m³/s each) and, upstream at J3, the
regulator OR1 that can divert trunk flow into the 1,600 m³ storm tank ST1. The pump that still
works is started by hand rather than left to its level rule, which would only start it once the
wet well is already 2.6 m deep. Diversion costs storm-tank
volume (ST1 has no drain-back actuator in the twin), so it opens only when the station cannot
carry the flow: no pump left, or one pump left while it rains or the wet well stands above the
standby's start level. A blockage of the trunk (C3, C4) or force main (FM) is relieved by the
same diversion, as a utility's real-time control would: the flow the blocked sewer cannot take goes
into storage at J3 instead of backing up into the manholes or over the CSO weir, and it stays
diverted until the crew has cleared the sewer (`restore_plan` keeps the gate open, `reintegrate_plan`
closes it). A dry-weather overflow (`outfall:CSO`, spilling with no blockage the levels show) is
stopped the same way: the chamber receives nothing to spill. In dry weather the 1,600 m³ tank holds
about half a day of the catchment's sanitary flow (23 L/s at its daily mean), time enough for a crew.
One upstream of J3 (C1, C2) has no actuator and waits for a crew.

SWMM runs one engine per process, so a plan cannot be tried on a copy: its impact is the state
now (overflow so far, the tank volume left), and the twin's service after the next steps is the
check.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand
from sectors.sewage import SewageTwin
from sectors.sewage.network import (
    CSO_OUTFALL,
    DIVERSION,
    DUTY_PUMP,
    STANDBY_PUMP,
    STATION,
    AssetKind,
    parse_asset_id,
)
from sectors.sewage.station import RULES

from ._responses_common import make_plan, require_repaired

__all__ = ["TWIN", "isolate_plan", "reintegrate_plan", "restore_plan"]

TWIN = SewageTwin
_S = Sector.SEWAGE
PUMPS = (f"pump:{DUTY_PUMP}", f"pump:{STANDBY_PUMP}")
GATE = f"orifice:{DIVERSION}"
STORM_TANK_AREA_M2 = 400.0  # ST1 in network.inp: functional storage, constant area 400 m², 4 m deep
STORM_TANK_DEPTH_M = 4.0
_RELIEVED_BY_DIVERSION = ("C3", "C4", "FM")
CSO = f"outfall:{CSO_OUTFALL}"
DRY_WEATHER_M3S = 0.023
"""The catchment's mean sanitary flow: ``network.inp`` [DWF] 24 L/s of baselines times the DIURNAL
pattern's daily mean, 0.95."""


def _readings(twin: SewageTwin) -> dict[str, float]:
    return {r.sensor_id: r.value for r in twin.readings()}


def _failed_pumps(twin: SewageTwin, extra: str = "") -> set[str]:
    failed = set()
    for asset in (*twin.faults, extra):
        if asset == f"station:{STATION}":
            failed |= set(PUMPS)
        elif asset in PUMPS:
            failed.add(asset)
    return failed


def _impact(twin: SewageTwin, pumps_available: int) -> dict[str, float | int | str]:
    service, values = twin.service(), _readings(twin)
    tank_m3 = STORM_TANK_AREA_M2 * STORM_TANK_DEPTH_M
    stored = STORM_TANK_AREA_M2 * values["storage:ST1/level_m"]
    return {
        "overflow_m3": round(service.overflow_m3, 1),
        "cso_spilling": int(service.overflow_m3s > 0.0),
        "flooding_m3": round(service.flooding_m3, 1),
        "wet_well_level_m": round(service.wet_well_level_m, 2),
        "storm_tank_free_m3": round(max(0.0, tank_m3 - stored), 1),
        "pumps_available": pumps_available,
    }


def _needs_diversion(twin: SewageTwin, available: int) -> bool:
    if available == 0:
        return True
    if available >= len(PUMPS):
        return False
    service = twin.service()
    return twin.rain_mm_h > 0.0 or service.spilling or service.wet_well_level_m >= RULES[STANDBY_PUMP].start_m


def _check(target: str) -> AssetKind:
    kind, _ = parse_asset_id(target)  # raises UnknownAsset naming the valid ids
    if kind not in (AssetKind.PUMP, AssetKind.STATION, AssetKind.CONDUIT) and target != CSO:
        raise InvalidCommand(f"sewage responses act on pump:P1, pump:P2, station:{STATION}, conduits and {CSO}, "
                             f"not {target}")
    return kind


def _diverted(target: str) -> bool:
    """Whether the diversion at J3 relieves `target`: a blocked sewer below J3, or the CSO's chamber."""
    return target == CSO or target.split(":", 1)[1] in _RELIEVED_BY_DIVERSION and target.startswith("conduit:")


def _relief(twin: SewageTwin, target: str, purpose: str) -> ResponsePlan:
    """The plan for a blocked sewer or a dry-weather overflow: divert at J3 into the storm tank while it
    lasts (see the module docstring), or say why nothing can."""
    impact = _impact(twin, len(PUMPS) - len(_failed_pumps(twin)))
    if not _diverted(target):
        return make_plan(_S, target, purpose, (), impact, f"{target} lies upstream of the diversion: no actuator "
                         "relieves it; a crew must clear it")
    what = "the CSO chamber spilling in dry weather" if target == CSO else f"blocked {target}"
    hours = float(impact["storm_tank_free_m3"]) / DRY_WEATHER_M3S / 3600.0
    held = f"the storm tank holds {impact['storm_tank_free_m3']} m³ more (~{hours:.0f} h of mean dry-weather flow)"
    if twin.diversion >= 1.0:
        return make_plan(_S, target, purpose, (), impact, f"nothing more to do: diverting at J3 around {what}; {held}")
    return make_plan(_S, target, purpose, (twin.command(GATE, "open"),), impact,
                     f"divert trunk flow at J3 into the storm tank to relieve {what}; {held}")


def isolate_plan(twin: SewageTwin, target: str) -> ResponsePlan:
    kind = _check(target)
    if kind in (AssetKind.CONDUIT, AssetKind.OUTFALL):
        return _relief(twin, target, "isolate")
    commands: list[ActuatorCommand] = []
    failed = _failed_pumps(twin, target)
    working = [p for p in PUMPS if p not in failed]
    # A failed pump is left under its level rule, not held stopped from SCADA: the PLC never runs a
    # failed pump, the crew locks it out on site while they work, and once repaired it starts by
    # itself when the level calls for it — the readings the oracles verify the repair on. Held
    # stopped, a repaired pump stayed off, broke the pump rule, and was never voted back (storm day).
    commands += [twin.command(p, "start") for p in working]
    parts = [f"{', '.join(sorted(failed))} left to its level rule (the PLC will not run a failed pump)"]
    if working:
        parts.append(f"start {', '.join(working)} by hand")
    if _needs_diversion(twin, len(working)):
        commands.append(twin.command(GATE, "open"))
        parts.append("divert to the storm tank: the station cannot carry the flow")
    return make_plan(_S, target, "isolate", commands, _impact(twin, len(working)), "; ".join(parts))


def restore_plan(twin: SewageTwin, target: str) -> ResponsePlan:
    kind = _check(target)
    if kind is AssetKind.OUTFALL or (kind is AssetKind.CONDUIT and target in twin.faults):
        return _relief(twin, target, "restore")  # still blocked: the diversion stays until the crew clears it
    working = len(PUMPS) - len(_failed_pumps(twin, "" if kind is AssetKind.CONDUIT else target))
    open_now = twin.diversion >= 1.0
    if _needs_diversion(twin, working) and not open_now:
        return make_plan(_S, target, "restore", (twin.command(GATE, "open"),), _impact(twin, working),
                         "the station cannot carry the flow now: divert to the storm tank")
    state = "diverting to the storm tank" if open_now else "the remaining pumps carry the flow"
    return make_plan(_S, target, "restore", (), _impact(twin, working), f"nothing more to do: {state}")


def reintegrate_plan(twin: SewageTwin, target: str) -> ResponsePlan:
    _check(target)
    require_repaired(_S, target, twin.faults)
    failed = _failed_pumps(twin)
    commands = [twin.command(p, "auto") for p in PUMPS if p not in failed]
    reason = f"{target} is repaired: pumps back under the level rule"
    if _needs_diversion(twin, len(PUMPS) - len(failed)):
        reason += "; the diversion stays open while other pumps are out"
    else:
        commands.append(twin.command(GATE, "close"))
        reason += ", diversion closed"
    return make_plan(_S, target, "reintegrate", commands, _impact(twin, len(PUMPS) - len(failed)), reason)
