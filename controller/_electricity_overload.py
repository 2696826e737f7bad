"""A feeder overload answered by shedding the least load that brings the limits back (part of
`controller.electricity`).

An overload is demand, not a broken part: nothing can be switched out to cure it, and the feeder
has one source. What an operator does is shed load (rotating outages, demand response) until the
far buses are back above the planning voltage and no line is above its rating, and give it back
when the surge is over. Loads are shed whole, most effective first: the one at the bus with the
lowest voltage, whose current crosses the most line impedance, then the next lowest; each step
is judged with the twin's pandapower check, so a plan is
never returned that the check rejects. On the 33-bus feeder at ×1.6 in the afternoon, four to six
loads of 32 (about 15 % of the demand) bring every bus back above 0.9 pu, in as many checks.

The model the plan is made on carries the field's surge: the planner opens it at the field's time
and scales its loads to the substation's metered draw (`sectors.electricity.plugin`), so the shed
is sized for the feeder as it is, not for the model's clock.
"""

from __future__ import annotations

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, FaultKind, Sector
from sectors.electricity import FEEDER_ID, SUBSTATION_ID, ElectricityTwin, FlowCheck

__all__ = ["is_overload", "is_trip", "overload_isolate_plan", "overload_reintegrate_plan", "overload_restore_plan",
           "trip_plan"]

MAX_SHED = 16  # loads: past half the feeder a shed is no answer (the limits are then a model problem)


def is_overload(twin: ElectricityTwin, target: str) -> bool:
    """Whether `target` names the feeder as a whole under an overload in `twin`."""
    return target == FEEDER_ID and any(kind is FaultKind.FEEDER_OVERLOAD for kind in twin.faults.values())


def is_trip(twin: ElectricityTwin, target: str) -> bool:
    """Whether `target` is the substation and its transformer is tripped in `twin`."""
    return target == SUBSTATION_ID and twin.faults.get(SUBSTATION_ID) is FaultKind.TRANSFORMER_TRIP


def trip_plan(twin: ElectricityTwin, target: str, purpose: str) -> ResponsePlan:
    """The substation's transformer out: the feeder has no other source, so nothing can be switched
    to bring it back; the isolation stands for the record and the crew's repair (a second
    substation's ties are what would answer it, and this feeder has none)."""
    return ResponsePlan(Sector.ELECTRICITY, target, purpose, (), _impact(twin.power_flow_check(), []),
                        f"{target}'s transformer is out and the feeder has no other source: nothing to switch; "
                        "the crew restores it")


def _shed_command(load: str, action: str) -> ActuatorCommand:
    return ActuatorCommand(sector=Sector.ELECTRICITY, asset_id=load, actuator_id=load, action=action)


def _impact(check: FlowCheck, shed: list[str]) -> dict[str, float | int | str]:
    return {"unserved_kw": round(check.unserved_kw, 3), "min_voltage_pu": round(check.min_voltage_pu, 4),
            "max_loading_pct": round(check.max_loading_percent, 2), "losses_kw": round(check.losses_kw, 3),
            "violations": "; ".join(check.violations), "shed_loads": ", ".join(shed)}


def _by_voltage(twin: ElectricityTwin) -> list[str]:
    """The feeder's loads, the one at the lowest-voltage bus first (as the feeder reads now)."""
    volts = {r.asset_id.split("-")[1]: r.value for r in twin.readings() if r.quantity == "voltage_pu"}
    loads = [r.asset_id for r in twin.readings() if r.asset_id.startswith("load-") and r.quantity == "p_kw"
             and r.value > 1e-9]
    return sorted(loads, key=lambda load: (volts.get(load.split("-")[1], 1.0), load))


def overload_isolate_plan(twin: ElectricityTwin, target: str, *, v_min: float = 0.9,
                          max_loading: float = 100.0) -> ResponsePlan:
    """Shed the fewest whole loads, lowest voltage first, until every bus is within the limits."""
    shed: dict[str, float] = {}
    check = twin.power_flow_check(v_min=v_min, max_loading=max_loading)
    for load in _by_voltage(twin)[:MAX_SHED]:
        if check.ok:
            break
        shed[load] = 1.0
        check = twin.power_flow_check(shed=shed, v_min=v_min, max_loading=max_loading)
    names = sorted(shed, key=lambda s: int(s.split("-")[1]))
    if not check.ok:
        return ResponsePlan(Sector.ELECTRICITY, target, "isolate", (), _impact(check, []),
                            f"no shed of up to {MAX_SHED} loads brings {target} within {v_min} pu and {max_loading:g} %: "
                            "nothing is shed; the crews and the operator decide")
    if not names:
        return ResponsePlan(Sector.ELECTRICITY, target, "isolate", (), _impact(check, []),
                            f"{target} carries its demand within {v_min} pu and {max_loading:g} %: nothing to shed")
    return ResponsePlan(Sector.ELECTRICITY, target, "isolate", tuple(_shed_command(s, "shed") for s in names),
                        _impact(check, names),
                        f"{target} is overloaded: shed {', '.join(names)} ({check.unserved_kw:,.0f} kW), the fewest "
                        f"loads that bring every bus back above {v_min} pu, lowest voltage first")


def overload_restore_plan(twin: ElectricityTwin, target: str) -> ResponsePlan:
    """Nothing more to bring back while the surge lasts: the shed holds until the reintegration."""
    check = twin.power_flow_check()
    return ResponsePlan(Sector.ELECTRICITY, target, "restore", (), _impact(check, []),
                        f"{target}'s shed loads stay off while the overload lasts; they come back with the reintegration")


def overload_reintegrate_plan(twin: ElectricityTwin, target: str) -> ResponsePlan:
    """The surge (or the substation's outage) is over: every shed load back."""
    dark = [r.asset_id for r in twin.readings() if r.asset_id.startswith("load-") and r.quantity == "p_kw"
            and r.value <= 1e-9]
    check = twin.power_flow_check()  # the feeder before the loads come back (a shed cannot be judged undone)
    return ResponsePlan(Sector.ELECTRICITY, target, "reintegrate", tuple(_shed_command(s, "restore") for s in dark),
                        _impact(check, []), f"{target} is back to normal: {len(dark)} shed loads back")
