"""FLISR and minimum-loss reconfiguration on the electricity twin (issue 4's electricity response).

FLISR — fault location, isolation and service restoration — in four plans, each a
:class:`~controller.plans.ResponsePlan` whose commands the controller sends through
:meth:`ElectricityTwin.apply <sectors.electricity.ElectricityTwin.apply>` and nothing else:

1. :func:`locate_fault` — *from what the sensors report*: the switch that opened although the
   controller expects it closed, whose own end is live and whose far end is dead, is the
   protection device nearest the fault; its branch is the faulted one.
2. :func:`isolate_plan` — open the switches around the smallest switchable section holding the
   faulted branch. A switch sits at one end of its branch (the ``switch_bus``), so branch k is
   still wired to its far bus: the section is branch k, that bus, and every branch wired to the
   bus whose switch sits at its other end. Its boundary is ``sw-k`` plus the switch of every other
   branch at that bus.
3. :func:`restore_plan` — pick up the dead healthy buses through tie switches (and, to split load,
   sectionalising switches inside the dead region), choosing among candidate plans by power flow:
   no bus below ``v_min``, no branch above ``max_loading`` % of its rating. If no plan carries all
   the load, the one serving the most (per ``priority`` level, most critical first) wins and the
   rest is shed with ``load-k`` commands.
4. :func:`reintegrate_plan` — after the repair, back to the normal (or a given) configuration,
   make-before-break when the brief loop stays within limits.

A plan for the feeder as a whole (``feeder-1``) under a feeder overload is a load shed instead, and
its reintegration gives the load back; the substation's transformer out (``sub-1``) has nothing to
switch on a feeder with one source (`controller._electricity_overload`).

:func:`min_loss_configuration` is the normal-operation counterpart: the minimum-loss radial
configuration (on the IEEE 33-bus feeder it finds Baran & Wu's optimum, 139.55 kW with sw-7, sw-9,
sw-14, sw-32, sw-37 open, from the base 202.68 kW).

Plans are searched on a fast model of the feeder (:mod:`controller._electricity_model`, Z-bus
power flow, ~1 ms) and the chosen plan is always re-checked with the twin's own pandapower
:meth:`~sectors.electricity.ElectricityTwin.power_flow_check` before it is returned. The twin is
never changed by planning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from controller._electricity_model import Feeder
from controller._electricity_overload import (
    is_overload,
    is_trip,
    overload_isolate_plan,
    overload_reintegrate_plan,
    overload_restore_plan,
    trip_plan,
)
from controller._electricity_restore import rank
from controller._electricity_search import min_loss, restorations
from controller.plans import ResponsePlan
from core.errors import QeaimsError
from core.messages import ActuatorCommand, Reading, Sector
from sectors.electricity import FEEDER_ID, SUBSTATION_ID, ElectricityTwin, FlowCheck

__all__ = [
    "NoElectricityPlan",
    "isolate_plan",
    "isolation_boundary",
    "locate_fault",
    "locate_faults",
    "min_loss_configuration",
    "normal_configuration",
    "reintegrate_plan",
    "restore_plan",
]


class NoElectricityPlan(QeaimsError):
    """No fault can be located from the readings, or no safe plan exists (e.g. reintegrating a
    branch that is still faulted)."""


# --- locate -------------------------------------------------------------------------------------


def normal_configuration(graph: nx.MultiGraph) -> dict[str, bool]:
    """Switch id → closed in the feeder's normal state: ties open, every other switch closed."""
    return {str(d["switch"]): not d["normally_open"] for *_, d in graph.edges(keys=True, data=True)}


