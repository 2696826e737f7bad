"""EventLedger's bounds against a real Anvil (issue 13): batches cut by bytes as well as count, and a
per-oracle budget per block that the recorder keeps and, when another sender spent it, waits out.

Interval mining is what makes several batches of one oracle share a block (automine gives every
transaction a block of its own); the tests switch a freshly deployed chain to it, or stop mining while
they queue transactions and mine one block by hand, so that what shares a block is certain.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any

import pytest

from chain import outbox as ob
from chain.recorder import EventRecorder
from chain.rpc import RpcError
from core.errors import ContractRejected
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.chain.test_ledger_and_audit import audit
from tests.support import oracle, recorder

NODE = to_bytes32("bounds-node")
EIP_7825_CAP = 16_777_216


def _big_payloads(count: int, length: int = ob.MAX_PAYLOAD) -> list[tuple[int, bytes, bytes]]:
    """Incompressible payloads (hex of random bytes): the dearest calldata per byte."""
    return [(1, NODE, os.urandom(length // 2).hex().encode()) for _ in range(count)]


def _logs(chain: Any, event: str, address: str, from_block: int = 0) -> list[Any]:
    """The ledger's `event` logs of oracle `address`, decoded."""
    topic = "0x" + chain.client.abi("EventLedger").topic(event).hex()
    logs = chain.client.rpc.call("eth_getLogs", [{
        "address": chain.deployment.event_ledger, "fromBlock": hex(from_block), "toBlock": "latest",
        "topics": [topic, "0x" + "00" * 12 + address[2:].lower()],
    }])
    return list(chain.client.decode_logs({"logs": logs}))


def _oracle_batches(chain: Any, address: str, from_block: int = 0) -> list[dict[str, Any]]:
    """Every BatchSigned of `address` with its transaction's block, calldata length and gas used."""
    out = []
    for log in _logs(chain, "BatchSigned", address, from_block):
        tx_hash = "0x" + log.tx_hash.hex()
        tx = chain.client.rpc.call("eth_getTransactionByHash", [tx_hash])
        receipt = chain.client.rpc.call("eth_getTransactionReceipt", [tx_hash])
        out.append({
            "block": log.block_number, "calldata": (len(tx["input"]) - 2) // 2,
            "gas": int(receipt["gasUsed"], 16), "count": int(log.args["count"]),
            "first": int(log.args["firstSeq"]), "last": int(log.args["lastSeq"]),
        })
    return out


def _recorded_seqs(chain: Any, address: str) -> list[int]:
    return [int(log.args["seq"]) for log in _logs(chain, "EventRecorded", address)]


def _reverted_from(chain: Any, address: str, first_block: int) -> int:
    """Transactions from `address` mined since `first_block` that reverted."""
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    failed = 0
    for number in range(first_block, head + 1):
        block = chain.client.rpc.call("eth_getBlockByNumber", [hex(number), True])
        for tx in block["transactions"]:
            if tx["from"].lower() == address.lower():
                receipt = chain.client.rpc.call("eth_getTransactionReceipt", [tx["hash"]])
                failed += int(receipt["status"], 16) != 1
    return failed


def _interval_mining(chain: Any, seconds: int = 1) -> None:
    chain.client.rpc.call("evm_setAutomine", [False])
    chain.client.rpc.call("evm_setIntervalMining", [seconds])


def _head(chain: Any) -> int:
    return int(chain.client.rpc.call("eth_blockNumber"), 16)


def test_python_copies_of_the_bounds_match_the_contract(chain) -> None:  # type: ignore[no-untyped-def]
    on_chain = {name: int(chain.client.call1("EventLedger", name)) for name in (
        "MAX_BATCH", "MAX_PAYLOAD", "EVENT_HEAD_BYTES", "BATCH_OVERHEAD_BYTES", "MAX_BATCH_BYTES",
        "MAX_BATCHES_PER_BLOCK", "MAX_BYTES_PER_BLOCK")}
    assert on_chain == {
        "MAX_BATCH": ob.MAX_BATCH_EVENTS, "MAX_PAYLOAD": ob.MAX_PAYLOAD, "EVENT_HEAD_BYTES": ob.EVENT_HEAD_BYTES,
        "BATCH_OVERHEAD_BYTES": ob.BATCH_OVERHEAD_BYTES, "MAX_BATCH_BYTES": ob.MAX_BATCH_BYTES,
        "MAX_BATCHES_PER_BLOCK": ob.MAX_BATCHES_PER_BLOCK, "MAX_BYTES_PER_BLOCK": ob.MAX_BYTES_PER_BLOCK,
    }


