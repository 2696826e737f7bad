"""The feeder's limits as a rule (`sectors.invariants`): an overload is named when two systems agree.

A feeder is overloaded when its demand can no longer be carried within its limits: the voltage at
its far buses falls below what the controller's plans keep (:data:`V_MIN`, the planning limit of
`controller.electricity`), because the current through its lines has risen. The learned model
sees a surge spread over the whole feeder as one more high hour of the daily profile (it called a
×1.6 surge normal or merely unusual: `qeaims detect attribution --sector electricity`), so the limit
is checked as a rule, in the newest row, on two independent systems:

- the bus RTUs: at least :data:`LOW_BUSES` energised buses below :data:`V_MIN` (one RTU alone
  reading low is an instrument question, left to the model, which calls a lone biased voltage
  falsified);
- the substation's meter (``sub-1/p_kw``): the feeder draws more than it ever does in normal
  operation (:data:`HEAD_NORMAL_MAX_KW`), so the low voltages have the current to explain them.

Both: a FAULT on the feeder (a ``feeder-overload``), answered by shedding the least load that
brings the limits back (`controller.electricity.overload_plan`). Neither threshold is fitted to a
fault: both come from normal days (see the constants).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sectors.invariants import Violation, Window

__all__ = ["HEAD_NORMAL_MAX_KW", "LOW_BUSES", "V_MIN", "invariants", "overloaded"]

V_MIN = 0.9
"""pu: the lowest voltage the controller's plans accept (`controller.electricity`, ``v_min``).
Over eight normal days (seeds 0–3, two days each, minute rows) no bus fell below 0.9115 pu."""
LOW_BUSES = 2
HEAD_NORMAL_MAX_KW = 4200.0
"""The substation's most in normal operation, with a margin: the same eight days peaked at 3,965 kW
(the daily profile's evening peak); a ×1.3 surge of the whole feeder at 14:00 draws 4,256 kW and
keeps every bus above 0.905 pu (within limits: not an overload); ×1.6 draws 5,321 kW at 0.881 pu."""
FEEDER_ID, SUBSTATION_ID = "feeder-1", "sub-1"  # as `sectors.electricity._network` names them (it loads
# pandapower, which the oracles that run this rule have no need of)
HEAD = f"{SUBSTATION_ID}/p_kw"


def overloaded(values: Mapping[str, float]) -> tuple[list[str], float] | None:
    """The energised buses below the limit and the head's draw, when both systems show an overload."""
    head = values.get(HEAD)
    if head is None or not np.isfinite(head) or head <= HEAD_NORMAL_MAX_KW:
        return None
    low = sorted(sensor for sensor, v in values.items()
                 if sensor.startswith("bus-") and sensor.endswith("/voltage_pu") and np.isfinite(v) and v < V_MIN
                 and values.get(sensor.replace("/voltage_pu", "/energised"), 0.0) >= 0.5)
    return (low, float(head)) if len(low) >= LOW_BUSES else None


def invariants(window: Window) -> list[Violation]:
    """The feeder-overload rule on the newest row."""
    values = {sensor: float(series[-1]) for sensor, series in window.items() if len(series)}
    found = overloaded(values)
    if found is None:
        return []
    low, head = found
    weakest = min(low, key=lambda s: values[s])
    return [Violation(FEEDER_ID, weakest, (HEAD, *[s for s in low if s != weakest][:3]),
                      f"{FEEDER_ID} is overloaded: {len(low)} buses below {V_MIN} pu (lowest {weakest} "
                      f"{values[weakest]:.3f}) while the substation draws {head:,.0f} kW (normal at most "
                      f"{HEAD_NORMAL_MAX_KW:,.0f})")]
