"""Modbus TCP frames as a gateway sees them: ADUs parsed into what a detector needs, from a byte stream.

References: Modbus Application Protocol Specification V1.1b3 (function codes, PDU layouts, exception
codes) and Modbus Messaging on TCP/IP Implementation Guide V1.0b (the MBAP header). An ADU is::

    MBAP (7 bytes): transaction id (2) | protocol id (2, always 0) | length (2) | unit id (1)
    PDU:            function code (1) | data

``length`` counts the unit id and the PDU, so an ADU is ``6 + length`` bytes; a PDU is at most 253
bytes, so ``2 <= length <= 254``. TCP is a stream: one segment may carry several ADUs and one ADU
may arrive in several segments, so `ModbusStream` reassembles before anything is parsed.

What is extracted per function (requests / responses):

- 1, 2, 3, 4 (reads): start address and quantity / byte count.
- 5, 6 (single writes): address and value (the response echoes them); 22 (mask write): address.
- 15, 16 (multiple writes): start, quantity, byte count (checked against the data that follows).
- 23 (read/write multiple registers): read start and quantity, write start and quantity.
- 43 with MEI type 14 (Read Device Identification): read code and object id; 17 (Report Server ID).
- any function with bit 7 set in a response: an exception, with its exception code.
- any other function code: kept as it is (fc, no address), so a detector still sees it.

Only the shape is judged, never the values: a frame that does not fit its function's layout raises
`FrameError` (and nothing else, whatever the bytes), as does an MBAP that cannot be a Modbus one
(protocol id not 0, a length out of range). After a framing error the stream cannot resynchronise
(there is no delimiter in Modbus TCP), so the gateway closes that connection.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from gateway.errors import FrameError

__all__ = ["MBAP_LEN", "READ_FUNCTIONS", "READ_ONLY_FUNCTIONS", "WRITE_FUNCTIONS", "ModbusFrame", "ModbusStream", "exception_response",
           "parse_adu"]

MBAP_LEN = 7
MAX_ADU = 260  # 7 (MBAP) + 253 (PDU)
WRITE_FUNCTIONS = frozenset({5, 6, 15, 16, 21, 22, 23})  # the data writes (21 file record, 22 mask write)
READ_FUNCTIONS = frozenset({1, 2, 3, 4})
# Functions known to change nothing. Everything else counts as a write for enforcement and detection:
# FC 8 (diagnostics) can restart a device's communications or force it to listen only, and a code
# the gateway does not know cannot be assumed harmless.
READ_ONLY_FUNCTIONS = frozenset({1, 2, 3, 4, 7, 11, 12, 17, 20, 24})
IDENTITY_FUNCTIONS = frozenset({17, 43})  # Report Server ID; Encapsulated Interface (MEI 14: device id)
MEI_DEVICE_ID = 0x0E
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS = 0x01, 0x02

Direction = Literal["request", "response"]


@dataclass(frozen=True, slots=True)
class ModbusFrame:
    """One parsed ADU. `address`/`quantity` are the span it touches (the write span for FC 23's write)."""

    direction: Direction
    transaction_id: int
    unit_id: int
    function: int  # without the exception bit
    exception: int | None = None  # exception code of an exception response
    address: int | None = None
    quantity: int | None = None
    value: int | None = None  # FC 5/6
    read_address: int | None = None  # FC 23's read span
    read_quantity: int | None = None
    mei_type: int | None = None
    byte_count: int | None = None

    @property
    def is_write(self) -> bool:
        """A request that may change the device: anything but a known read (`READ_ONLY_FUNCTIONS`, FC 43/14)."""
        return self.direction == "request" and self.function not in READ_ONLY_FUNCTIONS and not self.is_identity

    @property
    def is_identity(self) -> bool:
        """A firmware/identity query: FC 17, or FC 43 with MEI type 14."""
        return self.function == 17 or (self.function == 43 and self.mei_type == MEI_DEVICE_ID)


def _u16(data: bytes, at: int) -> int:
    return int(struct.unpack_from(">H", data, at)[0])


def _need(pdu: bytes, n: int, what: str) -> None:
    if len(pdu) < n:
        raise FrameError(f"function {pdu[0]}: {what} needs {n} PDU bytes, got {len(pdu)}")


def parse_adu(adu: bytes, direction: Direction) -> ModbusFrame:
    """Parse exactly one ADU (MBAP + PDU); `FrameError` if it is not one."""
    if len(adu) < MBAP_LEN + 1:
        raise FrameError(f"an ADU is at least {MBAP_LEN + 1} bytes, got {len(adu)}")
    tid, proto, length, unit = struct.unpack_from(">HHHB", adu)
    if proto != 0:
        raise FrameError(f"MBAP protocol id {proto} is not Modbus (0)")
    if not 2 <= length <= MAX_ADU - 6 or len(adu) != 6 + length:
        raise FrameError(f"MBAP length {length} does not match an ADU of {len(adu)} bytes")
    return _parse_pdu(adu[MBAP_LEN:], tid, unit, direction)


def _parse_pdu(pdu: bytes, tid: int, unit: int, direction: Direction) -> ModbusFrame:
    code = pdu[0]
    if direction == "response" and code & 0x80:
        _need(pdu, 2, "an exception response")
        return ModbusFrame(direction, tid, unit, code & 0x7F, exception=pdu[1])
    if code == 0 or code & 0x80:
        raise FrameError(f"function code {code} is not valid in a {direction}")
    fields: dict[str, int | None] = {}
    if direction == "request":
        fields = _request_fields(code, pdu)
    else:
        fields = _response_fields(code, pdu)
    return ModbusFrame(direction, tid, unit, code, **fields)


def _request_fields(code: int, pdu: bytes) -> dict[str, int | None]:
    if code in READ_FUNCTIONS:
        _need(pdu, 5, "a read")
        qty = _u16(pdu, 3)
        if not 1 <= qty <= (2000 if code <= 2 else 125):
            raise FrameError(f"function {code}: quantity {qty} out of range")
        return {"address": _u16(pdu, 1), "quantity": qty}
    if code in (5, 6):
        _need(pdu, 5, "a single write")
        return {"address": _u16(pdu, 1), "quantity": 1, "value": _u16(pdu, 3)}
    if code == 22:
        if len(pdu) != 7:
            raise FrameError(f"function 22: a mask write is 7 PDU bytes, got {len(pdu)}")
        return {"address": _u16(pdu, 1), "quantity": 1}
    if code in (15, 16):
        _need(pdu, 6, "a multiple write")
        qty, count = _u16(pdu, 3), pdu[5]
        expected = (qty + 7) // 8 if code == 15 else 2 * qty
        if qty == 0 or count != expected or len(pdu) != 6 + count:
            raise FrameError(f"function {code}: quantity {qty} and byte count {count} do not fit {len(pdu)} bytes")
        return {"address": _u16(pdu, 1), "quantity": qty, "byte_count": count}
    if code == 23:
        _need(pdu, 10, "a read/write")
        rqty, wqty, count = _u16(pdu, 3), _u16(pdu, 7), pdu[9]
        if rqty == 0 or wqty == 0 or count != 2 * wqty or len(pdu) != 10 + count:
            raise FrameError(f"function 23: write quantity {wqty} and byte count {count} do not fit")
        return {"read_address": _u16(pdu, 1), "read_quantity": rqty, "address": _u16(pdu, 5), "quantity": wqty,
                "byte_count": count}
    if code == 43:
        _need(pdu, 2, "an encapsulated interface request")
        if pdu[1] == MEI_DEVICE_ID:
            _need(pdu, 4, "Read Device Identification")
            return {"mei_type": pdu[1], "address": pdu[3], "value": pdu[2]}  # object id, read code
        return {"mei_type": pdu[1]}
    return {}  # FC 17 has no data; other functions are kept by code alone


def _response_fields(code: int, pdu: bytes) -> dict[str, int | None]:
    if code in READ_FUNCTIONS or code == 23 or code == 17:
        _need(pdu, 2, "a read response")
        count = pdu[1]
        if len(pdu) != 2 + count:
            raise FrameError(f"function {code}: byte count {count} but {len(pdu) - 2} data bytes")
        return {"byte_count": count}
    if code == 22:
        if len(pdu) != 7:
            raise FrameError(f"function 22: a mask write response is 7 PDU bytes, got {len(pdu)}")
        return {"address": _u16(pdu, 1), "quantity": 1}
    if code in (5, 6, 15, 16):
        _need(pdu, 5, "a write response")
        if len(pdu) != 5:
            raise FrameError(f"function {code}: a write response is 5 PDU bytes, got {len(pdu)}")
        if code in (5, 6):
            return {"address": _u16(pdu, 1), "quantity": 1, "value": _u16(pdu, 3)}
        return {"address": _u16(pdu, 1), "quantity": _u16(pdu, 3)}
    if code == 43:
        _need(pdu, 2, "an encapsulated interface response")
        if pdu[1] == MEI_DEVICE_ID:
            _need(pdu, 7, "a device identification response")
            _objects(pdu, pdu[6])
            return {"mei_type": pdu[1], "value": pdu[2]}
        return {"mei_type": pdu[1]}
    return {}


def _objects(pdu: bytes, count: int) -> None:
    """Walk FC 43/14's object list (id, length, value), so a truncated list is a `FrameError`."""
    at = 7
    for _ in range(count):
        if at + 2 > len(pdu) or at + 2 + pdu[at + 1] > len(pdu):
            raise FrameError("device identification: an object runs past the PDU")
        at += 2 + pdu[at + 1]
    if at != len(pdu):
        raise FrameError("device identification: bytes after the last object")


def exception_response(request: ModbusFrame, code: int) -> bytes:
    """The exception ADU a gateway answers `request` with (same transaction and unit, function | 0x80)."""
    return struct.pack(">HHHBBB", request.transaction_id, 0, 3, request.unit_id, request.function | 0x80, code)


class ModbusStream:
    """Reassembles ADUs from TCP segments of one direction of one connection.

    `feed` returns every complete ADU the bytes so far finish, each with its exact bytes (what the
    evidence hash is computed over); a partial ADU waits for the next segment. `FrameError` on an
    MBAP that cannot be Modbus: the stream is then unusable (there is no way to find the next ADU).
    """

    def __init__(self, direction: Direction) -> None:
        self.direction: Direction = direction
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished ADU held back."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[tuple[ModbusFrame, bytes]]:
        self._buffer += chunk
        out: list[tuple[ModbusFrame, bytes]] = []
        while len(self._buffer) >= 6:
            proto, length = struct.unpack_from(">HH", self._buffer, 2)
            if proto != 0 or not 2 <= length <= MAX_ADU - 6:
                self._buffer.clear()
                raise FrameError(f"MBAP protocol id {proto}, length {length}: not a Modbus TCP stream")
            if len(self._buffer) < 6 + length:
                break
            adu = bytes(self._buffer[:6 + length])
            del self._buffer[:6 + length]
            out.append((parse_adu(adu, self.direction), adu))
        return out
