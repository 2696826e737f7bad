"""ABI plumbing without web3's contract objects: encode calls, decode results, logs and reverts.

We encode with eth_abi directly because the hot path (a 500-event batch) is several times
faster that way, and because one selector table over all our contracts lets any revert be
decoded into the custom error's name and arguments, whichever contract raised it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

__all__ = ["ContractAbi", "DecodedError", "DecodedLog", "type_string"]


def type_string(param: dict[str, Any]) -> str:
    """`tuple[]` components → `(uint64,uint8,bytes32,bytes)[]`, as eth_abi wants it."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(type_string(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(type_string(p) for p in entry.get('inputs', []))})"


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    input_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Event:
    name: str
    topic0: bytes
    inputs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class DecodedLog:
    contract: str
    event: str
    args: dict[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    address: str


@dataclass(frozen=True)
class DecodedError:
    contract: str
    name: str
    args: dict[str, Any]


class ContractAbi:
    """Selectors and topics of one contract's ABI."""

    def __init__(self, name: str, abi: list[dict[str, Any]]) -> None:
        self.name = name
        self.functions: dict[str, _Function] = {}
        self.events: dict[bytes, _Event] = {}
        self.errors: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        for entry in abi:
            if entry["type"] == "function":
                sig = _signature(entry)
                self.functions[entry["name"]] = _Function(
                    name=entry["name"],
                    selector=keccak(text=sig)[:4],
                    input_types=tuple(type_string(p) for p in entry["inputs"]),
                    output_types=tuple(type_string(p) for p in entry["outputs"]),
                    input_names=tuple(p.get("name") or f"arg{i}" for i, p in enumerate(entry["inputs"])),
                )
            elif entry["type"] == "event":
                self.events[keccak(text=_signature(entry))] = _Event(
                    entry["name"], keccak(text=_signature(entry)), tuple(entry["inputs"])
                )
            elif entry["type"] == "error":
                self.errors[keccak(text=_signature(entry))[:4]] = (entry["name"], entry["inputs"])

    def encode_call(self, function: str, args: tuple[Any, ...] | list[Any]) -> bytes:
        fn = self.functions[function]
        return fn.selector + abi_encode(list(fn.input_types), list(args))

    def decode_call(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        """Calldata of one of this contract's functions as (function, arguments by name); None when
        its selector is not one of them (a council proposal's calls, shown as they will run)."""
        for fn in self.functions.values():
            if data[:4] == fn.selector:
                values = abi_decode(list(fn.input_types), data[4:])
                return fn.name, dict(zip(fn.input_names, values, strict=True))
        return None

    def decode_result(self, function: str, data: bytes) -> tuple[Any, ...]:
        return tuple(abi_decode(list(self.functions[function].output_types), data))

    def topic(self, event: str) -> bytes:
        for topic0, ev in self.events.items():
            if ev.name == event:
                return topic0
        raise KeyError(f"{self.name} has no event {event}")

    def decode_log(self, log: dict[str, Any]) -> DecodedLog | None:
        topics = [bytes(t) for t in log["topics"]]
        if not topics or topics[0] not in self.events:
            return None
        event = self.events[topics[0]]
        indexed = [p for p in event.inputs if p.get("indexed")]
        plain = [p for p in event.inputs if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            args[param["name"]] = abi_decode([type_string(param)], topic)[0]
        values = abi_decode([type_string(p) for p in plain], bytes(log["data"]))
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = value
        return DecodedLog(
            contract=self.name,
            event=event.name,
            args=args,
            block_number=int(log["blockNumber"]),
            block_hash=bytes(log["blockHash"]),
            tx_hash=bytes(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            address=str(log["address"]),
        )

    def decode_error(self, data: bytes) -> DecodedError | None:
        entry = self.errors.get(data[:4])
        if entry is None:
            return None
        name, inputs = entry
        values = abi_decode([type_string(p) for p in inputs], data[4:])
        return DecodedError(self.name, name, {p["name"] or f"arg{i}": v for i, (p, v) in
                                              enumerate(zip(inputs, values, strict=True))})
