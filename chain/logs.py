"""Logs over any block range, asked for in pages a node accepts: the one way QEAIMS calls ``eth_getLogs``.

Nodes bound what one ``eth_getLogs`` may cover. Besu refuses a request whose ``toBlock - fromBlock``
exceeds ``--rpc-max-logs-range`` (5,000 by default since 23.1.2) with JSON-RPC error
``{"code": -32005, "message": "Requested range exceeds maximum RPC range limit"}`` (its
``RpcErrorType.EXCEEDS_RPC_MAX_BLOCK_RANGE``, returned by ``EthGetLogs``); hosted endpoints in front
of Geth refuse a result that is too large (``-32005`` "query returned more than 10000 results"), and
Geth forks a range that is too wide ("exceed maximum block range: 5000"). -32005 is EIP-1474's
"limit exceeded".

`LogReader` asks for ``[from_block, to_block]`` in spans of at most ``max_range`` blocks (the
`core.config.Settings.max_logs_range` setting), in block order (or newest first, for a lookup that
expects a recent log). When the node refuses a span as too wide or too full, it halves the span and
asks again from the same block, and keeps the smaller span for the rest of its life (a node's limit
does not grow while we talk to it), so a node configured below the setting costs a few refused
requests, not a failure. A span of one block that is still refused, and every other error, is raised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.rpc import RpcClient, RpcError
from core.config import Settings

__all__ = ["DEFAULT_MAX_LOGS_RANGE", "LogPage", "LogReader", "get_logs", "is_range_refusal"]

DEFAULT_MAX_LOGS_RANGE: int = Settings.model_fields["max_logs_range"].default
"""Besu's default ``--rpc-max-logs-range`` (the setting's default, so there is one number)."""

_LIMIT_EXCEEDED = -32005  # EIP-1474; Besu's EXCEEDS_RPC_MAX_BLOCK_RANGE, Infura's too-many-results

_REFUSALS = (
    "exceeds maximum rpc range limit",  # Besu (RpcErrorType.EXCEEDS_RPC_MAX_BLOCK_RANGE)
    "exceeds maximum range limit",  # Besu's exception text, logged with the error above
    "query returned more than",  # "... 10000 results": Infura and other Geth front ends
    "exceed maximum block range",  # Geth forks and public endpoints: "exceed maximum block range: 5000"
    "block range is too wide",  # Frontier (Substrate EVMs)
    "block range too large",
    "range too large",
    "too many results",
    "log response size exceeded",  # Alchemy
)


def is_range_refusal(exc: RpcError) -> bool:
    """Whether an ``eth_getLogs`` error says "ask for fewer blocks" (and nothing else is wrong).

    A known wording, or "limit exceeded" (-32005) about a range, blocks or results: not every -32005 is
    one (a hosted endpoint's rate limit is "request rate limited", and asking twice as often would not help)."""
    message = exc.rpc_message.lower()
    return any(phrase in message for phrase in _REFUSALS) or (
        exc.code == _LIMIT_EXCEEDED and any(word in message for word in ("range", "block", "result")))


@dataclass(frozen=True)
class LogPage:
    """The logs of blocks ``lo`` to ``hi`` inclusive, as the node returned them (block order)."""

    lo: int
    hi: int
    logs: list[dict[str, Any]]


@dataclass
class LogReader:
    """``eth_getLogs`` in pages a node accepts (module docstring). Meant for one thread; a reader that
    polls keeps one, so it learns a node's lower limit once."""

    rpc: RpcClient
    max_range: int = DEFAULT_MAX_LOGS_RANGE
    span: int = field(init=False)  # blocks per request now: max_range, halved on each refusal
    refusals: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.max_range < 1:
            raise ValueError(f"max_range must be at least 1 block, not {self.max_range}")
        self.span = self.max_range

    def pages(self, log_filter: Mapping[str, Any], from_block: int, to_block: int, *,
              newest_first: bool = False) -> Iterator[LogPage]:
        """The pages covering ``[from_block, to_block]``, each ``span`` blocks or fewer, oldest first (or
        newest first). ``log_filter`` is the rest of the filter (address, topics); its block fields are ours."""
        lo, hi = max(0, from_block), to_block
        while lo <= hi:
            a, b = (max(lo, hi - self.span + 1), hi) if newest_first else (lo, min(hi, lo + self.span - 1))
            logs = self._get(log_filter, a, b)
            if logs is None:
                continue  # refused: `span` is halved, ask again for a narrower page
            yield LogPage(a, b, logs)
            if newest_first:
                hi = a - 1
            else:
                lo = b + 1

    def get(self, log_filter: Mapping[str, Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        """Every log of ``[from_block, to_block]`` matching ``log_filter``, in chain order."""
        return [log for page in self.pages(log_filter, from_block, to_block) for log in page.logs]

    def _get(self, log_filter: Mapping[str, Any], lo: int, hi: int) -> list[dict[str, Any]] | None:
        request = {k: v for k, v in log_filter.items() if k not in ("fromBlock", "toBlock", "blockHash")}
        try:
            logs: list[dict[str, Any]] = self.rpc.call("eth_getLogs", [{**request, "fromBlock": hex(lo),
                                                                       "toBlock": hex(hi)}])
        except RpcError as exc:
            if hi == lo or not is_range_refusal(exc):
                raise
            self.refusals += 1
            self.span = max(1, (hi - lo + 1) // 2)
            return None
        return logs


def get_logs(rpc: RpcClient, log_filter: Mapping[str, Any], from_block: int, to_block: int,
             max_range: int = DEFAULT_MAX_LOGS_RANGE) -> list[dict[str, Any]]:
    """Every log of ``[from_block, to_block]`` matching ``log_filter`` (address, topics), paged
    (`LogReader`)."""
    return LogReader(rpc, max_range).get(log_filter, from_block, to_block)
