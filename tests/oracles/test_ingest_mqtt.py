"""oracles.ingest.mqtt: the topic scheme and payload checks, and real messages through the embedded broker."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.errors import IngestError, MessageRejected
from bus.mqtt import (
    MAX_PAYLOAD,
    MAX_SAMPLES,
    EmbeddedBroker,
    batch_topic,
    encode_batch,
    encode_payload,
    parse_message,
    topic_for,
)
from core.messages import Reading, Sector
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import LOGGER_NAME, ReadingSink
from oracles.telemetry import TelemetryStore
from tests.conftest import free_port

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
TOPIC = "qeaims/water/pump-1/pressure"


def sample(value: object = 41.7, **over: object) -> bytes:
    body = {"quantity": "pressure_m", "unit": "m", "value": value, "timestamp": "2026-11-26T04:59:59.250Z"}
    body.update(over)
    return json.dumps(body).encode()


def reading(i: int, asset: str = "pump-1") -> Reading:
    return Reading(sector=Sector.WATER, asset_id=asset, sensor_id="pressure", quantity="pressure_m", unit="m",
                   value=40.0 + i / 4, timestamp=NOW + timedelta(milliseconds=250 * i))


def wait_for(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- the scheme, without a network -----------------------------------------------------------------


def test_a_valid_message_becomes_a_reading_from_topic_and_payload() -> None:
    [r] = parse_message(TOPIC, sample(), now=NOW)
    assert r == Reading(sector=Sector.WATER, asset_id="pump-1", sensor_id="pressure", quantity="pressure_m",
                        unit="m", value=41.7, timestamp=datetime(2026, 11, 26, 4, 59, 59, 250000, tzinfo=UTC))
    offset = parse_message(TOPIC, sample(7, timestamp="2026-11-26T06:00:00+01:00"), now=NOW)[0]
    assert offset.timestamp == NOW and offset.timestamp.tzinfo == UTC and offset.value == 7.0
    batch = b"[" + sample(1) + b"," + sample(2) + b"]"
    assert [r.value for r in parse_message(TOPIC, batch, now=NOW)] == [1.0, 2.0]
    assert parse_message(TOPIC, encode_payload(reading(3)), now=NOW) == [reading(3)]
    assert topic_for(Sector.WATER, "pump-1", "pressure") == TOPIC


BATCH = "qeaims/water/_batch/gw-1"


def batch_sample(asset: object = "pump-1", sensor: object = "pressure", **over: object) -> dict[str, object]:
    return {"asset": asset, "sensor": sensor, **json.loads(sample(**over))}


def test_a_gateway_batch_gives_the_readings_of_the_same_samples_on_their_own_topics() -> None:
    twin_named = Reading(sector=Sector.ELECTRICITY, asset_id="bus-7", sensor_id="bus-7/voltage_pu",
                         quantity="voltage_pu", unit="pu", value=0.98, timestamp=NOW)
    mixed = [reading(1), reading(2, asset="pump-2"), twin_named.model_copy(update={"sector": Sector.WATER})]
    [payload] = encode_batch(mixed)
    one_by_one = [r for m in mixed for r in parse_message(
        topic_for(Sector.WATER, m.asset_id, m.sensor_id.removeprefix(m.asset_id + "/")), encode_payload(m), now=NOW)]
    assert parse_message(batch_topic(Sector.WATER, "gw-1"), payload, now=NOW) == one_by_one
    assert one_by_one[2].sensor_id == "voltage_pu" and one_by_one[1].asset_id == "pump-2"


def test_a_large_snapshot_is_split_within_the_batch_limits() -> None:
    many = [reading(i % 400, asset=f"pump-{i % 7}") for i in range(2 * MAX_SAMPLES + 5)]
    payloads = encode_batch(many)
    assert len(payloads) == 3 and all(len(p) <= MAX_PAYLOAD for p in payloads)
    assert [r for p in payloads for r in parse_message(BATCH, p, now=NOW)] == many
    assert encode_batch([]) == []


@pytest.mark.parametrize(("payload", "why"), [
    ([batch_sample(asset="_batch")], "asset"),
    ([batch_sample(sensor="a/b")], "asset"),
    ([batch_sample(sensor="")], "asset"),
    ([batch_sample(asset=7)], "asset"),
    ([json.loads(sample())], "keys"),  # a per-sensor sample on the batch topic lacks asset and sensor
    ([batch_sample(), batch_sample(value="x")], "value"),
    ([batch_sample(asset="pump 1!")], "asset_id"),
])
def test_a_bad_batch_is_rejected_whole(payload: list[object], why: str) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_message(BATCH, json.dumps(payload).encode(), now=NOW)
    assert why in caught.value.detail or why in caught.value.reason
    with pytest.raises(MessageRejected, match="gateway id"):
        parse_message("qeaims/water/_batch/" + "g" * 65, json.dumps([batch_sample()]).encode(), now=NOW)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("qeaims/gas/pump-1/pressure", sample(), "sector"),
    ("qeaims/water/pump-1", sample(), "topic"),
    ("qeaims/water/pump-1/pressure/extra", sample(), "topic"),
    ("other/water/pump-1/pressure", sample(), "topic"),
    ("qeaims/water/pump 1!/pressure", sample(), "invalid"),
    (TOPIC, b"{not json", "json"),
    (TOPIC, b"\xff\xfe", "json"),
    (TOPIC, b"[]", "json"),
    (TOPIC, b"42", "fields"),
    (TOPIC, sample(extra=1), "fields"),
    (TOPIC, json.dumps({"value": 1}).encode(), "fields"),
    (TOPIC, sample("41.7"), "value"),
    (TOPIC, sample(True), "value"),
    (TOPIC, sample(None), "value"),
    (TOPIC, sample().replace(b"41.7", b"NaN"), "value"),
    (TOPIC, sample().replace(b"41.7", b"-Infinity"), "value"),
    (TOPIC, sample().replace(b"41.7", b"1e999"), "value"),
    (TOPIC, sample(timestamp="2026-11-26T05:00:00"), "timestamp"),
    (TOPIC, sample(timestamp="yesterday"), "timestamp"),
    (TOPIC, sample(timestamp=1764133200), "timestamp"),
    (TOPIC, sample(timestamp="2026-11-26T06:00:00Z"), "timestamp"),
    (TOPIC, sample(unit="x" * 17), "invalid"),
    (TOPIC, b"[" + sample() + b"," + sample("bad") + b"]", "value"),
    (TOPIC, b" " * (256 * 1024 + 1), "too-large"),
])
def test_bad_messages_are_rejected_with_a_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_message(topic, payload, now=NOW)
    assert caught.value.reason == reason


def test_a_rejected_message_is_counted_and_logged_as_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    sink = ReadingSink()
    sub = MqttSubscriber(sink, now=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert sub.handle("qeaims/gas/pump-1/pressure", sample()) == 0
        assert sub.handle(TOPIC, sample()) == 1
    [record] = [r for r in caplog.records if r.name == LOGGER_NAME]
    line = json.loads(record.getMessage())
    assert line == {"event": "reading-rejected", "source": "mqtt", "reason": "sector",
                    "where": "qeaims/gas/pump-1/pressure", "detail": "unknown sector 'gas'"}
    assert sink.stats().rejected == {"mqtt": 1} and sink.stats().accepted == {"mqtt": 1}


def test_rejection_log_lines_are_rate_limited_but_counts_are_not(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    sink = ReadingSink(log_lines_per_s=3, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        for _ in range(10):
            sink.reject(source="mqtt", reason="json", where=TOPIC, detail="x")
        clock[0] = 1.5
        sink.reject(source="mqtt", reason="json", where=TOPIC, detail="y")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == LOGGER_NAME]
    assert len(lines) == 4 and lines[-1]["suppressed"] == 7 and lines[-1]["detail"] == "y"
    assert sink.stats().rejected == {"mqtt": 11}


# --- through a real broker on 127.0.0.1 --------------------------------------------------------------


def publisher(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="field-gateway")
    client.username_pw_set("field-gateway")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_readings_published_by_an_ordinary_client_arrive_in_the_sink() -> None:
    port = free_port()
    sink = ReadingSink()
    with EmbeddedBroker(port=port), MqttSubscriber(sink, port=port, sectors=[Sector.WATER]) as sub:
        pub = publisher(port)
        try:
            sent = [reading(i, asset=f"pump-{i % 2}") for i in range(20)]
            infos = [pub.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1)
                     for r in sent[:10]]
            infos.append(pub.publish(TOPIC, b"garbage", qos=1))  # bad one in the middle of the stream
            infos.append(pub.publish("qeaims/banking/atm-1/rate", sample(), qos=1))  # not this oracle's sector
            infos += [pub.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1)
                      for r in sent[10:]]
            for info in infos:
                info.wait_for_publish(5)
            wait_for(lambda: len(sink) == 20 and sub.received == 21)
        finally:
            pub.disconnect()
            pub.loop_stop()
    got = sink.drain()
    assert sorted(got, key=lambda r: r.timestamp) == sent  # per-topic order is kept; overall, sort by time
    assert sink.stats().rejected == {"mqtt": 1} and sink.stats().accepted == {"mqtt": 20}


def test_an_oracle_that_was_down_gets_what_was_published_meanwhile_and_acks_only_stored_readings(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    sent = [reading(i) for i in range(12)]
    acked: list[int] = []
    with EmbeddedBroker(port=port):
        pub = publisher(port)
        try:
            first = ReadingSink()
            with MqttSubscriber(first, port=port, sectors=[Sector.WATER], client_id="oracle-water-1"):
                for r in sent[:4]:
                    pub.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1) \
                        .wait_for_publish(5)
                wait_for(lambda: len(first) == 4)
            # the oracle is down: its persistent session collects what the devices keep sending
            for r in sent[4:]:
                pub.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1).wait_for_publish(5)
            second = ReadingSink()
            with MqttSubscriber(second, port=port, sectors=[Sector.WATER], client_id="oracle-water-1"):
                wait_for(lambda: len(second) == 8)
            assert sorted(second.drain(), key=lambda r: r.timestamp) == sent[4:]
            with pytest.raises(IngestError, match="rejected|refused|not authori[sz]ed|Not authorized"):
                anonymous = MqttSubscriber(ReadingSink(), port=port, persistent=False)
                anonymous._client.username_pw_set(None)
                anonymous.start(timeout_s=2)
        finally:
            pub.disconnect()
            pub.loop_stop()
    # acknowledgements follow storage, not arrival
    sink = ReadingSink()
    sink.put_many(sent[:3], source="mqtt", on_stored=lambda: acked.append(1))
    sink.put_many(sent[3:5], source="mqtt", on_stored=lambda: acked.append(2))
    store = TelemetryStore(tmp_path / "t.sqlite", "0x" + "11" * 20)
    assert sink.drain_into(store, max_items=2) == [1, 2] and acked == []
    sink.drain_into(store, max_items=2)
    assert acked == [1]
    sink.drain_into(store)
    assert acked == [1, 2]


def test_broker_stops_cleanly_and_refuses_a_taken_port() -> None:
    port = free_port()
    with EmbeddedBroker(port=port) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        with pytest.raises(IngestError, match="could not listen"):
            EmbeddedBroker(port=port).start()
    with pytest.raises(IngestError, match="cannot reach"):
        MqttSubscriber(ReadingSink(), port=port).start(timeout_s=1)
    with EmbeddedBroker(port=port):  # the port is free again: the first broker let it go
        pass


@pytest.mark.parametrize("name", ["oracles.ingest", "oracles.ingest.mqtt", "oracles.ingest.modbus",
                                  "oracles.ingest.registers", "oracles.ingest.sink"])
def test_ingest_modules_export_their_public_definitions(name: str) -> None:
    import importlib
    import inspect

    module = importlib.import_module(name)
    assert all(hasattr(module, item) for item in module.__all__)
    defined = {item for item, value in vars(module).items() if not item.startswith("_")
               and (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == name}
    assert defined <= set(module.__all__), f"{name} does not export {sorted(defined - set(module.__all__))}"


def test_a_traced_batch_parses_to_the_same_readings_and_a_bad_trace_is_rejected() -> None:
    from bus.mqtt import Trace, batch_topic, encode_batch, parse_traced

    rows = [reading(i) for i in range(4)]
    topic = batch_topic(Sector.WATER, "twin-water")
    plain, traced = encode_batch(rows)[0], encode_batch(rows, stamped=1000.5)[0]
    readings, trace = parse_traced(topic, traced, now=NOW)
    assert readings == parse_message(topic, plain, now=NOW) and trace is not None
    assert trace.stamped == 1000.5 and trace.sent >= trace.stamped
    assert parse_traced(topic, plain, now=NOW)[1] is None  # a gateway need not trace
    samples = json.loads(plain)
    for bad, why in ((json.dumps({"samples": samples, "trace": {"stamped": 1}}), "fields"),
                     (json.dumps({"samples": samples, "trace": {"stamped": 1, "sent": "2"}}), "value"),
                     (json.dumps({"samples": samples, "trace": {"stamped": 1, "sent": 2}, "x": 1}), "fields"),
                     ('{"samples": [], "trace": {"stamped": 1, "sent": 2}}', "json")):
        with pytest.raises(MessageRejected) as caught:
            parse_traced(topic, bad.encode(), now=NOW)
        assert caught.value.reason == why, bad
    # on a single sensor's topic the wrapper is not a batch: its keys are wrong for a sample
    with pytest.raises(MessageRejected):
        parse_message(TOPIC, traced, now=NOW)
    assert isinstance(trace, Trace)


@pytest.mark.parametrize("payload", [
    # a trace time too large for a float: OverflowError escaped the parser and killed paho's thread
    b'{"samples": ' + encode_batch([reading(0)])[0] + b', "trace": {"stamped": 1' + b"0" * 400 + b', "sent": 1}}',
    b"[" + b"1" * 5000 + b"]",  # an integer past Python's digit limit: ValueError, not JSONDecodeError
    b"[" * 100_000 + b"]" * 100_000,  # nested deeper than the recursion limit: RecursionError
], ids=["huge-trace-time", "huge-integer", "deep-nesting"])
def test_a_poisoned_batch_is_rejected_and_acknowledged_not_fatal(payload: bytes) -> None:
    """One message must not silence every oracle of a sector (review of issue 16, finding 1)."""
    from bus.mqtt import batch_topic

    sink, acked = ReadingSink(), []
    sub = MqttSubscriber(sink)
    assert sub.handle(batch_topic(Sector.WATER, "gw"), payload, lambda: acked.append(1)) == 0
    assert acked == [1] and sum(sink.stats().rejected.values()) == 1


def test_an_implausible_trace_is_ignored_but_its_readings_count() -> None:
    from bus.mqtt import batch_topic

    sink = ReadingSink()
    sub = MqttSubscriber(sink, now=lambda: NOW)
    future = json.dumps({"samples": json.loads(encode_batch([reading(1)])[0]),
                         "trace": {"stamped": NOW.timestamp() + 3600, "sent": NOW.timestamp() + 3600}}).encode()
    assert sub.handle(batch_topic(Sector.WATER, "gw"), future) == 1  # the reading is stored as ever
    assert sub.latency.skewed == 1 and sub.latency.summary()["batches"] == 0  # the hop times are not


def test_nesting_is_counted_outside_strings() -> None:
    from bus.mqtt import MAX_DEPTH, _nesting

    assert _nesting(b'{"a": "[[[[[[[[[[[[[[[[[[[[", "b": [1, {"c": 2}]}') == 3  # brackets in a string are text
    assert _nesting(b'{"a": "say \\"[[[[[[[[[[[[\\" twice", "b": []}') == 2  # escaped quotes stay inside
    assert _nesting(b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5)) > MAX_DEPTH
    assert _nesting(encode_batch([reading(0)], stamped=1.0)[0]) == 3  # what the twins send