def locate_faults(
    readings: Iterable[Reading], graph: nx.MultiGraph, *, expected: Mapping[str, bool] | None = None
) -> list[str]:
    """Every faulted branch the readings point to (see :func:`locate_fault`), non-tie branches first."""
    values = {r.sensor_id: r.value for r in readings}
    expected = normal_configuration(graph) if expected is None else expected

    def live(bus: str) -> bool:
        flag = values.get(f"{bus}/energised")
        return flag > 0.5 if flag is not None else values.get(f"{bus}/voltage_pu", 0.0) > 0.5

    found: list[tuple[bool, int, str]] = []
    for u, v, line, data in graph.edges(keys=True, data=True):
        switch, near = str(data["switch"]), str(data["switch_bus"])
        far = v if near == u else u
        reported = values.get(f"{switch}/closed")
        if reported is None or reported > 0.5 or not expected.get(switch, False):
            continue  # closed, not reported, or meant to be open
        if live(near) and not live(far):
            found.append((bool(data["normally_open"]), int(line.rsplit("-", 1)[1]), str(line)))
    return [line for *_, line in sorted(found)]


def locate_fault(
    readings: Iterable[Reading], graph: nx.MultiGraph, *, expected: Mapping[str, bool] | None = None
) -> str:
    """The faulted branch (``line-k``), from sensor readings and the feeder's topology only.

    ``readings`` are what the sensors report (``ElectricityTwin.readings()``): switch states
    ``sw-k/closed`` and bus energisation ``bus-k/energised`` (or ``bus-k/voltage_pu`` where that
    is missing). ``graph`` is ``ElectricityTwin.switch_graph()``, of which only the *topology* is
    used — each branch's ends, its switch, the end the switch sits at and whether it is a tie — never
    its ground-truth state or fault flag. ``expected`` is the switch state the controller last put
    the feeder in (default: the normal configuration, ties open).

    With a switch on every branch and coordinated protection, the device nearest the fault trips:
    the tripped switch is one the controller expects closed that reports open, with its own end
    live and the far end dead. Its branch is the located fault. Every branch wired to that far bus
    lies in the same switchable section, which :func:`isolate_plan` isolates as a whole, so a
    fault on such a branch (e.g. a tie wired there) is isolated too.

    Raises :class:`NoElectricityPlan` when no tripped switch borders a dead zone, or when several
    do (more than one fault: use :func:`locate_faults`).
    """
    found = locate_faults(readings, graph, expected=expected)
    if len(found) != 1:
        what = "no tripped switch borders a de-energised zone" if not found else f"several faults: {', '.join(found)}"
        raise NoElectricityPlan(f"cannot locate one line fault from the readings ({what})")
    return found[0]


# --- isolate ------------------------------------------------------------------------------------


def isolation_boundary(feeder: Feeder, faulted_line: str) -> tuple[int, list[int]]:
    """(the faulted branch's far bus, the switches around its section: the branch's own first)."""
    try:
        k = feeder.lines.index(faulted_line)
    except ValueError:
        raise NoElectricityPlan(f"{faulted_line!r} is not a branch of the feeder (line-1..line-{len(feeder.lines)})") from None
    near = feeder.switch_bus[k]
    a, b = feeder.ends[k]
    far = b if near == a else a
    if far in feeder.sources:
        raise NoElectricityPlan(f"{faulted_line} is wired to the substation bus: only the source breaker can isolate it")
    others = [j for j, (u, v) in enumerate(feeder.ends) if j != k and far in (u, v)]
    return far, [k, *others]


def _command(asset: str, action: str) -> ActuatorCommand:
    return ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=asset, actuator_id=asset, action=action)


def _impact(check: FlowCheck, **extra: float | str) -> dict[str, float | int | str]:
    return {
        "unserved_kw": round(check.unserved_kw, 3),
        "customers_without_power": check.customers_unserved,
        "min_voltage_pu": round(check.min_voltage_pu, 4),
        "max_loading_pct": round(check.max_loading_percent, 2),
        "losses_kw": round(check.losses_kw, 3),
        "violations": "; ".join(check.violations),
        **extra,
    }


