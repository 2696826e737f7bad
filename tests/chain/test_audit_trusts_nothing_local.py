"""`qeaims audit verify` starts from nothing local (issue 13, class 5): it builds its own index from
eth_getLogs, checks it against on-chain counters, and explains every role and status change."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from chain.audit import check_governance, check_index_against_chain, verify_everything
from chain.connect import contract_abis
from chain.deploy import dev_controller
from chain.indexer import Indexer
from chain.recorder import canonical_payload
from chain.registry_history import REPAIR_ROLE, RegistryHistory
from keys.hybrid import sign_batch
from keys.ids import to_bytes32
from keys.messages import EventToSign
from tests.conftest import run_cli
from tests.support import isolate_by_quorum, oracle, recorder


def _forge_batch(chain) -> str:  # type: ignore[no-untyped-def]
    """A batch the ledger accepts (it cannot check ML-DSA) whose signature does not verify; its tx hash."""
    ident = oracle(chain.settings, "water", 3)
    rec = recorder(chain.client, chain.settings, ident)
    seq = rec.chain_last_seq() + 1
    batch = sign_batch(ident, chain_id=chain.client.chain_id, ledger=chain.deployment.event_ledger,
                       events=[EventToSign(seq=seq, kind=2, node=to_bytes32("pump-2"), payload=b'{"forged":1}')])
    forged = bytearray(batch.pq_signature)
    forged[100] ^= 1
    receipt = chain.client.transact(ident.account, "EventLedger", "recordBatch", batch.event_inputs(),
                                    batch.key_epoch, bytes(forged))
    return str(receipt["transactionHash"]).lower() if str(receipt["transactionHash"]).startswith("0x") else \
        "0x" + bytes(receipt["transactionHash"]).hex()


def _index(chain, path: Path) -> Indexer:  # type: ignore[no-untyped-def]
    index = Indexer(path, chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    return index


def test_a_cache_edited_to_hide_a_forged_batch_is_not_trusted(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    recorder(chain.client, chain.settings, oracle(chain.settings, "water", 1)).record(
        1, to_bytes32("pump-1"), canonical_payload({"honest": True}))
    isolate_by_quorum(chain, "water", "pump-1", "pump:10")  # status changes the audit must explain
    chain.client.transact(dev_controller(chain.settings).account, "IsolationQuorum", "beginRepair",
                          to_bytes32("pump-1"))
    clean = run_cli(["audit", "verify", "--json"], chain.env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    anchor = json.loads(clean.stdout)["anchor"]
    _index(chain, chain.settings.index_path).close()  # the cached index the oracles and `audit events` use

    tx = _forge_batch(chain)
    _index(chain, chain.settings.index_path).close()  # the cache now holds the forged batch...
    db = sqlite3.connect(chain.settings.index_path)
    with db:  # ...and someone deletes every trace of it
        for table in ("batches", "events", "logs"):
            db.execute(f"DELETE FROM {table} WHERE tx_hash = ?", (tx,))
    db.close()

    fresh = run_cli(["audit", "verify", "--anchor", anchor], chain.env)  # never reads the cache
    assert fresh.returncode == 1, fresh.stdout + fresh.stderr
    assert "ML-DSA-65 signature does not verify" in fresh.stdout
    assert "the chain no longer holds" not in fresh.stdout  # the earlier anchor is still in the chain
    # there is no way left to make verify read the cache
    assert run_cli(["audit", "verify", "--cached"], chain.env).returncode == 2
    as_json = run_cli(["audit", "verify", "--json"], chain.env)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert not report["ok"] and [i["reason"] for i in report["invalid"]] == ["ML-DSA-65 signature does not verify"]


def test_an_anchor_the_chain_no_longer_holds_is_a_finding(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Review finding F2: a dev chain whose journal's tail was cut replays to a shorter (or other)
    history that verifies on its own; the anchor an earlier audit printed shows it."""
    chain = fresh_chain
    head = int(chain.client.rpc.call("eth_blockNumber"), 16)
    other = "0x" + "ab" * 32
    result = run_cli(["audit", "verify", "--anchor", f"{head}:{other}", "--anchor", f"{head + 1000}:{other}"],
                     chain.env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"the chain no longer holds block {head} as {other}" in result.stdout
    assert f"block {head + 1000} as {other} (no such block)" in result.stdout
    bad = run_cli(["audit", "verify", "--anchor", "latest"], chain.env)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


def test_the_index_check_catches_rows_dropped_or_changed(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    recorder(chain.client, chain.settings, oracle(chain.settings, "water", 1)).record(
        1, to_bytes32("pump-1"), canonical_payload({"i": 1}))
    index = _index(chain, tmp_path / "index.sqlite")
    head = index.last_block
    assert check_index_against_chain(index.db, chain.client, RegistryHistory.from_db(index.db), head) == []
    index.close()

    def tampered(sql: str, *params: object) -> list[str]:
        copy = tmp_path / f"copy-{abs(hash(sql))}.sqlite"
        shutil.copy(tmp_path / "index.sqlite", copy)
        db = sqlite3.connect(copy)
        with db:
            db.execute(sql, params)
        try:
            return [p["message"] for p in check_index_against_chain(db, chain.client, RegistryHistory.from_db(db),
                                                                    head)]
        finally:
            db.close()

    water_4 = oracle(chain.settings, "water", 4).address.lower()
    # an oracle forgotten: the sector's membership (and so every recounted quorum) would shrink
    found = tampered("DELETE FROM logs WHERE event = 'OracleRegistered' AND json_extract(args, '$.account') = ?",
                     water_4)  # (indexed addresses are stored lower-case)
    assert any("oracleSlots(water) is 4" in m for m in found), found
    assert any("activeOracleCount(water)" in m for m in found)
    # an event dropped from the events table only, or the last one of an oracle everywhere
    assert any("EventRecorded logs but" in m for m in tampered("DELETE FROM events"))
    assert any("lastSeq" in m for m in tampered("DELETE FROM logs WHERE event = 'EventRecorded'"))
    # a key swapped in the index: the registry's key hash disagrees
    assert any("key epoch" in m for m in tampered("UPDATE oracle_keys SET key_hash = ? WHERE oracle = ?",
                                                  "0x" + "11" * 32, water_4))
    # a checkpoint of another chain
    assert any("checkpoint block" in m for m in tampered("UPDATE checkpoints SET hash = ?", "0x" + "22" * 32))


def _insert(db: sqlite3.Connection, block: int, tx: str, contract: str, event: str, args: dict[str, object]) -> None:
    index = int(db.execute("SELECT COALESCE(MAX(log_index), -1) + 1 FROM logs WHERE block = ?", (block,)).fetchone()[0])
    db.execute("INSERT INTO logs VALUES (?, ?, ?, ?, ?, ?, ?)", (block, index, tx, 0, contract, event, json.dumps(args)))


def test_every_role_override_repair_and_status_change_is_explained(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = _index(chain, tmp_path / "index.sqlite")
    try:
        history = RegistryHistory.from_db(index.db)
        assert check_governance(index.db, history, chain.deployment) == []
        controller = dev_controller(chain.settings).address.lower()
        assert history.has_role_at("IsolationQuorum", REPAIR_ROLE, controller, (index.last_block + 1, 0))
        assert not history.has_role_at("IsolationQuorum", REPAIR_ROLE, controller,
                                       (chain.deployment.deployed_at_block, 1 << 30))
        # what the contracts forbid, written into the index as if the chain had done it: each is reported
        block, outsider = index.last_block + 1, oracle(chain.settings, "water", 1).address
        grantee = oracle(chain.settings, "water", 2).address
        pump = "0x" + to_bytes32("main-1").hex()
        now = history.node_now(pump)
        assert now is not None and now.status == 1  # no test isolates the trunk main
        with index.db:
            _insert(index.db, block, "0xaa", "IsolationQuorum", "RoleGranted",
                    {"role": REPAIR_ROLE, "account": grantee, "sender": grantee})
            _insert(index.db, block, "0xbb", "Registry", "NodeStatusChanged",
                    {"node": pump, "sector": "0x" + to_bytes32("water").hex(), "from": 1, "to": 2, "statusEpoch": 2})
            _insert(index.db, block, "0xcc", "IsolationQuorum", "RepairStarted", {"node": pump, "by": outsider})
            _insert(index.db, block, "0xcc", "Registry", "NodeStatusChanged",
                    {"node": pump, "sector": "0x" + to_bytes32("water").hex(), "from": 2, "to": 3})
            _insert(index.db, block, "0xdd", "IsolationQuorum", "GovernanceOverride",
                    {"node": pump, "fromStatus": 3, "toStatus": 1, "reason": "0x" + "00" * 32})
            _insert(index.db, block, "0xdd", "Registry", "NodeStatusChanged",
                    {"node": pump, "sector": "0x" + to_bytes32("water").hex(), "from": 3, "to": 1})
        found = {p["check"]: p["message"] for p in check_governance(index.db, RegistryHistory.from_db(index.db),
                                                                    chain.deployment)}
        assert set(found) == {"roles", "status", "repair", "override"}, found
        assert "REPAIR_ROLE" in found["roles"] and "not the council" in found["roles"]
        assert "main-1 moved active → isolated with no quorum execution" in found["status"]
        assert "does not hold REPAIR_ROLE" in found["repair"]
        assert "not executed by the council" in found["override"]
        # ... and the same index fails the whole audit, with one readable line each
        report = verify_everything(index.db, chain.client, chain.deployment, head=index.last_block)
        assert not report.ok and all("\n" not in line for line in report.lines())
    finally:
        index.close()


def test_the_printed_anchor_is_the_audited_block_and_a_chain_replaced_meanwhile_is_a_finding(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Re-review finding: the anchor was read from the chain after the audit, so a history replaced
    while the audit ran got an anchor for blocks nobody audited. The anchor is now the hash the logs
    were read against, and a chain that no longer holds it is a finding."""
    from chain.audit_anchor import audited_anchor

    chain = fresh_chain
    index = _index(chain, tmp_path / "index.sqlite")
    head = index.last_block
    anchor, moved = audited_anchor(index.db, chain.client, head)
    assert moved == []
    assert anchor == f"{head}:{chain.client.rpc.call('eth_getBlockByNumber', [hex(head), False])['hash']}".lower()
    # the audited logs were read against another block at that height than the chain holds now
    index.db.execute("UPDATE checkpoints SET hash = ? WHERE number = ?", ("0x" + "ab" * 32, head))
    anchor, moved = audited_anchor(index.db, chain.client, head)
    index.close()
    assert anchor == f"{head}:0x{'ab' * 32}"
    assert [p["check"] for p in moved] == ["anchor"] and "no longer holds block" in moved[0]["message"]
