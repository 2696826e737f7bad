"""One 60-second slice of the payment network: where transactions go, which fail, what sensors read.

Kept apart from the twin so the flow arithmetic (the part a reviewer checks against the
assumptions in :mod:`sectors.banking._model`) reads top to bottom without clock or API code.

Status codes reported by ``<asset>/status``: 0 down, 1 up, 2 on UPS, 3 drained (ATM clusters).
Drained cluster demand moves to the clusters still up (customers walk to another ATM), or to
the card/online channel when none is; a cluster that is down fails its customers at the ATM.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

from core.messages import Reading, Sector

from ._model import BankingSpec, p95_latency_ms, profile_factor

__all__ = ["BankingServiceReport", "Slice", "evaluate"]

_LOSS_PER_SEVERITY = 0.2
_LATENCY_PER_SEVERITY_MS = 600.0


@dataclass(frozen=True)
class Slice:
    readings: tuple[Reading, ...]
    legit_offered_tps: float
    legit_served_tps: float
    fraud_declined_tps: float
    throttled_tps: float
    availability: float
    dc_status: dict[str, int]
    failing_over: bool


@dataclass(frozen=True)
class BankingServiceReport:
    """Availability is legitimate transactions served / offered (a burst is not customer demand);
    the counts are totals since the twin started."""

    at: datetime
    availability_now: float
    availability: float
    failed_transactions: int
    fraud_declined: int
    throttled: int
    active_dc: str
    dc_status: dict[str, int]


def _status(asset: str, now_s: float, ups_minutes: float, down: AbstractSet[str], power_lost: Mapping[str, float]) -> int:
    if asset in down:
        return 0
    if asset in power_lost:
        return 2 if now_s - power_lost[asset] < ups_minutes * 60.0 else 0
    return 1


def evaluate(
    spec: BankingSpec,
    now_s: float,
    at: datetime,
    *,
    noise: float,
    down: AbstractSet[str],
    power_lost: Mapping[str, float],
    drained: AbstractSet[str],
    degraded: Mapping[str, float],
    active_standby: bool,
    failing_over: bool,
    burst_tps: float,
    burst_sources: int,
    rate_limit: float | None,
) -> Slice:
    """The network's flows and sensor values at simulated second ``now_s``."""
    hour = (at.hour + at.minute / 60.0 + at.second / 3600.0)
    demand = spec.peak_tps * profile_factor(hour) * max(0.0, 1.0 + noise)
    status = {dc.dc_id: _status(dc.dc_id, now_s, dc.ups_minutes, down, power_lost) for dc in (spec.primary, spec.standby)}
    for c in spec.atm_clusters:
        status[c.cluster_id] = 3 if c.cluster_id in drained else _status(c.cluster_id, now_s, c.ups_minutes, down, power_lost)

    # Demand per channel, drained clusters' customers moved to clusters still up.
    live = [c for c in spec.atm_clusters if status[c.cluster_id] in (1, 2)]
    moved = sum(demand * c.share for c in spec.atm_clusters if status[c.cluster_id] == 3)
    live_share = sum(c.share for c in live)
    online = demand * (1.0 - sum(c.share for c in spec.atm_clusters))
    cluster_demand: dict[str, float] = {}
    for c in spec.atm_clusters:
        own = demand * c.share if status[c.cluster_id] != 3 else 0.0
        cluster_demand[c.cluster_id] = own + (moved * c.share / live_share if c in live else 0.0)
    if not live:
        online += moved
    at_atm_failed = {cid: d if status[cid] == 0 else d * _LOSS_PER_SEVERITY * degraded.get(cid, 0.0)
                     for cid, d in cluster_demand.items()}
    legit_to_switch = online + sum(cluster_demand[cid] - at_atm_failed[cid] for cid in cluster_demand)

    # The burst, cut by a per-source rate limit (legitimate sources stay under any sane limit).
    admitted = burst_tps if rate_limit is None else min(burst_tps, burst_sources * rate_limit)
    throttled = burst_tps - admitted
    arriving = legit_to_switch + admitted
    loss = _LOSS_PER_SEVERITY * degraded.get(spec.switch_id, 0.0)
    attempted = arriving * (1.0 - loss)

    dc = spec.standby if active_standby else spec.primary
    usable = not failing_over and status[dc.dc_id] != 0
    capacity = dc.capacity_tps * spec.max_utilisation if usable else 0.0
    processed = min(attempted, capacity)
    timed_out = attempted - processed
    latency = spec.timeout_ms if timed_out > 1e-9 or not usable else p95_latency_ms(dc, processed, spec.base_latency_ms)
    latency += _LATENCY_PER_SEVERITY_MS * degraded.get(spec.switch_id, 0.0)

    legit_part = legit_to_switch / arriving if arriving else 1.0
    legit_ok = processed * legit_part * (1.0 - spec.base_error_rate)
    declined = processed * (1.0 - legit_part) * spec.fraud_decline_rate
    switch_failed = arriving * loss + timed_out + processed * legit_part * spec.base_error_rate + declined
    legit_offered = demand
    availability = legit_ok / legit_offered if legit_offered else 1.0

    def reading(asset: str, quantity: str, unit: str, value: float) -> Reading:
        return Reading(sector=Sector.BANKING, asset_id=asset, sensor_id=f"{asset}/{quantity}", quantity=quantity,
                       unit=unit, value=float(value), timestamp=at)

    sw = spec.switch_id
    out = [
        reading(sw, "tps", "tps", processed),
        reading(sw, "latency_p95_ms", "ms", latency),
        reading(sw, "error_rate", "ratio", switch_failed / arriving if arriving else 0.0),
        reading(sw, "throttled_tps", "tps", throttled),
        reading(sw, "active_dc", "code", float(active_standby)),
        reading(sw, "failover_in_progress", "bool", float(failing_over)),
    ]
    # the switch's health probe of each data centre (a GSLB check of the site's endpoint): a second
    # system beside the site's own facility monitoring (``<dc>/status``), `sectors.banking.rules`
    out += [reading(sw, f"probe_{centre.dc_id}", "bool", float(status[centre.dc_id] != 0))
            for centre in (spec.primary, spec.standby)]
    for centre in (spec.primary, spec.standby):
        load = processed if centre is dc and usable else 0.0
        out.append(reading(centre.dc_id, "status", "code", status[centre.dc_id]))
        out.append(reading(centre.dc_id, "utilisation", "%", 100.0 * load / centre.capacity_tps))
    switch_ok = processed / attempted if attempted else 1.0
    for c in spec.atm_clusters:
        cid, d = c.cluster_id, cluster_demand[c.cluster_id]
        ok = (d - at_atm_failed[cid]) * (1.0 - loss) * switch_ok
        out.append(reading(cid, "status", "code", status[cid]))
        out.append(reading(cid, "tps", "tps", ok))
        out.append(reading(cid, "error_rate", "ratio", 1.0 - ok / d if d > 1e-9 else 0.0))
    return Slice(
        readings=tuple(out), legit_offered_tps=legit_offered, legit_served_tps=legit_ok,
        fraud_declined_tps=declined, throttled_tps=throttled, availability=availability,
        dc_status=status, failing_over=failing_over,
    )
