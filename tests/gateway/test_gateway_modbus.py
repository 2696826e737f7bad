"""The gateway in front of a real Modbus device (the pymodbus simulator with PUMP_MAP), real pymodbus clients.

One station for the module: the normal day (a poller, a SCADA that sets the pump's speed) is
learnt once into a profile, with an engineering client declared for maintenance; each test then
gets a fresh monitor and policy. Clients bind their own loopback addresses (127.0.0.x), so each is
a distinct source as it would be on a plant network.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import statistics
import struct
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gateway import Gateway, Maintenance, Monitor, ObservationLog, Policy, Profile, Source
from gateway.detection import MAX_PAYLOAD
from gateway.errors import GatewayError
from oracles.ingest.modbus import ModbusDeviceSimulator
from oracles.ingest.registers import PUMP_MAP
from tests.conftest import free_port
from tests.gateway.support import (
    ENGINEER,
    INTRUDER,
    POLLER,
    SCADA,
    SCANNER,
    Clock,
    Normal,
    Sink,
    client,
    poll,
)

pytestmark = pytest.mark.city

DEVICE = PUMP_MAP.asset_id
WINDOW_S = 0.5


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModbusDeviceSimulator, Gateway, Profile]]:
    sim = ModbusDeviceSimulator(PUMP_MAP, port=free_port()).start()
    log = ObservationLog()
    gw = Gateway("127.0.0.1", sim.port, protocol="modbus", sector="water", device=DEVICE, monitor=log).start()
    try:
        with Normal(gw):
            time.sleep(3.0)
        profile = Profile.learn(log.snapshot(), window_s=WINDOW_S,
                                maintenance=[Maintenance(client=ENGINEER, note="RTU engineering laptop")])
        path = tmp_path_factory.mktemp("profile") / "pump.json"
        profile.save(path)
        yield sim, gw, Profile.load(path)  # what a site runs with: the profile as saved
    finally:
        gw.stop()
        sim.stop()


@pytest.fixture
def armed(station: tuple[ModbusDeviceSimulator, Gateway, Profile]) -> Iterator[tuple[Gateway, Sink, Clock]]:
    """The station's gateway with a fresh monitor (detections into a Sink) and a fresh policy on a test clock."""
    _, gw, profile = station
    sink, clock = Sink(), Clock()
    gw.monitor = Monitor([profile], on_detection=sink)
    gw.policy = Policy(now=clock)
    yield gw, sink, clock


def test_the_learnt_profile_is_the_normal_day(station: tuple[ModbusDeviceSimulator, Gateway, Profile]) -> None:
    _, _, profile = station
    assert set(profile.clients) == {POLLER, SCADA} and profile.units == (1,)
    uses = {(u.function, u.spans) for u in profile.clients[POLLER].uses}
    assert uses == {(3, ((0, 3),)), (4, ((0, 7),))}  # read_blocks(PUMP_MAP): holding 0+3, input 0+7
    assert {(u.function, u.spans) for u in profile.clients[SCADA].uses} == {(6, ((0, 1),))}
    assert profile.clients[POLLER].rate.limit >= 3 * profile.clients[POLLER].rate.max > 0


def test_a_bad_profile_file_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"version": 1, "protocol": "modbus"}')
    with pytest.raises(GatewayError, match="device profile"):
        Profile.load(bad)
    with pytest.raises(GatewayError):
        Profile.load(tmp_path / "missing.json")


# --- the negative tests the issue demands ------------------------------------------------------