def test_outbox_is_cut_into_batches_by_bytes_and_each_stays_far_below_the_gas_cap(chain) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "healthcare", 4)
    rec = recorder(chain.client, chain.settings, ident)
    rec.sync()
    start = _head(chain)
    rec.outbox.append_many(_big_payloads(70))
    sizes: list[int] = []
    report = rec.flush(max_batch=500, on_confirmed=lambda n, _: sizes.append(n))
    assert sizes == [30, 30, 10]  # 30 events of 4,096 bytes encode to 128,640 <= 131,072; 31 would not
    assert report.events == 70
    batches = _oracle_batches(chain, ident.address, start)
    assert [b["count"] for b in batches] == [30, 30, 10]
    for b in batches:
        # what the transaction carried is exactly the canonical encoding the ledger counted
        assert b["calldata"] == ob.BATCH_OVERHEAD_BYTES + b["count"] * ob.encoded_size(ob.MAX_PAYLOAD)
        assert b["gas"] < EIP_7825_CAP // 3, b
    # and by count: small events go 512 at most to a batch whatever max_batch asks
    rec.outbox.append_many((1, NODE, b"{}") for _ in range(600))
    sizes.clear()
    rec.flush(max_batch=1024, on_confirmed=lambda n, _: sizes.append(n))
    assert sizes == [512, 88]
    assert rec.chain_last_seq() == rec.outbox.last_seq()


def test_an_event_too_big_on_its_own_is_refused_before_it_gets_a_number(chain) -> None:  # type: ignore[no-untyped-def]
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "healthcare", 4))
    before = rec.outbox.last_seq()
    from core.errors import InvalidEvent

    with pytest.raises(InvalidEvent):
        rec.outbox.append_many([(1, NODE, b"x"), (1, NODE, b"y" * (ob.MAX_PAYLOAD + 1))])
    assert rec.outbox.last_seq() == before  # not even the good one before it


