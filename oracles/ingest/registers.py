"""Modbus register maps: which registers of a device hold which sensor, and how to turn them into values.

A real RTU or PLC exposes numbers in 16-bit registers; what they mean is in the vendor's manual. A
`DeviceMap` writes that manual down once, as data (JSON-loadable, so a site adds a device without
code), and both the poller and the simulator use the same map and the same codec, so a test that
sets a value in the simulator and reads it back through the poller exercises exactly the decoding a
real device gets.

Register map (one `RegisterPoint` per sensor):

- ``table``: ``"input"`` (function 04, read-only measurements) or ``"holding"`` (function 03).
- ``address``: 0-based protocol address (register 30001 in the 1-based "Modicon" notation of a
  manual is input address 0; 40001 is holding address 0).
- ``dtype``: ``uint16``/``int16`` (one register), ``uint32``/``int32``/``float32`` (two registers,
  IEEE-754 for float32). Bytes within a register are big-endian, as Modbus specifies.
- ``word_order``: ``"big"`` (high word first, "ABCD", the default) or ``"little"`` (low word first,
  "CDAB", which many meters use).
- ``scale`` and ``offset``: engineering value = raw × scale + offset (an ``int16`` of 4172 with scale
  0.01 is 41.72); ``unit`` and ``quantity`` go into the `Reading` as they are.

`PUMP_MAP` is the reference map (a water pump station RTU) used by the tests, the demo and
`docs/DEVICES.md`.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bus.errors import IngestError, MessageRejected
from core.errors import ConfigError
from core.messages import AssetId, Sector

__all__ = ["MAX_READ", "PUMP_MAP", "DeviceMap", "RegisterPoint", "decode", "encode", "read_blocks"]

MAX_READ = 125  # registers one read request may ask for (Modbus Application Protocol 1.1b3, 6.3)

Table = Literal["holding", "input"]
DType = Literal["uint16", "int16", "uint32", "int32", "float32"]
_STRUCT: dict[str, str] = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f"}
_INTEGER = {"uint16", "int16", "uint32", "int32"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegisterPoint(_Model):
    """One sensor value in a device's registers."""

    sensor_id: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[str, Field(min_length=1, max_length=48)]
    unit: Annotated[str, Field(max_length=16)]
    table: Table
    address: Annotated[int, Field(ge=0, le=65535)]
    dtype: DType = "float32"
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _usable(self) -> RegisterPoint:
        if not math.isfinite(self.scale) or self.scale == 0 or not math.isfinite(self.offset):
            raise ValueError("scale must be finite and non-zero, offset finite")
        if self.address + self.width > 65536:
            raise ValueError(f"{self.dtype} at {self.address} runs past register 65535")
        return self

    @property
    def width(self) -> int:
        """Registers the value occupies."""
        return struct.calcsize(_STRUCT[self.dtype]) // 2


class DeviceMap(_Model):
    """One device (Modbus unit) at one asset: its unit id and its points."""

    sector: Sector
    asset_id: AssetId
    device_id: Annotated[int, Field(ge=0, le=247)] = 1
    points: Annotated[tuple[RegisterPoint, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _consistent(self) -> DeviceMap:
        names = [p.sensor_id for p in self.points]
        if len(set(names)) != len(names):
            raise ValueError("sensor ids must be unique within a device")
        for table in ("holding", "input"):
            taken: dict[int, str] = {}
            for p in self.points:
                if p.table != table:
                    continue
                for reg in range(p.address, p.address + p.width):
                    if reg in taken:
                        raise ValueError(f"{p.sensor_id} overlaps {taken[reg]} at {table} register {reg}")
                    taken[reg] = p.sensor_id
        return self

    @classmethod
    def from_json(cls, path: Path) -> DeviceMap:
        """Load a map a site wrote down (the JSON form of this model)."""
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()) \
                if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"register map {path}: {detail}") from exc

    def table_size(self, table: Table) -> int:
        """Registers a device needs in `table` to hold every point (0: none there)."""
        return max((p.address + p.width for p in self.points if p.table == table), default=0)


def decode(point: RegisterPoint, registers: list[int]) -> float:
    """The engineering value of `point` from its registers; `MessageRejected` if it is not finite."""
    if len(registers) != point.width or any(not 0 <= r <= 0xFFFF for r in registers):
        raise IngestError(f"{point.sensor_id}: expected {point.width} registers of 16 bits, got {registers}")
    words = registers if point.word_order == "big" else registers[::-1]
    raw = struct.unpack(_STRUCT[point.dtype], struct.pack(f">{len(words)}H", *words))[0]
    value = float(raw) * point.scale + point.offset
    if not math.isfinite(value):
        raise MessageRejected("value", f"{point.sensor_id}: device value {raw} is not finite")
    return value


def encode(point: RegisterPoint, value: float) -> list[int]:
    """The registers a device would hold for engineering `value` (the inverse of `decode`)."""
    raw: float | int = (value - point.offset) / point.scale
    if point.dtype in _INTEGER:
        raw = round(raw)
    try:
        packed = struct.pack(_STRUCT[point.dtype], raw)
    except (struct.error, OverflowError) as exc:
        raise ConfigError(f"{point.sensor_id}: {value} does not fit a {point.dtype} at scale {point.scale}") from exc
    words = list(struct.unpack(f">{point.width}H", packed))
    return words if point.word_order == "big" else words[::-1]


def read_blocks(device: DeviceMap) -> list[tuple[Table, int, int, tuple[RegisterPoint, ...]]]:
    """The read requests that cover every point: (table, start, count, points), each ≤ `MAX_READ` registers.

    Nearby points share a request (fewer round trips to a slow RTU); a point never straddles two.
    """
    blocks: list[tuple[Table, int, int, tuple[RegisterPoint, ...]]] = []
    for table in ("holding", "input"):
        points = sorted((p for p in device.points if p.table == table), key=lambda p: p.address)
        group: list[RegisterPoint] = []
        for p in points:
            if group and p.address + p.width - group[0].address > MAX_READ:
                blocks.append(_block(table, group))
                group = []
            group.append(p)
        if group:
            blocks.append(_block(table, group))
    return blocks


def _block(table: Table, group: list[RegisterPoint]) -> tuple[Table, int, int, tuple[RegisterPoint, ...]]:
    start = group[0].address
    return table, start, max(p.address + p.width for p in group) - start, tuple(group)


PUMP_MAP = DeviceMap(
    sector=Sector.WATER,
    asset_id="pump-station-1",
    device_id=1,
    points=(
        RegisterPoint(sensor_id="discharge-pressure", quantity="pressure_m", unit="m", table="input", address=0),
        RegisterPoint(sensor_id="vibration", quantity="vibration_mm_s", unit="mm/s", table="input", address=2),
        RegisterPoint(sensor_id="flow", quantity="flow_l_s", unit="L/s", table="input", address=4,
                      dtype="float32", word_order="little"),
        RegisterPoint(sensor_id="motor-temp", quantity="temperature_c", unit="degC", table="input", address=6,
                      dtype="int16", scale=0.1),
        RegisterPoint(sensor_id="speed", quantity="speed_rpm", unit="rpm", table="holding", address=0,
                      dtype="uint16"),
        RegisterPoint(sensor_id="energy", quantity="energy_kwh", unit="kWh", table="holding", address=1,
                      dtype="uint32", scale=0.01),
    ),
)
