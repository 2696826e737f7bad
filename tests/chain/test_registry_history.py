"""RegistryHistory: the registry and role holders at any position, replayed from logs (both shapes of
the status events: without and with the trailing statusEpoch of docs/TRUST.md)."""

from __future__ import annotations

import time

from chain.registry_history import REPAIR_ROLE, RegistryHistory, quorum_size, sector_key

WATER = sector_key("water")
A, B, C, D = (f"0x{i:040x}" for i in (10, 11, 12, 13))


def _history() -> RegistryHistory:
    reg = [(1, i, "0x01", "Registry", "OracleRegistered",
            {"account": a, "sector": WATER, "operator": "0x" + "00" * 32, "keyEpoch": 1, "pqKeyHash": "0x" + "ab" * 32})
           for i, a in enumerate((A, B, C, D))]
    return_ = RegistryHistory()
    return_.replay([
        *reg,
        (2, 0, "0x02", "IsolationQuorum", "RoleGranted", {"role": REPAIR_ROLE, "account": A, "sender": "0xc"}),
        (3, 0, "0x03", "Registry", "OracleStatusChanged", {"account": D, "from": 1, "to": 2, "reason": "0x"}),  # old shape
        (4, 5, "0x04", "Registry", "OracleStatusChanged",
         {"account": D, "from": 2, "to": 3, "reason": "0x", "statusEpoch": 3}),  # new shape
        (5, 0, "0x05", "Registry", "KeyRotated", {"account": B, "oldEpoch": 1, "newEpoch": 2, "newKeyHash": "0x" + "cd" * 32}),
        (6, 0, "0x06", "Registry", "NodeAdded", {"node": sector_key("pump-1"), "sector": WATER, "kind": "0x", "criticality": 4,
                                                 "dependsOn": []}),
        (7, 0, "0x07", "Registry", "NodeStatusChanged", {"node": sector_key("pump-1"), "sector": WATER, "from": 1, "to": 2}),
        (8, 0, "0x08", "IsolationQuorum", "RoleRevoked", {"role": REPAIR_ROLE, "account": A, "sender": A}),
    ])
    return return_


def test_questions_at_a_position() -> None:
    h = _history()
    assert h.problems == []
    assert h.members_at("water", (1, 3)) == {A, B, C, D} and h.members_at("water", (1, 2)) == {A, B, C}
    assert h.members_at("water", (0, 0)) == frozenset()
    # quarantined: still a member (n stays 4, q = 3), no longer active; removed: neither
    assert h.members_at("water", (3, 0)) == {A, B, C, D} and h.active_at("water", (3, 0)) == {A, B, C}
    assert h.required_at("water", (3, 0)) == 3
    assert h.members_at("water", (4, 4)) == {A, B, C, D} and h.members_at("water", (4, 5)) == {A, B, C}
    d = h.oracle_at(D, (4, 5))
    assert d is not None and (d.status_name, d.status_epoch) == ("removed", 3)
    q = h.oracle_at(D, (3, 0))
    assert q is not None and (q.status_name, q.status_epoch) == ("quarantined", 2)
    b = h.oracle_at(B, (5, 0))
    assert b is not None and (b.key_epoch, b.key_hash) == (2, "0x" + "cd" * 32)
    assert h.has_role_at("IsolationQuorum", REPAIR_ROLE, A, (2, 0))
    assert not h.has_role_at("IsolationQuorum", REPAIR_ROLE, A, (1, 9)) and not h.has_role_at(
        "IsolationQuorum", REPAIR_ROLE, A, (8, 0))
    assert not h.has_role_at("Registry", REPAIR_ROLE, A, (2, 0))  # another contract's role
    pump = h.node_at("pump-1", (7, 0))
    assert pump is not None and (pump.status_name, pump.status_epoch) == ("isolated", 2)
    assert h.node_at("pump-1", (5, 0)) is None


def test_quorum_size_is_the_byzantine_quorum_over_membership() -> None:
    assert [quorum_size(n) for n in range(1, 11)] == [1, 2, 2, 3, 4, 4, 5, 6, 6, 7]
    for n in range(1, 60):  # any two quorums share at least f + 1 members
        f = (n - 1) // 3
        assert 2 * quorum_size(n) - n >= f + 1 and quorum_size(n) <= n - f


def test_out_of_order_and_inconsistent_logs_are_reported() -> None:
    h = _history()
    h.replay([(1, 0, "0x99", "Registry", "OracleStatusChanged", {"account": A, "from": 1, "to": 2}),
              (9, 0, "0x09", "Registry", "OracleStatusChanged", {"account": A, "from": 2, "to": 1}),
              (9, 1, "0x09", "Registry", "NodeStatusChanged", {"node": sector_key("nowhere"), "from": 1, "to": 2})])
    assert [p.message.split(" ")[0] for p in h.problems] == ["Registry.OracleStatusChanged", "oracle", "status"]


def test_thousands_of_questions_are_cheap() -> None:
    h = RegistryHistory()
    logs = []
    accounts = [f"0x{i:040x}" for i in range(1, 33)]
    for i, a in enumerate(accounts):
        logs.append((1, i, "0x1", "Registry", "OracleRegistered",
                     {"account": a, "sector": WATER, "operator": "0x", "keyEpoch": 1, "pqKeyHash": "0x"}))
    for block in range(2, 5002):  # 5,000 status changes
        a = accounts[block % len(accounts)]
        now = h.oracle_now(a) if h.last_position[0] else None
        del now
        logs.append((block, 0, "0x2", "Registry", "OracleStatusChanged",
                     {"account": a, "from": 1 if (block // len(accounts)) % 2 == 0 else 2,
                      "to": 2 if (block // len(accounts)) % 2 == 0 else 1}))
    h.replay(logs)
    start = time.perf_counter()
    for block in range(1, 20001):
        h.active_at("water", (block % 5000, 0))
        h.oracle_at(accounts[block % 32], (block % 5000, 0))
    assert time.perf_counter() - start < 2.0