def test_normal_polling_over_a_long_window_raises_nothing(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    with Normal(gw) as normal:
        time.sleep(8.0)
    assert normal.rounds > 100
    assert sink.found == []


def test_a_maintenance_readout_and_identity_queries_raise_nothing(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    with Normal(gw):
        eng = client(gw, ENGINEER)
        for address in range(PUMP_MAP.table_size("holding")):  # the full read-out, register by register
            assert not eng.read_holding_registers(address, count=1, device_id=1).isError()
        for address in range(PUMP_MAP.table_size("input")):
            assert not eng.read_input_registers(address, count=1, device_id=1).isError()
        assert not eng.read_input_registers(0, count=7, device_id=1).isError()
        identity = eng.read_device_information(device_id=1)  # FC 43/14: the simulator answers it
        assert not identity.isError() and identity.function_code == 0x2B
        assert not eng.report_device_id(device_id=1).isError()  # FC 17 as well
        eng.close()
        time.sleep(1.0)
    assert sink.found == [], [d.detail for d in sink.found]


# --- each attack class ---------------------------------------------------------------------------

def test_a_write_from_a_client_that_only_ever_reads_is_unprofiled(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    c = client(gw, POLLER)  # the poller's identity, now writing the energy counter's register
    assert not c.write_register(1, 0, device_id=1).isError()
    c.close()
    d = sink.wait_for("unprofiled-function")
    assert d.source == Source(POLLER) and d.device == DEVICE and d.sector == "water"
    assert "function 6 at 1+1" in d.detail and d.latency_s < 0.5
    assert sink.classes() == ["unprofiled-function"]


def test_a_write_from_an_unknown_client(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    c = client(gw, INTRUDER)
    c.write_register(0, 3000, device_id=1)
    c.close()
    d = sink.wait_for("unknown-client")
    assert d.source == Source(INTRUDER) and len(d.evidence) == 1 and len(d.evidence[0]) == 64
    body = json.loads(d.payload())
    assert body["class"] == "unknown-client" and body["source"]["address"] == INTRUDER
    assert body["evidence"]["sha256"] == list(d.evidence) and len(d.payload()) <= MAX_PAYLOAD


def test_a_register_scan_by_address_and_by_unit(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    c = client(gw, SCANNER)
    first = time.monotonic()
    for address in range(40):
        c.read_input_registers(address, count=1, device_id=1)  # beyond 6: ILLEGAL ADDRESS
    d = sink.wait_for("register-scan")
    assert d.source == Source(SCANNER) and d.first_seen_mono >= first
    assert dict(d.counts)["frames"] >= 4
    sink.found.clear()
    gw.monitor = Monitor(list(gw.monitor.profiles.values()), on_detection=sink)  # type: ignore[attr-defined]
    for unit in range(2, 8):
        c.read_input_registers(0, count=1, device_id=unit)
    units = sink.wait_for("register-scan")
    assert "unit ids" in units.detail or "ILLEGAL" in units.detail
    c.close()


def test_a_captured_write_replayed_on_another_connection(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    sent: list[bytes] = []

    def capture(sending: bool, data: bytes) -> bytes:
        if sending:
            sent.append(data)
        return data

    scada = client(gw, SCADA, trace_packet=capture)  # the legitimate SCADA sets the speed
    assert not scada.write_register(0, 1490, device_id=1).isError()
    scada.close()
    time.sleep(0.2)
    assert sink.found == []
    with socket.create_connection(("127.0.0.1", gw.port), source_address=(SCADA, 0), timeout=2) as attacker:
        attacker.sendall(sent[-1])  # the captured ADU, byte for byte, from the SCADA's own address
        attacker.recv(260)
    d = sink.wait_for("replay")
    assert d.source == Source(SCADA) and "identical to a write" in d.detail
    assert sink.classes() == ["replay"]


def test_a_command_out_of_order_on_one_connection(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed

    def write(tid: int, value: int) -> bytes:
        return struct.pack(">HHHBBHH", tid, 0, 6, 1, 6, 0, value)

    with socket.create_connection(("127.0.0.1", gw.port), source_address=(SCADA, 0), timeout=2) as s:
        for tid, value in ((100, 1400), (101, 1410), (57, 1420)):
            s.sendall(write(tid, value))
            s.recv(260)
    d = sink.wait_for("replay")
    assert dict(d.counts)["transaction_id"] == 57 and dict(d.counts)["highest_before"] == 101


def test_a_flood_from_a_profiled_client_is_a_rate_alarm(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, sink, _ = armed
    c = client(gw, POLLER)
    deadline = time.monotonic() + 5
    while not sink.found and time.monotonic() < deadline:
        c.read_input_registers(0, count=7, device_id=1)  # in profile, but as fast as it goes
    c.close()
    d = sink.wait_for("rate")
    assert sink.classes() == ["rate"] and dict(d.counts)["requests"] > dict(d.counts)["limit"]


# --- enforcement -----------------------------------------------------------------------------------

def test_a_denied_source_is_refused_until_its_entry_expires(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, _, clock = armed
    log = ObservationLog()
    gw.monitor = log
    change = gw.policy.deny(INTRUDER, until=clock.now + timedelta(minutes=10))
    assert change.changed and change.action == "deny" and change.before is None
    blocked = client(gw, INTRUDER)
    with pytest.raises((ModbusException, ConnectionError)):  # closed at once: EOF or a reset
        blocked.read_input_registers(0, count=1, device_id=1)
    blocked.close()
    refused = [o for o in log.snapshot() if o.kind == "refused"]
    assert refused and refused[0].source.address == INTRUDER and refused[0].action == "refused"
    other = client(gw, POLLER)  # nobody else is affected
    assert not other.read_input_registers(0, count=1, device_id=1).isError()
    # an open connection is closed when its source is denied
    gw.policy.deny(POLLER, until=clock.now + timedelta(seconds=30))
    time.sleep(0.6)
    with pytest.raises((ModbusException, ConnectionError)):  # closed at once: EOF or a reset
        other.read_input_registers(0, count=1, device_id=1)
    other.close()
    assert gw.policy.lift(POLLER).changed and not gw.policy.lift(POLLER).changed  # lifting twice changes nothing
    clock.advance(601)  # the entry expires
    later = client(gw, INTRUDER)
    assert not later.read_input_registers(0, count=1, device_id=1).isError()
    later.close()
    assert gw.policy.deny_entries() == {}


def test_a_quarantined_device_refuses_writes_but_not_reads(station: tuple[ModbusDeviceSimulator, Gateway, Profile],
                                                           armed: tuple[Gateway, Sink, Clock]) -> None:
    sim, gw, _ = station
    change = gw.policy.quarantine(DEVICE)
    assert change.changed and not gw.policy.quarantine(DEVICE).changed
    c = client(gw, SCADA)
    before = sim.registers("holding", 0, 1)
    refused = c.write_register(0, 999, device_id=1)
    assert refused.isError() and refused.exception_code == 0x01  # ILLEGAL FUNCTION, in the request's transaction
    assert c.write_registers(0, [5, 6], device_id=1).isError()
    assert sim.registers("holding", 0, 1) == before  # never reached the device
    assert not c.read_holding_registers(0, count=3, device_id=1).isError()
    assert gw.policy.release(DEVICE).changed
    assert not c.write_register(0, 1480, device_id=1).isError()
    c.close()


def test_safe_mode_refuses_all_writes_and_passes_reads(station: tuple[ModbusDeviceSimulator, Gateway, Profile],
                                                       armed: tuple[Gateway, Sink, Clock]) -> None:
    _, gw, _ = station
    assert gw.policy.safe_mode(True, gw.id).changed
    c = client(gw, SCADA)
    assert c.write_register(0, 1200, device_id=1).isError()
    assert c.write_coil(0, True, device_id=1).isError()
    assert c.readwrite_registers(read_address=0, read_count=1, write_address=0, values=[1], device_id=1).isError()
    assert c.mask_write_register(address=0, and_mask=0x00F2, or_mask=0x0025, device_id=1).isError()
    assert c.diag_restart_communication(False, device_id=1).isError()  # FC 8 can restart a device: refused too
    poll(c)
    assert gw.policy.safe_mode(False, gw.id).changed
    assert not c.write_register(0, 1480, device_id=1).isError()
    c.close()


# --- figures -----------------------------------------------------------------------------------------

def test_figures_added_latency_per_request(station: tuple[ModbusDeviceSimulator, Gateway, Profile],
                                           armed: tuple[Gateway, Sink, Clock]) -> None:
    """p50/p95 of a read's round trip direct and through the gateway (with its monitor), 1,000 each, loopback."""
    sim, gw, _ = station
    straight = ModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
    straight.connect()  # type: ignore[no-untyped-call]
    via = client(gw, POLLER)

    def times(c: ModbusTcpClient) -> list[float]:
        out = []
        for _ in range(1000):
            t0 = time.perf_counter()
            assert not c.read_input_registers(0, count=7, device_id=1).isError()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    a, b = times(straight), times(via)
    straight.close()  # type: ignore[no-untyped-call]
    via.close()  # type: ignore[no-untyped-call]

    def pct(xs: list[float], q: int) -> float:
        return round(statistics.quantiles(xs, n=100)[q - 1], 4)

    figures = {"direct_ms": {"p50": pct(a, 50), "p95": pct(a, 95)},
               "gateway_ms": {"p50": pct(b, 50), "p95": pct(b, 95)}}
    figures["added_ms"] = {k: figures["gateway_ms"][k] - figures["direct_ms"][k] for k in ("p50", "p95")}
    print("GATEWAY-LATENCY", json.dumps(figures))
    assert figures["added_ms"]["p50"] < 20  # loopback: a proxy hop, not a round trip to anything slow


def test_adus_pipelined_in_one_segment_and_one_cut_across_two(armed: tuple[Gateway, Sink, Clock]) -> None:
    """The gateway sees every ADU of a segment and joins a cut one. (The pymodbus device answers
    pipelined requests as its timing allows, with or without the gateway: the answers are read
    until the line is quiet and need only be whole ADUs, each answering one of the requests once.)"""
    gw, _, _ = armed
    log = ObservationLog()
    gw.monitor = log
    reads = [struct.pack(">HHHBBHH", tid, 0, 6, 1, 4, 0, 7) for tid in (1, 2, 3)]

    def answers(s: socket.socket) -> list[int]:
        data = b""
        s.settimeout(0.3)
        with contextlib.suppress(TimeoutError):
            while chunk := s.recv(4096):
                data += chunk
        assert len(data) % 23 == 0  # whole answers only: 7 (MBAP) + 2 + 14 data bytes
        return [struct.unpack_from(">H", data, i)[0] for i in range(0, len(data), 23)]

    with socket.create_connection(("127.0.0.1", gw.port), source_address=(POLLER, 0), timeout=2) as s:
        s.sendall(b"".join(reads))  # three requests in one segment
        got = answers(s)
        assert got and len(set(got)) == len(got) and set(got) <= {1, 2, 3}
        s.sendall(reads[0][:5])  # one request cut in two
        time.sleep(0.1)
        s.sendall(reads[0][5:])
        assert answers(s) == [1]
    requests = [o.frame.transaction_id for o in log.snapshot()  # type: ignore[union-attr]
                if o.kind == "frame" and o.direction == "request"]
    assert requests == [1, 2, 3, 1]
    assert not any(o.kind == "malformed" for o in log.snapshot())


def test_garbage_on_the_wire_closes_that_connection_only(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, _, _ = armed
    log = ObservationLog()
    gw.monitor = log
    rng = random.Random(18)
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", gw.port), source_address=(INTRUDER, 0), timeout=2) as s:
            s.sendall(rng.randbytes(rng.randint(6, 400)))
            s.settimeout(0.5)
            with contextlib.suppress(TimeoutError, ConnectionError):
                while s.recv(4096):
                    pass
    assert sum(o.kind == "malformed" for o in log.snapshot()) >= 20  # most random bytes are no MBAP
    c = client(gw, POLLER)  # the gateway is still there for everyone else
    poll(c)
    c.close()  # type: ignore[no-untyped-call]


def test_a_port_in_use_or_a_bad_protocol_is_one_error(armed: tuple[Gateway, Sink, Clock]) -> None:
    gw, _, _ = armed
    with pytest.raises(GatewayError, match="could not listen"):
        Gateway("127.0.0.1", 1, listen_port=gw.port, protocol="modbus", sector="water", device="x").start()
    with pytest.raises(GatewayError, match="'modbus' or 'mqtt'"):
        Gateway("127.0.0.1", 1, protocol="dnp3", sector="water", device="x")  # type: ignore[arg-type]
