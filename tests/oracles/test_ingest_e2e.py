"""Real device paths end to end: MQTT and Modbus readings reach an oracle's store and are proven on-chain."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker, encode_payload, topic_for
from core.messages import Reading, Sector
from oracles.ingest.modbus import ModbusDeviceSimulator, ModbusPoller
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.registers import PUMP_MAP
from oracles.ingest.sink import ReadingSink
from oracles.telemetry import TelemetryStore, decode_root_payload
from tests.conftest import free_port
from tests.oracles.test_telemetry import chain_roots
from tests.support import oracle, recorder


def test_mqtt_and_modbus_readings_reach_the_oracle_and_an_mqtt_reading_is_proven(  # type: ignore[no-untyped-def]
        chain, tmp_path: Path) -> None:
    ident = oracle(chain.settings, "water", 2)
    rec = recorder(chain.client, chain.settings, ident)
    store = TelemetryStore(tmp_path / "water-2.sqlite", ident.address, batch_size=8, max_age_s=60)
    sink = ReadingSink()
    mqtt_port, modbus_port = free_port(), free_port()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    published = [Reading(sector=Sector.WATER, asset_id="pump-station-1", sensor_id="inlet-pressure",
                         quantity="pressure_m", unit="m", value=12.0 + i / 8, timestamp=start + timedelta(seconds=i))
                 for i in range(5)]

    with EmbeddedBroker(port=mqtt_port), MqttSubscriber(sink, port=mqtt_port, sectors=[Sector.WATER]), \
            ModbusDeviceSimulator(PUMP_MAP, port=modbus_port, values={"discharge-pressure": 41.5, "vibration": 2.75}):
        device = paho.Client(CallbackAPIVersion.VERSION2, client_id="pump-station-1-gw")
        device.username_pw_set("pump-station-1-gw")
        device.connect("127.0.0.1", mqtt_port)
        device.loop_start()
        try:
            for r in published:
                device.publish(topic_for(r.sector, r.asset_id, r.sensor_id), encode_payload(r), qos=1) \
                    .wait_for_publish(5)
        finally:
            device.disconnect()
            device.loop_stop()
        poller = ModbusPoller(PUMP_MAP, sink, port=modbus_port)
        try:
            polled = poller.poll_once()
        finally:
            poller.stop()
        deadline = time.monotonic() + 5
        while len(sink) < len(published) + len(polled):
            assert time.monotonic() < deadline, f"only {len(sink)} readings arrived"
            time.sleep(0.01)

    ids = sink.drain_into(store, rec)  # 11 readings: one full batch of 8 is anchored at once
    assert len(ids) == 11 and sink.stats().accepted == {"mqtt": 5, "modbus": 6}
    assert store.anchor(rec, force=True) == 1  # and the last 3 on demand
    proofs = [store.proof(store.ref_of(i) or "") for i in ids]
    assert {p.reading.sensor_id for p in proofs} == {"inlet-pressure", *(p.sensor_id for p in PUMP_MAP.points)}

    on_chain = chain_roots(chain, ident.address)
    for proof in proofs:
        assert proof.seq is not None and proof.verify(decode_root_payload(on_chain[proof.seq])[1])
    delivered = next(p for p in proofs if p.reading == published[3])  # one reading a device sent over MQTT
    assert delivered.leaf == delivered.stored_leaf and delivered.seq is not None
    assert delivered.verify(decode_root_payload(on_chain[delivered.seq])[1])
