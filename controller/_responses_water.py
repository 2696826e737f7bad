"""Water responses on the Net3 twin: cut a break off with the fewest valves, re-route, keep pressure, undo.

Isolate. A break or leak (``pipe:X``, ``junction:X``) is cut off by the fewest valves that separate
it from every tank and reservoir (the twin's `isolation_plan`; `sectors.water.segments` says why
those and no others). The plan states what that costs — the customers of the segment and of the
dead ends stranded behind it, forecast topologically (`cut_off_by`) and hydraulically (the same
commands on a copy of the twin, solved for one report period: who is without water, the leak that
remains, the lowest served pressure) — beside what leaving the break flowing would cost over the
same period (the leak robs pressure: ``leak_customers_affected``), so the trade-off is on record.

Restore, on a model with the isolation applied: first re-route, then keep pressure.

- *Re-route*: a link that is shut now but not by the isolation (a normally-closed cross-connection,
  a pump standing idle, a pipe an EPANET control closed) and that joins cut-off customers to a
  supplied part of the network is opened.
- *Pressure*: when served customers sit below the required pressure, idle pumps start and working
  ones run at full drive speed (`MAX_PUMP_SPEED`).

Each stage is kept only if the forecast serves more customers at the required pressure with it than
without it: a command that helps nobody costs energy and a reintegration step. What no path reaches
waits for the repair, and the plan says how many (``customers_refed``: the customers the isolation
left dry that the plan feeds again; on the city's N-1 valve layer pipe 120's isolation strands 2,489
beyond its segment, downstream of the idle Lake pump, and starting it feeds them). Net3 gives the
storm day's pipe 159 neither: on N-1 its segment is junction 147 alone, with nothing stranded behind
it, and the rest of the network keeps its pressure without help.

What the storm day's break costs is the valve layer's doing more than any response's
(`scripts/water_break_tradeoff.py`, `sectors.water.segments`). Flowing, it leaves 2,176 customers
short of pressure (junction 15, 1,902, at 6.9 m; 149 and 147). On N-1, shut, it dries only junction
147's 66: isolating a minute after the onset stops 438 m³ of loss and keeps availability over the
storm window at 0.99915 against the crew's 0.99223 (who leaves the break flowing for 45 minutes). On
the strategic N-2 layer the city kept until the storm day, the segment and the dead end behind it held
3,671 customers, all dry until the repair whoever shut it, so the same early isolation cost the 1,495
the flowing break still served the crew's 45 minutes: 0.96176 against the crew's 0.96667 (held open
with pump support until the crew was on site it tied the crew, 0.96722, with the water lost). That
finding is what had the layer reviewed; the design standards are what changed it.

A failed pump (``pump:X``) is locked out (held stopped, so it cannot surprise a crew or restart
against its own controls after the repair) and the other pumps run at full drive speed to keep the
tanks filled. Reintegration re-opens the valves, hands every link taken into hand mode back to its
controls and every pump back to its rated speed.
"""

from __future__ import annotations

import copy

import networkx as nx
from wntr.network import LinkStatus

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, FaultKind, Sector
from sectors._twin import InvalidCommand, TwinError
from sectors.runner import REPORT_PERIOD_S
from sectors.water import REQUIRED_PRESSURE_M, WaterTwin
from sectors.water.controls import MAX_PUMP_SPEED
from sectors.water.network import AssetKind, asset_id, parse_asset_id

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


def _solved(twin: WaterTwin, commands: tuple[ActuatorCommand, ...]) -> WaterTwin | TwinError:
    """A copy of ``twin`` with ``commands`` applied, solved one report period on (or why it failed)."""
    trial = copy.deepcopy(twin)
    for cmd in commands:
        trial.apply(cmd)
    try:
        trial.step(FORECAST_S)
    except TwinError as exc:
        return exc
    return trial


def _served(twin: WaterTwin) -> int:
    """Customers at or above the required pressure: what the sector's availability counts."""
    service = twin.service()
    low = sum(twin.customers.get(j, 0) for j in service.low_pressure)
    return service.customers - service.customers_without_water - low


