"""The payment network's rules (`sectors.banking.rules`): an outage or degradation named in its first
row when two systems agree, and one falsified system is the instrument to distrust.

The rows are the banking twin's own; the falsifications are made with its measurement attacks, as
the scenarios make them.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind
from sectors.banking import BankingTwin
from sectors.banking.rules import RULES, ClusterFlow, FraudBurst, SiteProbe, invariants
from sectors.invariants import Violation

pytestmark = pytest.mark.unit

ROW_S = 30.0


def newest(twin: BankingTwin, rows: int = 1) -> list[Violation]:
    """Advance `rows` report periods; the violations of the last row."""
    for _ in range(rows):
        readings = twin.advance(ROW_S)
    return invariants({r.sensor_id: np.array([r.value]) for r in readings})


def test_every_rule_reads_sensors_on_the_wire() -> None:
    sensors = set(BankingTwin(seed=0).sensor_ids())
    for rule in RULES:
        if isinstance(rule, SiteProbe):
            assert {rule.status, rule.probe} <= sensors
        elif isinstance(rule, ClusterFlow):
            assert {f"{rule.cluster}/{q}" for q in ("status", "tps", "error_rate")} <= sensors
        else:
            assert isinstance(rule, FraudBurst)
            assert {f"{rule.switch}/tps", f"{rule.switch}/error_rate", *(f"{s}/utilisation" for s, _ in rule.sites)} <= sensors


@pytest.mark.parametrize("seed", [1, 2])
def test_two_normal_days_break_no_rule(seed: int) -> None:
    twin = BankingTwin(seed=seed)
    for _ in range(2 * 2880):  # the daily curve, night lows and peaks included
        assert newest(twin) == []


@pytest.mark.parametrize("site", ["dc-primary", "dc-standby"])
def test_a_site_down_is_a_fault_of_the_site_in_the_first_row(site: str) -> None:
    # the standby serves nothing: only its own status moved, and the model called it falsified
    twin = BankingTwin(seed=1)
    newest(twin, 20)
    twin.inject_fault(FaultKind.OUTAGE, site)
    faults = [v for v in newest(twin) if v.fault]
    assert [(v.asset, v.sensor, v.reads) for v in faults][:1] == [(site, f"{site}/status", (f"switch-1/probe_{site}",))]
    assert not [v for v in newest(twin) if not v.fault]  # nothing is called falsified meanwhile


@pytest.mark.parametrize("cluster", ["atm-cluster-1", "atm-cluster-2"])
def test_an_atm_cluster_down_is_a_fault_of_the_cluster_in_the_first_row(cluster: str) -> None:
    twin = BankingTwin(seed=2)
    newest(twin, 600)  # mid-morning: demand well above the night's
    twin.inject_fault(FaultKind.OUTAGE, cluster)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == cluster and violation.sensor == f"{cluster}/status"
    assert violation.reads == (f"{cluster}/tps",) and "counts no transaction" in violation.message


@pytest.mark.parametrize("severity", [0.25, 0.8])
def test_a_degraded_cluster_is_a_fault_in_the_first_row(severity: float) -> None:
    twin = BankingTwin(seed=3)
    newest(twin, 600)
    twin.inject_fault(FaultKind.DEGRADATION, "atm-cluster-1", severity=severity)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == "atm-cluster-1" and "degraded" in violation.message


@pytest.mark.parametrize(("sensor", "magnitude", "asset"), [
    ("dc-standby/status", -1.0, "dc-standby"),  # a site reported down by its facility monitoring alone
    ("switch-1/probe_dc-primary", -1.0, "dc-primary"),  # the switch's probe alone
    ("atm-cluster-1/status", -1.0, "atm-cluster-1"),  # reported down while the switch counts its customers
    ("atm-cluster-1/error_rate", 0.3, "atm-cluster-1"),  # failures the switch's count does not show
])
def test_one_falsified_system_is_an_instrument_to_distrust(sensor: str, magnitude: float, asset: str) -> None:
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_attack(AttackKind.BIAS, sensor, magnitude=magnitude)
    [violation] = newest(twin)
    assert not violation.fault and violation.sensor == sensor and violation.asset == asset


def test_no_yardstick_no_cluster_verdict() -> None:
    # both clusters down (their feeder lost): there is no healthy sibling to measure demand by, and
    # the rule leaves them to the model rather than guess
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    for cluster in ("atm-cluster-1", "atm-cluster-2"):
        twin.inject_fault(FaultKind.OUTAGE, cluster)
    assert [v for v in newest(twin) if v.asset.startswith("atm-")] == []


def test_a_fraud_burst_is_a_fault_of_the_switch_in_its_first_row() -> None:
    twin = BankingTwin(seed=2)
    newest(twin, 600)
    twin.inject_fault(FaultKind.FRAUD_BURST, "switch-1", severity=300.0)
    [violation] = newest(twin)
    assert violation.fault and violation.asset == "switch-1" and "flooded" in violation.message
    twin.clear_fault("switch-1")  # the sources were blocked upstream
    assert newest(twin) == []


def test_a_switch_counter_falsified_high_is_an_instrument_to_distrust() -> None:
    # the switch's count and its failures both falsified: the data centre's servers did not carry it
    twin = BankingTwin(seed=2)
    newest(twin, 600)
    twin.inject_attack(AttackKind.BIAS, "switch-1/tps", magnitude=400.0)
    twin.inject_attack(AttackKind.BIAS, "switch-1/error_rate", magnitude=0.4)
    [violation] = newest(twin)
    assert not violation.fault and violation.sensor == "switch-1/tps"


# --- review (review-ctl): one falsified sensor must not get an honest one blamed --------------


def test_a_sibling_error_rate_below_zero_blames_the_sibling_not_the_honest_cluster() -> None:
    # atm-cluster-2's failure rate falsified to -5 % (no cluster fails less than never): the rule
    # measured atm-cluster-1 against it and called atm-cluster-1's honest 0 % falsified
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_attack(AttackKind.BIAS, "atm-cluster-2/error_rate", magnitude=-0.05)
    violations = newest(twin)
    assert not [v for v in violations if v.sensor.startswith("atm-cluster-1/")]
    assert [(v.sensor, v.fault) for v in violations] == [("atm-cluster-2/error_rate", False)]


def test_a_sibling_error_rate_falsified_low_during_a_switch_degradation_blames_no_honest_cluster() -> None:
    # the switch degraded (both clusters fail 16 %, as the switch does); atm-cluster-2's failure
    # rate falsified to 0 %. The switch counts both clusters equally, so one of the two rates lies,
    # and atm-cluster-1's agrees with the switch's own failure share: it is not the one to distrust
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_fault(FaultKind.DEGRADATION, "switch-1", severity=0.8)
    assert newest(twin) == []
    twin.inject_attack(AttackKind.BIAS, "atm-cluster-2/error_rate", magnitude=-0.16)
    assert not [v for v in newest(twin) if v.sensor.startswith("atm-cluster-1/")]


def test_a_cluster_error_rate_falsified_high_during_a_switch_degradation_is_still_distrusted() -> None:
    # the arbiter above (the switch's failure share) must not shelter a falsified rate above it
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_fault(FaultKind.DEGRADATION, "switch-1", severity=0.8)
    twin.inject_attack(AttackKind.BIAS, "atm-cluster-1/error_rate", magnitude=0.3)
    [violation] = newest(twin)
    assert not violation.fault and violation.sensor == "atm-cluster-1/error_rate"


@pytest.mark.xfail(strict=True, reason="review-ctl: with two clusters, one falsified sibling status (on UPS, drained "
                   "or down) leaves the other without a yardstick and the rule silent: a real outage of "
                   "atm-cluster-1 is then only the model's ANOMALY, which no oracle votes on. A fallback "
                   "yardstick (the switch's throughput per unit share) would need attribution runs to adopt")
def test_a_sibling_status_falsified_on_ups_does_not_hide_a_cluster_outage() -> None:
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_attack(AttackKind.BIAS, "atm-cluster-2/status", magnitude=1.0)  # 1 → 2: "on UPS"
    twin.inject_fault(FaultKind.OUTAGE, "atm-cluster-1")
    assert [(v.asset, v.fault) for v in newest(twin) if v.asset == "atm-cluster-1"] == [("atm-cluster-1", True)]


def test_a_real_degradation_is_not_called_a_falsified_rate_when_the_sibling_count_is_falsified_low() -> None:
    # atm-cluster-1 really degraded (16 % fail); the switch's count of atm-cluster-2 falsified to half.
    # atm-cluster-1 then "passed 164 % of a healthy cluster", which no cluster failing more than its
    # sibling can: the counts contradict each other, and the honest failure rate is not the liar
    twin = BankingTwin(seed=1)
    newest(twin, 600)
    twin.inject_fault(FaultKind.DEGRADATION, "atm-cluster-1", severity=0.8)
    readings = twin.advance(ROW_S)
    half = next(r.value for r in readings if r.sensor_id == "atm-cluster-2/tps") / 2
    twin.inject_attack(AttackKind.BIAS, "atm-cluster-2/tps", magnitude=-half)
    assert not [v for v in newest(twin) if v.sensor == "atm-cluster-1/error_rate" and not v.fault]
