"""The water network's physics rules (`sectors.invariants`): a pump its tank calls for must run.

Net3 runs pump 335 from tank 1: it starts when the tank has drained to 5.21 m and stops when it
has filled to 5.82 m (the network's own controls, read from the model so the rule follows them).
Pump 10 runs on a clock schedule the oracles do not see, and has no rule here. The margins keep
the rule clear of the one-minute row and of the hydraulic step at which the control acts.
"""

from __future__ import annotations

import functools
import re

from sectors.invariants import LevelControlledPump, Violation, Window

__all__ = ["MARGIN_M", "STOP_MARGIN_M", "invariants", "level_controlled_pumps"]

MARGIN_M = 0.02
"""Below its start level by this much for two rows, an idle pump has failed (tank 1 drains ~0.01 m a minute)."""
STOP_MARGIN_M = 0.1
"""A pump that stopped while the tank never filled within this much of its stop level has failed."""
_LEVEL_CONTROL = re.compile(r"TANK (\S+) LEVEL (BELOW|ABOVE) (\S+) THEN PUMP (\S+) STATUS IS (OPEN|CLOSED)")


@functools.cache
def level_controlled_pumps() -> tuple[LevelControlledPump, ...]:
    """Each pump that Net3 starts on a tank falling below a level and stops on it rising above one."""
    from sectors.water.network import load_network

    rules: dict[tuple[str, str], dict[str, float]] = {}
    for _, control in load_network().controls():
        m = _LEVEL_CONTROL.search(str(control))
        if m:
            tank, side, level, pump, status = m.groups()
            rules.setdefault((pump, tank), {})[f"{side}:{status}"] = float(level)
    return tuple(
        LevelControlledPump(f"pump:{pump}", f"tank:{tank}/level_m", levels["BELOW:OPEN"], levels["ABOVE:CLOSED"],
                            rising=False, margin_m=MARGIN_M, stop_margin_m=STOP_MARGIN_M)
        for (pump, tank), levels in sorted(rules.items()) if {"BELOW:OPEN", "ABOVE:CLOSED"} <= set(levels))


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks (see the module docstring)."""
    return [v for pump in level_controlled_pumps() for v in pump.check(window)]
