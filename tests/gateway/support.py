"""Helpers for the gateway tests: a detection sink to wait on, a clock to move, Modbus clients bound to an IP."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self

from pymodbus.client import ModbusTcpClient

from gateway import Detection, Gateway
from oracles.ingest.registers import PUMP_MAP, read_blocks

POLLER, SCADA, ENGINEER = "127.0.0.2", "127.0.0.3", "127.0.0.9"  # the pump station's normal clients
INTRUDER, SCANNER = "127.0.0.66", "127.0.0.77"


@dataclass
class Sink:
    """Collects detections (the monitor's callback) and lets a test wait for one."""

    found: list[Detection] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, detection: Detection) -> None:
        with self._cond:
            self.found.append(detection)
            self._cond.notify_all()

    def wait_for(self, attack: str, timeout_s: float = 5.0) -> Detection:
        """The first detection of `attack` (waiting for it), printed as a figure line (pytest -s shows it)."""
        d = self._wait(attack, timeout_s)
        print("GATEWAY-DETECTION", json.dumps({"class": d.attack, "protocol": d.protocol, "source": d.source.to_json(),
                                               "latency_ms": round(d.latency_s * 1000, 3),
                                               "frames": dict(d.counts)["frames"]}))
        return d

    def _wait(self, attack: str, timeout_s: float) -> Detection:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                hit = next((d for d in self.found if d.attack == attack), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {attack} detection within {timeout_s} s; got {self.classes()}")
                self._cond.wait(left)

    def classes(self) -> list[str]:
        with self._cond:
            return sorted({d.attack for d in self.found})


@dataclass
class Clock:
    """An injectable UTC clock the test moves by hand."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def client(gw: Gateway, ip: str, **kw: object) -> ModbusTcpClient:
    """A real pymodbus client connected to the gateway from `ip` (a loopback address of its own)."""
    c = ModbusTcpClient("127.0.0.1", port=gw.port, source_address=(ip, 0), timeout=2, retries=0, **kw)  # type: ignore[arg-type]
    assert c.connect()  # type: ignore[no-untyped-call]
    return c


def poll(c: ModbusTcpClient) -> None:
    """One poll of the pump station as the oracle's poller does it (`read_blocks`)."""
    for table, start, count, _ in read_blocks(PUMP_MAP):
        call = c.read_input_registers if table == "input" else c.read_holding_registers
        assert not call(start, count=count, device_id=PUMP_MAP.device_id).isError()


class Normal:
    """The station's normal day, sped up: the poller polls every `poll_s`, the SCADA sets the speed every `write_s`."""

    def __init__(self, gw: Gateway, *, poll_s: float = 0.05, write_s: float = 0.25) -> None:
        self.gw, self.poll_s, self.write_s = gw, poll_s, write_s
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(POLLER, poll_s, poll), daemon=True),
                         threading.Thread(target=self._run, args=(SCADA, write_s, self._write), daemon=True)]
        self.errors: list[BaseException] = []
        self.rounds = 0

    @staticmethod
    def _write(c: ModbusTcpClient) -> None:
        assert not c.write_register(0, 1480, device_id=PUMP_MAP.device_id).isError()

    def _run(self, ip: str, every: float, act: Callable[[ModbusTcpClient], None]) -> None:
        c = client(self.gw, ip)
        try:
            while not self._stop.is_set():
                act(c)
                self.rounds += 1
                self._stop.wait(every)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.errors.append(exc)
        finally:
            c.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        assert not self.errors, self.errors


# --- a raw MQTT 3.1.1 client: for what paho will not do (replay exact bytes, read a refusal as bytes) ---

def _mqtt_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def _mqtt_packet(first: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([first]) + bytes(encoded) + body


def mqtt_connect(client_id: str, username: str, password: str) -> bytes:
    body = _mqtt_string("MQTT") + bytes([4, 0b11000010]) + struct.pack(">H", 30) + _mqtt_string(client_id) \
        + _mqtt_string(username) + _mqtt_string(password)
    return _mqtt_packet(0x10, body)


def mqtt_publish(topic: str, payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH."""
    return _mqtt_packet(0x32, _mqtt_string(topic) + struct.pack(">H", packet_id) + payload)


def raw_mqtt(port: int, ip: str, client_id: str, username: str, password: str) -> tuple[socket.socket, bytes]:
    """A socket from `ip` that has sent CONNECT; returns it and the CONNACK (b"" if the peer closed)."""
    s = socket.create_connection(("127.0.0.1", port), source_address=(ip, 0), timeout=3)
    s.sendall(mqtt_connect(client_id, username, password))
    return s, recv_exactly(s, 4)


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        try:
            chunk = s.recv(n - len(data))
        except ConnectionError:
            return data
        if not chunk:
            return data
        data += chunk
    return data
