"""The payment network's rules (`sectors.invariants`): an outage or a degradation two systems agree on.

Two kinds of fault the learned model saw but could not name (`qeaims detect attribution --sector
banking`, before these rules):

- **the standby data centre down**: only its own status moves (it serves nothing), so the model
  called the status sensor falsified, an INTRUSION, and the site was never isolated;
- **an ATM cluster down or degraded**: its failures rise, its transactions at the switch fall, and
  the model found that "unusual" (an ANOMALY), which no oracle votes on.

Each is now checked against a second system, in the newest row:

- a data centre's facility monitoring (``<dc>/status``: 0 down, 1 up, 2 on UPS) against the
  switch's health probe of the site (``<switch>/probe_<dc>``, a GSLB check of its endpoint).
  Both down: the site is down, a FAULT named at once. One alone: that instrument is the one to
  distrust (an INTRUSION on it);
- an ATM cluster's monitoring (``<cluster>/status``, ``<cluster>/error_rate``: the share of its
  customers' attempts that failed) against what the switch counts from it (``<cluster>/tps``), with
  the clusters' common demand as the yardstick: every cluster takes a fixed share of the city's
  demand, so in normal operation their transactions per unit of share are equal
  (`sectors.banking._flow`). A cluster reported down whose transactions stopped is down; reported
  down while the switch still counts its transactions, its status lies. A cluster whose failure
  rate rose by ``e`` over a healthy sibling's should pass about ``1 - e`` of that sibling's
  transactions per share: it does, a degradation (a FAULT); it does not (the switch counts them
  all), its failure rate lies.

Without a healthy sibling (every cluster down, drained or degraded) there is no yardstick, and the
cluster rule says nothing: the model judges alone.

A failure rate is called falsified only when the other systems single it out (review of the rule,
one falsified sensor each, `tests/sectors/test_banking_rules.py`): a rate outside 0–100 % is
falsified whatever else reads, and is no yardstick; a rate the switch's own failure share accounts
for (:data:`SWITCH_AGREES`: every failure the switch sees, its clusters see too) is not the liar
when a sibling's rate is falsified low during a switch degradation; and a cluster the switch counts
passing more per share than the sibling it fails more than (:data:`PASSED_OVER`) shows that the
counts contradict each other, not that its rate lies (the sibling's count falsified low during a
real degradation). In those cases the rule says nothing and the model judges alone.

A **fraud burst** (`FraudBurst`) is the one fault that adds transactions: a few sources flood the
switch, which declines most of them. The ATM clusters carry a fixed share of the city's legitimate
demand, so the switch's legitimate throughput is known from theirs; a switch that processes far
more than that (:data:`BURST_RATIO`) while failing a large share (declines, :data:`BURST_ERROR`), and
whose data centre's servers are busy in proportion (the site's own utilisation meter, a second
system), is flooded: a FAULT on the switch, answered by a per-source rate limit. The switch's
counter alone high while the data centre is not busier: the counter lies. Thresholds are fixed by the network's arithmetic,
not fitted: in normal operation a cluster's failure rate is exactly its sibling's (both see the same
switch), and its transactions per share equal its sibling's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sectors.invariants import Violation, Window

from ._model import DEV_BANKING, BankingSpec

__all__ = ["BURST_ERROR", "BURST_RATIO", "ERROR_RISE", "PASSED_OVER", "RULES", "SWITCH_AGREES", "ClusterFlow",
           "FraudBurst", "SiteProbe", "burst_shown", "invariants", "rules_for"]

UP = 0.5  # status codes: 0 down, 1 up, 2 on UPS, 3 drained; a probe reads 1 reachable, 0 not
ERROR_RISE = 0.04
"""A cluster's failure rate above its healthy sibling's that counts as a degradation: the twin's
failed share is 0.2 × severity, so a degradation of severity 0.2 or more; normally the rise is 0."""
STOPPED = 0.05  # transactions per share below this fraction of the sibling's: the switch counts none
STILL_FLOWING = 0.5  # … above this: the switch still counts its transactions
SWITCH_AGREES = ERROR_RISE / 2
"""A cluster's failure rate at most this above the switch's own failure share is one the switch
accounts for: a cluster's failures are the switch's loss and time-outs (its share of them exactly,
`sectors.banking._flow`) plus its own at the ATM; the switch's share adds its base errors (0.001)
and fraud declines, so an honest cluster with no failure at the ATM never reads above it."""
PASSED_OVER = 0.5
"""… and a cluster failing `rise` more than its sibling that the switch counts passing more than
``1 + PASSED_OVER × rise`` of that sibling's transactions per share: impossible with honest counts
(it fails more, so it passes less), the mirror of the degradation threshold ``1 - rise / 2``."""
BURST_RATIO = 1.5
"""Switch throughput over the legitimate demand its ATM clusters imply: about 1.0 in normal
operation (the clusters' share is exact, `sectors.banking._flow`); a 300-tps burst at a quiet
mid-morning hour reads 2.6."""
BURST_ERROR = 0.1  # the switch's failed share: 0.001 normally; a burst's declines make it 0.3–0.6
SITE_ACCOUNTS = 0.9  # the active site's utilisation × capacity: equal to the switch's throughput, exactly


def _last(window: Window, sensor: str) -> float | None:
    series: NDArray[np.float64] | None = window.get(sensor)
    if series is None or not len(series) or not np.isfinite(series[-1]):
        return None
    return float(series[-1])


def _a_rate(value: float) -> bool:
    """Whether `value` can be a share of attempts that failed (0–1, with float rounding)."""
    return -1e-9 <= value <= 1.0 + 1e-9


@dataclass(frozen=True)
class SiteProbe:
    """A data centre's facility status against the switch's probe of its endpoint."""

    dc: str
    status: str
    probe: str

    def check(self, window: Window) -> list[Violation]:
        status, probe = _last(window, self.status), _last(window, self.probe)
        if status is None or probe is None:
            return []
        down, unreachable = status < UP, probe < UP
        if down and unreachable:
            return [Violation(self.dc, self.status, (self.probe,),
                              f"{self.dc} is down: its facility monitoring and the switch's probe agree")]
        if down != unreachable:
            alone, other = (self.status, self.probe) if down else (self.probe, self.status)
            return [Violation(self.dc, alone, (other,), f"{alone} reports {self.dc} down and {other} does not",
                              fault=False)]
        return []


@dataclass(frozen=True)
class ClusterFlow:
    """An ATM cluster's monitoring against the switch's count of its transactions, per unit of share."""

    cluster: str
    share: float
    siblings: tuple[tuple[str, float], ...]  # (cluster, share) of the others
    switch_error: str = ""  # the switch's failure share (``<switch>/error_rate``): "" none to consult

    def _values(self, window: Window, cluster: str) -> tuple[float, float, float] | None:
        status, tps, error = (_last(window, f"{cluster}/{q}") for q in ("status", "tps", "error_rate"))
        if status is None or tps is None or error is None:
            return None
        return status, tps, error

    def _yardstick(self, window: Window) -> tuple[str, float, float] | None:
        """The healthy sibling with the most transactions per share: (its tps sensor, per share, error rate)."""
        best: tuple[str, float, float] | None = None
        for sibling, share in self.siblings:
            values = self._values(window, sibling)
            if values is None or abs(values[0] - 1.0) > 1e-9 or share <= 0 or not _a_rate(values[2]) \
                    or values[1] < 0:
                continue  # down, on UPS, drained, unknown or reading the impossible: not a measure of demand
            per_share = values[1] / share
            if best is None or per_share > best[1]:
                best = (f"{sibling}/tps", per_share, values[2])
        return None if best is None or best[1] <= 0 else best

    def check(self, window: Window) -> list[Violation]:
        mine, ruler = self._values(window, self.cluster), self._yardstick(window)
        status_s, tps_s, error_s = (f"{self.cluster}/{q}" for q in ("status", "tps", "error_rate"))
        if mine is not None and not _a_rate(mine[2]):
            return [Violation(self.cluster, error_s, (), f"{error_s} reports {mine[2]:.0%} failing, outside 0-100 %",
                              fault=False)]
        if mine is None or ruler is None or self.share <= 0:
            return []
        status, tps, error = mine
        ruler_sensor, per_share, ruler_error = ruler
        passed = (tps / self.share) / per_share  # its transactions per share, against the sibling's
        if status < UP:
            if passed < STOPPED:
                return [Violation(self.cluster, status_s, (tps_s,),
                                  f"{self.cluster} is down: its monitoring says so and the switch counts no "
                                  f"transaction from it ({passed:.0%} of {ruler_sensor} per share)",
                                  checked=(ruler_sensor,))]
            if passed > STILL_FLOWING:
                return [Violation(self.cluster, status_s, (tps_s,),
                                  f"{status_s} reports {self.cluster} down while the switch counts "
                                  f"{passed:.0%} of its normal transactions", fault=False, checked=(ruler_sensor,))]
            return []
        if abs(status - 1.0) > 1e-9:
            return []  # on UPS or drained: the controller's or the site's doing, not this rule's
        rise = error - ruler_error
        if rise < ERROR_RISE:
            return []
        if passed <= 1.0 - rise / 2:
            return [Violation(self.cluster, error_s, (tps_s,),
                              f"{self.cluster} is degraded: {error:.0%} of its attempts fail and the switch counts "
                              f"{passed:.0%} of a healthy cluster's transactions per share", checked=(ruler_sensor,))]
        switch_error = _last(window, self.switch_error) if self.switch_error else None
        if passed > 1.0 + PASSED_OVER * rise or (switch_error is not None and error <= switch_error + SWITCH_AGREES):
            return []  # the counts contradict each other, or the switch accounts for this rate: not the liar
        return [Violation(self.cluster, error_s, (tps_s,),
                          f"{error_s} reports {error:.0%} failing while the switch counts {passed:.0%} of a healthy "
                          f"cluster's transactions per share", fault=False, checked=(ruler_sensor,))]


@dataclass(frozen=True)
class FraudBurst:
    """The switch's throughput against the legitimate demand its ATM clusters imply, with the active
    data centre's utilisation meter as the second system (it must account for what the switch says
    it processed)."""

    switch: str
    shares: tuple[tuple[str, float], ...]  # ATM cluster → its share of legitimate demand
    sites: tuple[tuple[str, float], ...]  # (data centre, capacity in tps): primary, standby

    def ratio(self, values: Mapping[str, float]) -> float | None:
        """Switch throughput over the legitimate demand the healthy ATM clusters imply."""
        healthy = [(c, share) for c, share in self.shares
                   if abs(values.get(f"{c}/status", 0.0) - 1.0) < 1e-9 and share > 0]
        demand = [values[f"{c}/tps"] / share for c, share in healthy if f"{c}/tps" in values]
        tps = values.get(f"{self.switch}/tps")
        if not demand or tps is None or max(demand) <= 0:
            return None
        return float(tps) / max(demand)

    def check(self, window: Window) -> list[Violation]:
        values = {k: float(v[-1]) for k, v in window.items() if len(v) and np.isfinite(v[-1])}
        ratio, error = self.ratio(values), values.get(f"{self.switch}/error_rate")
        if ratio is None or error is None or ratio < BURST_RATIO or error < BURST_ERROR:
            return []
        site, capacity = self.sites[int(values.get(f"{self.switch}/active_dc", 0.0) >= 0.5)]
        util, tps = values.get(f"{site}/utilisation"), values[f"{self.switch}/tps"]
        if util is None:
            return []
        served = util / 100.0 * capacity  # what the site's own servers say they processed
        if served >= SITE_ACCOUNTS * tps:
            return [Violation(self.switch, f"{self.switch}/tps", (f"{self.switch}/error_rate", f"{site}/utilisation"),
                              f"{self.switch} is flooded: it processes {ratio:.1f}x the legitimate demand its ATM "
                              f"clusters imply and fails {error:.0%} (declines), and {site}'s servers carry it")]
        return [Violation(self.switch, f"{self.switch}/tps", (f"{site}/utilisation",),
                          f"{self.switch}/tps reads {ratio:.1f}x the legitimate demand while {site}'s servers carry "
                          f"{served:,.0f} of its {tps:,.0f} tps", fault=False)]


def burst_shown(values: Mapping[str, float], spec: BankingSpec = DEV_BANKING) -> bool:
    """Whether the field shows a burst (the planner's view of it): as the oracles' rule names one, the
    switch's throughput and failures *and* its data centre's servers carrying it. The switch's counter
    alone (falsified high during a real degradation of the switch, whose failures are a burst's) made
    the planner answer the degradation with a rate limit, where the rule called the counter a liar."""
    window = {k: np.array([v], dtype=np.float64) for k, v in values.items()}
    return any(v.fault for v in _burst_rule(spec).check(window))


def rules_for(spec: BankingSpec) -> tuple[SiteProbe | ClusterFlow | FraudBurst, ...]:
    sites = tuple(SiteProbe(dc.dc_id, f"{dc.dc_id}/status", f"{spec.switch_id}/probe_{dc.dc_id}")
                  for dc in (spec.primary, spec.standby))
    shares: Mapping[str, float] = {c.cluster_id: c.share for c in spec.atm_clusters}
    clusters = tuple(ClusterFlow(c, share, tuple((o, s) for o, s in shares.items() if o != c),
                                 f"{spec.switch_id}/error_rate") for c, share in shares.items())
    return (*sites, *clusters, _burst_rule(spec))


def _burst_rule(spec: BankingSpec) -> FraudBurst:
    return FraudBurst(spec.switch_id, tuple((c.cluster_id, c.share) for c in spec.atm_clusters),
                      tuple((dc.dc_id, dc.capacity_tps) for dc in (spec.primary, spec.standby)))


def invariants(window: Window) -> list[Violation]:
    """The rules the newest row breaks, for the development city's payment network."""
    return [v for rule in RULES for v in rule.check(window)]


RULES = rules_for(DEV_BANKING)
