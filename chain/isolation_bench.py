"""Isolation latency on a deployed development consortium: from an oracle's `propose` being sent to
the receipt of the vote that isolates the node, with the other oracles voting at once, as the four
oracle processes of a sector do.

Development tooling for comparing EVM clients (`scripts/evm_client_bench.py`, docs/evm-clients.md):
it holds every oracle key of the development consortium in one process. On a chain that mines every
block period the figure is about two block periods (the proposal's block, then the votes' block)
plus the wait for the next block boundary; on Anvil's instant mining it is the round trips alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from chain.client import ChainClient
from chain.consortium import nodes
from chain.deploy import dev_oracle
from chain.quorum import Action, QuorumClient
from core.config import Settings
from core.errors import ChainError, TransactionFailed
from keys.ids import to_bytes32

__all__ = ["IsolationSample", "isolate_concurrently", "isolation_targets", "p95"]


@dataclass(frozen=True)
class IsolationSample:
    sector: str
    node: str
    proposal_id: int
    latency_s: float
    blocks: int  # blocks from the one before the proposal was sent to the isolating vote's block


def isolation_targets() -> Iterator[tuple[str, str]]:
    """Every development node once, one per sector in turn (so that a sector's cap is reached last)."""
    by_sector: dict[str, list[str]] = {}
    for node in nodes():
        by_sector.setdefault(node.sector, []).append(node.node)
    rounds = max(len(v) for v in by_sector.values())
    for i in range(rounds):
        for sector, names in by_sector.items():
            if i < len(names):
                yield sector, names[i]


def isolate_concurrently(client: ChainClient, settings: Settings, sector: str, node: str) -> IsolationSample:
    """Oracle 1 proposes the isolation of `node`; oracles 2 and 3 vote at once when it is mined.

    Two votes, not three: with four oracles three make the quorum, and a fourth vote sent at once
    would land after the isolation and revert (what a real oracle sees as `QuorumWrongState`)."""
    voters = [dev_oracle(settings, sector, i) for i in (1, 2, 3)]
    quorum = QuorumClient(client)
    target = to_bytes32(node)
    before = int(client.rpc.call("eth_blockNumber"), 16)
    started = time.monotonic()
    proposal_id = quorum.propose(voters[0], Action.ISOLATE, target, to_bytes32("bench: isolation latency"))
    errors: list[BaseException] = []

    def vote(index: int) -> None:
        try:
            quorum.vote(voters[index], proposal_id)
        except Exception as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(i,)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latency = time.monotonic() - started
    if errors:
        raise errors[0]
    if quorum.node_status(target) != "isolated":
        raise TransactionFailed(f"{node} is not isolated after three of {sector}'s oracles voted")
    head = int(client.rpc.call("eth_blockNumber"), 16)
    return IsolationSample(sector, node, proposal_id, latency, head - before)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (of 10 samples: the largest)."""
    if not values:
        raise ChainError("no samples")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
