"""Every recorded event re-checked from the index's logs: batch by batch, oracle by oracle (part
of `chain.audit`).

An event is valid only if its batch, its key and its sequence all check out (`chain.audit_batch`,
`chain.audit_keys`); per oracle, sequence numbers increase by one from batch to batch, with no gap
and no repeat. A full audit (from batch 1) also recounts every sensor quarantine
(`chain.quarantines`) and every indicator's publication and withdrawal (`chain.indicators`), and
checks that every crisis notice's event came from the control room (`chain.notices`). This is what an oracle watching its peers runs incrementally
(`oracles.peer_check`), and the first step of `chain.audit.verify_everything`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address

from chain.audit_batch import BATCH_COLUMNS, judge_batch
from chain.audit_keys import key_history
from chain.registry_history import RegistryHistory
from keys.messages import EventToSign

__all__ = ["AuditReport", "verify_chain_history"]


@dataclass
class AuditReport:
    events: int = 0
    valid: int = 0
    batches: int = 0
    oracles: int = 0
    key_epochs: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)  # events and quarantines that do not verify
    problems: list[dict[str, Any]] = field(default_factory=list)  # everything else: {check, message, block, tx}
    skipped: list[str] = field(default_factory=list)  # recounts not available in this build
    head: int | None = None

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.problems

    def lines(self) -> list[str]:
        """One readable line per finding."""
        out = [f"invalid: oracle {i['oracle']} seq {i['seq']} (batch {i['batch']}, block {i['block']}): {i['reason']}"
               for i in self.invalid]
        for p in self.problems:
            where = "".join([f" (block {p['block']}" if p.get("block") is not None else "",
                             f", tx {str(p['tx'])[:12]}…" if p.get("tx") and p.get("block") is not None else "",
                             ")" if p.get("block") is not None else ""])
            out.append(f"{p['check']}: {p['message']}{where}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "valid": self.valid,
            "invalid": self.invalid,
            "batches": self.batches,
            "oracles": self.oracles,
            "key_epochs": self.key_epochs,
            "problems": self.problems,
            "skipped": self.skipped,
            "head": self.head,
        }


def verify_chain_history(
    db: sqlite3.Connection,
    *,
    chain_id: int,
    ledger: str,
    registry: str,
    progress: Callable[[int, int], None] | None = None,
    from_batch: int = 1,
) -> AuditReport:
    """Verify every batch from `from_batch` on (batch ids follow chain order); an oracle watching its
    peers passes the first batch it has not checked yet, an auditor checks everything."""
    report = AuditReport()
    history = key_history(db, chain_id, registry)
    report.oracles = len(history)
    report.key_epochs = sum(len(epochs) for epochs in history.values())
    batches = db.execute(
        f"SELECT {BATCH_COLUMNS} FROM batches WHERE batch_id >= ? ORDER BY block, log_index", (from_batch,)
    ).fetchall()
    report.events = int(db.execute("SELECT COUNT(*) FROM events WHERE batch_id >= ?", (from_batch,)).fetchone()[0])
    last_seq: dict[str, int] = defaultdict(int)
    bad_events: set[tuple[str, int]] = set()
    for oracle, seq in db.execute("SELECT oracle, MAX(last_seq) FROM batches WHERE batch_id < ? GROUP BY oracle",
                                  (from_batch,)):
        last_seq[oracle] = int(seq)
    for done, row in enumerate(batches, 1):
        batch_id, oracle, first_seq, block = row[0], row[1], row[3], row[7]
        report.batches += 1
        events, reason = judge_batch(db, history, row, last_seq[oracle], chain_id=chain_id, ledger=ledger)
        if events:
            last_seq[oracle] = max(last_seq[oracle], events[-1].seq)
        if reason is None:
            report.valid += len(events)
        else:
            bad_events.update((str(oracle).lower(), e.seq) for e in events)
            for event in events or [EventToSign(seq=int(first_seq), kind=0, node=b"\0" * 32, payload=b"")]:
                report.invalid.append({"oracle": to_checksum_address(oracle), "seq": event.seq,
                                       "batch": int(batch_id), "block": int(block), "reason": reason})
        if progress is not None:
            progress(done, len(batches))
    if from_batch == 1:  # a full audit; an oracle checking its peers incrementally skips it
        registry_history = RegistryHistory.from_db(db)
        report.invalid += _check_quarantines(db, registry_history, bad_events)
        report.invalid += _check_indicators(db, registry_history, bad_events)
        report.invalid += _check_notices(db, registry_history, bad_events)
    orphans = report.events - sum(int(c) for (c,) in db.execute("SELECT count FROM batches WHERE batch_id >= ?",
                                                                   (from_batch,)))
    if orphans > 0:
        report.invalid.append({"oracle": None, "seq": None, "batch": None, "block": None,
                               "reason": f"{orphans} events have no signed batch"})
    return report


def _check_quarantines(db: sqlite3.Connection, history: RegistryHistory,
                       bad_events: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Recount each sensor quarantine from chain data (`chain.quarantines`): its recorder held the
    repair role, and enough distinct Active oracles of that sector cited intrusion verdicts naming the
    sensor, against the quorum over the sector's membership at that block (never the event's claim)."""
    from chain.quarantines import quarantine_records

    problems: list[dict[str, Any]] = []
    for record in quarantine_records(db, history, invalid_events=bad_events):
        if not record.reason:
            continue
        reason = record.reason
        if record.claimed_required is not None and record.claimed_required != record.required:
            reason += f" (the event claims {record.claimed_required} are required)"
        problems.append({"oracle": to_checksum_address(record.oracle), "seq": record.seq, "batch": None,
                         "block": record.block, "reason": reason})
    return problems


def _check_indicators(db: sqlite3.Connection, history: RegistryHistory,
                      bad_events: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Recount each indicator published or withdrawn (`chain.indicators`): a REPAIR_ROLE recorder, an id
    that is its kind and value's, and a quorum of the source sector's Active oracles citing verdicts
    that name it."""
    from chain.indicators import indicator_records

    return [{"oracle": to_checksum_address(r.oracle), "seq": r.seq, "batch": None, "block": r.block,
             "reason": r.reason} for r in indicator_records(db, history, invalid_events=bad_events) if r.reason]


def _check_notices(db: sqlite3.Connection, history: RegistryHistory,
                   bad_events: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Each crisis notice's event judged as the API judges it (`chain.notices`): recorded by the control
    room (a REPAIR_ROLE holder), a well-formed payload, the first for its id. The notice's text is off-chain:
    whether a stored notice matches its digest is the API's check, not this one."""
    from chain.notices import notice_records

    return [{"oracle": to_checksum_address(r.oracle), "seq": r.seq, "batch": r.batch_id, "block": r.block,
             "reason": r.reason} for r in notice_records(db, history, invalid_events=bad_events) if r.reason]
