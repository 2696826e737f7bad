"""Isolation latency on two EVM clients at the same block time: Hardhat's node and Anvil, both mining on a
timer (and Anvil mining on demand, for reference). docs/evm-clients.md quotes its output.

    .venv/bin/python scripts/evm_client_bench.py --runs 10 --block-ms 1000 [--client hardhat anvil anvil-instant] [--json]

For each client: a fresh chain, the development consortium deployed on it by `deploy_dev_consortium`
(isolation cap lifted so that `--runs` nodes can be isolated without reintegrating any), then `--runs`
isolations, each from oracle 1's `propose` being sent to the receipt of the vote that isolates the node,
oracles 2 and 3 voting at once (`chain.isolation_bench`). Prints p50, p95 (nearest rank) and the max.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.deploy import deploy_dev_consortium
from chain.hardhat_node import HardhatConfig, HardhatNode
from chain.isolation_bench import IsolationSample, isolate_concurrently, isolation_targets, p95
from chain.node import start_anvil, stop_anvil
from core.config import Settings, load_settings

CLIENTS = ("hardhat", "anvil", "anvil-instant")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _isolations(settings: Settings, runs: int) -> tuple[float, list[IsolationSample]]:
    started = time.monotonic()
    client, _ = deploy_dev_consortium(settings)
    deployed = time.monotonic() - started
    targets = list(isolation_targets())[:runs]
    return deployed, [isolate_concurrently(client, settings, sector, node) for sector, node in targets]


def bench(client: str, runs: int, block_ms: int, root: Path) -> dict[str, object]:
    common = {"home": root / client / "home", "scrypt_n": 1024, "isolation_cap_bps": 10_000}
    if client == "hardhat":
        with HardhatNode(root / client / "node", _port(), HardhatConfig(block_time_ms=block_ms)) as node:
            deployed, samples = _isolations(load_settings(rpc_url_override=node.url, **common), runs)
    else:
        block_time = None if client == "anvil-instant" else block_ms / 1000
        settings = load_settings(rpc_port=_port(), block_time_s=block_time, **common)
        start_anvil(settings)
        try:
            deployed, samples = _isolations(settings, runs)
        finally:
            stop_anvil(settings)
    latencies = [s.latency_s for s in samples]
    return {
        "client": client, "block_ms": None if client == "anvil-instant" else block_ms, "runs": len(samples),
        "deploy_s": round(deployed, 2),
        "p50_s": round(statistics.median(latencies), 3), "p95_s": round(p95(latencies), 3),
        "max_s": round(max(latencies), 3), "blocks_median": statistics.median(s.blocks for s in samples),
        "latencies_s": [round(v, 3) for v in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="isolations per client (at most 24, the dev nodes)")
    parser.add_argument("--block-ms", type=int, default=1000, help="block time of the timer-mined chains")
    parser.add_argument("--client", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.runs <= 24:
        parser.error("--runs must be 1..24 (one isolation per development node)")
    if args.block_ms % 1000 and "anvil" in args.client:
        parser.error("Anvil's interval mining takes whole seconds: --block-ms a multiple of 1000")
    with tempfile.TemporaryDirectory(prefix="qeaims-evm-bench-") as tmp:
        rows = [bench(c, args.runs, args.block_ms, Path(tmp)) for c in args.client]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'client':<14} {'block':>6} {'runs':>4} {'deploy s':>8} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'blocks':>6}")
    for r in rows:
        block = "-" if r["block_ms"] is None else f"{r['block_ms']}ms"
        print(f"{r['client']:<14} {block:>6} {r['runs']:>4} {r['deploy_s']:>8} {r['p50_s']:>7} {r['p95_s']:>7} "
              f"{r['max_s']:>7} {r['blocks_median']:>6}")


if __name__ == "__main__":
    main()
