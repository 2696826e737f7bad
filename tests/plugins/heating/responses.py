"""The heating sector's controller responses: lock out the failed duty pump and start the standby.

A plug-in's responses live with the plug-in (``SectorPlugin.responses`` names this module); they
use the controller's public `ResponsePlan` and nothing else of it.
"""

from __future__ import annotations

from typing import Any

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand
from sectors._twin import InvalidCommand, UnknownAsset

__all__ = ["isolate_plan", "reintegrate_plan", "restore_plan"]

_OTHER = {"pump:P1": "pump:P2", "pump:P2": "pump:P1"}


def _pump(twin: Any, target: str) -> str:
    if target in _OTHER:
        return target
    if target in ("plant:H1", "heat-plant-1"):
        return "pump:P1"
    raise UnknownAsset(f"no heating response acts on {target!r}; pumps: {', '.join(_OTHER)}")


def isolate_plan(twin: Any, target: str) -> ResponsePlan:
    """Stop the failed pump (locked out) and start the other one: circulation comes back at once."""
    pump = _pump(twin, target)
    commands = (_command(twin, pump, "stop"), _command(twin, _OTHER[pump], "start"))
    return ResponsePlan(twin.sector, pump, "isolate", commands, {"pumps_running": 1},
                        f"{pump} is out; {_OTHER[pump]} carries the loop")


def restore_plan(twin: Any, target: str) -> ResponsePlan:
    """Nothing more to restore once the standby runs: the loop is one pump's duty."""
    pump = _pump(twin, target)
    return ResponsePlan(twin.sector, pump, "restore", (), {"pumps_running": 1}, "the standby pump carries the loop")


def reintegrate_plan(twin: Any, target: str) -> ResponsePlan:
    """Back to the duty pump once it is repaired."""
    pump = _pump(twin, target)
    delivered, demanded = twin.service()
    if delivered < 0.5 * demanded:
        raise InvalidCommand("the loop is not circulating: start a pump before reintegrating")
    return ResponsePlan(twin.sector, pump, "reintegrate",
                        (_command(twin, _OTHER[pump], "stop"), _command(twin, pump, "start")), {"pumps_running": 1},
                        f"{pump} repaired: back on duty")


def _command(twin: Any, pump: str, action: str) -> ActuatorCommand:
    return ActuatorCommand(sector=twin.sector, asset_id=pump, actuator_id=f"{pump}/run", action=action)
