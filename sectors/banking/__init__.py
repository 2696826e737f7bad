"""Banking twin: payment switch, primary/standby data centres and ATM clusters as a throughput model.

- :mod:`sectors.banking.twin` — :class:`BankingTwin`: clock, faults, bursts, actuators, attacks.
- :mod:`sectors.banking._model` — the specs (the assumptions) and the M/M/c latency formulae.
- :mod:`sectors.banking._flow` — one slice of flows, failures and sensor values; the service report.
"""

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
