"""The production path on a second EVM client: the consortium deployed by `deploy_dev_consortium`, events
recorded through the ledger (`EventRecorder`), nodes isolated by three of four oracles' signed votes, and
`qeaims audit verify` passing, all on Hardhat's node mining on a timer with a zero base fee and a
30M block gas limit, at a chain id that is not Anvil's (docs/evm-clients.md).

One test runs the path in order (see its docstring for why one); each step is a function of its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chain.artifacts import CONTRACTS
from chain.client import TX_GAS_CAP
from chain.connect import connect
from chain.hardhat_node import SECOND_CLIENT_CHAIN_ID
from chain.isolation_bench import isolate_concurrently
from chain.quorum import Action, QuorumClient
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.ids import to_bytes32
from tests.conftest import Chain
from tests.second_client.conftest import BLOCK_MS
from tests.support import isolate_by_quorum, oracle, recorder, run_main

pytestmark = pytest.mark.chain

EIP170_CODE_LIMIT = 24_576
LEDGER_EVENTS = 30


def test_the_production_path_runs_on_hardhat(hardhat_chain: Chain, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One test, in the order the city does it, so that pytest-xdist cannot hand its parts to two
    workers and pay the deployment (most of the suite's time) twice."""
    chain = hardhat_chain
    _the_consortium_is_deployed_and_reachable_through_the_manifest(chain)
    _the_ledger_records_every_event_once_in_order(chain)
    _three_of_four_oracles_isolate_two_do_not(chain)
    _isolation_takes_a_few_block_periods(chain)
    _audit_verify_passes(chain, capsys, monkeypatch)
    _deployed_code_is_within_eip170(chain)
    _every_transaction_is_within_eip7825(chain)


def _the_consortium_is_deployed_and_reachable_through_the_manifest(chain: Chain) -> None:
    client, deployment = connect(chain.settings)
    assert deployment.chain_id == client.chain_id == SECOND_CLIENT_CHAIN_ID
    assert client.call1("IsolationQuorum", "requiredVotes", to_bytes32("water")) == 3
    assert len(client.call1("GovernanceCouncil", "governors")) == 6


def _the_ledger_records_every_event_once_in_order(chain: Chain) -> None:
    """30 events in batches of 8, pipelined within the oracle's window; then a restarted oracle (a new
    client and recorder on the same outbox, as after a crash) continues the sequence."""
    identity = oracle(chain.settings, "healthcare", 4)
    ledger = recorder(chain.client, chain.settings, identity)
    ledger.sync()
    for i in range(LEDGER_EVENTS):
        ledger.outbox.append(kind_by_name("telemetry-root"), to_bytes32("hospital-1"), canonical_payload({"i": i}))
    first = ledger.flush(max_batch=8)
    assert (first.events, first.batches) == (LEDGER_EVENTS, 4)
    client, _ = connect(chain.settings)
    restarted = recorder(client, chain.settings, identity)
    restarted.sync()
    restarted.outbox.append(kind_by_name("telemetry-root"), to_bytes32("hospital-1"),
                            canonical_payload({"i": "after"}))
    assert restarted.flush().events == 1
    assert chain.client.call1("EventLedger", "lastSeq", identity.address) == LEDGER_EVENTS + 1
    assert recorder(chain.client, chain.settings, identity).outbox.pending_count() == 0


def _three_of_four_oracles_isolate_two_do_not(chain: Chain) -> None:
    """The tests' own path (record the verdict, propose citing it, two more vote): three of four isolate."""
    quorum = QuorumClient(chain.client)
    executed = isolate_by_quorum(chain, "water", "pump-1", "pump-1")
    assert quorum.view(executed).state == "executed"
    assert quorum.node_status(to_bytes32("pump-1")) == "isolated"
    two = [oracle(chain.settings, "banking", i) for i in (1, 2)]
    pid = quorum.propose(two[0], Action.ISOLATE, to_bytes32("dc-primary"), to_bytes32("two are not a quorum"))
    quorum.vote(two[1], pid)
    assert quorum.view(pid).state == "open"
    assert quorum.node_status(to_bytes32("dc-primary")) == "active"


def _isolation_takes_a_few_block_periods(chain: Chain) -> None:
    """The oracles' path (propose; the others vote at once), timed. Sane bounds only (the figures are
    the bench's, docs/evm-clients.md): the votes, sent when the proposal's block is mined, wait for the
    next block, so at least about one period and two blocks; at most twenty periods, loose enough for a
    loaded CI machine (it takes two on an idle one)."""
    period = BLOCK_MS / 1000
    for sector, node in (("electricity", "feeder-1"), ("sewage", "lift-1"), ("transportation", "signals-centre")):
        sample = isolate_concurrently(chain.client, chain.settings, sector, node)
        assert 0.8 * period <= sample.latency_s <= 20 * period, sample
        assert 2 <= sample.blocks <= 20, sample


def _audit_verify_passes(chain: Chain, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = chain.settings
    monkeypatch.setenv("QEAIMS_HOME", str(settings.home))
    monkeypatch.setenv("QEAIMS_RPC_URL", settings.rpc_url)
    monkeypatch.setenv("QEAIMS_SCRYPT_N", str(settings.scrypt_n))
    code, out, err = run_main(capsys, "audit", "verify", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] and not report["problems"] and not report["skipped"], report


def _deployed_code_is_within_eip170(chain: Chain) -> None:
    rpc = chain.client.rpc
    assert set(chain.deployment.addresses()) == set(CONTRACTS)
    for name, address in chain.deployment.addresses().items():
        size = (len(rpc.call("eth_getCode", [address, "latest"])) - 2) // 2
        assert 0 < size <= EIP170_CODE_LIMIT, (name, size)


def _every_transaction_is_within_eip7825(chain: Chain) -> None:
    """Deploy, council proposals, funding, ledger batches, proposals and votes: every transaction the
    chain holds carries a gas limit within 2^24 (the node, at hardfork osaka, would refuse one above)."""
    rpc = chain.client.rpc
    head = int(rpc.call("eth_blockNumber"), 16)
    blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), True]) for n in range(head + 1)])
    txs: list[dict[str, Any]] = [tx for block in blocks for tx in block["transactions"]]
    functions = {tx["input"][:10] for tx in txs}
    assert len(txs) > 100 and len(functions) > 10  # the whole path, not a handful of transfers
    too_big = [(tx["hash"], int(tx["gas"], 16)) for tx in txs if int(tx["gas"], 16) > TX_GAS_CAP]
    assert not too_big
