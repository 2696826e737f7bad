"""Healthcare twin: hospitals as capacity + queue models (beds, ICU, oxygen, backup power) on simpy.

- :mod:`sectors.healthcare.twin` — :class:`HealthcareTwin`: clock, patient flow, faults, actuators, attacks.
- :mod:`sectors.healthcare._hospital` — :class:`HospitalSpec` (the assumptions) and one hospital's state.
- :mod:`sectors.healthcare._report` — sensors and the service report.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sectors.healthcare._hospital import DEV_HOSPITALS, HospitalSpec, PowerSource
    from sectors.healthcare._report import HealthServiceReport
    from sectors.healthcare.twin import DEFAULT_START, EQUIPMENT, HealthcareTwin

__all__ = [
    "DEFAULT_START",
    "DEV_HOSPITALS",
    "EQUIPMENT",
    "HealthServiceReport",
    "HealthcareTwin",
    "HospitalSpec",
    "PowerSource",
]

# Names load on first use: the sector's plug-in (`plugin.py`) is read by every process that lists
# the sectors, and must not pay for the field library (pandapower, wntr, SWMM, uxsim) until a twin opens.
_LAZY = {
    "DEV_HOSPITALS": "sectors.healthcare._hospital",
    "HospitalSpec": "sectors.healthcare._hospital",
    "PowerSource": "sectors.healthcare._hospital",
    "HealthServiceReport": "sectors.healthcare._report",
    "DEFAULT_START": "sectors.healthcare.twin",
    "EQUIPMENT": "sectors.healthcare.twin",
    "HealthcareTwin": "sectors.healthcare.twin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
