"""Hybrid-signed events on the ledger, and the audit that re-checks them from chain data alone."""

from __future__ import annotations

import json

import pytest

from chain.audit import verify_chain_history
from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.recorder import canonical_payload
from core.errors import ContractRejected
from core.kinds import kind_by_name
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.support import oracle, recorder


def audit(chain):  # type: ignore[no-untyped-def]
    index = Indexer(chain.settings.index_path, chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    try:
        return verify_chain_history(index.db, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                                    registry=chain.deployment.registry)
    finally:
        index.close()


def test_events_are_recorded_in_order_and_verify(chain) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "electricity", 1)
    rec = recorder(chain.client, chain.settings, ident)
    before = rec.chain_last_seq()
    for i in range(3):
        rec.outbox.append(kind_by_name("telemetry-root"), to_bytes32("feeder-1"), canonical_payload({"i": i}))
    report = rec.flush()
    assert report.events == 3
    assert rec.chain_last_seq() == before + 3
    result = audit(chain)
    assert result.ok, result.invalid
    assert result.valid == result.events >= 3


def test_many_events_go_in_few_transactions(chain) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "banking", 2)
    rec = recorder(chain.client, chain.settings, ident)
    rec.outbox.append_many((0, to_bytes32("dc-primary"), canonical_payload({"root": i})) for i in range(1200))
    report = rec.flush(max_batch=500)
    assert (report.events, report.batches) == (1200, 3)
    assert audit(chain).ok


def test_replayed_sequence_is_rejected(chain) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "sewage", 1)
    rec = recorder(chain.client, chain.settings, ident)
    rec.record(kind_by_name("anomaly"), to_bytes32("lift-1"), b"{}")
    last = rec.chain_last_seq()
    replay = sign_batch(ident, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                        events=[EventToSign(seq=last, kind=1, node=to_bytes32("lift-1"), payload=b"{}")])
    with pytest.raises(ContractRejected) as rejected:
        chain.client.transact(ident.account, "EventLedger", "recordBatch", replay.event_inputs(), replay.key_epoch,
                              replay.pq_signature)
    assert rejected.value.error == "LedgerSequenceNotIncreasing"
    assert "EventLedger rejected the transaction" in str(rejected.value)


def test_unregistered_account_cannot_record(chain) -> None:  # type: ignore[no-untyped-def]
    from tests.support import governor

    outsider = governor(chain.settings, "water")  # a governor is not an oracle
    batch = sign_batch(outsider, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                       events=[EventToSign(seq=1, kind=1, node=to_bytes32("pump-1"), payload=b"{}")])
    with pytest.raises(ContractRejected) as rejected:
        chain.client.transact(outsider.account, "EventLedger", "recordBatch", batch.event_inputs(),
                              batch.key_epoch, batch.pq_signature)
    assert rejected.value.error == "LedgerNotActiveOracle"


def test_tampered_mldsa_signature_is_reported_by_audit(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    ident = oracle(chain.settings, "water", 3)
    rec = recorder(chain.client, chain.settings, ident)
    rec.record(kind_by_name("fault"), to_bytes32("pump-2"), canonical_payload({"honest": True}))
    seq = rec.chain_last_seq() + 1
    good = sign_batch(ident, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                      events=[EventToSign(seq=seq, kind=2, node=to_bytes32("pump-2"), payload=b'{"x":1}')])
    forged = bytearray(good.pq_signature)
    forged[100] ^= 0x01
    # the EVM cannot check ML-DSA: the ledger accepts it; the audit must catch it
    chain.client.transact(ident.account, "EventLedger", "recordBatch", good.event_inputs(), good.key_epoch,
                          bytes(forged))
    result = audit(chain)
    assert not result.ok
    assert [(i["seq"], i["reason"]) for i in result.invalid] == [(seq, "ML-DSA-65 signature does not verify")]
    assert result.valid == result.events - 1
    json.dumps(result.as_dict())  # the --json output is serialisable
