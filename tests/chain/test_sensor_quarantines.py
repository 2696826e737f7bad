"""Sensor quarantines an auditor recounts from chain data alone (issue 13, class 4).

Each forgery here was accepted by the old rule (any recorder, the payload's own `required`, cited
oracles of any sector and status): the audit must report it and `active_quarantines` ignore it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chain.audit import verify_chain_history
from chain.connect import contract_abis
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.quarantines import active_quarantines, quarantine_records
from chain.quorum import Action, QuorumClient
from chain.recorder import canonical_payload
from core.kinds import kind_by_name
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.support import oracle, recorder

INTRUSION, QUARANTINE = kind_by_name("intrusion"), kind_by_name("sensor-quarantine")


def _verdict(sensor: str, sector: str = "water") -> bytes:
    return canonical_payload({"sector": sector, "subject": "pump-1", "asset": "pump:10", "verdict": "intrusion",
                              "sensors": [[sensor, 0.9]]})


def _quarantine(sensor: str, evidence: list[list[Any]], required: int, sector: str = "water") -> bytes:
    return canonical_payload({"state": "quarantined", "sector": sector, "sensor": sensor, "asset": "pump:10",
                              "node": "pump-1", "evidence": evidence, "required": required})


def _intrusions(chain, sector: str, indexes: tuple[int, ...], sensor: str) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    out = []
    for i in indexes:
        ident = oracle(chain.settings, sector, i)
        seq = recorder(chain.client, chain.settings, ident).record(INTRUSION, to_bytes32("pump-1"),
                                                                   _verdict(sensor, sector))
        out.append([ident.address.lower(), seq])
    return out


def _index(chain, tmp: Path) -> Indexer:  # type: ignore[no-untyped-def]
    index = Indexer(tmp / "audit-index.sqlite", chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    return index


def _reasons(chain, index: Indexer) -> dict[str, str]:  # type: ignore[no-untyped-def]
    report = verify_chain_history(index.db, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                                  registry=chain.deployment.registry)
    by_seq = {(r.oracle.lower(), r.seq): r.sensor for r in quarantine_records(index.db)}
    return {by_seq.get((str(i["oracle"]).lower(), i["seq"]), "?"): i["reason"] for i in report.invalid
            if (str(i["oracle"]).lower(), i["seq"]) in by_seq}


def test_forged_quarantines_are_reported_and_ignored(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    stranger = recorder(chain.client, chain.settings, oracle(chain.settings, "electricity", 1))

    # honest: three Active water oracles (of four: q(4) = 3) named the sensor; the repair-role holder recorded it
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("honest", _intrusions(chain, "water", (1, 2, 3),
                                                                                            "honest"), 3))
    # 1. a recorder of another sector, without the repair role, forges one with required = 1 — even citing
    #    three genuine water verdicts it means nothing
    stranger.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("forged-recorder", _intrusions(
        chain, "water", (1, 2, 3), "forged-recorder"), 1))
    # 2. the right recorder, citing three oracles of another sector
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("other-sector", _intrusions(
        chain, "electricity", (1, 2, 3), "other-sector", ), 3))
    # 3. the payload's required lowered to the one verdict it has
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("lowered", _intrusions(
        chain, "water", (1,), "lowered"), 1))
    # 4. a citation of a verdict recorded only after the quarantine (the old rule looked it up at audit time)
    late = oracle(chain.settings, "water", 3)
    late_seq = recorder(chain.client, chain.settings, late).chain_last_seq() + 1
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("late", [
        *_intrusions(chain, "water", (1, 2), "late"), [late.address.lower(), late_seq]], 3))
    _intrusions(chain, "water", (3,), "late")
    # 5. one of three cited verdicts is in a batch whose ML-DSA signature does not verify
    evidence = _intrusions(chain, "water", (1, 2), "bad-signature")
    w4 = oracle(chain.settings, "water", 4)
    seq = recorder(chain.client, chain.settings, w4).chain_last_seq() + 1
    batch = sign_batch(w4, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                       events=[EventToSign(seq=seq, kind=INTRUSION, node=to_bytes32("pump-1"),
                                           payload=_verdict("bad-signature"))])
    broken = bytearray(batch.pq_signature)
    broken[7] ^= 1
    chain.client.transact(w4.account, "EventLedger", "recordBatch", batch.event_inputs(), batch.key_epoch,
                          bytes(broken))
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("bad-signature",
                                                                    [*evidence, [w4.address.lower(), seq]], 3))
    # 6. a lift recorded by someone without the repair role
    stranger.record(QUARANTINE, to_bytes32("pump-1"), canonical_payload(
        {"state": "lifted", "sector": "water", "sensor": "honest", "quarantine": 1}))

    index = _index(chain, tmp_path)
    try:
        assert active_quarantines(index.db, "water") == {"honest"}
        assert active_quarantines(index.db) == {"honest"}
        reasons = _reasons(chain, index)
    finally:
        index.close()
    assert set(reasons) == {"forged-recorder", "other-sector", "lowered", "late", "bad-signature", "honest"}
    assert "does not hold REPAIR_ROLE" in reasons["forged-recorder"]
    assert "cites 0 matching intrusion verdicts, needs 3" in reasons["other-sector"]
    assert "an oracle of another sector" in reasons["other-sector"]
    assert "cites 1 matching intrusion verdicts, needs 3" in reasons["lowered"]
    assert "the event claims 1 are required" in reasons["lowered"]
    assert "recorded after the decision" in reasons["late"]
    assert "signature does not verify" in reasons["bad-signature"]
    assert "lift of honest" in reasons["honest"] and "REPAIR_ROLE" in reasons["honest"]


def test_a_quarantined_oracles_verdict_counts_nothing(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    controller = recorder(chain.client, chain.settings, dev_controller(chain.settings))
    evidence = _intrusions(chain, "water", (1, 2, 4), "s1")  # water-4 speaks while still Active
    # its peers quarantine water-4 through the quorum
    quorum = QuorumClient(chain.client)
    w4 = oracle(chain.settings, "water", 4).address
    target = bytes(12) + bytes.fromhex(w4[2:])
    voters = [oracle(chain.settings, "water", i) for i in (1, 2, 3)]
    pid = quorum.propose(voters[0], Action.QUARANTINE, target, to_bytes32("forged-signature"))
    for voter in voters[1:]:
        quorum.vote(voter, pid)
    assert int(chain.client.call1("Registry", "oracle", w4)[4]) == 2  # Quarantined
    controller.record(QUARANTINE, to_bytes32("pump-1"), _quarantine("s1", evidence, 3))

    index = _index(chain, tmp_path)
    try:
        assert active_quarantines(index.db, "water") == set()
        reasons = _reasons(chain, index)
    finally:
        index.close()
    # the quarantined oracle still holds a slot: the requirement stays q(4) = 3, and only two count
    assert "cites 2 matching intrusion verdicts, needs 3" in reasons["s1"]
    assert "is quarantined, not an Active oracle of the sector" in reasons["s1"]
