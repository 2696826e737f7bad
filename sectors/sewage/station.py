"""The lift station's PLC: level control of the duty and standby pumps, operator overrides, failures.

The rules live here rather than in SWMM's ``[CONTROLS]`` because SWMM re-evaluates its rules every
routing step and would undo an operator's stop or a failed pump; here the order of precedence is
explicit: a *failed* pump (its own fault or the station's power) never runs, a *manual* mode
(``start``/``stop`` command) holds, otherwise the level rule with hysteresis decides. The twin
calls :meth:`PumpStation.settings` between SWMM strides of at most :data:`PLC_PERIOD_S`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .network import DUTY_PUMP, STANDBY_PUMP

__all__ = ["PLC_PERIOD_S", "LevelRule", "Mode", "PumpStation"]

PLC_PERIOD_S = 30
"""The PLC scans the wet-well level every 30 s, as often as SCADA polls it (a wet well of 150 m² rises
< 0.08 m in that time)."""

Mode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class LevelRule:
    """Start above ``start_m``, stop below ``stop_m`` (wet-well depth), hold in between."""

    start_m: float
    stop_m: float


RULES = {DUTY_PUMP: LevelRule(start_m=1.8, stop_m=0.6), STANDBY_PUMP: LevelRule(start_m=2.6, stop_m=1.0)}


@dataclass
class PumpStation:
    """Mode, failure and run state of each pump; ``running`` is what the PLC last commanded."""

    mode: dict[str, Mode] = field(default_factory=lambda: {p: "auto" for p in RULES})
    failed: set[str] = field(default_factory=set)
    running: dict[str, bool] = field(default_factory=lambda: {p: False for p in RULES})

    def settings(self, level_m: float) -> dict[str, float]:
        """The SWMM target setting (1 run, 0 stop) of each pump for the wet-well ``level_m``."""
        for pump, rule in RULES.items():
            mode = self.mode[pump]
            if pump in self.failed:
                run = False
            elif mode != "auto":
                run = mode == "on"
            elif level_m >= rule.start_m:
                run = True
            elif level_m <= rule.stop_m:
                run = False
            else:
                run = self.running[pump]
            self.running[pump] = run
        return {pump: 1.0 if run else 0.0 for pump, run in self.running.items()}
