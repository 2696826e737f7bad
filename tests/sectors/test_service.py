"""Service levels: 1 in normal operation, lower after a representative fault; the automation-off
baseline loses service a plan without faults keeps; a running twin publishes its level over MQTT."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker
from core.errors import ConfigError
from core.messages import FaultKind, Sector
from sectors.baseline import run_baseline
from sectors.publish import TwinPublisher
from sectors.remote import SimControl, svc_topic
from sectors.runner import TwinRunner, open_twin
from sectors.service import ServiceLevel, service_level
from tests.conftest import free_port


def level(runner: TwinRunner, periods: int = 1) -> ServiceLevel:
    for _ in range(periods):
        runner.advance()
    return service_level(runner.sector, runner.twin)


def test_electricity_line_fault_cuts_the_served_share() -> None:
    with open_twin(Sector.ELECTRICITY) as runner:
        normal = level(runner)
        runner.twin.inject_fault(FaultKind.LINE_FAULT, "line-10")
        faulted = level(runner)
    assert normal.availability == 1.0 and normal.customers_affected == 0
    detail = faulted.detail
    assert faulted.availability == pytest.approx(detail["served_kw"] / (detail["served_kw"] + detail["unserved_kw"]))
    assert 0.5 < faulted.availability < 0.95
    assert faulted.customers_affected == detail["customers_unserved"] > 0


def test_water_break_leaves_customers_below_required_pressure() -> None:
    with open_twin(Sector.WATER) as runner:
        normal = level(runner)
        runner.twin.inject_fault(FaultKind.PIPE_BREAK, "pipe:159")
        faulted = level(runner)
    assert normal.availability == 1.0 and normal.customers_affected == 0
    assert faulted.availability < 1.0 and faulted.customers_affected > 0
    customers = faulted.detail["customers"]
    assert faulted.availability == pytest.approx(1.0 - faulted.customers_affected / customers)


def test_sewage_station_failure_in_rain_spills() -> None:
    with open_twin(Sector.SEWAGE, period_s=300) as runner:  # 5-minute steps: two hours in 24
        normal = level(runner, 12)
        runner.twin.inject_fault(FaultKind.PUMP_FAILURE, "station:PS1")
        runner.twin.set_rain(10.0)
        faulted = level(runner, 24)
    assert normal.availability == 1.0 and normal.detail["overflow_m3s"] == 0.0
    assert faulted.detail["overflow_m3s"] > 0.1 and faulted.availability < 0.2


def test_transport_dark_signal_slows_trips() -> None:
    from sectors.transportation import TransportTwin

    runner = TwinRunner(Sector.TRANSPORTATION, TransportTwin(duration_h=1), 60)  # a short day: cheaper
    normal = level(runner, 3)
    runner.twin.inject_fault(FaultKind.SIGNAL_OUTAGE, "node:n11")
    faulted = level(runner, 20)
    assert normal.availability == 1.0
    assert faulted.availability == pytest.approx(1.0 / faulted.detail["travel_time_ratio"])
    assert faulted.availability < 0.95 and faulted.customers_affected > 0


def test_healthcare_power_loss_without_generator_puts_icu_at_risk() -> None:
    with open_twin(Sector.HEALTHCARE) as runner:
        normal = level(runner)
        runner.twin.inject_fault(FaultKind.EQUIPMENT_FAILURE, "hospital-1:generator")
        runner.twin.inject_fault(FaultKind.POWER_LOSS, "hospital-1")
        faulted = level(runner, 5)
    assert normal.availability == 1.0 and normal.critical_affected == 0
    assert faulted.availability < 1.0 and faulted.critical_affected > 0
    assert faulted.customers_affected >= faulted.critical_affected - faulted.detail["waiting"]


def test_banking_primary_outage_stops_payments() -> None:
    with open_twin(Sector.BANKING) as runner:
        normal = level(runner)
        runner.twin.inject_fault(FaultKind.OUTAGE, "dc-primary")
        faulted = level(runner)
        assert faulted.availability == runner.twin.service().availability_now
    assert normal.availability == pytest.approx(0.999)  # the switch's base error rate
    assert faulted.availability == 0.0 and faulted.customers_affected > normal.customers_affected


PLAN = [
    (600.0, Sector.ELECTRICITY, SimControl(op="inject-fault", kind="line-fault", target="line-10")),
    (300.0, Sector.BANKING, SimControl(op="inject-fault", kind="outage", target="dc-primary")),
]


def test_baseline_without_response_loses_service_a_quiet_plan_keeps() -> None:
    sectors = [Sector.ELECTRICITY, Sector.BANKING]
    seen: list[tuple[Sector, float]] = []
    broken = run_baseline(PLAN, sectors=sectors, duration_s=1200, progress=lambda s, t, _d: seen.append((s, t)))
    quiet = run_baseline([], sectors=sectors, duration_s=1200)
    for sector in sectors:
        assert broken[sector].availability < quiet[sector].availability
        assert broken[sector].applied == 1 and broken[sector].rejected == ()
        assert quiet[sector].min_availability > 0.99
    # electricity: 10 of 20 minutes at the faulted level, time-weighted
    power = broken[Sector.ELECTRICITY]
    assert power.availability == pytest.approx((1.0 + power.min_availability) / 2, abs=0.01)
    assert power.customers_affected_max > 0
    banking = broken[Sector.BANKING]  # nobody fails over: down from 300 s to the end
    assert banking.min_availability == 0.0 and banking.availability == pytest.approx(0.25 * 0.999, abs=0.01)
    assert seen[-1] == (Sector.BANKING, 1200.0)


def test_baseline_manual_repair_and_refusals() -> None:
    repaired = run_baseline(PLAN, sectors=[Sector.BANKING], duration_s=1200, manual_repair_s=300)[Sector.BANKING]
    assert repaired.repaired == 1 and repaired.availability == pytest.approx(0.75 * 0.999, abs=0.01)
    rain = (0.0, Sector.BANKING, SimControl(op="set-rain", params={"mm_per_h": 5}))
    refused = run_baseline([rain], sectors=[Sector.BANKING], duration_s=120)[Sector.BANKING]
    assert refused.applied == 0 and "only the sewage twin has rain" in refused.rejected[0]
    with pytest.raises(ConfigError):
        run_baseline(PLAN, sectors=[Sector.BANKING], duration_s=0)
    with pytest.raises(ConfigError):
        run_baseline([(-1.0, *PLAN[0][1:])], sectors=[Sector.BANKING], duration_s=60)


def test_a_running_twin_publishes_its_service_level() -> None:
    port = free_port()
    got: list[dict[str, object]] = []
    arrived, subscribed = threading.Event(), threading.Event()

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        got.append(json.loads(message.payload))
        arrived.set()

    with EmbeddedBroker(port=port), open_twin(Sector.BANKING) as runner, TwinPublisher(
            runner, port=port, speed=1e6) as twin:
        watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id="scenario")
        watcher.username_pw_set("scenario")
        watcher.on_message = on_message
        watcher.on_subscribe = lambda *_: subscribed.set()
        watcher.connect("127.0.0.1", port)
        watcher.loop_start()
        try:
            watcher.subscribe(svc_topic(Sector.BANKING), 0)
            assert subscribed.wait(10), "the broker did not acknowledge the subscription"
            twin.run(threading.Event(), steps=2)
            assert arrived.wait(10), "no qeaims-svc message"
            deadline = time.monotonic() + 5
            while len(got) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            watcher.loop_stop()
            watcher.disconnect()
    assert svc_topic(Sector.BANKING) == "qeaims-svc/banking"
    last = got[-1]
    assert set(last) == {"sector", "at", "wall", "availability", "customers_affected", "critical_affected", "detail"}
    assert last["sector"] == "banking" and last["at"] == runner.now.isoformat()
    assert last["availability"] == pytest.approx(0.999) and twin.service is not None
    assert isinstance(last["detail"], dict) and "offered_tps" in last["detail"]


def test_water_baseline_leaks_until_the_crew_arrives_then_shuts_the_same_valves() -> None:
    """Without automation a main break is not left alone all day: it leaks, robbing pressure, until
    the crew arrives (the plug-in's travel time), which then shuts the valves the controller would
    have closed, and the segment stays dry for the repair. Before, the baseline let it leak to the
    end, a world where nobody ever comes."""
    from sectors.water import WaterTwin

    travel = 2700
    broken = SimControl(op="inject-fault", kind="pipe-break", target="pipe:159")
    result = run_baseline([(60.0, Sector.WATER, broken)], sectors=[Sector.WATER], duration_s=60 + travel + 300)
    water = result[Sector.WATER]
    model = WaterTwin()
    cut = sum(model.customers.get(j, 0) for j in model.cut_off_by(model.isolation_plan("pipe:159")))
    total = sum(model.customers.values())
    leaking = [a for t, a in water.series if 120 <= t <= 60 + travel]
    shut = [a for t, a in water.series if t > 60 + travel]
    assert leaking and max(leaking) < 1.0  # the break robs pressure before anyone comes
    assert shut and all(a == pytest.approx(1 - cut / total, abs=1e-6) for a in shut)
    # on the city's N-1 valve layer the flowing break starves more customers of pressure (2,176) than its
    # shut segment holds (junction 147's 66): the worst comes before the crew (`scripts/water_break_tradeoff.py`)
    assert water.customers_affected_max == 2176 > cut == 66 and water.applied == 1 and water.rejected == ()
