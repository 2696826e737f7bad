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


def test_an_oracle_reinstated_after_a_quarantine_rotates_its_key_before_signing_again(fresh_chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from chain.connect import contract_abis
    from chain.consortium import SECTORS
    from chain.deploy import oracle_keystore
    from chain.governance import Council
    from chain.indexer import Indexer
    from chain.quorum import Action, QuorumClient
    from chain.rotation import rotate_oracle_key, rotation_owed
    from oracles.ingest.sink import ReadingSink
    from oracles.node import KeyRotationOwed, NodeOptions, OracleNode
    from tests.oracles.test_oracle_node import LimitModel
    from tests.support import governor

    chain = fresh_chain
    water = [oracle(chain.settings, "water", i) for i in (1, 2, 3, 4)]
    suspect = water[3]
    index = Indexer(tmp_path / "index.sqlite", chain.client.rpc, chain.deployment, contract_abis())

    def owed() -> bool:
        index.sync()
        return rotation_owed(index.db, suspect.address)

    assert not owed()
    quorum = QuorumClient(chain.client)
    target = bytes(12) + bytes.fromhex(suspect.address[2:])
    pid = quorum.propose(water[0], Action.QUARANTINE, target, to_bytes32("bad ML-DSA signature"))
    for peer in water[1:3]:
        quorum.vote(peer, pid)
    assert owed()  # quarantined: its key can no longer be trusted, whatever governance decides
    Council(chain.client, [governor(chain.settings, s) for s in SECTORS]).pass_proposal(
        [("Registry", "reinstateOracle", [suspect.address, to_bytes32("investigated: a bad disk")])], "reinstate")
    assert owed()  # reinstated, but still on the old key

    node = OracleNode(settings=chain.settings, client=chain.client, deployment=chain.deployment, identity=suspect,
                      model=LimitModel(), sink=ReadingSink(), options=NodeOptions(peer_interval_s=0.0))
    with pytest.raises(KeyRotationOwed, match="reinstated after a quarantine"):
        node.run_once()  # the loop stops; `qeaims oracle` rotates and serves again (oracles/process.py)
    node.close()
    result = rotate_oracle_key(chain.client, oracle_keystore(chain.settings, "water", 4), chain.settings.passphrase)
    assert result.new_epoch == result.old_epoch + 1
    assert not owed()
    index.close()
