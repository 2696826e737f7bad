"""Water responses on the Net3 twin: close the valve segment around a break, keep pressure, undo.

A break or leak (``pipe:X``, ``junction:X``) is isolated by closing the boundary valves of its
valve segment (the twin's `isolation_plan`). What that costs is forecast twice: topologically
(`cut_off_by`: junctions left with no path to a tank or reservoir) and hydraulically, by applying
the same commands to a copy of the twin and solving one report period: the customers without
water, the leak that remains (a segment holding a tank keeps feeding the break), and the lowest
pressure among the junctions still served. Restoring means keeping pressure for the rest: when
served junctions sit below the required pressure, the working pumps run at full drive speed.

A failed pump (``pump:X``) is locked out (held stopped, so it cannot surprise a crew or restart
against its own controls after the repair) and the other pumps run at full drive speed to keep
the tanks filled. Reintegration re-opens the valves, hands the pumps back to their controls and
their rated speed.
"""

from __future__ import annotations

import copy

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand, TwinError
from sectors.runner import REPORT_PERIOD_S
from sectors.water import REQUIRED_PRESSURE_M, WaterTwin
from sectors.water.controls import MAX_PUMP_SPEED
from sectors.water.network import AssetKind, parse_asset_id

from ._responses_common import make_plan, require_repaired

__all__ = ["TWIN", "forecast", "isolate_plan", "reintegrate_plan", "restore_plan"]

TWIN = WaterTwin
_S = Sector.WATER
FORECAST_S = REPORT_PERIOD_S[_S]


def _kind(twin: WaterTwin, target: str) -> AssetKind:
    kind, _ = parse_asset_id(target)
    if kind is AssetKind.PUMP:
        twin.actuator_id(target)  # raises UnknownAsset for a pump Net3 does not have
        return kind
    if kind in (AssetKind.PIPE, AssetKind.JUNCTION):
        twin.isolation_plan(target)  # raises for an unknown element or one no valve can isolate
        return kind
    raise InvalidCommand(f"water responses act on pipes, junctions and pumps, not {target}")


def forecast(twin: WaterTwin, commands: tuple[ActuatorCommand, ...]) -> dict[str, float | int | str]:
    """The service one report period after applying ``commands`` to a copy of ``twin``."""
    trial = copy.deepcopy(twin)
    for cmd in commands:
        trial.apply(cmd)
    try:
        trial.step(FORECAST_S)
    except TwinError as exc:
        return {"forecast": f"not solved: {exc}"}
    service = trial.service()
    dry = set(service.without_water)
    pressures = [r.value for r in trial.true_readings()
                 if r.quantity == "pressure_m" and r.asset_id.split(":", 1)[1] in twin.customers
                 and r.asset_id.split(":", 1)[1] not in dry]
    lowest = min(pressures, default=0.0)
    return {
        "customers_without_water": service.customers_without_water,
        "junctions_without_water": len(service.without_water),
        "junctions_low_pressure": len(service.low_pressure),
        "leak_m3s_after": round(service.leak_m3s, 4),
        "min_served_pressure_m": round(lowest, 2),
        "pressure_deficit_m": round(max(0.0, REQUIRED_PRESSURE_M - lowest), 2),
        "delivered_fraction": round(service.delivered_fraction, 4),
    }


def _pumps(twin: WaterTwin, *, but: str = "") -> list[str]:
    """Pumps that can run: not ``but`` and not failed."""
    return [p for p in twin.asset_ids(AssetKind.PUMP) if p != but and p not in twin.faults]


def isolate_plan(twin: WaterTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    now = twin.service()
    if kind is AssetKind.PUMP:
        stop = (twin.command(target, "stop"),)
        return make_plan(_S, target, "isolate", stop,
                         {"pumps_available": len(_pumps(twin, but=target)), **forecast(twin, stop)},
                         f"lock {target} out (held stopped) so it cannot restart under its controls or a crew")
    plan = twin.isolation_plan(target)
    commands = tuple(twin.command(v.valve_id, "close") for v in plan.valves)
    cut = twin.cut_off_by(plan)
    impact: dict[str, float | int | str] = {
        "valves_closed": len(commands),
        "segment_junctions": len(plan.junctions),
        "cut_off_junctions": len(cut),
        "cut_off_customers": sum(twin.customers.get(j, 0) for j in cut),
        "leak_m3s_now": round(now.leak_m3s, 4),
        **forecast(twin, commands),
    }
    reason = f"close the {len(commands)} boundary valves of segment {plan.segment} around {target}"
    if plan.sources:
        reason += f"; the segment holds {', '.join(plan.sources)}, which keeps feeding the break until repaired"
    return make_plan(_S, target, "isolate", commands, impact, reason)


def restore_plan(twin: WaterTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    now = twin.service()
    pumps = _pumps(twin, but=target)
    boost = tuple(twin.command(p, "speed", MAX_PUMP_SPEED) for p in pumps
                  if twin.overrides.speed(p.split(":", 1)[1]) < MAX_PUMP_SPEED)
    if kind is AssetKind.PUMP or now.low_pressure:
        why = (f"the other pumps make up for {target}" if kind is AssetKind.PUMP
               else f"{len(now.low_pressure)} served junctions are below {REQUIRED_PRESSURE_M} m")
        return make_plan(_S, target, "restore", boost, forecast(twin, boost),
                         f"run {', '.join(pumps) or 'no pump'} at full drive speed: {why}")
    return make_plan(_S, target, "restore", (), {
        "customers_without_water": now.customers_without_water,
        "junctions_without_water": len(now.without_water),
    }, "the rest of the network keeps its pressure; the cut-off customers have no alternative feed "
       "and wait for the repair")


def reintegrate_plan(twin: WaterTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    require_repaired(_S, target, twin.faults)
    speed = tuple(twin.command(p, "speed", 1.0) for p in twin.asset_ids(AssetKind.PUMP)
                  if twin.overrides.speed(p.split(":", 1)[1]) != 1.0)
    if kind is AssetKind.PUMP:
        commands: tuple[ActuatorCommand, ...] = (twin.command(target, "auto"), *speed)
        reason = f"{target} is repaired: hand it back to its controls and every pump to its rated speed"
    else:
        plan = twin.isolation_plan(target)
        commands = (*(twin.command(v.valve_id, "open") for v in plan.valves if twin.valve_closed(v.valve_id)),
                    *speed)
        reason = f"{target} is repaired: re-open the valves of segment {plan.segment}, pumps to rated speed"
    return make_plan(_S, target, "reintegrate", commands, forecast(twin, commands), reason)
