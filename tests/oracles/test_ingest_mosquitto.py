"""Mosquitto as the city's broker: what the embedded one cannot promise, it keeps.

An oracle's persistent session gets what was published while it was down, also across a broker
restart; a message it received but never acknowledged (it died before storing it) comes again when
it reconnects. `make test` installs Mosquitto (Makefile `system`), so these run wherever CI does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bus.errors import IngestError
from bus.mosquitto import MosquittoBroker, mosquitto_executable
from bus.mqtt import encode_payload, topic_for
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from tests.conftest import free_port
from tests.oracles.test_ingest_mqtt import publisher, reading, wait_for

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")


def _publish(pub, rows) -> None:  # type: ignore[no-untyped-def]
    for r in rows:
        pub.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1).wait_for_publish(5)


def test_a_persistent_session_survives_the_oracle_and_the_broker_restarting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    sent = [reading(i) for i in range(12)]
    broker = MosquittoBroker(port=port, data_dir=tmp_path / "broker").start()
    try:
        first = ReadingSink()
        with MqttSubscriber(first, port=port, sectors=[sent[0].sector], client_id="oracle-water-1"):
            pub = publisher(port)
            _publish(pub, sent[:4])
            wait_for(lambda: len(first) == 4, timeout_s=15)
            first.drain()
        _publish(pub, sent[4:8])  # the oracle is down: its session collects these
        pub.disconnect()
        pub.loop_stop()
        broker.stop()  # a clean stop saves sessions and queued messages
        broker = MosquittoBroker(port=port, data_dir=tmp_path / "broker").start()
        pub = publisher(port)
        _publish(pub, sent[8:])
        second = ReadingSink()
        with MqttSubscriber(second, port=port, sectors=[sent[0].sector], client_id="oracle-water-1"):
            wait_for(lambda: len(second) == 8, timeout_s=15)  # a loaded machine: the restart takes a while
            assert sorted(second.drain(), key=lambda r: r.timestamp) == sent[4:]
        pub.disconnect()
        pub.loop_stop()
    finally:
        broker.stop()


def test_a_message_delivered_but_never_stored_is_delivered_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    sent = [reading(i) for i in range(5)]
    with MosquittoBroker(port=port, data_dir=tmp_path / "broker"):
        pub = publisher(port)
        try:
            dying = ReadingSink()
            with MqttSubscriber(dying, port=port, sectors=[sent[0].sector], client_id="oracle-water-2"):
                _publish(pub, sent)
                wait_for(lambda: len(dying) == 5)
            # the oracle held them in memory and died before storing them: nothing was acknowledged
            again = ReadingSink()
            with MqttSubscriber(again, port=port, sectors=[sent[0].sector], client_id="oracle-water-2"):
                wait_for(lambda: len(again) == 5)
            assert sorted(again.drain(), key=lambda r: r.timestamp) == sent
        finally:
            pub.disconnect()
            pub.loop_stop()


def test_a_taken_port_or_a_missing_package_is_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with MosquittoBroker(port=port, data_dir=tmp_path / "a") as running:
        assert running.url == f"mqtt://127.0.0.1:{port}" and running.alive
        with pytest.raises(IngestError, match=f"Mosquitto could not listen on 127.0.0.1:{port}"):
            MosquittoBroker(port=port, data_dir=tmp_path / "b").start()
    assert not running.alive
    missing = MosquittoBroker(port=port, data_dir=tmp_path / "c")
    missing.executable = None  # a machine without the package
    with pytest.raises(IngestError, match="not installed"):
        missing.start()


def test_mosquitto_dies_with_the_process_that_started_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A killed `qeaims broker` must not leave Mosquitto holding the port against its restart."""
    port = free_port()
    script = ("import sys, time; from pathlib import Path; from bus.mosquitto import MosquittoBroker; "
              f"b = MosquittoBroker(port={port}, data_dir=Path(sys.argv[1])).start(); print(b.pid, flush=True); "
              "time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "broker")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert Path(f"/proc/{child}").exists()
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not _running(child), timeout_s=10)
    finally:
        parent.kill()
    with MosquittoBroker(port=port, data_dir=tmp_path / "broker"):  # the port is free again
        pass


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_traced_batches_give_the_latency_of_every_hop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A twin's batches carry when they were stamped and sent; the subscriber times the rest."""
    import time

    from bus.mqtt import batch_topic, encode_batch

    port = free_port()
    rows = [reading(i) for i in range(3)]
    with MosquittoBroker(port=port, data_dir=tmp_path / "broker"):
        sink = ReadingSink()
        with MqttSubscriber(sink, port=port, sectors=[rows[0].sector], client_id="oracle-water-3") as sub:
            pub = publisher(port)
            try:
                stamped = time.time() - 0.25  # the poll completed a quarter second before it was sent
                for payload in encode_batch(rows, stamped=stamped):
                    pub.publish(batch_topic(rows[0].sector, "twin-water"), payload, qos=1).wait_for_publish(5)
                wait_for(lambda: len(sink) == 3)
                assert sub.latency.summary()["store"]["p95"] is None  # not stored yet: no store hop
                sink.drain()  # stored: the acknowledgement (and the store hop) follow
                summary = sub.latency.summary()
            finally:
                pub.disconnect()
                pub.loop_stop()
    assert summary["batches"] == 1
    assert 0.25 <= summary["publish"]["p95"] < 1.0
    assert 0.0 <= summary["broker"]["p95"] < 1.0
    assert summary["total"]["p95"] >= summary["publish"]["p95"] + summary["broker"]["p95"] - 1e-3


def test_session_queues_are_bounded_and_abandoned_sessions_expire(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An abandoned or hostile persistent session must not grow the broker without end (review finding 3)."""
    config = MosquittoBroker(port=1, data_dir=tmp_path).config().splitlines()
    settings = dict(line.split(" ", 1) for line in config if line and not line.startswith("#") and " " in line)
    assert 0 < int(settings["max_queued_messages"]) and 0 < int(settings["max_queued_bytes"])
    assert settings["persistent_client_expiration"] == "1d"
    assert settings["listener"].endswith("127.0.0.1")  # this machine only