def forecast(twin: WaterTwin, commands: tuple[ActuatorCommand, ...],
             solved: WaterTwin | TwinError | None = None) -> dict[str, float | int | str]:
    """The service one report period after applying ``commands`` to a copy of ``twin`` (``solved``:
    that copy, when the caller has it already)."""
    trial = _solved(twin, commands) if solved is None else solved
    if isinstance(trial, TwinError):
        return {"forecast": f"not solved: {trial}"}
    service = trial.service()
    dry = set(service.without_water)
    pressures = [r.value for r in trial.true_readings()
                 if r.quantity == "pressure_m" and r.asset_id.split(":", 1)[1] in twin.customers
                 and r.asset_id.split(":", 1)[1] not in dry]
    lowest = min(pressures, default=0.0)
    return {
        "customers_without_water": service.customers_without_water,
        "customers_low_pressure": sum(trial.customers.get(j, 0) for j in service.low_pressure),
        "customers_served": _served(trial),
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
    left = forecast(twin, ())
    impact: dict[str, float | int | str] = {
        "valves_closed": len(commands),
        "boundary_valves": plan.boundary,
        "segment_junctions": len(plan.junctions),
        "segment_customers": sum(twin.customers.get(j, 0) for j in plan.junctions),
        "stranded_junctions": len(plan.stranded),
        "stranded_customers": sum(twin.customers.get(j, 0) for j in plan.stranded),
        "cut_off_junctions": len(cut),
        "cut_off_customers": sum(twin.customers.get(j, 0) for j in cut),
        "leak_m3s_now": round(now.leak_m3s, 4),
        **({"leak_customers_affected": int(left["customers_without_water"]) + int(left["customers_low_pressure"])}
           if "customers_without_water" in left else {}),
        **forecast(twin, commands),
    }
    reason = (f"close {len(commands)} of the {plan.boundary} boundary valves of segment {plan.segment} around "
              f"{target}: the fewest that cut it off from every source")
    if plan.stranded:
        reason += f"; the dead ends behind it ({', '.join(plan.stranded)}) have no other feed and go dry with it"
    if plan.sources:
        reason += f"; the segment holds {', '.join(plan.sources)}, which keeps feeding the break until repaired"
    return make_plan(_S, target, "isolate", commands, impact, reason)


def _link_command(twin: WaterTwin, link: str, *, on: bool) -> ActuatorCommand:
    obj = twin.wn.get_link(link)
    if obj.link_type == "Pump":
        return twin.command(asset_id(AssetKind.PUMP, link), "start" if on else "stop")
    kind = AssetKind.VALVE if obj.link_type == "Valve" else AssetKind.PIPE
    return twin.command(asset_id(kind, link), "open" if on else "close")


def _reroutes(twin: WaterTwin) -> tuple[ActuatorCommand, ...]:
    """Open the shut links that join cut-off customers to a supplied part of the network.

    Shut "now" means closed in the last solve, or held shut by hand; links an isolation valve holds,
    failed pumps and links commanded shut stay shut (someone shut them on purpose)."""
    wn = twin.wn
    failed = {element for kind, element in twin.faults.values() if kind is FaultKind.PUMP_FAILURE}
    untouchable = set(twin.overrides.closing_valves) | failed | {
        link for link, is_open in twin.overrides.manual.items() if not is_open}
    graph: nx.Graph = nx.Graph()
    graph.add_nodes_from(wn.node_name_list)
    shut: list[tuple[str, str, str]] = []
    for name, link in wn.links():
        if name in twin.overrides.closing_valves or link.status == LinkStatus.Closed:
            if name not in untouchable:
                shut.append((name, link.start_node_name, link.end_node_name))
            continue
        graph.add_edge(link.start_node_name, link.end_node_name)
    sources = set(wn.tank_name_list) | set(wn.reservoir_name_list)
    part = {n: i for i, nodes in enumerate(nx.connected_components(graph)) for n in nodes}
    supplied = {part[s] for s in sources}
    stranded = {part[j] for j in twin.customers if part[j] not in supplied}
    return tuple(_link_command(twin, name, on=True) for name, a, b in shut
                 if {part[a], part[b]} & supplied and {part[a], part[b]} & stranded)


def _pressure_support(twin: WaterTwin, *, but: str = "") -> tuple[ActuatorCommand, ...]:
    """Start the idle pumps that can run and drive every one at full speed."""
    out: list[ActuatorCommand] = []
    for pump in _pumps(twin, but=but):
        name = pump.split(":", 1)[1]
        if twin.wn.get_link(name).status == LinkStatus.Closed and twin.overrides.manual.get(name) is not False:
            out.append(twin.command(pump, "start"))
        if twin.overrides.speed(name) < MAX_PUMP_SPEED:
            out.append(twin.command(pump, "speed", MAX_PUMP_SPEED))
    return tuple(out)


def _if_it_serves_more(twin: WaterTwin, base: tuple[ActuatorCommand, ...],
                       extra: tuple[ActuatorCommand, ...],
                       without: WaterTwin | TwinError | None = None) -> tuple[ActuatorCommand, ...]:
    """``extra`` if the forecast serves more customers with it than with ``base`` alone (``without``,
    when the caller has solved it already), else ()."""
    if not extra:
        return ()
    without = _solved(twin, base) if without is None else without
    with_it = _solved(twin, base + extra)
    if isinstance(with_it, TwinError):
        return ()
    if isinstance(without, TwinError) or _served(with_it) > _served(without):
        return extra
    return ()


def restore_plan(twin: WaterTwin, target: str) -> ResponsePlan:
    kind = _kind(twin, target)
    pumps = _pumps(twin, but=target)
    if kind is AssetKind.PUMP:
        boost = tuple(twin.command(p, "speed", MAX_PUMP_SPEED) for p in pumps
                      if twin.overrides.speed(p.split(":", 1)[1]) < MAX_PUMP_SPEED)
        return make_plan(_S, target, "restore", boost, forecast(twin, boost),
                         f"run {', '.join(pumps) or 'no pump'} at full drive speed: the other pumps make up for {target}")
    bare = _solved(twin, ())
    reroute = _if_it_serves_more(twin, (), _reroutes(twin), bare)
    pressure = _if_it_serves_more(twin, reroute, _pressure_support(twin, but=target), None if reroute else bare)
    commands = reroute + pressure
    after = forecast(twin, commands, None if commands else bare)
    waiting = int(after.get("customers_without_water", 0))
    if not isinstance(bare, TwinError):  # what the plan changes for customers, beside what it leaves
        dry_before = bare.service().customers_without_water
        after["customers_refed"] = max(0, dry_before - waiting)
        after["customers_served_gained"] = int(after.get("customers_served", 0)) - _served(bare)
    parts = []
    if after.get("customers_refed"):
        parts.append(f"{after['customers_refed']} customers the isolation left dry are fed again")
    if reroute:
        parts.append(f"re-feed cut-off customers through {', '.join(c.asset_id for c in reroute)}")
    if pressure:
        parts.append(f"raise pressure with {', '.join(sorted({c.asset_id for c in pressure}))}")
    if not parts:
        parts.append("the rest of the network keeps its pressure")
    if waiting:
        parts.append(f"{waiting} cut-off customers have no alternative feed and wait for the repair")
    return make_plan(_S, target, "restore", commands, after, "; ".join(parts))


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
        failed = {element for k, element in twin.faults.values() if k is FaultKind.PUMP_FAILURE}
        by_hand = tuple(_auto(twin, link) for link in sorted(twin.overrides.manual) if link not in failed)
        commands = (*(twin.command(v.valve_id, "open") for v in plan.valves if twin.valve_closed(v.valve_id)),
                    *by_hand, *speed)
        reason = (f"{target} is repaired: re-open the valves of segment {plan.segment}, links run by hand back "
                  "to their controls, pumps to rated speed")
    return make_plan(_S, target, "reintegrate", commands, forecast(twin, commands), reason)


def _auto(twin: WaterTwin, link: str) -> ActuatorCommand:
    kind = {"Pump": AssetKind.PUMP, "Valve": AssetKind.VALVE}.get(twin.wn.get_link(link).link_type, AssetKind.PIPE)
    return twin.command(asset_id(kind, link), "auto")
