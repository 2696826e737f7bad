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
