"""Healthcare twin: hospitals as capacity + queue models (beds, ICU, oxygen, backup power) on simpy.

- :mod:`sectors.healthcare.twin` — :class:`HealthcareTwin`: clock, patient flow, faults, actuators, attacks.
- :mod:`sectors.healthcare._hospital` — :class:`HospitalSpec` (the assumptions) and one hospital's state.
- :mod:`sectors.healthcare._report` — sensors and the service report.
"""

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
