"""Oracles check each other's ML-DSA signatures and quarantine a forger through the quorum."""

from __future__ import annotations

from chain.recorder import canonical_payload
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from oracles.peer_check import PeerChecker
from tests.support import oracle, recorder


def test_a_forged_signature_gets_its_sender_quarantined_by_its_peers(fresh_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    honest = [oracle(chain.settings, "water", i) for i in (1, 3, 4)]
    forger = oracle(chain.settings, "water", 2)
    recorder(chain.client, chain.settings, honest[0]).record(1, to_bytes32("pump-1"), canonical_payload({"ok": 1}))
    batch = sign_batch(forger, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                       events=[EventToSign(seq=1, kind=2, node=to_bytes32("pump-1"), payload=b'{"fake":1}')])
    forged = bytes([batch.pq_signature[0] ^ 0x55]) + batch.pq_signature[1:]
    chain.client.transact(forger.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch, forged)

    outsider = PeerChecker(chain.client, chain.deployment,
                           recorder(chain.client, chain.settings, oracle(chain.settings, "banking", 1)),
                           tmp_path / "banking-1.sqlite")
    seen = outsider.check()
    assert [(f.sender, f.action) for f in seen] == [(forger.address, "intrusion-event")]
    assert outsider.check() == []  # each batch is judged once

    actions = []
    for index, peer in enumerate(honest):
        checker = PeerChecker(chain.client, chain.deployment, recorder(chain.client, chain.settings, peer),
                              tmp_path / f"water-{index}.sqlite")
        actions += [f.action for f in checker.check()]
        checker.close()
    assert actions == ["quarantine-vote"] * 3
    assert int(chain.client.call1("Registry", "oracle", forger.address)[4]) == 2  # quarantined
    # the honest batch was never flagged, and the outsider's intrusion event verifies like any other
    assert outsider.check() == []
    outsider.close()
