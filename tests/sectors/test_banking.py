"""Banking twin: a DC outage is cured by fail-over, a fraud-like burst shows in error rate and
latency, attacks touch only the sensors, and bad requests fail clearly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.messages import AttackKind, FaultKind, Reading
from sectors._twin import InvalidAttack, InvalidCommand, InvalidFault, TwinError, UnknownAsset
from sectors.banking import DEV_BANKING, BankingTwin

NOON = 12 * 3600


def value(readings: list[Reading], sensor_id: str) -> float:
    return next(r.value for r in readings if r.sensor_id == sensor_id)


def test_dc_outage_then_failover_restores_availability() -> None:
    twin = BankingTwin(seed=1)
    twin.advance(NOON)
    assert twin.service().availability_now > 0.99
    twin.inject_fault(FaultKind.OUTAGE, "dc-primary")
    readings = twin.advance(60)
    assert value(readings, "dc-primary/status") == 0
    assert value(readings, "switch-1/error_rate") == 1.0
    assert twin.service().availability_now == 0.0

    twin.apply(twin.command("switch-1/route", "failover", decision_ref="0x01"))
    assert value(twin.advance(60), "switch-1/failover_in_progress") == 1.0
    readings = twin.advance(DEV_BANKING.failover_s)
    report = twin.service()
    assert report.active_dc == "dc-standby"
    assert value(readings, "switch-1/active_dc") == 1.0
    assert value(readings, "switch-1/error_rate") < 0.01
    assert report.availability_now > 0.99
    assert report.failed_transactions > 0
    assert any(e.detail == "failover complete" for e in twin.events)


def test_power_loss_runs_a_dc_on_ups_then_down() -> None:
    twin = BankingTwin(seed=1)
    twin.inject_fault(FaultKind.POWER_LOSS, "dc-primary")
    assert value(twin.advance(60), "dc-primary/status") == 2
    assert twin.service().availability_now > 0.99
    twin.advance(DEV_BANKING.primary.ups_minutes * 60)
    assert value(twin.readings(), "dc-primary/status") == 0
    assert twin.service().availability_now == 0.0
    twin.clear_fault("dc-primary")
    assert value(twin.advance(60), "dc-primary/status") == 1


def test_fraud_burst_raises_error_rate_and_latency_and_rate_limit_cuts_it() -> None:
    twin = BankingTwin(seed=2)
    calm = twin.advance(NOON)
    twin.inject_burst(extra_tps=400.0, sources=4)
    burst = twin.advance(60)
    assert value(burst, "switch-1/error_rate") > 5 * value(calm, "switch-1/error_rate")
    assert value(burst, "switch-1/latency_p95_ms") > value(calm, "switch-1/latency_p95_ms") + 100
    twin.apply(twin.command("switch-1/ratelimit", "limit", 2.0))
    limited = twin.advance(60)
    assert value(limited, "switch-1/throttled_tps") == pytest.approx(392.0)
    assert value(limited, "switch-1/latency_p95_ms") < value(burst, "switch-1/latency_p95_ms")
    assert twin.service().fraud_declined > 0
    twin.clear_burst()


def test_draining_a_failed_atm_cluster_moves_its_customers() -> None:
    twin = BankingTwin(seed=3)
    twin.advance(NOON)
    twin.inject_fault(FaultKind.OUTAGE, "atm-cluster-1")
    readings = twin.advance(60)
    assert value(readings, "atm-cluster-1/error_rate") == 1.0
    before = twin.service().availability_now
    twin.apply(twin.command("atm-cluster-1/mode", "drain"))
    readings = twin.advance(60)
    assert value(readings, "atm-cluster-1/status") == 3
    assert twin.service().availability_now > before + 0.05


def test_deterministic_whatever_the_step_size() -> None:
    a, b = BankingTwin(seed=9), BankingTwin(seed=9)
    a.advance(6 * 3600)
    for _ in range(6 * 60):
        b.advance(60)
    assert [r.value for r in a.true_readings()] == [r.value for r in b.true_readings()]
    assert a.service() == b.service()
    assert BankingTwin(seed=10).advance(6 * 3600) != a.true_readings()


def test_attacks_change_readings_not_the_model() -> None:
    twin, clean = BankingTwin(seed=4), BankingTwin(seed=4)
    for t in (twin, clean):
        t.advance(3600)
    twin.inject_attack(AttackKind.BIAS, "switch-1/latency_p95_ms", magnitude=500.0)
    twin.inject_attack(AttackKind.DRIFT, "switch-1/tps", rate_per_hour=100.0)
    for t in (twin, clean):
        t.advance(3600)
    assert twin.true_readings() == clean.true_readings()
    assert twin.service() == clean.service()
    shown = twin.readings()
    assert value(shown, "switch-1/latency_p95_ms") == value(clean.readings(), "switch-1/latency_p95_ms") + 500
    assert value(shown, "switch-1/tps") == pytest.approx(value(clean.readings(), "switch-1/tps") + 100)

    spoof = twin.command("switch-1/route", "failover")
    twin.inject_attack(AttackKind.SPOOFED_COMMAND, "switch-1/active_dc", command=spoof)
    twin.advance(60)
    assert twin.service().active_dc == "dc-standby"
    assert value(twin.readings(), "switch-1/active_dc") == 0.0


def test_bad_input_raises_clear_errors() -> None:
    twin = BankingTwin()
    with pytest.raises(UnknownAsset, match="no banking asset 'dc-9'"):
        twin.inject_fault(FaultKind.OUTAGE, "dc-9")
    with pytest.raises(InvalidFault, match="degradation on the switch"):
        twin.inject_fault(FaultKind.PIPE_BREAK, "dc-primary")
    with pytest.raises(InvalidFault, match="severity"):
        twin.inject_fault(FaultKind.DEGRADATION, "switch-1", severity=2.0)
    with pytest.raises(InvalidFault, match="extra_tps > 0"):
        twin.inject_burst(extra_tps=-1.0)
    with pytest.raises(InvalidCommand, match="already routed to dc-primary"):
        twin.apply(twin.command("switch-1/route", "failback"))
    with pytest.raises(InvalidCommand, match="tps allowed per source"):
        twin.apply(twin.command("switch-1/ratelimit", "limit"))
    with pytest.raises(UnknownAsset, match="no banking actuator"):
        twin.apply(twin.command("dc-primary/route", "failover"))
    twin.inject_fault(FaultKind.OUTAGE, "dc-standby")
    with pytest.raises(InvalidCommand, match="it is down"):
        twin.apply(twin.command("switch-1/route", "failover"))
    with pytest.raises(InvalidAttack, match="no sensor"):
        twin.inject_attack(AttackKind.BIAS, "switch-1/foo", magnitude=1.0)
    twin.advance(60)
    with pytest.raises(TwinError, match="cannot step back"):
        twin.step(twin.now - timedelta(seconds=1))
