"""Countermeasures read back from chain data: what a sector's gateways must enforce beyond indicators.

An indicator denies a *source* everywhere (`chain.indicators`). A countermeasure acts on the sector's
own devices: ``quarantine-device`` (the device's commands refused at its gateway, its readings still
flowing, until it is repaired) and ``safe-mode`` (every write to the sector's devices refused, reads
pass). Neither takes a node out of service (readings flow, the node stays Active in the registry):
that remains the isolation quorum's alone. Events (kind ``countermeasure``)::

    {"state": "applied", "id", "type": "quarantine-device" | "safe-mode", "sector", "device",
     "indicator": the published indicator it follows, "reason"}
    {"state": "lifted", "id", "reason"}

Both are recorded by the controller and count only from a holder of the quorum's REPAIR_ROLE at their
position; an ``applied`` one counts only if the indicator it follows was published by a quorum (it
recounts, `chain.indicators`) from the same sector, so no countermeasure stands on one oracle's word.
A ``lifted`` one (after the repair, or on the control room's order) lifts that id.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from chain.indicators import indicator_records
from chain.registry_history import REPAIR_ROLE, RegistryHistory
from core.kinds import kind_by_name

__all__ = ["TYPES", "CountermeasureRecord", "active_countermeasures", "countermeasure_records"]

TYPES = ("quarantine-device", "safe-mode")
_COUNTERMEASURE = kind_by_name("countermeasure")


@dataclass(frozen=True)
class CountermeasureRecord:
    oracle: str
    seq: int
    block: int
    log_index: int
    state: str  # applied | lifted | unreadable
    id: str
    body: dict[str, Any]
    reason: str = ""  # why it does not count ("" when it does)

    @property
    def counts(self) -> bool:
        return not self.reason and self.state in ("applied", "lifted")


def _record(oracle: str, seq: int, block: int, log_index: int, state: str, ident: str, body: dict[str, Any],
            reason: str = "") -> CountermeasureRecord:
    return CountermeasureRecord(oracle, seq, block, log_index, state, ident, body, reason)


def countermeasure_records(db: sqlite3.Connection, history: RegistryHistory | None = None) -> list[CountermeasureRecord]:
    history = history or RegistryHistory.from_db(db)
    published = {(r.id, str(r.body.get("source_sector"))): r.position for r in indicator_records(db, history)
                 if r.counts and r.state == "published"}
    rows = db.execute("SELECT oracle, seq, payload, block, log_index FROM events WHERE kind = ? "
                      "ORDER BY block, log_index", (_COUNTERMEASURE,)).fetchall()
    out: list[CountermeasureRecord] = []
    for oracle, seq, payload, block, log_index in rows:
        recorder, at = str(oracle).lower(), (int(block), int(log_index))
        make = functools.partial(_record, recorder, int(seq), int(block), int(log_index))

        try:
            body = json.loads(bytes(payload))
            state, ident = str(body["state"]), str(body["id"])
        except (ValueError, KeyError, TypeError):
            out.append(make("unreadable", "", {}, "a countermeasure event that does not parse"))
            continue
        role = "" if history.has_role_at("IsolationQuorum", REPAIR_ROLE, recorder, at) else (
            f"recorded by {recorder}, which does not hold REPAIR_ROLE at block {block}")
        if state == "lifted":
            out.append(make(state, ident, body, role))
            continue
        if state != "applied" or body.get("type") not in TYPES or not isinstance(body.get("sector"), str):
            out.append(make("unreadable", ident, body, f"countermeasure {ident[:24]}: unknown state or type"))
            continue
        if body["type"] == "quarantine-device" and not isinstance(body.get("device"), str):
            out.append(make("unreadable", ident, body, f"countermeasure {ident[:24]} quarantines no device"))
            continue
        cause = published.get((str(body.get("indicator")), body["sector"]))
        reason = role or ("" if cause is not None and cause < at else
                          f"countermeasure {ident[:24]} follows no indicator its sector's quorum published before it")
        out.append(make(state, ident, body, reason))
    return out


def active_countermeasures(db: sqlite3.Connection, history: RegistryHistory | None = None) -> dict[str, CountermeasureRecord]:
    """Countermeasures in force, by id: applied and counting, not lifted since."""
    active: dict[str, CountermeasureRecord] = {}
    for record in countermeasure_records(db, history):
        if not record.counts:
            continue
        if record.state == "lifted":
            active.pop(record.id, None)
        else:
            active[record.id] = record
    return active
