"""An incremental, resumable index of every log our contracts emitted, in SQLite.

It is built from `eth_getLogs` alone, so an auditor's copy equals anyone else's. It remembers
the hash of each block it stopped at; when the chain no longer has that block (a dev chain
restored from an older state dump, or a reorg) it rewinds to the last block that still matches
and re-reads from there, so the index never keeps a record the chain does not.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.abi import ContractAbi, DecodedLog
from chain.client import _normalise_log
from chain.logs import DEFAULT_MAX_LOGS_RANGE, LogReader
from chain.manifest import Deployment
from chain.rpc import RpcClient

__all__ = ["Indexer", "SyncReport"]

CHECKPOINT_BLOCKS = 2_000
"""Most blocks per checkpoint (one SQLite transaction, its logs held in memory): a busy chain's page stays
small whatever the node's eth_getLogs range (`chain.logs` pages within it)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, timestamp INTEGER,
    contract TEXT NOT NULL, event TEXT NOT NULL, args TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS logs_event ON logs(event);
CREATE TABLE IF NOT EXISTS events (
    oracle TEXT NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL, node TEXT NOT NULL,
    batch_id INTEGER NOT NULL, payload BLOB NOT NULL,
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, timestamp INTEGER,
    PRIMARY KEY (block, log_index)
);
CREATE INDEX IF NOT EXISTS events_batch ON events(batch_id);
CREATE INDEX IF NOT EXISTS events_oracle ON events(oracle, seq);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, block, log_index);  -- controller steps, quarantines: read on every vote
CREATE INDEX IF NOT EXISTS events_node ON events(node, block, log_index);  -- the API's node filter, page by page
CREATE INDEX IF NOT EXISTS events_time ON events(timestamp, block);  -- a period (since/until) to a block range
CREATE INDEX IF NOT EXISTS events_oracle_at ON events(oracle, block, log_index);  -- a sector's oracles, page by page
CREATE TABLE IF NOT EXISTS batches (
    batch_id INTEGER PRIMARY KEY, oracle TEXT NOT NULL, sector TEXT NOT NULL, key_epoch INTEGER NOT NULL,
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, count INTEGER NOT NULL, signature BLOB NOT NULL,
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS oracle_keys (
    oracle TEXT NOT NULL, epoch INTEGER NOT NULL, public_key BLOB NOT NULL, key_hash TEXT NOT NULL,
    sector TEXT, operator TEXT, sig_a BLOB NOT NULL, sig_b BLOB,
    block INTEGER NOT NULL, log_index INTEGER NOT NULL,
    PRIMARY KEY (oracle, epoch)
);
"""

_TABLES_BY_BLOCK = ("logs", "events", "batches", "oracle_keys", "checkpoints")


@dataclass(frozen=True)
class SyncReport:
    from_block: int
    to_block: int
    logs: int
    rewound_to: int | None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Indexer:
    def __init__(self, path: Path, rpc: RpcClient, deployment: Deployment, abis: dict[str, ContractAbi], *,
                 max_logs_range: int = DEFAULT_MAX_LOGS_RANGE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rpc = rpc
        self.logs = LogReader(rpc, max_logs_range)  # pages of at most the node's eth_getLogs range
        self.deployment = deployment
        self._abi_by_address = {addr.lower(): abis[name] for name, addr in deployment.addresses().items()}
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # one user at a time
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        owner = self._meta("registry")
        if owner is not None and owner.lower() != deployment.registry.lower():
            # A new deployment: the old index describes other contracts; start over.
            for table in (*_TABLES_BY_BLOCK, "meta"):
                self.db.execute(f"DELETE FROM {table}")
        self._set_meta("registry", deployment.registry)
        # what a reader of this index needs to check signatures over its events (`chain.quarantines`)
        self._set_meta("chain_id", str(deployment.chain_id))
        self._set_meta("event_ledger", deployment.event_ledger)

    def close(self) -> None:
        self.db.close()

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def last_block(self) -> int:
        return int(self._meta("last_block") or -1)

    def _block_hash(self, number: int) -> str | None:
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return None if block is None else str(block["hash"])

    def _checkpoint_holds(self, number: int) -> bool:
        """Whether the chain still has the block this index checkpointed at ``number`` (true if none was)."""
        stored = self.db.execute("SELECT hash FROM checkpoints WHERE number = ?", (number,)).fetchone()
        return stored is None or self._block_hash(number) == stored[0]

    def _rewind_if_needed(self) -> int | None:
        last = self.last_block
        if last < 0:
            return None
        stored = self.db.execute("SELECT hash FROM checkpoints WHERE number = ?", (last,)).fetchone()
        if stored is not None and self._block_hash(last) == stored[0]:
            return None
        good = -1
        for number, block_hash in self.db.execute("SELECT number, hash FROM checkpoints ORDER BY number DESC"):
            if self._block_hash(int(number)) == block_hash:
                good = int(number)
                break
        self.db.execute("BEGIN IMMEDIATE")
        for table in _TABLES_BY_BLOCK:
            column = "number" if table == "checkpoints" else "block"
            self.db.execute(f"DELETE FROM {table} WHERE {column} > ?", (good,))
        self._set_meta("last_block", str(good))
        self.db.execute("COMMIT")
        return good

    def sync(self, progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Read every new log up to the chain's head; safe to interrupt and call again."""
        rewound = self._rewind_if_needed()
        head = int(self.rpc.call("eth_blockNumber"), 16)
        start = self.last_block + 1
        total = 0
        addresses = {"address": list(self.deployment.addresses().values())}
        lo = start
        while lo <= head:
            hi = min(lo + min(self.logs.span, CHECKPOINT_BLOCKS) - 1, head)  # the reader may split it further
            while True:  # the block hash read before and after the logs must agree, or the chain moved
                hi_hash = self._block_hash(hi)
                raw = self.logs.get(addresses, lo, hi)
                if self._block_hash(hi) == hi_hash and hi_hash is not None:
                    break
                if hi_hash is None:
                    return SyncReport(from_block=start, to_block=lo - 1, logs=total, rewound_to=rewound)
            if not self._checkpoint_holds(lo - 1):
                # The chain moved below this page, under a checkpoint committed earlier in this sync: this
                # page's hashes agree with the new chain, and the next sync would compare only the last
                # checkpoint, so the orphaned logs would stay for good. Rewind to a block still held, go on.
                rewound = self._rewind_if_needed()
                lo = self.last_block + 1
                continue
            timestamps = self._timestamps(raw)
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for log in raw:
                    abi = self._abi_by_address.get(str(log["address"]).lower())
                    decoded = abi.decode_log(_normalise_log(log)) if abi else None
                    if decoded is not None:
                        self._store(decoded, timestamps.get(decoded.block_number))
                        total += 1
                self.db.execute("INSERT OR REPLACE INTO checkpoints(number, hash) VALUES (?, ?)", (hi, hi_hash))
                self._set_meta("last_block", str(hi))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            if progress is not None:
                progress(hi - start + 1, head - start + 1)
            lo = hi + 1
        return SyncReport(from_block=start, to_block=head, logs=total, rewound_to=rewound)

    def _timestamps(self, raw: list[dict[str, Any]]) -> dict[int, int]:
        stamps: dict[int, int] = {}
        missing: set[int] = set()
        for log in raw:
            number = int(log["blockNumber"], 16)
            if log.get("blockTimestamp"):
                stamps[number] = int(log["blockTimestamp"], 16)
            else:
                missing.add(number)
        missing -= stamps.keys()
        if missing:
            blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in sorted(missing)])
            for block in blocks:
                stamps[int(block["number"], 16)] = int(block["timestamp"], 16)
        return stamps

    def _store(self, log: DecodedLog, timestamp: int | None) -> None:
        a = log.args
        where = (log.block_number, log.log_index)
        tx = "0x" + log.tx_hash.hex()
        self.db.execute(
            "INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*where, tx, timestamp, log.contract, log.event,
             json.dumps({k: _jsonable(v) for k, v in a.items()})),
        )
        if log.event == "EventRecorded":
            self.db.execute(
                "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a["oracle"].lower(), a["seq"], a["kind"], "0x" + a["node"].hex(), a["batchId"],
                 a["payload"], *where, tx, timestamp),
            )
        elif log.event == "BatchSigned":
            self.db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a["batchId"], a["oracle"].lower(), "0x" + a["sector"].hex(), a["keyEpoch"], a["firstSeq"],
                 a["lastSeq"], a["count"], a["pqSignature"], *where, tx),
            )
        elif log.event == "OracleRegistered":
            self.db.execute(
                "INSERT OR REPLACE INTO oracle_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a["account"].lower(), a["keyEpoch"], a["pqPublicKey"], "0x" + a["pqKeyHash"].hex(),
                 "0x" + a["sector"].hex(), "0x" + a["operator"].hex(), a["popSignature"], None, *where),
            )
        elif log.event == "KeyRotated":
            self.db.execute(
                "INSERT OR REPLACE INTO oracle_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a["account"].lower(), a["newEpoch"], a["newPublicKey"], "0x" + a["newKeyHash"].hex(),
                 None, None, a["oldKeySignature"], a["newKeySignature"], *where),
            )
