"""Sensor quarantines read back from chain data, each one's quorum recounted, never taken on trust.

The controller records a ``sensor-quarantine`` event when a quorum of a sector's oracles named one
sensor in intrusion verdicts (`controller.cyber`), and a second one when the quarantine is lifted.
Whoever reads them — the auditor (`chain.audit`), an oracle deciding whether a verdict may drive an
isolation (`oracles.node`) — recounts the quarantine from the same indexed chain data, against the
registry *as it was* at the quarantine's position (`chain.registry_history`). A quarantine counts
only when all of these hold:

- its recorder held the IsolationQuorum's REPAIR_ROLE at that position (any other registered
  recorder, of any sector, may record such an event, and it means nothing);
- the requirement is recomputed, never read from the payload: q(n) = ⌊(n+f)/2⌋+1, f = ⌊(n−1)/3⌋ over
  the sector's membership n (Active + Quarantined) at that position (docs/TRUST.md); the payload's
  own ``required`` is only compared with it;
- at least that many *distinct* oracles have a cited ``intrusion`` event that names the sensor first,
  was recorded before the quarantine, and whose oracle was an Active member of *that* sector both at
  its own event and at the quarantine (another sector's oracle, or a quarantined one, counts nothing);
  an event whose batch signature the audit found invalid counts nothing either.

A ``lifted`` event counts only from a REPAIR_ROLE holder too, and lifts only that recorder's own
quarantine (by its seq). Whatever does not count is reported by the audit and ignored by the oracles.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from chain.registry_history import REPAIR_ROLE, Position, RegistryHistory, sector_key
from core.kinds import kind_by_name

__all__ = ["QuarantineRecord", "active_quarantines", "count_cited_verdicts", "named_sensor", "quarantine_records",
           "signature_check"]

_INTRUSION = kind_by_name("intrusion")
_QUARANTINE = kind_by_name("sensor-quarantine")


def named_sensor(payload: dict[str, Any]) -> str | None:
    """The sensor a verdict names first (``sensors`` holds ``[name, share]`` pairs or names)."""
    if not isinstance(payload, dict):
        return None
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
    required: int  # recomputed from the sector's membership at this position (0 for lifted/unreadable)
    matching: int  # distinct Active oracles of the sector whose cited intrusion verdict names this sensor
    lifts: int = 0  # for ``lifted``: the quarantine event's seq
    log_index: int = 0
    claimed_required: int | None = None  # what the payload said (never used to decide)
    reason: str = ""  # why it does not count ("" when it does)
    rejected: tuple[str, ...] = ()  # why single citations did not count

    @property
    def position(self) -> Position:
        return (self.block, self.log_index)

    @property
    def recounts(self) -> bool:
        return self.state == "quarantined" and not self.reason

    @property
    def counts(self) -> bool:
        """A quarantine that recounts, or a lift by a holder of the repair role."""
        return not self.reason and self.state in ("quarantined", "lifted")


def _short(account: str) -> str:
    return account[:10] + "…"


def signature_check(db: sqlite3.Connection) -> Callable[[str, int], bool] | None:
    """(oracle, seq) → does the batch carrying that event verify? From the index's own meta (the chain
    id, ledger and registry it was built for); None for an index that does not say (an old one)."""
    meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('chain_id', 'event_ledger', 'registry')"))
    if len(meta) < 3:
        return None
    from chain.audit_batch import batch_verifies

    def verifies(oracle: str, seq: int) -> bool:
        row = db.execute("SELECT batch_id FROM events WHERE oracle = ? AND seq = ?", (oracle, seq)).fetchone()
        return row is not None and batch_verifies(db, int(row[0]), chain_id=int(meta["chain_id"]),
                                                  ledger=meta["event_ledger"], registry=meta["registry"])

    return verifies


def _names_first(sensor: str, body: Any) -> bool:
    return named_sensor(body) == sensor


def count_cited_verdicts(db: sqlite3.Connection, history: RegistryHistory, evidence: list[Any],
                         names: Callable[[Any], bool], what: str, sector: str, at: Position,
                         invalid: Collection[tuple[str, int]],
                         verifies: Callable[[str, int], bool] | None, *,
                         since: Position | None = None) -> tuple[int, list[str]]:
    """How many distinct oracles' cited intrusion verdicts count for a decision recorded at ``at`` in
    ``sector`` (a sensor's quarantine, an indicator's publication), and why each other citation does
    not: it must be a recorded ``intrusion`` event that ``names`` the decision's subject (``what``),
    recorded before the decision, in a batch that verifies, by an oracle Active in ``sector`` both at
    its verdict and at the decision, and (``since``) after the subject's last withdrawal; a second
    verdict of one oracle is still one voice. A citation that is not ``[oracle, seq]`` with a seq of
    the ledger's range is refused as such: whatever a recorder writes, the recount never fails."""
    voters: set[str] = set()
    rejected: list[str] = []
    active_then = history.active_at(sector, at)
    citations: set[tuple[str, int]] = set()
    for cited in evidence if isinstance(evidence, list) else []:
        if (isinstance(cited, list | tuple) and len(cited) == 2 and isinstance(cited[0], str)
                and isinstance(cited[1], int) and not isinstance(cited[1], bool) and 0 < cited[1] < 2**63):
            citations.add((cited[0].lower(), cited[1]))
        else:
            rejected.append(f"{str(cited)[:60]} is no citation [oracle, seq]")
    for voter, voter_seq in sorted(citations):
        cite = f"{_short(voter)}:{voter_seq}"
        row = db.execute("SELECT payload, block, log_index FROM events WHERE oracle = ? AND seq = ? AND kind = ?",
                         (voter, voter_seq, _INTRUSION)).fetchone()
        if row is None:
            rejected.append(f"{cite} is no recorded intrusion verdict")
            continue
        where = (int(row[1]), int(row[2]))
        try:
            body = json.loads(bytes(row[0]))
        except ValueError:
            body = None
        if where >= at:
            rejected.append(f"{cite} was recorded after the decision")
        elif since is not None and where < since:
            rejected.append(f"{cite} was recorded before the last withdrawal")
        elif not names(body):
            rejected.append(f"{cite} does not name {what}")
        elif (voter, voter_seq) in invalid or (verifies is not None and not verifies(voter, voter_seq)):
            rejected.append(f"{cite} is in a batch whose signature does not verify")
        elif voter not in active_then or voter not in history.active_at(sector, where):
            state = history.oracle_at(voter, at)
            status = "not registered" if state is None else (
                "an oracle of another sector" if state.sector != sector else f"{state.status_name}")
            rejected.append(f"{cite} is {status}, not an Active oracle of the sector")
        elif voter in voters:
            continue  # a second verdict of the same oracle: still one voice
        else:
            voters.add(voter)
    return len(voters), rejected


