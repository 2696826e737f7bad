"""On-chain identifiers: bytes32 names and event ids.

The contracts identify sectors, operators and nodes by a left-aligned ASCII ``bytes32`` (Solidity's
``bytes32("water")``) so logs stay readable without string handling on-chain. Event ids pack the
oracle address and its sequence number into one ``bytes32``, so an isolation proposal can cite
evidence as a flat list and anyone can find the event again from the id alone.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from keys._abi import address_word, uint_word
from keys.errors import InvalidInput, InvalidName

__all__ = ["event_id", "from_bytes32", "split_event_id", "to_bytes32"]

_SEQ_BITS = 64
_ADDRESS_BITS = 160


def _is_printable_ascii(text: str) -> bool:
    return all(0x20 <= ord(ch) < 0x7F for ch in text)


def to_bytes32(name: str) -> bytes:
    """``name`` as Solidity's ``bytes32("name")``: printable ASCII, 1–32 bytes, zero-padded right.

    Empty names are refused because the registry treats a zero id as "none".
    """
    if not isinstance(name, str):
        raise InvalidName(f"a name must be text, got {type(name).__name__}")
    if not name:
        raise InvalidName("a name must not be empty")
    if not _is_printable_ascii(name):
        raise InvalidName(f"name {name!r} must use printable ASCII characters only")
    if len(name) > 32:
        raise InvalidName(f"name {name!r} is {len(name)} characters; the limit is 32")
    return name.encode("ascii").ljust(32, b"\x00")


def from_bytes32(value: bytes) -> str:
    """Inverse of :func:`to_bytes32`; refuses values that no valid name produces."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidName("a bytes32 name must be exactly 32 bytes")
    text = bytes(value).rstrip(b"\x00")
    if not text:
        raise InvalidName("the bytes32 value is all zeros, which is not a name")
    try:
        name = text.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidName(f"bytes32 value 0x{bytes(value).hex()} is not an ASCII name") from exc
    if not _is_printable_ascii(name):
        raise InvalidName(f"bytes32 value 0x{bytes(value).hex()} holds non-printable characters")
    return name


def event_id(oracle: str, seq: int) -> bytes:
    """``bytes32(uint256(uint160(oracle)) << 64 | seq)``: a unique id for an oracle's event."""
    addr = int.from_bytes(address_word(oracle, "oracle address"), "big")
    seq_value = int.from_bytes(uint_word(seq, _SEQ_BITS, "sequence number"), "big")
    return ((addr << _SEQ_BITS) | seq_value).to_bytes(32, "big")


def split_event_id(value: bytes) -> tuple[str, int]:
    """Inverse of :func:`event_id`: the oracle's checksum address and the sequence number."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput("an event id must be exactly 32 bytes")
    number = int.from_bytes(value, "big")
    if number >> (_SEQ_BITS + _ADDRESS_BITS):
        raise InvalidInput(f"0x{bytes(value).hex()} is not an event id: its top 32 bits are not zero")
    seq = number & ((1 << _SEQ_BITS) - 1)
    addr = (number >> _SEQ_BITS).to_bytes(20, "big")
    return str(to_checksum_address(addr)), seq
