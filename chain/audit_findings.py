"""What the audit's checks beyond the batches share: a finding, and the index's logs as records
(part of `chain.audit`).

`problem` is one finding of the index, governance and recount checks (`chain.audit_index`,
`chain.audit_governance`, `chain.audit_recounts`); `indexed_logs` reads the logs they explain, and
`as_hex` / `readable_name` put the ids they name in their messages.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

__all__ = ["IndexedLog", "Problems", "as_hex", "indexed_logs", "problem", "readable_name"]


Problems = list[dict[str, Any]]


def problem(check: str, message: str, block: int | None = None, tx: str | None = None) -> dict[str, Any]:
    """One finding: `check` names what found it (index, roles, status, quorum, council...)."""
    return {"check": check, "message": message, "block": block, "tx": tx}


@dataclass(frozen=True)
class IndexedLog:
    block: int
    log_index: int
    tx: str
    contract: str
    event: str
    args: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        return (self.block, self.log_index)


def indexed_logs(db: sqlite3.Connection, *events: str) -> list[IndexedLog]:
    marks = ",".join("?" * len(events))
    rows = db.execute(f"SELECT block, log_index, tx_hash, contract, event, args FROM logs WHERE event IN ({marks}) "
                      "ORDER BY block, log_index", events).fetchall()
    return [IndexedLog(int(b), int(i), str(tx), str(c), str(e), json.loads(a)) for b, i, tx, c, e, a in rows]


def as_hex(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value).lower()


def readable_name(value: str) -> str:
    """A bytes32 id as its ASCII name when it is one (for readable messages)."""
    raw = bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode()
    text = raw.rstrip(b"\0")
    return text.decode() if text and text.isascii() and text.decode().isprintable() else value