def _isolated(twin: ElectricityTwin, feeder: Feeder, faulted_line: str) -> tuple[int, list[int], NDArray[np.bool_]]:
    far, boundary = isolation_boundary(feeder, faulted_line)
    closed = feeder.closed_mask(twin.switch_states())
    closed[boundary] = False
    return far, boundary, closed


def isolate_plan(twin: ElectricityTwin, faulted_line: str) -> ResponsePlan:
    """Open the switches around the smallest switchable section holding ``faulted_line`` (purpose
    ``isolate``). The branch's own switch is always commanded (protection may have opened it
    already; the command locks it open), the others only where closed now."""
    if is_overload(twin, faulted_line):
        return overload_isolate_plan(twin, faulted_line)
    if is_trip(twin, faulted_line):
        return trip_plan(twin, faulted_line, "isolate")
    feeder = Feeder(twin)
    far, boundary = isolation_boundary(feeder, faulted_line)
    states = twin.switch_states()
    switches = [feeder.switches[j] for j in boundary]
    commands = [_command(s, "open") for i, s in enumerate(switches) if i == 0 or states[s]]
    check = twin.power_flow_check(switches={s: False for s in switches})
    section = [faulted_line, feeder.buses[far]] + [
        feeder.lines[j] for j in boundary[1:] if feeder.switch_bus[j] != far
    ]
    return ResponsePlan(
        sector=Sector.ELECTRICITY, target=faulted_line, purpose="isolate", commands=tuple(commands),
        impact=_impact(check, section=", ".join(section), boundary=", ".join(switches)),
        reason=f"open {', '.join(switches)}: the switches around {faulted_line}'s section ({feeder.buses[far]} and the "
               f"branches wired to it), so nothing can energise the fault",
    )


# --- restore ------------------------------------------------------------------------------------


def restore_plan(
    twin: ElectricityTwin,
    faulted_line: str,
    *,
    priority: Mapping[str, int] | None = None,
    v_min: float = 0.9,
    max_loading: float = 100.0,
    max_ties: int = 3,
) -> ResponsePlan:
    """Re-energise the healthy buses the fault left dead (purpose ``restore``).

    Works from the twin's state after the trip, isolated or not: isolation switches not yet open
    are opened first. Candidates close 1..``max_ties`` tie switches into the dead region and open
    sectionalising switches inside it to keep the feeder radial; each is judged by power flow
    (no energised bus below ``v_min`` pu, no branch above ``max_loading`` % of its rating). The
    plan serving the most load wins — per ``priority`` level (bus id → criticality, higher first;
    default 0) — then fewer switching operations, then lower losses; load the limits cannot carry
    is shed (``load-k`` shed commands, sent before any tie closes). The choice is verified with the
    twin's pandapower check; ``impact`` holds its figures plus ``restored_buses`` and ``shed_loads``.
    Takes 0.1–2 s on the 33-bus feeder (more ties in reach, more candidates).
    """
    if is_overload(twin, faulted_line):
        return overload_restore_plan(twin, faulted_line)
    if is_trip(twin, faulted_line):
        return trip_plan(twin, faulted_line, "restore")
    feeder = Feeder(twin)
    far, boundary, closed = _isolated(twin, feeder, faulted_line)
    states = twin.switch_states()
    isolation = [_command(feeder.switches[j], "open") for j in boundary if states[feeder.switches[j]]]
    live = feeder.energised(closed)
    region = {int(b) for b in np.flatnonzero(~live) if b != far}
    base_switches = {feeder.switches[j]: False for j in boundary}
    if not region:
        check = twin.power_flow_check(switches=base_switches, v_min=v_min, max_loading=max_loading)
        return ResponsePlan(Sector.ELECTRICITY, faulted_line, "restore", tuple(isolation),
                            _impact(check, restored_buses=0, shed_loads=""),
                            "no healthy bus is without power once the faulted section is isolated")
    candidates = restorations(feeder, closed, region, set(boundary), max_ties=max_ties)
    for choice in rank(feeder, candidates, region, priority or {}, v_min=v_min, max_loading=max_loading):
        cand = choice.candidate
        switches = base_switches | {feeder.switches[j]: True for j in cand.close} | {
            feeder.switches[j]: False for j in cand.open}
        shed = {f"load-{feeder.buses[b].split('-')[1]}": 1.0 for b in choice.shed}
        check = twin.power_flow_check(switches=switches, shed=shed, v_min=v_min, max_loading=max_loading)
        if not check.ok:
            continue  # the fast model and pandapower disagree at the margin: take the next plan
        restored = sum(1 for b in region if choice.flow.energised[b])
        commands = (
            *isolation, *(ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=load, actuator_id=load, action="shed")
                          for load in shed),
            *(_command(feeder.switches[j], "open") for j in cand.open),
            *(_command(feeder.switches[j], "close") for j in cand.close),
        )
        moves = ", ".join([f"close {feeder.switches[j]}" for j in cand.close] + [f"open {feeder.switches[j]}" for j in cand.open])
        why = f"{moves} restores {restored} of {len(region)} dead healthy buses within {v_min} pu and {max_loading:g} %"
        if shed:
            why += f"; shedding {', '.join(shed)} is the least (critical) load that keeps the limits"
        return ResponsePlan(Sector.ELECTRICITY, faulted_line, "restore", commands,
                            _impact(check, restored_buses=restored, shed_loads=", ".join(shed)), why)
    check = twin.power_flow_check(switches=base_switches, v_min=v_min, max_loading=max_loading)
    return ResponsePlan(Sector.ELECTRICITY, faulted_line, "restore", tuple(isolation),
                        _impact(check, restored_buses=0, shed_loads=""),
                        f"no tie switch can pick up the {len(region)} dead healthy buses within the limits")


