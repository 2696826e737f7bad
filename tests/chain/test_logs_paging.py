"""Every log reader works against a node that bounds eth_getLogs ranges, as Besu does by default.

The session Anvil sits behind `tests.range_limited_rpc.RangeLimitedRpc`, which refuses an eth_getLogs
spanning more than LIMIT blocks with Besu's own error and forwards everything else to the chain. The
history is made longer than LIMIT, and each production reader (council proposal lookup, seal watch,
vault reads, indexer sync, allowlist rebuild) must give through the proxy exactly what it gives on the
chain directly, with its default range (5,000 blocks: Besu's default, so the proxy refuses and the reader
halves) and with the range set to the node's limit (no refusal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chain.besu.accounts import registry_accounts
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.governance import Council
from chain.indexer import Indexer
from chain.logs import LogReader, get_logs, is_range_refusal
from chain.rpc import RpcClient, RpcError
from tests.conftest import Chain
from tests.range_limited_rpc import BESU_RANGE_ERROR, RangeLimitedRpc, too_many_results
from tests.support import opened_db
from tests.vaults.test_service_chain import _people, _service
from vaults.onchain import SealWatch

pytestmark = pytest.mark.chain

LIMIT = 50  # the proxy's --rpc-max-logs-range


@contextmanager
def _limited(chain: Chain) -> Iterator[tuple[RangeLimitedRpc, ChainClient]]:
    """The proxy, and a client of the deployment that talks to the chain only through it."""
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    if head < 3 * LIMIT:
        chain.client.rpc.call("anvil_mine", [hex(3 * LIMIT - head)])  # a history several limits long
    proxy = RangeLimitedRpc(chain.settings.rpc_url, LIMIT).start()
    try:
        client, _ = connect(chain.settings.model_copy(update={"rpc_url_override": proxy.url}),
                            deployment=chain.deployment)
        yield proxy, client
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def limited(chain: Chain) -> Iterator[tuple[RangeLimitedRpc, ChainClient]]:
    with _limited(chain) as both:
        yield both


def _our_contracts(chain: Chain) -> dict[str, Any]:
    return {"address": list(chain.deployment.addresses().values())}  # every contract: the deploy's logs at least


def test_the_proxy_refuses_a_whole_history_request_and_the_pager_gets_every_log(
        chain: Chain, limited: tuple[RangeLimitedRpc, ChainClient]) -> None:
    proxy, client = limited
    whole = {**_our_contracts(chain), "fromBlock": "0x0", "toBlock": "latest"}
    with pytest.raises(RpcError) as refused:  # what Council.proposal asked for before: the node says no
        client.rpc.call("eth_getLogs", [whole])
    assert (refused.value.code, refused.value.rpc_message) == (BESU_RANGE_ERROR["code"], BESU_RANGE_ERROR["message"])
    assert is_range_refusal(refused.value)

    direct = chain.client.rpc.call("eth_getLogs", [whole])  # Anvil itself has no limit
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    assert direct and head > 2 * LIMIT
    refusals, passed = len(proxy.refused), len(proxy.passed)
    assert get_logs(client.rpc, _our_contracts(chain), 0, head) == [log for log in direct
                                                                      if int(log["blockNumber"], 16) <= head]
    assert len(proxy.refused) > refusals  # 5,000 blocks asked first, halved until the node accepts
    assert all(b - a <= LIMIT for a, b in proxy.passed[passed:])

    reader = LogReader(client.rpc, LIMIT)  # the setting at the node's limit: never refused
    refusals = len(proxy.refused)
    assert reader.get(_our_contracts(chain), 0, head) == get_logs(chain.client.rpc, _our_contracts(chain), 0, head)
    assert len(proxy.refused) == refusals and reader.refusals == 0


def test_too_many_results_halves_the_span_and_one_block_too_full_is_raised(chain: Chain) -> None:
    """The other refusal nodes give (hosted Geth: "query returned more than 10000 results"): halving
    helps until one block alone holds more than the endpoint returns; that is raised, not looped on."""
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    direct = get_logs(chain.client.rpc, _our_contracts(chain), 0, head)
    per_block: dict[str, int] = {}
    for log in direct:
        per_block[log["blockNumber"]] = per_block.get(log["blockNumber"], 0) + 1
    fullest = max(per_block.values())
    assert fullest > 1 and len(direct) > fullest
    for cap, works in ((fullest, True), (fullest - 1, False)):
        proxy = RangeLimitedRpc(chain.settings.rpc_url, max_range=10**9, max_results=cap).start()
        try:
            reader = LogReader(RpcClient(proxy.url))
            if works:
                assert reader.get(_our_contracts(chain), 0, head) == direct and reader.refusals > 0
            else:
                with pytest.raises(RpcError) as failed:
                    reader.get(_our_contracts(chain), 0, head)
                assert failed.value.rpc_message == too_many_results(cap)["message"] and reader.span == 1
        finally:
            proxy.stop()


def test_an_error_that_is_not_about_the_range_is_raised_not_halved(
        limited: tuple[RangeLimitedRpc, ChainClient]) -> None:
    proxy, client = limited
    refusals = len(proxy.refused)
    with pytest.raises(RpcError) as failed:
        get_logs(client.rpc, {"address": "0xnot-an-address"}, 0, 10)
    assert not is_range_refusal(failed.value) and len(proxy.refused) == refusals


def test_a_council_proposal_is_found_through_the_limit(chain: Chain, limited: tuple[RangeLimitedRpc, ChainClient]) -> None:
    proxy, client = limited
    count = int(chain.client.call1("GovernanceCouncil", "proposalCount"))
    assert count >= 1
    refusals = len(proxy.refused)
    for proposal in (1, count):  # the deploy's first (oldest) and the newest
        assert Council(client).proposal(proposal) == Council(chain.client).proposal(proposal)
    assert len(proxy.refused) > refusals
    assert Council(client, max_logs_range=LIMIT).proposal(1) == Council(chain.client).proposal(1)


def test_the_indexer_syncs_through_the_limit(chain: Chain, limited: tuple[RangeLimitedRpc, ChainClient],
                                             tmp_path: Path) -> None:
    proxy, client = limited

    def rows(path: Path, via: ChainClient, **kw: int) -> list[Any]:
        index = Indexer(path, via.rpc, chain.deployment, contract_abis(), **kw)
        try:
            report = index.sync()
            assert report.to_block >= 3 * LIMIT
        finally:
            index.close()
        with opened_db(path) as db:
            return db.execute("SELECT * FROM logs WHERE block <= ? ORDER BY block, log_index",
                              (report.to_block,)).fetchall()

    direct = rows(tmp_path / "direct.sqlite", chain.client)
    refusals = len(proxy.refused)
    assert rows(tmp_path / "halved.sqlite", client)[: len(direct)] == direct
    assert len(proxy.refused) > refusals
    refusals = len(proxy.refused)
    assert rows(tmp_path / "at-limit.sqlite", client, max_logs_range=LIMIT)[: len(direct)] == direct
    assert len(proxy.refused) == refusals


def test_the_allowlist_is_rebuilt_through_the_limit(chain: Chain, limited: tuple[RangeLimitedRpc, ChainClient]) -> None:
    proxy, client = limited
    refusals = len(proxy.refused)
    assert registry_accounts(client, chain.deployment) == registry_accounts(chain.client, chain.deployment)
    assert len(proxy.refused) > refusals


def test_the_seal_watch_and_vault_reads_work_through_the_limit(fresh_chain: Chain, tmp_path: Path) -> None:
    """On a chain of its own: a vault on the session chain belongs to the vault tests that verify it whole
    (tests/vaults/test_service_chain.py checks electricity's every commitment against its own store)."""
    chain = fresh_chain
    with _limited(chain) as (proxy, client):
        _seal_watch_and_vault_reads(chain, proxy, client, tmp_path)


def _seal_watch_and_vault_reads(chain: Chain, proxy: RangeLimitedRpc, client: ChainClient, tmp_path: Path) -> None:
    vault = "electricity"
    assert not SealWatch(chain.client, vault).state().sealed
    refusals = len(proxy.refused)
    watch = SealWatch(client, vault)
    assert watch.state() == SealWatch(chain.client, vault).state()
    assert not watch.state().sealed
    assert len(proxy.refused) > refusals

    service = _service(chain, tmp_path / "vaults", vault, client=client, seal_state=watch.state)
    people = _people(service)
    service.write(people["writer"], "meter-1", b"account 1: 412 kWh")
    chain.client.rpc.call("anvil_mine", [hex(2 * LIMIT)])  # the write is now more than a limit behind the head
    assert service.read(people["reader"], "meter-1", "billing dispute").content == b"account 1: 412 kWh"
    assert all(b - a <= LIMIT for a, b in proxy.passed)