def test_the_ledger_refuses_a_third_full_batch_of_one_oracle_in_one_block(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The attack the budget stops: one oracle queues more than its share of a block."""
    chain = fresh_chain
    ident = oracle(chain.settings, "water", 2)
    ledger = chain.deployment.event_ledger
    payloads = [os.urandom(ob.MAX_PAYLOAD // 2).hex().encode() for _ in range(90)]
    batches = [
        sign_batch(ident, chain_id=chain.client.chain_id, ledger=ledger, events=[
            EventToSign(seq=s, kind=1, node=NODE, payload=payloads[s - 1]) for s in range(first, first + 30)])
        for first in (1, 31, 61)
    ]
    chain.client.rpc.call("evm_setAutomine", [False])  # queue all three, then mine ONE block
    sent = [chain.client.send(ident.account, "EventLedger", "recordBatch", b.event_inputs(), b.key_epoch,
                              b.pq_signature, gas=8_000_000) for b in batches]
    chain.client.rpc.call("evm_mine", [])
    block = _head(chain)
    chain.client.wait(sent[0])
    chain.client.wait(sent[1])
    with pytest.raises(ContractRejected):
        chain.client.wait(sent[2])
    # replayed on the block's own state, the third is refused for the budget, not for its sequence
    tx = chain.client.rpc.call("eth_getTransactionByHash", [sent[2].tx_hash])
    assert int(tx["blockNumber"], 16) == block
    with pytest.raises(RpcError) as refused:
        chain.client.rpc.call("eth_call", [{"from": tx["from"], "to": tx["to"], "data": tx["input"]}, hex(block)])
    error = chain.client.translate(refused.value, "EventLedger")
    assert isinstance(error, ContractRejected) and error.error == "LedgerRateLimited"
    assert error.args_by_name["batches"] == 3
    assert error.args_by_name["size"] == 3 * 30 * ob.encoded_size(ob.MAX_PAYLOAD)
    assert int(chain.client.call1("EventLedger", "lastSeq", ident.address)) == 60
    usage = chain.client.call("EventLedger", "blockUsage", ident.address)
    assert (int(usage[0]), int(usage[1]), int(usage[2])) == (block, 2, 2 * 30 * ob.encoded_size(ob.MAX_PAYLOAD))
    chain.client.rpc.call("evm_setAutomine", [True])


def test_the_recorder_keeps_each_block_within_the_oracle_budget(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    ident = oracle(chain.settings, "water", 3)
    rec = recorder(chain.client, chain.settings, ident)
    rec.sync()
    _interval_mining(chain, 1)
    start = _head(chain) + 1
    rec.outbox.append_many(_big_payloads(150))  # 5 full batches: 2.5 blocks' budget
    report = rec.flush()
    assert report.events == 150 and report.batches == 5
    batches = _oracle_batches(chain, ident.address, start)
    per_block: Counter[int] = Counter()
    for b in batches:
        per_block[b["block"]] += b["count"] * ob.encoded_size(ob.MAX_PAYLOAD)
    assert all(size <= ob.MAX_BYTES_PER_BLOCK for size in per_block.values()), per_block
    assert len(per_block) >= 3  # five full batches need three blocks at least
    assert _reverted_from(chain, ident.address, start) == 0  # the recorder never ran into the limit
    assert sorted(_recorded_seqs(chain, ident.address)) == list(range(1, 151))
    chain.client.rpc.call("evm_setAutomine", [True])


def _mine_when_pending(chain: Any, address: str, count: int, then_interval: int) -> threading.Thread:
    """Mine one block by hand as soon as `address` has `count` transactions waiting, then go back to
    interval mining: makes "these transactions share a block" certain."""
    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = int(chain.client.rpc.call("eth_getTransactionCount", [address, "pending"]), 16)
            latest = int(chain.client.rpc.call("eth_getTransactionCount", [address, "latest"]), 16)
            if pending - latest >= count:
                break
            time.sleep(0.02)
        chain.client.rpc.call("evm_mine", [])
        chain.client.rpc.call("evm_setIntervalMining", [then_interval])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_batch_refused_for_the_budget_is_sent_again_in_a_later_block_exactly_once(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """A sender that ignores the budget (another process on the same account, an older recorder):
    the ledger refuses what exceeds it, the batches behind fail on their sequence, and the flush
    re-syncs and sends them again in later blocks. Nothing is lost, nothing recorded twice."""
    chain = fresh_chain
    ident = oracle(chain.settings, "sewage", 3)
    rec = recorder(chain.client, chain.settings, ident)
    rec.sync()
    unaware = EventRecorder(chain.client, ident, rec.outbox)
    unaware.batches_per_block = 1_000
    unaware.bytes_per_block = 10**9
    start = _head(chain) + 1
    chain.client.rpc.call("evm_setAutomine", [False])
    unaware.outbox.append_many(_big_payloads(120))  # four full batches, all sent at once
    miner = _mine_when_pending(chain, ident.address, 4, then_interval=1)
    report = unaware.flush()
    miner.join(timeout=5)
    assert _reverted_from(chain, ident.address, start) >= 2  # the third (budget) and the fourth (its gap)
    assert rec.chain_last_seq() == 120 == rec.outbox.last_seq()
    assert sorted(_recorded_seqs(chain, ident.address)) == list(range(1, 121))  # each exactly once
    assert rec.outbox.pending_count() == 0
    assert report.events == 120
    assert audit(chain).ok
    chain.client.rpc.call("evm_setAutomine", [True])


def test_many_small_batches_stay_within_eight_per_block(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Attack by many small transactions: the recorder itself sends at most eight batches a block."""
    chain = fresh_chain
    ident = oracle(chain.settings, "electricity", 3)
    rec = recorder(chain.client, chain.settings, ident)
    rec.sync()
    chain.client.inflight_per_sender = 16
    start = _head(chain) + 1
    _interval_mining(chain, 1)
    rec.outbox.append_many((1, NODE, b"{}") for _ in range(20))
    rec.flush(max_batch=1)  # twenty one-event batches
    per_block = Counter(b["block"] for b in _oracle_batches(chain, ident.address, start))
    assert sum(per_block.values()) == 20 and max(per_block.values()) <= ob.MAX_BATCHES_PER_BLOCK, per_block
    assert _reverted_from(chain, ident.address, start) == 0
    chain.client.rpc.call("evm_setAutomine", [True])
