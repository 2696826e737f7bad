"""oracles.ingest.modbus and .registers: the register codec, and a poller reading a simulated pump RTU."""

from __future__ import annotations

import json
import struct
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

from bus.errors import IngestError, MessageRejected
from core.errors import ConfigError
from core.messages import Reading, Sector
from oracles.ingest.modbus import ModbusDeviceSimulator, ModbusPoller
from oracles.ingest.registers import MAX_READ, PUMP_MAP, DeviceMap, RegisterPoint, decode, encode, read_blocks
from oracles.ingest.sink import ReadingSink
from tests.conftest import free_port

NOW = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
PUMP_VALUES = {"discharge-pressure": 41.5, "vibration": 2.75, "flow": 118.25, "motor-temp": 63.4,
               "speed": 1480, "energy": 123456.78}


def point(**over: object) -> RegisterPoint:
    fields: dict[str, object] = {"sensor_id": "s", "quantity": "q", "unit": "u", "table": "input", "address": 0}
    fields.update(over)
    return RegisterPoint.model_validate(fields)


def test_codec_decodes_what_a_device_manual_describes() -> None:
    abcd = list(struct.unpack(">HH", struct.pack(">f", 41.5)))
    assert decode(point(), abcd) == 41.5
    assert decode(point(word_order="little"), abcd[::-1]) == 41.5
    assert decode(point(dtype="int16", scale=0.1), [0xFFF6]) == pytest.approx(-1.0)  # -10 × 0.1
    assert decode(point(dtype="uint16", scale=2, offset=-5), [10]) == 15
    assert decode(point(dtype="uint32", scale=0.01), [0x0001, 0x0000]) == pytest.approx(655.36)
    assert decode(point(dtype="int32"), [0xFFFF, 0xFFFE]) == -2
    for p, value in [(point(), 3.25), (point(dtype="int16", scale=0.1), -12.3), (point(dtype="uint32", word_order="little",
                     scale=0.01), 99999.99)]:
        assert decode(p, encode(p, value)) == pytest.approx(value)
    with pytest.raises(MessageRejected) as nan:
        decode(point(), [0x7FC0, 0x0000])  # float32 NaN: a meter's "sensor fault"
    assert nan.value.reason == "value"
    with pytest.raises(IngestError):
        decode(point(), [1])
    with pytest.raises(ConfigError, match="does not fit"):
        encode(point(dtype="uint16"), -1)


def test_maps_refuse_overlaps_duplicates_and_bad_scales(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        DeviceMap(sector=Sector.WATER, asset_id="p", points=(point(), point(sensor_id="t", address=1)))
    with pytest.raises(ValueError, match="unique"):
        DeviceMap(sector=Sector.WATER, asset_id="p", points=(point(), point(table="holding")))
    with pytest.raises(ValueError, match="non-zero"):
        point(scale=0)
    path = tmp_path / "pump.json"
    path.write_text(PUMP_MAP.model_dump_json())
    assert DeviceMap.from_json(path) == PUMP_MAP
    path.write_text(json.dumps({"sector": "gas", "asset_id": "p", "points": []}))
    with pytest.raises(ConfigError, match=r"register map .*sector"):
        DeviceMap.from_json(path)


def test_reads_are_grouped_into_few_bounded_requests() -> None:
    assert [(t, s, c, [p.sensor_id for p in ps]) for t, s, c, ps in read_blocks(PUMP_MAP)] == [
        ("holding", 0, 3, ["speed", "energy"]),
        ("input", 0, 7, ["discharge-pressure", "vibration", "flow", "motor-temp"]),
    ]
    far = DeviceMap(sector=Sector.WATER, asset_id="p", points=(point(), point(sensor_id="b", address=MAX_READ - 2),
                                                               point(sensor_id="c", address=MAX_READ)))
    assert [(s, c) for _, s, c, _ in read_blocks(far)] == [(0, MAX_READ), (MAX_READ, 2)]


def test_poller_reads_the_simulated_pump_with_units_and_scaling() -> None:
    port = free_port()
    sink = ReadingSink()
    with ModbusDeviceSimulator(PUMP_MAP, port=port, values=PUMP_VALUES) as sim:
        poller = ModbusPoller(PUMP_MAP, sink, port=port, now=lambda: NOW)
        try:
            got = {r.sensor_id: r for r in poller.poll_once()}
            assert {k: r.value for k, r in got.items()} == pytest.approx(PUMP_VALUES)
            assert got["vibration"] == Reading(sector=Sector.WATER, asset_id="pump-station-1", sensor_id="vibration",
                                               quantity="vibration_mm_s", unit="mm/s", value=2.75, timestamp=NOW)
            assert (got["motor-temp"].unit, got["energy"].unit, got["flow"].unit) == ("degC", "kWh", "L/s")
            assert sim.registers("input", 6, 1) == [634]  # 63.4 degC at scale 0.1

            sim.set("vibration", 9.5)  # the pump starts to shake
            sim.set_registers("input", 0, [0x7FC0, 0])  # and its pressure transmitter fails (NaN)
            second = {r.sensor_id: r.value for r in poller.poll_once()}
            assert second["vibration"] == 9.5 and "discharge-pressure" not in second
            assert sink.stats().rejected == {"modbus": 1} and len(sink) == 6 + 5

            other = ModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)  # a SCADA writes a setpoint
            assert other.connect()
            assert not other.write_registers(0, encode(PUMP_MAP.points[4], 1200), device_id=1).isError()
            other.close()
            assert {r.sensor_id: r.value for r in poller.read()}["speed"] == 1200
        finally:
            poller.stop()


def test_an_unreachable_or_refusing_device_is_counted_and_polling_goes_on() -> None:
    port = free_port()
    sink = ReadingSink()
    poller = ModbusPoller(PUMP_MAP, sink, port=port, timeout_s=0.5)
    assert poller.poll_once() == []  # nothing listens yet
    assert sink.stats().rejected == {"modbus": 1}
    wrong_unit = PUMP_MAP.model_copy(update={"device_id": 9})
    beyond = PUMP_MAP.model_copy(update={"points": (*PUMP_MAP.points, point(sensor_id="x", address=40))})
    with ModbusDeviceSimulator(PUMP_MAP, port=port, values=PUMP_VALUES):
        assert len(poller.poll_once()) == 6  # the same poller reconnects
        ModbusPoller(wrong_unit, sink, port=port, timeout_s=0.5).poll_once()
        assert len(ModbusPoller(beyond, sink, port=port, timeout_s=0.5).read()) == 2  # only holding still reads
    assert sink.stats().rejected["modbus"] == 1 + 2 + 1
    assert poller.poll_once() == [] and sink.stats().rejected["modbus"] == 5
    poller.stop()


def test_background_polling_runs_until_stopped() -> None:
    port = free_port()
    sink = ReadingSink()
    before = set(threading.enumerate())
    with ModbusDeviceSimulator(PUMP_MAP, port=port, values=PUMP_VALUES), \
            ModbusPoller(PUMP_MAP, sink, port=port, interval_s=0.02) as poller:
        deadline = time.monotonic() + 5
        while poller.polls < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert len(sink) >= 18 and len(sink) % 6 == 0  # a poll's readings go in together
    time.sleep(0.05)
    assert set(threading.enumerate()) <= before  # nothing left running
    with pytest.raises(IngestError, match="no sensor"):
        ModbusDeviceSimulator(PUMP_MAP, values={"nope": 1})
