"""A protection is undone only when no open isolation relies on it (`IsolationSteps._held_by_others`).

On the storm day feeder 1's loss opened the storm-tank diversion to protect lift station 1; the
station's duty pump then failed and its own plan needed the diversion too. Feeder 1 came back
first, and undoing its protection closed the gate mid-storm under a station with one pump.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from controller._controller_state import Isolation
from controller._isolation_steps import IsolationSteps
from core.messages import Sector

GATE = {"sector": "sewage", "asset": "orifice:OR1", "actuator": "orifice:OR1/gate", "action": "open"}


def _iso(proposal: int, node: str, sector: Sector, *, plan: Sequence[dict[str, Any]] = (),
         protected: Sequence[dict[str, Any]] = (), finished: bool = False, for_node: str = "lift-1") -> Isolation:
    steps: dict[str, tuple[int, dict[str, Any]]] = {
        "plan": (1, {"isolate": {"commands": list(plan)}, "restore": None}),
        "cascade": (2, {"protect": [{"node": for_node, "command": p} for p in protected]}),
        "applied": (3, {"protected": list(protected)}),
    }
    if finished:
        steps["reintegrated"] = (4, {})
    return Isolation(proposal, node, sector, "asset", 3, steps)


def _held(isolations: list[Isolation], iso: Isolation, spec: dict[str, Any]) -> bool:
    owner = SimpleNamespace(isolations={i.proposal: i for i in isolations})
    return IsolationSteps._held_by_others(owner, iso, spec)  # type: ignore[arg-type]


def test_a_protection_another_open_isolation_commanded_stays() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _iso(3, "lift-1", Sector.SEWAGE, plan=[{"actuator": "pump:P2/drive", "action": "start"}, GATE])
    assert _held([feeder, lift], feeder, GATE)


def test_a_protection_stays_while_the_node_it_protected_is_isolated() -> None:
    # the lift station's own plan was made on a dry model and did not ask for the diversion
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift = _iso(3, "lift-1", Sector.SEWAGE, plan=[{"actuator": "pump:P2/drive", "action": "start"}])
    assert _held([feeder, lift], feeder, GATE)


def test_a_protection_nobody_else_needs_is_undone() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    lift_back = _iso(3, "lift-1", Sector.SEWAGE, plan=[GATE], finished=True)  # already reintegrated
    other = _iso(4, "dc-primary", Sector.BANKING, plan=[{"actuator": "switch-1/route", "action": "failover"}])
    assert not _held([feeder, lift_back, other], feeder, GATE)


def test_the_opposite_action_does_not_hold_it() -> None:
    feeder = _iso(1, "feeder-1", Sector.ELECTRICITY, protected=[GATE])
    closing = _iso(5, "wwtp-1", Sector.SEWAGE, plan=[{**GATE, "action": "close"}])
    assert not _held([feeder, closing], feeder, GATE)
