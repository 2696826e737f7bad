"""Electricity twin: the IEEE 33-bus distribution feeder on pandapower power flow.

Modules, one job each:

- :mod:`sectors.electricity.twin` — :class:`ElectricityTwin`: clock, sensors, actuators, faults,
  attacks, and the planning helpers (``switch_graph``, ``power_flow_check``, ``total_losses_kw``).
- :mod:`sectors.electricity._network` — the switchable, rated 33-bus network and its asset ids
  (literature numbering; the switch layout and rating assumptions are documented there).
- :mod:`sectors.electricity._profile` — the daily load profile and per-load deviation.
- :mod:`sectors.electricity._flow` — power flow, energisation, protection, limit checks.
- :mod:`sectors.electricity._graph` — the switch graph a planner searches.
- :mod:`sectors.electricity._sensors` — the sensor catalogue and its readings.
"""

from sectors._twin import (
    Attack,
    InvalidAttack,
    InvalidCommand,
    InvalidFault,
    TwinError,
    TwinEvent,
    UnknownAsset,
)
from sectors.electricity._flow import FlowCheck
from sectors.electricity._network import (
    FEEDER_ID,
    KW_PER_CUSTOMER,
    SUBSTATION_ID,
    TIE_BRANCHES,
)
from sectors.electricity._profile import DAILY_PROFILE, profile_factor
from sectors.electricity.twin import DEFAULT_START, ElectricityTwin

__all__ = [
    "DAILY_PROFILE",
    "DEFAULT_START",
    "FEEDER_ID",
    "KW_PER_CUSTOMER",
    "SUBSTATION_ID",
    "TIE_BRANCHES",
    "Attack",
    "ElectricityTwin",
    "FlowCheck",
    "InvalidAttack",
    "InvalidCommand",
    "InvalidFault",
    "TwinError",
    "TwinEvent",
    "UnknownAsset",
    "profile_factor",
]