# --- reintegrate ----------------------------------------------------------------------------------


def reintegrate_plan(
    twin: ElectricityTwin,
    faulted_line: str,
    *,
    configuration: Mapping[str, bool] | None = None,
    v_min: float = 0.9,
    max_loading: float = 100.0,
) -> ResponsePlan:
    """After the repair, return the feeder to ``configuration`` (switch id → closed; default the
    normal one — pass ``min_loss_configuration``'s end state for the min-loss one) and restore
    every load that reads 0 kW (purpose ``reintegrate``). Switching is make-before-break (closes,
    then opens, so no customer sees a second interruption) when every brief loop stays within the
    limits, otherwise break-before-make. Raises :class:`NoElectricityPlan` if the target would
    energise a branch that is still faulted."""
    if faulted_line in (FEEDER_ID, SUBSTATION_ID) and not twin.faults:
        return overload_reintegrate_plan(twin, faulted_line)  # the feeder's surge or outage is over
    target = dict(normal_configuration(twin.switch_graph()) if configuration is None else configuration)
    states = twin.switch_states()
    final = twin.power_flow_check(switches=target, v_min=v_min, max_loading=max_loading)
    if any("energises faulted" in v for v in final.violations):
        raise NoElectricityPlan(f"cannot reintegrate {faulted_line}: the target configuration {final.violations[0]}")
    feeder = Feeder(twin)
    own = feeder.switch_of_line.get(faulted_line)
    closes = sorted((s for s in target if target[s] and not states[s]), key=lambda s: (s != own, feeder.switch_index(s)))
    opens = [s for s in feeder.switches if s in target and not target[s] and states[s]]
    order = [(s, True) for s in closes] + [(s, False) for s in opens]
    current: dict[str, bool] = {}
    make_before_break = True
    for s, closed in order[:-1]:
        current[s] = closed
        if not twin.power_flow_check(switches=current, v_min=v_min, max_loading=max_loading, require_radial=False).ok:
            make_before_break = False
            break
    if not make_before_break:
        order = [(s, False) for s in opens] + [(s, True) for s in closes]
    dark = [r.asset_id for r in twin.readings() if r.asset_id.startswith("load-") and r.quantity == "p_kw" and r.value <= 1e-9]
    commands = [_command(s, "close" if closed else "open") for s, closed in order]
    commands += [ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=load, actuator_id=load, action="restore")
                 for load in dark]
    how = "make-before-break" if make_before_break else "break-before-make (a loop would break a limit)"
    return ResponsePlan(
        Sector.ELECTRICITY, faulted_line, "reintegrate", tuple(commands), _impact(final),
        f"{faulted_line} repaired: back to the {'normal' if configuration is None else 'given'} configuration, {how}",
    )


