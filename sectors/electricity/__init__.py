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

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

if TYPE_CHECKING:
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

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "Attack": "sectors._twin",
    "InvalidAttack": "sectors._twin",
    "InvalidCommand": "sectors._twin",
    "InvalidFault": "sectors._twin",
    "TwinError": "sectors._twin",
    "TwinEvent": "sectors._twin",
    "UnknownAsset": "sectors._twin",
    "FlowCheck": "sectors.electricity._flow",
    "FEEDER_ID": "sectors.electricity._network",
    "KW_PER_CUSTOMER": "sectors.electricity._network",
    "SUBSTATION_ID": "sectors.electricity._network",
    "TIE_BRANCHES": "sectors.electricity._network",
    "DAILY_PROFILE": "sectors.electricity._profile",
    "profile_factor": "sectors.electricity._profile",
    "DEFAULT_START": "sectors.electricity.twin",
    "ElectricityTwin": "sectors.electricity.twin",
})
