"""What the feeder's instruments report, as :class:`core.messages.Reading` messages.

Sensor ids are ``<asset-id>/<quantity>``; the catalogue per asset kind (units in brackets):

- ``bus-k``: ``voltage_pu`` [pu], ``energised`` [bool: 1 live, 0 dead]
- ``line-k``: ``loading_percent`` [%] of the rating, ``current_a`` [A], ``p_kw`` [kW] at the
  from-end (negative = flowing towards the from-bus)
- ``sw-k``: ``closed`` [bool]
- ``load-k``: ``p_kw`` [kW] actually served (0 when dead or shed)
- ``feeder-1``: ``losses_kw``, ``served_kw``, ``unserved_kw`` [kW], ``customers_served``,
  ``customers_unserved`` [count], ``min_voltage_pu`` [pu] — the distribution management
  system's feeder summary; unserved counts de-energised and shed demand.
- ``sub-1``: ``p_kw`` [kW], ``q_kvar`` [kvar] drawn from the grid, ``available`` [bool]

Dead equipment reads 0, as a de-energised transducer would.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandapower as pp
from numpy.typing import NDArray

from core.messages import Reading, Sector
from sectors.electricity._flow import Snapshot
from sectors.electricity._network import (
    FEEDER_ID,
    SUBSTATION_ID,
    bus_id,
    customers,
    line_id,
    load_id,
    switch_id,
)

__all__ = ["sensor_readings"]


def _reading(asset: str, quantity: str, unit: str, value: float, at: datetime) -> Reading:
    return Reading(
        sector=Sector.ELECTRICITY, asset_id=asset, sensor_id=f"{asset}/{quantity}", quantity=quantity,
        unit=unit, value=float(value), timestamp=at,
    )


def sensor_readings(
    net: pp.pandapowerNet, snap: Snapshot, *, at: datetime, demand_kw: NDArray[np.float64]
) -> list[Reading]:
    """Every sensor's true value for the solved state ``snap``; ``demand_kw`` is unshed demand."""
    out: list[Reading] = []
    for b in range(len(net.bus)):
        asset = bus_id(b)
        out.append(_reading(asset, "voltage_pu", "pu", snap.vm_pu[b], at))
        out.append(_reading(asset, "energised", "bool", float(snap.energised[b]), at))
    for k in range(len(net.line)):
        asset = line_id(k)
        out.append(_reading(asset, "loading_percent", "%", snap.loading_percent[k], at))
        out.append(_reading(asset, "current_a", "A", snap.i_ka[k] * 1000.0, at))
        out.append(_reading(asset, "p_kw", "kW", snap.p_from_kw[k], at))
    for s, closed in enumerate(net.switch.closed.to_numpy()):
        out.append(_reading(switch_id(s), "closed", "bool", float(closed), at))
    load_bus = net.load.bus.to_numpy()
    for i, b in enumerate(load_bus):
        out.append(_reading(load_id(int(b)), "p_kw", "kW", snap.served_kw[i], at))
    served = float(snap.served_kw.sum())
    counts = customers(net)
    fully_served = snap.energised[load_bus] & (demand_kw - snap.served_kw <= 1e-6)
    live_vm = snap.vm_pu[snap.energised]
    feeder = [
        ("losses_kw", "kW", snap.losses_kw),
        ("served_kw", "kW", served),
        ("unserved_kw", "kW", max(0.0, float(demand_kw.sum()) - served)),
        ("customers_served", "count", float(counts[fully_served].sum())),
        ("customers_unserved", "count", float(counts[~fully_served].sum())),
        ("min_voltage_pu", "pu", float(live_vm.min()) if live_vm.size else 0.0),
    ]
    out.extend(_reading(FEEDER_ID, q, unit, value, at) for q, unit, value in feeder)
    available = bool(net.ext_grid.in_service.any())
    out.append(_reading(SUBSTATION_ID, "p_kw", "kW", snap.source_p_kw, at))
    out.append(_reading(SUBSTATION_ID, "q_kvar", "kvar", snap.source_q_kvar, at))
    out.append(_reading(SUBSTATION_ID, "available", "bool", float(available), at))
    return out
