"""A broker killed with readings it acknowledged but never delivered: the twin gives them again.

Mosquitto acknowledges a QoS 1 message when it has queued it and saves its queues every
`bus.mosquitto.AUTOSAVE_S` seconds, so a kill -9 loses what a lagging oracle had not received yet
(the crash campaign's one period lost at two of four oracles, session 39). These tests kill a real
Mosquitto with an oracle 100 messages behind (its in-flight window is full: it acknowledges a
message only once stored, and this one stores nothing until the end) and count, per (sensor, field
time), what the oracle got once the twin is back: every period, through a twin restart and through a
reconnect of a twin that stayed up.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from bus.mqtt import wire_sensor
from core.messages import Reading, Sector
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from sectors.sent_log import SentLog
from tests.conftest import free_port
from tests.oracles.test_ingest_mqtt import wait_for

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")

PERIODS = 150  # past the broker's in-flight window of 100 for a client that acknowledges nothing


def _key(r: Reading) -> tuple[str, str, str]:
    return r.asset_id, wire_sensor(r), r.timestamp.isoformat()  # the wire names a sensor without its asset


def _restart_after_kill(broker: MosquittoBroker, port: int, data_dir: Path) -> MosquittoBroker:
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGKILL)
    wait_for(lambda: not broker.alive, timeout_s=10)
    return MosquittoBroker(port=port, data_dir=data_dir).start()


def _lagging_oracle(port: int) -> tuple[ReadingSink, MqttSubscriber]:
    sink = ReadingSink(capacity=1_000_000)  # never drained until the end: nothing is acknowledged
    return sink, MqttSubscriber(sink, port=port, sectors=[Sector.BANKING], client_id="oracle-banking-lag").start()


def _broker_with_saved_session(port: int, data_dir: Path) -> tuple[MosquittoBroker, ReadingSink, MqttSubscriber]:
    """A broker whose saved state holds the oracle's session (a clean stop saves it), freshly started,
    so its next autosave is seconds away and a kill now loses everything queued since."""
    broker = MosquittoBroker(port=port, data_dir=data_dir).start()
    sink, oracle = _lagging_oracle(port)
    broker.stop()
    broker = MosquittoBroker(port=port, data_dir=data_dir).start()
    wait_for(lambda: oracle._client.is_connected(), timeout_s=15)
    return broker, sink, oracle


def _all_periods(sink: ReadingSink, expected: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    got: set[tuple[str, str, str]] = set()

    def arrived() -> bool:
        got.update(_key(r) for r in sink.drain())  # drained: acknowledged, the broker sends the rest
        return expected <= got

    try:
        wait_for(arrived, timeout_s=20)
    except AssertionError:
        pass
    return got


def _assert_every_reading_arrived(sink: ReadingSink, sent: list[Reading]) -> None:
    expected = {_key(r) for r in sent}
    missing = expected - _all_periods(sink, expected)
    assert not missing, f"{len(missing)} of {len(expected)} readings never reached the oracle"


def test_a_restarted_twin_resends_what_a_killed_broker_acknowledged_but_never_delivered(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "broker"
    broker, sink, oracle = _broker_with_saved_session(port, data_dir)
    sent: list[Reading] = []
    try:
        with SentLog(tmp_path / "banking.sent.sqlite") as log:
            with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, speed=1e6, sent_log=log) as twin:
                twin.run(threading.Event(), steps=PERIODS, on_step=sent.extend)
            wait_for(lambda: len(sink) >= 100 * 18, timeout_s=10)  # the window is full, the rest is queued
            broker = _restart_after_kill(broker, port, data_dir)
            with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, sent_log=log) as again:
                assert again.resend_recent("restart") == PERIODS
        _assert_every_reading_arrived(sink, sent)
    finally:
        oracle.stop()
        broker.stop()


def test_a_twin_that_stays_up_resends_once_it_has_the_broker_again(tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "broker"
    broker, sink, oracle = _broker_with_saved_session(port, data_dir)
    sent: list[Reading] = []
    try:
        with SentLog(tmp_path / "banking.sent.sqlite") as log, open_twin(Sector.BANKING) as runner, \
                TwinPublisher(runner, port=port, speed=1e6, sent_log=log) as twin:
            twin.run(threading.Event(), steps=PERIODS, on_step=sent.extend)
            wait_for(lambda: len(sink) >= 100 * 18, timeout_s=10)
            broker = _restart_after_kill(broker, port, data_dir)
            wait_for(lambda: twin.connects == 2, timeout_s=15)  # paho found the broker again by itself
            twin.run(threading.Event(), steps=PERIODS + 1, on_step=sent.extend)  # one more period
            assert twin.resent == PERIODS
        _assert_every_reading_arrived(sink, sent)
    finally:
        oracle.stop()
        broker.stop()
