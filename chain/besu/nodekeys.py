"""secp256k1 node keys as Besu stores them, and what derives from them (address, enode URL).

Besu reads ``--node-private-key-file`` as exactly one line holding the 32-byte private key in hex
with a ``0x`` prefix (``KeyPairUtil.loadPrivateKey`` in hyperledger/besu; it writes the file the
same way, without a trailing newline). ``key.pub`` is what ``besu public-key export`` prints: the
64-byte uncompressed public key without the 0x04 prefix, 0x-hex. A QBFT validator's address is the
node key's account address: the last 20 bytes of keccak256 of those 64 bytes, and its enode URL is
``enode://<public key hex, no 0x>@<host>:<p2p port>``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from core.errors import ConfigError

__all__ = ["Entropy", "NodeKey", "enode_url", "new_node_key", "parse_enode", "read_key_file"]

Entropy = Callable[[int], bytes]
"""Where private keys come from: `secrets.token_bytes` in production; a test passes a seeded one."""

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_KEY_LINE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ENODE = re.compile(r"^enode://([0-9a-f]{128})@([^:@/]+):(\d{1,5})$")


@dataclass(frozen=True)
class NodeKey:
    """A validator's (or any account's) secp256k1 key pair."""

    private_key: bytes

    def __post_init__(self) -> None:
        if len(self.private_key) != 32 or not 0 < int.from_bytes(self.private_key, "big") < _SECP256K1_N:
            raise ConfigError("a node key must be 32 bytes in 1..n-1 of secp256k1")

    @property
    def public_key(self) -> bytes:
        """The 64-byte uncompressed public key (x ‖ y, no 0x04 prefix)."""
        return bytes(PrivateKey(self.private_key).public_key.to_bytes())

    @property
    def address(self) -> str:
        """keccak256(public key)[12:], checksummed: the validator address QBFT puts in extraData."""
        return to_checksum_address(keccak(self.public_key)[12:])

    def key_file(self) -> str:
        """The text of Besu's ``key`` file."""
        return "0x" + self.private_key.hex()

    def pub_file(self) -> str:
        """The text of Besu's ``key.pub`` file."""
        return "0x" + self.public_key.hex()

    def enode(self, host: str, port: int) -> str:
        return enode_url(self.public_key, host, port)


def new_node_key(entropy: Entropy = secrets.token_bytes) -> NodeKey:
    """A fresh key; draws again in the (2^-128) case that 32 random bytes are not a valid scalar."""
    while True:
        raw = entropy(32)
        if 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
            return NodeKey(raw)


def read_key_file(text: str) -> NodeKey:
    """A key from the text of a Besu ``key`` file (one line, 0x + 64 hex digits)."""
    lines = text.splitlines()
    if len(lines) != 1 or not _KEY_LINE.match(lines[0].strip()):
        raise ConfigError("a key file holds one line: 0x followed by 64 hex digits (Besu's `key` format)")
    return NodeKey(bytes.fromhex(lines[0].strip()[2:]))


def enode_url(public_key: bytes, host: str, port: int) -> str:
    return f"enode://{public_key.hex()}@{host}:{port}"


def parse_enode(url: str) -> tuple[bytes, str, int]:
    """(public key, host, port) of an enode URL without query parameters."""
    match = _ENODE.match(url)
    if match is None:
        raise ConfigError(f"{url!r} is not an enode URL (enode://<128 hex>@host:port)")
    return bytes.fromhex(match.group(1)), match.group(2), int(match.group(3))
