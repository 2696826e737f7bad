"""A twin's pace changes while it runs (`sectors.pace`): orders are validated, taken at once, expire
on their own, and the twin's field clock integrates the pace it ran at."""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker
from core.messages import Sector
from sectors.pace import Pace, PaceOrder, is_pace, pace_order, parse_pace
from sectors.publish import TwinPublisher
from sectors.remote import sim_topic
from sectors.runner import open_twin
from tests.conftest import free_port


def test_a_bad_order_is_one_plain_error() -> None:
    for payload, wrong in ((b'{"op": "pace", "pace": 0, "until": 1}', "pace"),
                           (b'{"op": "pace", "pace": 1e9, "until": 1}', "pace"),
                           (b'{"op": "pace", "pace": 2, "until": 1, "speed": 3}', "speed"),
                           (b'{"op": "pace", "until": 1}', "pace"),
                           (b"not json", "body")):
        with pytest.raises(ValueError, match=f"not a pace order: {wrong}"):
            parse_pace(payload)
    assert parse_pace(pace_order(1.0, hold_s=5, now=100.0)) == PaceOrder(pace=1.0, until=105.0)


def test_only_a_pace_op_is_a_pace_order() -> None:
    assert is_pace(pace_order(2.0))
    assert not is_pace(b'{"op": "inject-fault", "target": "line:7", "kind": "line-trip"}')
    assert not is_pace(b"\xff\xfe") and not is_pace(b"[1, 2]") and not is_pace(b"")


def test_an_order_holds_until_it_expires_and_a_later_one_replaces_it() -> None:
    pace = Pace(30.0)
    assert pace.now(0.0) == 30.0
    pace.take(PaceOrder(pace=1.0, until=100.0))
    assert pace.now(99.9) == 1.0 and pace.now(100.0) == 30.0  # expired: back to the twin's own speed
    pace.take(PaceOrder(pace=30.0, until=0.0))  # "settled": an order already expired ends the window
    assert pace.now(50.0) == 30.0
    with pytest.raises(ValueError, match="speed"):
        Pace(0.0)


def test_waiting_out_a_period_integrates_the_pace_it_ran_at() -> None:
    """A 20 s period at 100x is 0.2 s of wall time; slowed to 10x after about 0.05 s (5 field s), the
    other 15 field s take 1.5 s: the field seconds owed are counted at the pace of each slice (at
    100x throughout it would take 0.2 s, at 10x throughout 2 s)."""
    with open_twin(Sector.BANKING) as runner:
        twin = TwinPublisher(runner, speed=100.0)
        stop = threading.Event()
        started = time.monotonic()
        threading.Timer(0.05, lambda: twin.pace.take(PaceOrder(pace=10.0, until=time.time() + 60))).start()
        owed, _ = twin._wait_out(20.0, started, stop)
        took = time.monotonic() - started
        assert owed <= 0
        assert 0.9 <= took <= 1.85, took  # the order lands 0.05-0.1 s in: 1.0-1.5 s more at 10x


def test_a_running_twin_takes_an_order_at_once_and_returns_to_its_speed_when_it_expires() -> None:
    port = free_port()
    with EmbeddedBroker(port=port), open_twin(Sector.BANKING) as runner, TwinPublisher(
            runner, port=port, speed=6000.0) as twin:  # banking's 60 s period: 100 steps a second
        sender = paho.Client(CallbackAPIVersion.VERSION2, client_id="operations")
        sender.username_pw_set("operations")
        sender.connect("127.0.0.1", port)
        sender.loop_start()
        stop = threading.Event()
        thread = threading.Thread(target=twin.run, args=(stop,), daemon=True)
        thread.start()
        try:
            time.sleep(0.5)
            fast = twin.steps
            assert fast > 10, fast
            # real time for 1.5 s (no step of 60 field s fits in it), then back to 6000x
            sender.publish(sim_topic(Sector.BANKING), pace_order(1.0, hold_s=1.5, reason="test"), qos=1).wait_for_publish(5)
            time.sleep(0.3)
            held = twin.steps
            time.sleep(1.0)
            assert twin.steps - held <= 1, "the twin kept its speed under a real-time order"
            assert twin.pace.now() == 1.0
            time.sleep(1.0)  # the order expired 0.5 s ago
            assert twin.pace.now() == 6000.0 and twin.steps - held > 10
            # a control that is not a pace order is not taken by a twin without commands
            sender.publish(sim_topic(Sector.BANKING), json.dumps({"op": "clear-fault", "target": "x"}), qos=1)
            time.sleep(0.3)
            assert twin.results == []
        finally:
            stop.set()
            thread.join(10)
            sender.loop_stop()
            sender.disconnect()
