"""The payment network's throughput model: diurnal demand, an M/M/c data centre, network losses.

Why analytic and not a discrete-event queue: at ~1,000 transactions per second a simpy run would
spend millions of events per simulated hour for numbers queueing theory gives in closed form. Each
60-second slice is evaluated as a stationary M/M/c queue (Erlang C) at that slice's load.

Assumptions (defaults in :data:`DEV_BANKING`):

- peak demand 1,200 tps, shaped by :data:`DAILY_PROFILE` (night trough at 8 % of peak, peaks at
  noon and 18:00), with 2 % per-minute noise fixed by the seed;
- the primary DC has 64 workers of 40 ms mean service (1,600 tps), the warm standby 56 (1,400 tps);
  fail-over takes 120 s (the recovery-time objective) during which the switch serves nothing;
- the reported p95 latency is base latency (switch + issuer round trip, 120 ms) + the p95 of the
  service time + the p95 of the Erlang-C wait — a sum of percentiles, so slightly conservative;
  above 98 % utilisation the excess times out (3 s) and counts as failed;
- 0.1 % of legitimate transactions fail technically even when all is well; 90 % of a fraud-like
  burst is declined (it counts in the error rate, not in availability, which is about customers);
- network degradation of severity s adds 600 ms x s of latency and loses 20 % x s of transactions;
- a data centre or ATM cluster that loses power runs on its UPS for ``ups_minutes``, then stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sectors._twin import TwinError

__all__ = [
    "DAILY_PROFILE",
    "DEV_BANKING",
    "AtmClusterSpec",
    "BankingSpec",
    "DataCentreSpec",
    "erlang_c",
    "p95_latency_ms",
    "profile_factor",
]

DAILY_PROFILE: tuple[float, ...] = (
    0.12, 0.09, 0.08, 0.08, 0.09, 0.15, 0.30, 0.50, 0.70, 0.80, 0.85, 0.92,
    1.00, 0.95, 0.85, 0.82, 0.88, 0.95, 1.00, 0.90, 0.70, 0.50, 0.32, 0.20,
)
"""Fraction of peak demand at each hour of the day (linearly interpolated between hours)."""


def profile_factor(hour_of_day: float) -> float:
    h = hour_of_day % 24.0
    i = int(h)
    frac = h - i
    return DAILY_PROFILE[i] * (1 - frac) + DAILY_PROFILE[(i + 1) % 24] * frac


@dataclass(frozen=True)
class DataCentreSpec:
    dc_id: str
    workers: int
    service_ms: float
    ups_minutes: float

    @property
    def capacity_tps(self) -> float:
        return self.workers * 1000.0 / self.service_ms


@dataclass(frozen=True)
class AtmClusterSpec:
    cluster_id: str
    share: float  # fraction of all legitimate demand that comes through this cluster
    ups_minutes: float


@dataclass(frozen=True)
class BankingSpec:
    switch_id: str
    primary: DataCentreSpec
    standby: DataCentreSpec
    atm_clusters: tuple[AtmClusterSpec, ...]
    peak_tps: float = 1200.0
    noise: float = 0.02
    base_latency_ms: float = 120.0
    timeout_ms: float = 3000.0
    failover_s: float = 120.0
    base_error_rate: float = 0.001
    fraud_decline_rate: float = 0.9
    max_utilisation: float = 0.98

    def __post_init__(self) -> None:
        ids = [self.switch_id, self.primary.dc_id, self.standby.dc_id, *(c.cluster_id for c in self.atm_clusters)]
        if len(set(ids)) != len(ids):
            raise TwinError(f"banking asset ids must be unique: {ids}")
        if not 0 <= sum(c.share for c in self.atm_clusters) < 1 or any(c.share < 0 for c in self.atm_clusters):
            raise TwinError("ATM cluster shares must be non-negative and sum to less than 1")
        for dc in (self.primary, self.standby):
            if dc.workers < 1 or dc.service_ms <= 0 or dc.ups_minutes < 0:
                raise TwinError(f"data centre {dc.dc_id}: workers >= 1, service_ms > 0, ups_minutes >= 0")
        if self.peak_tps <= 0 or self.noise < 0 or self.failover_s < 0:
            raise TwinError("peak_tps must be positive, noise and failover_s non-negative")


DEV_BANKING = BankingSpec(
    switch_id="switch-1",
    primary=DataCentreSpec("dc-primary", workers=64, service_ms=40.0, ups_minutes=15.0),
    standby=DataCentreSpec("dc-standby", workers=56, service_ms=40.0, ups_minutes=10.0),
    atm_clusters=(
        AtmClusterSpec("atm-cluster-1", share=0.08, ups_minutes=20.0),
        AtmClusterSpec("atm-cluster-2", share=0.07, ups_minutes=20.0),
    ),
)
"""The development city's payment network; the first four ids are on-chain (``chain.consortium``)."""


def erlang_c(workers: int, offered_erlangs: float) -> float:
    """Probability an arriving transaction waits in an M/M/c queue (needs load < workers)."""
    b = 1.0
    for k in range(1, workers + 1):
        b = offered_erlangs * b / (k + offered_erlangs * b)
    rho = offered_erlangs / workers
    return b / (1.0 - rho * (1.0 - b))


def p95_latency_ms(dc: DataCentreSpec, load_tps: float, base_ms: float) -> float:
    """p95 response time of ``dc`` at ``load_tps`` (below capacity): base + service + wait p95s."""
    mu = 1000.0 / dc.service_ms
    service_p95 = dc.service_ms * math.log(20.0)
    if load_tps <= 0:
        return base_ms + service_p95
    c = erlang_c(dc.workers, load_tps / mu)
    wait_p95_s = math.log(c / 0.05) / (dc.workers * mu - load_tps) if c > 0.05 else 0.0
    return base_ms + service_p95 + wait_p95_s * 1000.0