def quarantine_records(db: sqlite3.Connection, history: RegistryHistory | None = None, *,
                       invalid_events: Collection[tuple[str, int]] | None = None) -> list[QuarantineRecord]:
    """Every sensor-quarantine event in chain order, each recounted against the registry at its position.

    `invalid_events`: (oracle, seq) of events the audit found in batches that do not verify; without
    it, the batch of every cited event is verified here (memoised, `chain.audit.batch_verifies`)."""
    history = history or RegistryHistory.from_db(db)
    invalid = {(o.lower(), int(s)) for o, s in invalid_events or ()}
    verifies = signature_check(db) if invalid_events is None else None
    out = []
    rows = db.execute("SELECT oracle, seq, payload, block, log_index FROM events WHERE kind = ? "
                      "ORDER BY block, log_index", (_QUARANTINE,)).fetchall()
    for oracle, seq, payload, block, log_index in rows:
        recorder, at = str(oracle).lower(), (int(block), int(log_index))
        make = functools.partial(QuarantineRecord, str(oracle), int(seq), int(block), log_index=int(log_index))
        try:
            body = json.loads(bytes(payload))
            state, sector_name, sensor = str(body["state"]), str(body["sector"]), str(body["sensor"])
            sector = sector_key(sector_name)
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(make(state="unreadable", sector="", sensor="", required=0, matching=0,
                                        reason="sensor quarantine without readable evidence"))
            continue
        holder = history.has_role_at("IsolationQuorum", REPAIR_ROLE, recorder, at)
        if (recorder, int(seq)) in invalid or (verifies is not None and not verifies(recorder, int(seq))):
            role_reason = "its batch signature does not verify"
        elif not holder:
            role_reason = f"recorded by {recorder}, which does not hold REPAIR_ROLE at block {block}"
        else:
            role_reason = ""
        if state == "quarantined":
            try:
                claimed: int | None = int(body["required"]) if "required" in body else None
                evidence = body["evidence"] if isinstance(body["evidence"], list) else []
            except (ValueError, KeyError, TypeError):
                out.append(make(state="unreadable", sector=sector_name, sensor=sensor,
                                            required=0, matching=0,
                                            reason="sensor quarantine without readable evidence"))
                continue
            required = history.required_at(sector, at)
            matching, rejected = count_cited_verdicts(db, history, evidence,
                                                      functools.partial(_names_first, sensor),
                                                      f"{sensor} first", sector, at, invalid, verifies)
            reason = role_reason
            floor = history.below_floor(sector, at)
            if not reason and floor:
                reason = f"sensor quarantine of {sensor} in {sector_name}, which had {floor}"
            if not reason and matching < required:
                members = len(history.members_at(sector, at))
                need = "an unreachable quorum (no members)" if not members else str(required)
                reason = (f"sensor quarantine of {sensor} cites {matching} matching intrusion verdicts, needs {need} "
                          f"({sector_name}: {members} members at block {block})")
                if rejected:
                    reason += "; " + "; ".join(rejected)
            out.append(make(state=state, sector=sector_name, sensor=sensor, required=required,
                                        matching=matching, claimed_required=claimed, reason=reason,
                                        rejected=tuple(rejected)))
        elif state == "lifted":
            try:
                lifts = int(body.get("quarantine", 0))
            except (ValueError, TypeError):
                lifts = 0
            out.append(make(state=state, sector=sector_name, sensor=sensor, required=0,
                                        matching=0, lifts=lifts,
                                        reason=role_reason and f"lift of {sensor} {role_reason}"))
        else:
            out.append(make(state="unreadable", sector=sector_name, sensor=sensor, required=0,
                                        matching=0, reason=f"sensor quarantine in unknown state {state!r}"))
    return out


def active_quarantines(db: sqlite3.Connection, sector: str | None = None,
                       history: RegistryHistory | None = None) -> set[str]:
    """Sensors quarantined now (recounted, not lifted by their recorder), optionally of one sector."""
    active: dict[tuple[str, int], QuarantineRecord] = {}
    for record in quarantine_records(db, history):
        if record.recounts:
            active[(record.oracle.lower(), record.seq)] = record
        elif record.state == "lifted" and record.counts:
            active.pop((record.oracle.lower(), record.lifts), None)
    return {r.sensor for r in active.values() if sector is None or r.sector == sector}
