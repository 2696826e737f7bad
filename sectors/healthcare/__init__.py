"""Healthcare twin: hospitals as capacity + queue models (ED, beds, ICU, oxygen, backup power) on simpy.

- :mod:`sectors.healthcare.twin` — :class:`HealthcareTwin`: clock, patient flow, faults, actuators, attacks.
- :mod:`sectors.healthcare._hospital` — :class:`HospitalSpec` (the assumptions) and one hospital's state.
- :mod:`sectors.healthcare._ed` — the emergency department: triage categories, their time-to-treatment
  targets, treatment spaces, and the sources of its numbers.
- :mod:`sectors.healthcare._report` — sensors and the service report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

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

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "DEV_HOSPITALS": "sectors.healthcare._hospital",
    "HospitalSpec": "sectors.healthcare._hospital",
    "PowerSource": "sectors.healthcare._hospital",
    "HealthServiceReport": "sectors.healthcare._report",
    "DEFAULT_START": "sectors.healthcare.twin",
    "EQUIPMENT": "sectors.healthcare.twin",
    "HealthcareTwin": "sectors.healthcare.twin",
})