# --- minimum-loss reconfiguration -----------------------------------------------------------------


def min_loss_configuration(twin: ElectricityTwin, *, v_min: float = 0.9, max_loading: float = 100.0) -> ResponsePlan:
    """The minimum-loss radial configuration for normal operation (purpose ``reconfigure``,
    target ``feeder-1``).

    Branch exchange from the current state and from Shirmohammadi & Hong's sequential opening on
    the fast model (:func:`controller._electricity_search.min_loss`), within ``v_min`` and
    ``max_loading``; the better end state is verified with the twin's power flow. Switches at a
    de-energised bus (an isolated section) keep their state. Commands are make-before-break:
    each tie closes, then the switch opened on the loop it formed. On the IEEE 33-bus feeder at
    nominal load it finds 139.55 kW (sw-7, sw-9, sw-14, sw-32, sw-37 open) from 202.68 kW in
    0.4–0.7 s here (about 400 fast flows), plus two pandapower checks.
    """
    feeder = Feeder(twin)
    start = feeder.closed_mask(twin.switch_states())
    live = feeder.energised(start)
    locked = {k for k, (u, v) in enumerate(feeder.ends) if not (live[u] and live[v])}
    best, _ = min_loss(feeder, start, locked=locked)
    before = twin.power_flow_check(v_min=v_min, max_loading=max_loading)
    switches = feeder.states(best)
    check = twin.power_flow_check(switches=switches, v_min=v_min, max_loading=max_loading)
    if not check.ok or check.losses_kw >= before.losses_kw - 1e-6:
        return ResponsePlan(Sector.ELECTRICITY, FEEDER_ID, "reconfigure", (), _impact(before, losses_before_kw=round(before.losses_kw, 3)),
                            "the feeder is already in its minimum-loss configuration")
    commands = _exchange_order(feeder, start, best)
    opened = ", ".join(s for s in feeder.switches if not switches[s])
    return ResponsePlan(
        Sector.ELECTRICITY, FEEDER_ID, "reconfigure", tuple(commands),
        _impact(check, losses_before_kw=round(before.losses_kw, 3)),
        f"open {opened}: losses {before.losses_kw:.1f} → {check.losses_kw:.1f} kW, radial, within {v_min} pu "
        f"and {max_loading:g} %",
    )


def _exchange_order(feeder: Feeder, start: NDArray[np.bool_], end: NDArray[np.bool_]) -> list[ActuatorCommand]:
    """Make-before-break: close one switch, then open the to-be-opened switch on the loop it made."""
    closed = start.copy()
    to_open = {int(k) for k in np.flatnonzero(start & ~end)}
    out: list[ActuatorCommand] = []
    for k in np.flatnonzero(~start & end):
        closed[k] = True
        out.append(_command(feeder.switches[k], "close"))
        graph = feeder.graph(closed)
        try:
            cycle = {int(key) for *_, key in nx.find_cycle(graph, feeder.ends[k][0])}
        except nx.NetworkXNoCycle:
            continue
        pick = sorted(cycle & to_open)
        if pick:
            closed[pick[0]] = False
            to_open.discard(pick[0])
            out.append(_command(feeder.switches[pick[0]], "open"))
    out.extend(_command(feeder.switches[k], "open") for k in sorted(to_open))
    return out
