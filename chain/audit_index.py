"""The index checked against the chain itself at the audited head (part of `chain.audit`).

`check_index_against_chain`: the ledger's `batchCount` and every oracle's `lastSeq`, the
registry's key epoch, key hash and status of every oracle and status of every node, the quorum's
`proposalCount`, and the hash of every block the index checkpointed — so an index that lost or
gained a row, or describes another chain, is caught. The other checks read only the index; this
one is why they may.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from typing import Any

from eth_utils.address import to_checksum_address

from chain.artifacts import load_artifact
from chain.audit_findings import Problems, as_hex, indexed_logs, problem, readable_name
from chain.client import ChainClient
from chain.registry_history import NODE_STATUS, ORACLE_STATUS, RegistryHistory

__all__ = ["check_index_against_chain"]


def _struct(client: ChainClient, contract: str, function: str, values: Any) -> dict[str, Any]:
    """A struct returned by a view, by field name (so a field added at the end changes nothing)."""
    outputs = next(e for e in load_artifact(contract).abi
                   if e.get("type") == "function" and e.get("name") == function)["outputs"]
    names = [c["name"] for c in outputs[0].get("components", [])] if len(outputs) == 1 else \
        [o["name"] for o in outputs]
    return dict(zip(names, values, strict=False))


def check_index_against_chain(db: sqlite3.Connection, client: ChainClient, history: RegistryHistory,
                              head: int) -> Problems:
    """Does the index say what the chain's own counters say at block `head`? Every table the audit
    reads is compared with the logs and with on-chain state, and every checkpoint's block hash with
    the chain's: an index that lost a row (a forged batch hidden), gained one, or describes another
    chain, fails here."""
    out: Problems = []

    def count(sql: str, *params: Any) -> int:
        return int(db.execute(sql, params).fetchone()[0] or 0)

    # the ledger: batches and events
    on_chain_batches = int(client.call("EventLedger", "batchCount", block=head)[0])
    logged_batches = count("SELECT COUNT(*) FROM logs WHERE contract = 'EventLedger' AND event = 'BatchSigned'")
    table_batches = count("SELECT COUNT(*) FROM batches")
    if not on_chain_batches == logged_batches == table_batches:
        out.append(problem("index", f"EventLedger.batchCount() is {on_chain_batches} at block {head}, but the index "
                                    f"holds {logged_batches} BatchSigned logs and {table_batches} batches"))
    logged_events = count("SELECT COUNT(*) FROM logs WHERE contract = 'EventLedger' AND event = 'EventRecorded'")
    table_events = count("SELECT COUNT(*) FROM events")
    if logged_events != table_events:
        out.append(problem("index", f"the index holds {logged_events} EventRecorded logs but {table_events} events"))
    last_logged: dict[str, int] = defaultdict(int)
    for log in indexed_logs(db, "EventRecorded"):
        if log.contract == "EventLedger":
            oracle = str(log.args["oracle"]).lower()
            last_logged[oracle] = max(last_logged[oracle], int(log.args["seq"]))
    last_batched = {str(o): int(s) for o, s in db.execute("SELECT oracle, MAX(last_seq) FROM batches GROUP BY oracle")}
    for oracle in sorted(set(history.oracles()) | set(last_logged) | set(last_batched)):
        on_chain = int(client.call("EventLedger", "lastSeq", to_checksum_address(oracle), block=head)[0])
        if not on_chain == last_logged.get(oracle, 0) == last_batched.get(oracle, 0):
            out.append(problem("index", f"EventLedger.lastSeq({oracle}) is {on_chain} at block {head}, but its last "
                                        f"logged seq is {last_logged.get(oracle, 0)} and its last batched seq "
                                        f"{last_batched.get(oracle, 0)}"))
    # the registry: every oracle's key and status, every node's status
    keys = {str(o): (int(e), str(h)) for o, e, h in db.execute(
        "SELECT oracle, epoch, key_hash FROM oracle_keys k WHERE epoch = (SELECT MAX(epoch) FROM oracle_keys "
        "WHERE oracle = k.oracle)")}
    for oracle in history.oracles():
        replayed = history.oracle_now(oracle)
        assert replayed is not None
        record = _struct(client, "Registry", "oracle",
                         client.call("Registry", "oracle", to_checksum_address(oracle), block=head)[0])
        key_epoch, key_hash = int(record["keyEpoch"]), as_hex(record["pqKeyHash"])
        if (key_epoch, key_hash) != (replayed.key_epoch, replayed.key_hash) or keys.get(oracle) != (key_epoch, key_hash):
            out.append(problem("index", f"Registry.oracle({oracle}) holds key epoch {key_epoch} ({key_hash[:10]}…) at "
                                        f"block {head}, but the last published key is epoch {replayed.key_epoch} "
                                        f"({replayed.key_hash[:10]}…) in the logs and {keys.get(oracle)} in the index"))
        if int(record["status"]) != replayed.status:
            out.append(problem("index", f"Registry.oracle({oracle}) is {ORACLE_STATUS.get(int(record['status']))} at "
                                        f"block {head}, but its logged status changes make it {replayed.status_name}"))
        if "statusEpoch" in record and int(record["statusEpoch"]) != replayed.status_epoch:
            out.append(problem("index", f"Registry.oracle({oracle}) has status epoch {record['statusEpoch']} at block "
                                        f"{head}, but the logs make it {replayed.status_epoch}"))
    for node in history.nodes():
        replayed_node = history.node_now(node)
        assert replayed_node is not None
        record = _struct(client, "Registry", "node",
                         client.call("Registry", "node", bytes.fromhex(node[2:]), block=head)[0])
        if int(record["status"]) != replayed_node.status:
            out.append(problem("index", f"Registry.node({readable_name(node)}) is {NODE_STATUS.get(int(record['status']))} at "
                                        f"block {head}, but its logged status changes make it "
                                        f"{replayed_node.status_name}"))
        if "statusEpoch" in record and int(record["statusEpoch"]) != replayed_node.status_epoch:
            out.append(problem("index", f"Registry.node({readable_name(node)}) has status epoch {record['statusEpoch']} at "
                                        f"block {head}, but the logs make it {replayed_node.status_epoch}"))
    # every sector's counters: an index that forgot an oracle would shrink the membership a recount uses
    registry_functions = client.abi("Registry").functions
    node_sectors: dict[str, list[int]] = defaultdict(list)
    for node in history.nodes():
        state = history.node_now(node)
        if state is not None:
            node_sectors[state.sector].append(state.status)
    sectors = set(history.sectors) | {s.sector for o in history.oracles() if (s := history.oracle_now(o))} | set(node_sectors)
    end = (1 << 62, 0)
    for sector in sorted(sectors):
        raw = bytes.fromhex(sector[2:])
        expected = {"activeOracleCount": len(history.active_at(sector, end)),
                    "oracleSlots": len(history.members_at(sector, end)),
                    "sectorNodeCount": len(node_sectors[sector]),
                    "sectorIsolatedCount": sum(1 for st in node_sectors[sector] if st in (2, 3))}
        for function, replayed_count in expected.items():
            if function not in registry_functions:
                continue
            on_chain = int(client.call("Registry", function, raw, block=head)[0])
            if on_chain != replayed_count:
                out.append(problem("index", f"Registry.{function}({readable_name(sector)}) is {on_chain} at block {head}, "
                                            f"but the logs make it {replayed_count}"))
    # the quorum's and the council's proposals
    for contract in ("IsolationQuorum", "GovernanceCouncil"):
        if "proposalCount" not in client.abi(contract).functions:
            continue
        on_chain = int(client.call(contract, "proposalCount", block=head)[0])
        logged = count("SELECT COUNT(*) FROM logs WHERE contract = ? AND event = 'ProposalCreated'", contract)
        if on_chain != logged:
            out.append(problem("index", f"{contract}.proposalCount() is {on_chain} at block {head}, but the index "
                                        f"holds {logged} ProposalCreated logs"))
    # the chain the index describes is this chain
    last = db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
    if last is None or int(last[0]) != head:
        out.append(problem("index", f"the index ends at block {last[0] if last else 'none'}, not at the head {head}"))
    checkpoints = db.execute("SELECT number, hash FROM checkpoints ORDER BY number").fetchall()
    for lo in range(0, len(checkpoints), 500):
        chunk = checkpoints[lo:lo + 500]
        blocks = client.rpc.batch([("eth_getBlockByNumber", [hex(int(n)), False]) for n, _ in chunk])
        for (number, stored), block in zip(chunk, blocks, strict=True):
            if block is None or str(block["hash"]).lower() != str(stored).lower():
                out.append(problem("index", f"checkpoint block {number} has hash {str(stored)[:12]}… in the index "
                                            f"but {'none' if block is None else str(block['hash'])[:12] + '…'} "
                                            "on the chain", block=int(number)))
    if int(history.last_position[0]) > head or any(
            int(b) > head for (b,) in db.execute("SELECT MAX(block) FROM logs") if b is not None):
        out.append(problem("index", f"the index holds logs beyond the audited head {head}"))
    return out
