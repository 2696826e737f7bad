"""Sewage responses at lift station PS1: start the standby by hand, divert to ST1.

The station has one duty and one standby pump (about 0.37 m³/s each) and, upstream at J3, the
regulator OR1 that can divert trunk flow into the 1,600 m³ storm tank ST1. The pump that still
works is started by hand rather than left to its level rule, which would only start it once the
wet well is already 2.6 m deep. Diversion costs storm-tank
volume (ST1 has no drain-back actuator in the twin), so it opens only when the station cannot
carry the flow: no pump left, or one pump left while it rains or the wet well stands above the
standby's start level. A blockage of the trunk (C3, C4) or force main (FM) is relieved by the
same diversion; one upstream of J3 (C1, C2) has no actuator and waits for a crew.

SWMM runs one engine per process, so a plan cannot be tried on a copy: its impact is the state
now (overflow so far, the tank volume left), and the twin's service after the next steps is the
check.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand
from sectors.sewage import SewageTwin
from sectors.sewage.network import DIVERSION, DUTY_PUMP, STANDBY_PUMP, STATION, AssetKind, parse_asset_id
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
    if kind not in (AssetKind.PUMP, AssetKind.STATION, AssetKind.CONDUIT):
        raise InvalidCommand(f"sewage responses act on pump:P1, pump:P2, station:{STATION} and conduits, not {target}")
    return kind


def isolate_plan(twin: SewageTwin, target: str) -> ResponsePlan:
    kind = _check(target)
    commands: list[ActuatorCommand] = []
    if kind is AssetKind.CONDUIT:
        name = target.split(":", 1)[1]
        if name in _RELIEVED_BY_DIVERSION:
            commands.append(twin.command(GATE, "open"))
            reason = f"divert trunk flow at J3 into the storm tank to relieve blocked {target}"
        else:
            reason = f"{target} lies upstream of the diversion: no actuator relieves it; a crew must clear it"
        return make_plan(_S, target, "isolate", commands, _impact(twin, 2 - len(_failed_pumps(twin))), reason)
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
