"""A sector response as data: the actuator commands to apply, in order, and what they leave undone.

The controller never changes a twin (or a device) except through a `ResponsePlan`'s commands, and
records the plan on-chain (a ``reroute-plan`` event) before it applies them, so an auditor can
compare what was decided with what was done. `impact` holds the figures a control room reads:
customers without service, unserved kW, overflow m³, added travel minutes, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.messages import ActuatorCommand, Sector

__all__ = ["ResponsePlan"]


@dataclass(frozen=True)
class ResponsePlan:
    sector: Sector
    target: str  # the faulted asset the plan works around (a twin asset id, e.g. line-7, pipe:159)
    purpose: str  # "isolate", "restore" (re-route around the isolated asset) or "reintegrate"
    commands: tuple[ActuatorCommand, ...]
    impact: dict[str, float | int | str] = field(default_factory=dict)
    reason: str = ""  # one sentence an operator can read: why these commands and not others

    def summary(self) -> dict[str, Any]:
        """The plan as plain JSON values (what goes into the on-chain event's payload)."""
        return {
            "sector": self.sector.value, "target": self.target, "purpose": self.purpose,
            "commands": [{"asset": c.asset_id, "actuator": c.actuator_id, "action": c.action,
                          **({"value": c.value} if c.value is not None else {})} for c in self.commands],
            "impact": dict(self.impact), "reason": self.reason,
        }
