"""Readings over Modbus TCP: a poller for real RTUs/PLCs, and a device simulator that stands in for one.

Modbus devices do not push; they answer reads. `ModbusPoller` reads every point of a `DeviceMap`
(`oracles.ingest.registers`, which documents the register map and the reference `PUMP_MAP`) every
``interval_s``, in as few requests as the map allows, and puts the readings of one poll into the sink
together (all or nothing). Modbus carries no time, so every reading of a poll carries the oracle's
UTC clock at the moment the poll started.

Nothing a device does stops the poller: a refused connection, a timeout, a Modbus exception
response or a value that is not finite (a float32 NaN is how many meters say "sensor fault") is
counted and logged as one line by the sink (source ``modbus``), and the next poll tries again,
reconnecting if it must. `start` runs the loop on a daemon thread; `stop` ends it within one
request timeout.

`ModbusDeviceSimulator` is a pymodbus TCP server with the device's holding and input registers laid
out by the same map (addresses outside the map answer ILLEGAL ADDRESS, as a real device does). A test
or the demo sets engineering values (`set`) or raw registers (`set_registers`); holding registers
written by a client (function 06/16) are kept, so a future actuator path can be tested against it too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Self

from pydantic import ValidationError
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator.simdata import SimData
from pymodbus.simulator.simdevice import SimDevice
from pymodbus.simulator.simutils import DataType

from bus.errors import IngestError, MessageRejected
from bus.loop_thread import LoopThread
from core.messages import Reading
from oracles.ingest.registers import DeviceMap, RegisterPoint, Table, decode, encode, read_blocks
from oracles.ingest.sink import ReadingSink

__all__ = ["ModbusDeviceSimulator", "ModbusPoller"]

SOURCE = "modbus"
_READ_CODE: dict[int, Table] = {3: "holding", 4: "input"}

# pymodbus logs every failed connect at ERROR with a traceback-like line; the sink's one line says it.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


class ModbusPoller:
    """Polls one Modbus TCP device per its `DeviceMap` and puts the readings in a `ReadingSink`."""

    def __init__(self, device: DeviceMap, sink: ReadingSink, *, host: str = "127.0.0.1", port: int = 502,
                 interval_s: float = 1.0, timeout_s: float = 1.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.device, self.sink, self.host, self.port = device, sink, host, port
        self.interval_s = interval_s
        self._now = now
        self._client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
        self._blocks = read_blocks(device)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.where = f"{host}:{port}/{device.device_id} {device.asset_id}"

    def read(self) -> list[Reading]:
        """One poll: every point it could read, as readings; the rest are rejected in the sink."""
        self.polls += 1
        stamp = self._now()
        readings: list[Reading] = []
        for table, start, count, points in self._blocks:
            try:
                registers = self._read(table, start, count)
            except MessageRejected as exc:
                self.sink.reject(source=SOURCE, reason=exc.reason, where=self.where, detail=exc.detail)
                if exc.reason == "unreachable":
                    break  # the other blocks would fail the same way; the next poll reconnects
                continue
            for p in points:
                try:
                    readings.append(self._reading(p, registers[p.address - start:p.address - start + p.width], stamp))
                except MessageRejected as exc:
                    self.sink.reject(source=SOURCE, reason=exc.reason, where=self.where, detail=exc.detail)
        return readings

    def poll_once(self) -> list[Reading]:
        """`read`, then hand the poll's readings to the sink; returns them."""
        readings = self.read()
        self.sink.put_many(readings, source=SOURCE)
        return readings

    def _read(self, table: Table, start: int, count: int) -> list[int]:
        call = self._client.read_input_registers if table == "input" else self._client.read_holding_registers
        try:
            if not self._client.connected and not self._client.connect():  # type: ignore[no-untyped-call]
                raise MessageRejected("unreachable", f"cannot connect to {self.host}:{self.port}")
            response = call(start, count=count, device_id=self.device.device_id)
        except ModbusException as exc:
            self._client.close()  # type: ignore[no-untyped-call]
            raise MessageRejected("unreachable", str(exc)) from None
        if response.isError():
            code = getattr(response, "exception_code", "?")
            raise MessageRejected("device", f"{table} {start}+{count}: Modbus exception code {code}")
        registers = list(response.registers)
        if len(registers) < count:
            raise MessageRejected("device", f"{table} {start}+{count}: only {len(registers)} registers came back")
        return registers[:count]

    def _reading(self, point: RegisterPoint, registers: list[int], stamp: datetime) -> Reading:
        value = decode(point, registers)
        try:
            return Reading(sector=self.device.sector, asset_id=self.device.asset_id, sensor_id=point.sensor_id,
                           quantity=point.quantity, unit=point.unit, value=value, timestamp=stamp)
        except ValidationError as exc:
            raise MessageRejected("invalid", f"{point.sensor_id}: {exc.errors()[0]['msg']}") from None

    # --- background polling ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"modbus-poll-{self.port}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the loop (at most one request timeout later) and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class ModbusDeviceSimulator:
    """A Modbus TCP server holding one device's registers per its `DeviceMap`, on its own loop thread."""

    def __init__(self, device: DeviceMap, *, host: str = "127.0.0.1", port: int = 5020,
                 values: Mapping[str, float] | None = None) -> None:
        self.device, self.host, self.port = device, host, port
        self._tables: dict[Table, list[int]] = {t: [0] * device.table_size(t) for t in ("holding", "input")}
        self._lock = threading.Lock()
        self._thread = LoopThread(f"modbus-sim-{port}")
        self._server: ModbusTcpServer | None = None
        for sensor_id, value in (values or {}).items():
            self.set(sensor_id, value)

    def point(self, sensor_id: str) -> RegisterPoint:
        for p in self.device.points:
            if p.sensor_id == sensor_id:
                return p
        raise IngestError(f"{self.device.asset_id} has no sensor {sensor_id!r}")

    def set(self, sensor_id: str, value: float) -> None:
        """Put an engineering value in the sensor's registers, encoded exactly as the map says."""
        p = self.point(sensor_id)
        self.set_registers(p.table, p.address, encode(p, value))

    def set_registers(self, table: Table, address: int, registers: list[int]) -> None:
        """Put raw 16-bit words at `address` (e.g. a float32 NaN, to play a faulty sensor)."""
        with self._lock:
            regs = self._tables[table]
            if address < 0 or address + len(registers) > len(regs):
                raise IngestError(f"{table} registers {address}..{address + len(registers) - 1} are not on this device")
            regs[address:address + len(registers)] = [r & 0xFFFF for r in registers]

    def registers(self, table: Table, address: int, count: int) -> list[int]:
        with self._lock:
            return self._tables[table][address:address + count]

    def start(self, timeout_s: float = 5.0) -> Self:
        if self._server is not None:
            return self
        device = self._sim_device()  # a bad layout fails here, before any thread starts
        self._thread.start()

        async def boot() -> ModbusTcpServer:
            server = ModbusTcpServer(device, address=(self.host, self.port))
            await server.serve_forever(background=True)
            return server

        try:
            self._server = self._thread.run(boot(), timeout_s)
        except (RuntimeError, OSError, IngestError) as exc:  # pymodbus: RuntimeError when it cannot listen
            self._thread.stop(timeout_s)
            raise IngestError(f"Modbus simulator could not listen on {self.host}:{self.port}: {exc}") from exc
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                self._thread.run(server.shutdown(), timeout_s)  # type: ignore[no-untyped-call]
            finally:
                self._thread.stop(timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _sim_device(self) -> SimDevice:
        """Separate tables, as most RTUs have them: holding and input sized to the map; no coils in use."""
        def registers(size: int) -> list[SimData]:
            if size == 0:  # no points in this table: every address answers ILLEGAL ADDRESS
                return [SimData(0, count=1, datatype=DataType.INVALID)]
            return [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)]

        def unused_bits() -> list[SimData]:  # pymodbus needs a non-empty bit table; one read-only coil
            return [SimData(0, count=1, values=False, datatype=DataType.BITS, readonly=True)]

        return SimDevice(id=self.device.device_id, action=self._action, simdata=(
            unused_bits(), unused_bits(), registers(len(self._tables["holding"])), registers(len(self._tables["input"]))))

    async def _action(self, func_code: int, start: int, address: int, count: int,
                      current: list[int], written: list[int] | list[bool] | None) -> None:
        """pymodbus calls this on every access: serve reads from our tables, keep holding writes."""
        table = _READ_CODE.get(func_code, "holding")  # writes (06, 16) only reach holding registers
        with self._lock:
            regs = self._tables[table]
            if written is None:
                n = min(len(regs), len(current))  # both start at 0; pymodbus adds one spare (invalid) register
                current[:n] = regs[:n]
            else:
                regs[address - start:address - start + len(written)] = [int(w) for w in written]
