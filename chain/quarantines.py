"""Sensor quarantines read back from chain data, each one's quorum recounted, never taken on trust.

The controller records a ``sensor-quarantine`` event when a quorum of a sector's oracles named one
sensor in intrusion verdicts (`controller.cyber`), and a second one when the quarantine is lifted.
Whoever reads them — the auditor (`chain.audit`), an oracle deciding whether a verdict may drive an
isolation (`oracles.node`) — recounts the cited verdicts from the same indexed chain data: a
quarantine that does not recount is reported by the audit and ignored by the oracles.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from qeaims.kinds import kind_by_name

__all__ = ["QuarantineRecord", "active_quarantines", "named_sensor", "quarantine_records"]

_INTRUSION = kind_by_name("intrusion")
_QUARANTINE = kind_by_name("sensor-quarantine")


def named_sensor(payload: dict[str, Any]) -> str | None:
    """The sensor a verdict names first (``sensors`` holds ``[name, share]`` pairs or names)."""
    sensors = payload.get("sensors") or []
    first = sensors[0] if sensors else None
    name = first[0] if isinstance(first, list | tuple) and first else first
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class QuarantineRecord:
    oracle: str  # who recorded it (the controller)
    seq: int
    block: int
    state: str  # quarantined | lifted | unreadable
    sector: str
    sensor: str
    required: int
    matching: int  # distinct oracles whose cited intrusion verdict names this sensor
    lifts: int = 0  # for ``lifted``: the quarantine event's seq

    @property
    def recounts(self) -> bool:
        return self.state == "quarantined" and self.matching >= max(self.required, 1)


def _matching(db: sqlite3.Connection, evidence: list[Any], sensor: str) -> int:
    voters = set()
    for voter, voter_seq in {(str(o).lower(), int(s)) for o, s in evidence}:
        row = db.execute("SELECT payload FROM events WHERE oracle = ? AND seq = ? AND kind = ?",
                         (voter, voter_seq, _INTRUSION)).fetchone()
        if row is not None and named_sensor(json.loads(bytes(row[0]))) == sensor:
            voters.add(voter)
    return len(voters)


def quarantine_records(db: sqlite3.Connection) -> list[QuarantineRecord]:
    """Every sensor-quarantine event in chain order, with its quorum recounted."""
    out = []
    rows = db.execute("SELECT oracle, seq, payload, block FROM events WHERE kind = ? ORDER BY block, log_index",
                      (_QUARANTINE,)).fetchall()
    for oracle, seq, payload, block in rows:
        try:
            body = json.loads(bytes(payload))
            state, sector, sensor = str(body["state"]), str(body["sector"]), str(body["sensor"])
            if state == "quarantined":
                required = int(body["required"])
                out.append(QuarantineRecord(str(oracle), int(seq), int(block), state, sector, sensor, required,
                                            _matching(db, list(body["evidence"]), sensor)))
            else:
                out.append(QuarantineRecord(str(oracle), int(seq), int(block), state, sector, sensor, 0, 0,
                                            int(body.get("quarantine", 0))))
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(QuarantineRecord(str(oracle), int(seq), int(block), "unreadable", "", "", 0, 0))
    return out


def active_quarantines(db: sqlite3.Connection, sector: str | None = None) -> set[str]:
    """Sensors quarantined now (recounted, not lifted by their recorder), optionally of one sector."""
    active: dict[tuple[str, int], QuarantineRecord] = {}
    for record in quarantine_records(db):
        if record.recounts:
            active[(record.oracle.lower(), record.seq)] = record
        elif record.state == "lifted":
            active.pop((record.oracle.lower(), record.lifts), None)
    return {r.sensor for r in active.values() if sector is None or r.sector == sector}
