"""What paging eth_getLogs costs each reader on a long chain behind a Besu-like range limit (run by hand).

A throwaway Anvil with the development consortium, ``--blocks`` empty blocks mined after the deploy,
then each reader run through `tests.range_limited_rpc.RangeLimitedRpc` (Besu's refusal above the
node's limit, everything else forwarded to the Anvil): once with the node's limit equal to the setting
(5,000: no refusal), once with the node at 1,000 and the setting left at 5,000 (the reader halves).
Prints the time, the eth_getLogs answered and the ones refused. Mining is the slow part (about 16 ms a
block on two shared cores)::

    PYTHONPATH=. python scripts/logs_paging_figures.py --blocks 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chain.besu.accounts import registry_accounts
from chain.connect import connect, contract_abis
from chain.governance import Council
from chain.indexer import Indexer
from chain.node import stop_anvil
from chain.rpc import RpcClient
from tests.conftest import Chain, make_chain
from tests.range_limited_rpc import RangeLimitedRpc
from vaults.onchain import SealWatch


def _measure(chain: Chain, node_limit: int, setting: int) -> None:
    proxy = RangeLimitedRpc(chain.settings.rpc_url, node_limit).start()
    try:
        client, _ = connect(chain.settings.model_copy(update={"rpc_url_override": proxy.url}),
                            deployment=chain.deployment)
        newest = int(client.call1("GovernanceCouncil", "proposalCount"))

        def timed(name: str, run: Callable[[], object]) -> None:
            passed, refused, t = len(proxy.passed), len(proxy.refused), time.perf_counter()
            run()
            print(f"node limit {node_limit}, setting {setting}: {name}: {time.perf_counter() - t:.2f} s, "
                  f"{len(proxy.passed) - passed} eth_getLogs answered, {len(proxy.refused) - refused} refused")

        timed("Council.proposal(1)", lambda: Council(client, max_logs_range=setting).proposal(1))
        timed(f"Council.proposal({newest})", lambda: Council(client, max_logs_range=setting).proposal(newest))
        timed("SealWatch.state", lambda: SealWatch(client, "water", max_logs_range=setting).state())
        timed("registry_accounts", lambda: registry_accounts(client, chain.deployment, max_logs_range=setting))
        with tempfile.TemporaryDirectory() as tmp:
            index = Indexer(Path(tmp) / "index.sqlite", client.rpc, chain.deployment, contract_abis(),
                            max_logs_range=setting)
            try:
                timed("Indexer.sync", index.sync)
            finally:
                index.close()
    finally:
        proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000, help="empty blocks mined after the deploy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qeaims-logs-figures-") as home:
        _run(make_chain(Path(home) / "home"), args.blocks)


def _run(chain: Chain, blocks: int) -> None:
    try:
        miner = RpcClient(chain.settings.rpc_url, timeout_s=600, retries=0)  # anvil_mine must not be re-sent
        started = time.perf_counter()
        for left in range(blocks, 0, -256):
            miner.call("anvil_mine", [hex(min(256, left))])  # the gate takes 256 blocks a call
        head = int(miner.call("eth_blockNumber"), 16)
        print(f"mined {blocks} blocks in {time.perf_counter() - started:.1f} s; head {head}")
        for node_limit, setting in ((5_000, 5_000), (1_000, 5_000)):
            _measure(chain, node_limit, setting)
    finally:
        stop_anvil(chain.settings)


if __name__ == "__main__":
    main()
