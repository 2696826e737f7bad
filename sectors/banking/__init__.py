"""Banking twin: payment switch, primary/standby data centres and ATM clusters as a throughput model.

- :mod:`sectors.banking.twin` — :class:`BankingTwin`: clock, faults, bursts, actuators, attacks.
- :mod:`sectors.banking._model` — the specs (the assumptions) and the M/M/c latency formulae.
- :mod:`sectors.banking._flow` — one slice of flows, failures and sensor values; the service report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sectors._lazy import lazy_exports

if TYPE_CHECKING:
    from sectors.banking._flow import BankingServiceReport
    from sectors.banking._model import (
        DAILY_PROFILE,
        DEV_BANKING,
        AtmClusterSpec,
        BankingSpec,
        DataCentreSpec,
        profile_factor,
    )
    from sectors.banking.twin import DEFAULT_START, BankingTwin

__all__ = [
    "DAILY_PROFILE",
    "DEFAULT_START",
    "DEV_BANKING",
    "AtmClusterSpec",
    "BankingServiceReport",
    "BankingSpec",
    "BankingTwin",
    "DataCentreSpec",
    "profile_factor",
]

# Names load on first use (`sectors._lazy`): listing the sectors must not load the field library.
__getattr__ = lazy_exports(__name__, {
    "BankingServiceReport": "sectors.banking._flow",
    "DAILY_PROFILE": "sectors.banking._model",
    "DEV_BANKING": "sectors.banking._model",
    "AtmClusterSpec": "sectors.banking._model",
    "BankingSpec": "sectors.banking._model",
    "DataCentreSpec": "sectors.banking._model",
    "profile_factor": "sectors.banking._model",
    "DEFAULT_START": "sectors.banking.twin",
    "BankingTwin": "sectors.banking.twin",
})
