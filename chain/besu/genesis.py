"""The QBFT genesis file: its ``extraData`` and the rest, as Besu documents them.

``extraData`` (Besu, "Configure QBFT consensus", Extra data) is
``RLP([32 bytes vanity, [validator addresses], no vote, round 0, no seals])``. Besu's own encoder
(``QbftExtraDataCodec.encode`` in hyperledger/besu) writes the vote as an empty list, the round with
``writeIntScalar`` (so round 0 is the empty byte string, RLP ``0x80``, not four zero bytes as
IBFT 2.0 wrote it) and the seals as an empty list; the example in the docs ends ``c0 80 c0`` for
exactly that reason. Validators are listed in ascending address order, as the docs ask for the
input of ``besu rlp encode --type=QBFT_EXTRA_DATA``.

Forks: every block-numbered fork at 0 and ``shanghaiTime``/``cancunTime`` at 0, because the
contracts are compiled with ``evm_version = cancun`` (foundry.toml): their bytecode is full of
Shanghai's PUSH0, and solc may use any Cancun opcode (MCOPY) it sees fit. Prague and later are left off: EIP-7825's
per-transaction gas cap arrives with Osaka and is a separate decision. Gas: ``zeroBaseFee`` (Besu,
"Configure free gas networks": required from London on for a free-gas private network) together
with ``min-gas-price=0`` on every node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_utils.address import to_canonical_address, to_checksum_address

from core.errors import ConfigError

__all__ = [
    "QBFT_MIX_HASH",
    "VANITY_BYTES",
    "QbftParams",
    "decode_extra_data",
    "encode_extra_data",
    "genesis_document",
]

VANITY_BYTES = 32
QBFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
"""The fixed mixHash that marks an Istanbul-family (IBFT/QBFT) genesis ("...byzantine fault tolerance")."""

_BLOCK_FORKS = ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                "constantinopleBlock", "petersburgBlock", "istanbulBlock", "muirGlacierBlock", "berlinBlock",
                "londonBlock", "arrowGlacierBlock", "grayGlacierBlock")
_TIME_FORKS = ("shanghaiTime", "cancunTime")


@dataclass(frozen=True)
class QbftParams:
    """Network-wide settings that go into the genesis file."""

    chain_id: int
    block_period_s: int = 2
    epoch_length: int = 30_000
    request_timeout_s: int = 4
    gas_limit: int = 400_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.chain_id < 2**63:
            raise ConfigError(f"chain id {self.chain_id} is out of range (1 .. 2^63-1)")
        if self.chain_id in (1, 31337, 1337):
            raise ConfigError(f"chain id {self.chain_id} is taken (1 is Ethereum Mainnet; 1337 and 31337 are "
                              "development chains, Anvil's among them): choose the consortium's own")
        if not 1 <= self.block_period_s <= 3600:
            raise ConfigError("the block period must be 1 .. 3600 s")
        if self.request_timeout_s <= self.block_period_s:
            raise ConfigError(f"the request timeout ({self.request_timeout_s} s) must exceed the block period "
                              f"({self.block_period_s} s); Besu suggests twice the block period to start with")
        if self.epoch_length < 1:
            raise ConfigError("the epoch length must be at least 1 block")


def encode_extra_data(validators: Sequence[str], *, ascending: bool = True) -> str:
    """0x-hex of RLP([vanity, validators, [] (no vote), round 0, [] (no seals)]); validators in ascending
    address order unless ``ascending`` is False (then as given, e.g. to reproduce a published example)."""
    if len({v.lower() for v in validators}) != len(validators):
        raise ConfigError("a validator is listed twice")
    raw = [to_canonical_address(v) for v in validators]
    ordered = sorted(raw) if ascending else raw
    encoded: bytes = rlp.encode([b"\x00" * VANITY_BYTES, ordered, [], 0, []])
    return "0x" + encoded.hex()


def decode_extra_data(extra: str) -> tuple[bytes, list[str], list[Any], int, list[Any]]:
    """(vanity, validators, vote, round, seals) of a QBFT ``extraData``: the inverse of `encode_extra_data`,
    strict about the shape Besu's decoder expects."""
    raw = rlp.decode(bytes.fromhex(extra.removeprefix("0x")))
    if not isinstance(raw, list) or len(raw) != 5:
        raise ConfigError("QBFT extraData is an RLP list of 5 items")
    vanity, validators, vote, round_, seals = raw
    if not isinstance(vanity, bytes) or len(vanity) != VANITY_BYTES:
        raise ConfigError("QBFT extraData must start with 32 bytes of vanity")
    if not isinstance(validators, list) or any(not isinstance(v, bytes) or len(v) != 20 for v in validators):
        raise ConfigError("QBFT extraData's second item is a list of 20-byte addresses")
    if not isinstance(round_, bytes) or not isinstance(vote, list) or not isinstance(seals, list):
        raise ConfigError("QBFT extraData's vote and seals are lists and its round a scalar")
    return (vanity, [to_checksum_address(v) for v in validators], vote,
            int.from_bytes(round_, "big"), seals)


def genesis_document(params: QbftParams, validators: Sequence[str], alloc: Mapping[str, int]) -> dict[str, Any]:
    """The genesis file for ``validators`` (block-header validator selection), with ``alloc`` balances in wei."""
    config: dict[str, Any] = {"chainId": params.chain_id}
    config.update({fork: 0 for fork in _BLOCK_FORKS})
    config.update({fork: 0 for fork in _TIME_FORKS})
    config["zeroBaseFee"] = True
    config["qbft"] = {
        "blockperiodseconds": params.block_period_s,
        "epochlength": params.epoch_length,
        "requesttimeoutseconds": params.request_timeout_s,
    }
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "extraData": encode_extra_data(validators),
        "gasLimit": hex(params.gas_limit),
        "difficulty": "0x1",
        "mixHash": QBFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "baseFeePerGas": "0x0",
        "excessBlobGas": "0x0",  # Cancun header fields of block 0, empty (no blobs on this chain)
        "blobGasUsed": "0x0",
        "parentBeaconBlockRoot": "0x" + "00" * 32,
        "alloc": {address.lower().removeprefix("0x"): {"balance": hex(wei)} for address, wei in sorted(alloc.items())},
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }
