"""Hand-packed ABI words for the fixed-width types that signed messages use.

``eth_abi.encode`` costs about 25 µs per call, which would dominate signing a 500-event batch;
packing a static tuple by hand is just concatenating 32-byte words and costs well under 1 µs.
Only static types appear here (uintN, address, bytes32), for which ``abi.encode`` is exactly the
concatenation of one big-endian 32-byte word per value. Tests check equality with ``eth_abi``.
"""

from __future__ import annotations

from eth_hash.auto import keccak as _keccak
from eth_utils.address import is_checksum_address, is_hex_address, to_canonical_address, to_checksum_address

from keys.errors import InvalidInput

__all__ = ["address_word", "bytes32_word", "checksum", "keccak256", "uint_word"]

_ZERO_PAD_ADDRESS = bytes(12)


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as the EVM computes it (not NIST SHA3-256)."""
    return _keccak(data)


def uint_word(value: int, bits: int, what: str) -> bytes:
    """Encode ``value`` as an ABI ``uint<bits>`` word, refusing values the type cannot hold."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise InvalidInput(f"{what} must be between 0 and {(1 << bits) - 1}, got {value}")
    return value.to_bytes(32, "big")


def checksum(address: str, what: str) -> str:
    """Return the EIP-55 form of ``address``.

    All-lowercase and all-uppercase hex are accepted; mixed case must carry a valid EIP-55
    checksum, because a mixed-case typo is exactly what the checksum exists to catch.
    """
    if not isinstance(address, str) or not address.startswith("0x") or not is_hex_address(address):
        raise InvalidInput(f"{what} must be a 0x-prefixed 20-byte hex address, got {address!r}")
    digits = address[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(address):
        raise InvalidInput(f"{what} {address} has a wrong EIP-55 checksum; check it for typos")
    return str(to_checksum_address(address))


def address_word(address: str, what: str) -> bytes:
    """Encode ``address`` as an ABI ``address`` word (left-padded with 12 zero bytes)."""
    checksum(address, what)
    return _ZERO_PAD_ADDRESS + bytes(to_canonical_address(address))


def bytes32_word(value: bytes, what: str) -> bytes:
    """Check that ``value`` is exactly 32 bytes; an ABI ``bytes32`` word is the value itself."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise InvalidInput(f"{what} must be exactly 32 bytes, got {size}")
    return bytes(value)
