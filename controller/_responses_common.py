"""What every sector's response module shares: the purposes, the repair check, the plan builder.

A response never changes a twin except through the `ActuatorCommand`s of its plan; reading the
twin (its service report, its readings, its list of active faults) is how a plan decides. A plan
that cannot help (no actuator works around that asset) is still a plan: no commands, and a reason
that says who must act instead, so the controller records the decision like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.plans import ResponsePlan
from core.messages import ActuatorCommand, Sector
from sectors._twin import InvalidCommand

__all__ = ["PURPOSES", "make_plan", "require_repaired"]

PURPOSES = ("isolate", "restore", "reintegrate")
"""isolate: take the faulted asset out of service safely; restore: bring service back around it;
reintegrate: undo both after the repair."""


def make_plan(
    sector: Sector,
    target: str,
    purpose: str,
    commands: Iterable[ActuatorCommand],
    impact: Mapping[str, float | int | str],
    reason: str,
) -> ResponsePlan:
    return ResponsePlan(sector=sector, target=target, purpose=purpose, commands=tuple(commands),
                        impact=dict(impact), reason=reason)


def require_repaired(sector: Sector, target: str, faults: Iterable[str]) -> None:
    """Refuse to reintegrate an asset the twin still reports faulted (one readable line)."""
    if target in set(faults):
        raise InvalidCommand(f"{sector.value} {target} is still faulted; repair it before reintegrating it")
