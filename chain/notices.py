"""Crisis notices read back from chain data: which notice digests the control room really recorded.

A notice's text lives off-chain (`api/notices.py`, `<home>/api/notices.sqlite`); what goes on-chain is a
``notice`` event whose payload is ``{id, sha256, audience, sector}``: the SHA-256 of the notice's
canonical bytes (`canonical_notice`: the stored fields as canonical JSON, the id included, so a digest
can never vouch for another notice). A reader holding a notice recomputes that digest and compares it
with the one on-chain.

An event counts only if (the same rules for the API and for the audit, `chain.audit_history`):
- its batch verifies (key epoch, sequence, ML-DSA-65 signature: `chain.audit_batch`);
- its recorder held the IsolationQuorum's REPAIR_ROLE at its position (the controller, whose identity
  the control room records with: `chain.control_room`); any Active oracle may record a ``notice``
  event, and from anyone else it means nothing;
- its payload is exactly those four fields, well formed (an id of 32 hex digits, a digest of 64, a
  known audience, a sector's name), in exactly the bytes `chain.recorder.canonical_payload` makes of
  them: a payload repeating a key (JSON parsers differ on which one wins) or written otherwise does
  not count, so every reader of the same bytes sees the same id;
- it is the first counting event for its id: a later one for the same id, even from the control
  room, does not count (a notice is never silently re-issued under the same id; it gets a new one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from chain.quarantines import signature_check
from chain.recorder import canonical_payload
from chain.registry_history import REPAIR_ROLE, RegistryHistory
from core.kinds import kind_by_name

__all__ = ["AUDIENCES", "NOTICE", "NOTICE_ID", "NoticeRecord", "canonical_notice", "counting_notices",
           "notice_digest", "notice_payload", "notice_records"]

NOTICE = kind_by_name("notice")
AUDIENCES = ("public", "healthcare", "banking")
NOTICE_ID = re.compile(r"^[0-9a-f]{32}\Z")
_DIGEST = re.compile(r"^[0-9a-f]{64}\Z")
_SECTOR = re.compile(r"^[a-z][a-z0-9-]{1,30}\Z")  # a sector's name (core.sectors), plug-ins' included
_PAYLOAD_KEYS = {"id", "sha256", "audience", "sector"}


def canonical_notice(*, id: str, audience: str, sector: str, district: str, text: str, created: str,
                     author: str) -> bytes:
    """The bytes a notice's digest is taken over: every stored field as JSON with sorted keys, no spaces,
    UTF-8 (what `chain.recorder.canonical_payload` makes), so a page can rebuild and hash them itself."""
    fields = {"id": id, "audience": audience, "sector": sector, "district": district, "text": text,
              "created": created, "author": author}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def notice_digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def notice_payload(*, id: str, canonical: bytes, audience: str, sector: str) -> dict[str, str]:
    """The ``notice`` event's payload for a notice with these canonical bytes."""
    return {"id": id, "sha256": notice_digest(canonical), "audience": audience, "sector": sector}


@dataclass(frozen=True)
class NoticeRecord:
    """One ``notice`` event as recorded, and why it does not count ('' when it does)."""

    oracle: str  # the recorder, lower-case
    seq: int
    batch_id: int
    block: int
    log_index: int
    tx_hash: str
    timestamp: int | None
    id: str
    sha256: str
    audience: str
    sector: str
    reason: str = ""
    public_reason: str | None = None  # `reason` without the recorder's address, where it names one

    @property
    def counts(self) -> bool:
        return not self.reason

    @property
    def reason_for_public(self) -> str:
        """Why it does not count, in words that name no address (what a reader without a token is shown)."""
        return self.reason if self.public_reason is None else self.public_reason


def _payload_problem(body: Any) -> str:
    if not isinstance(body, dict) or set(body) != _PAYLOAD_KEYS:
        return "a notice event whose payload is not exactly {id, sha256, audience, sector}"
    if not all(isinstance(body[k], str) for k in _PAYLOAD_KEYS):
        return "a notice event whose fields are not text"
    if not NOTICE_ID.match(body["id"]):
        return "a notice event whose id is not 32 hex digits"
    if not _DIGEST.match(body["sha256"]):
        return f"notice {body['id']}: its sha256 is not 64 hex digits"
    if body["audience"] not in AUDIENCES:
        return f"notice {body['id']}: unknown audience {body['audience'][:20]!r}"
    if not _SECTOR.match(body["sector"]):
        return f"notice {body['id']}: {body['sector'][:32]!r} is not a sector's name"
    return ""


def notice_records(db: sqlite3.Connection, history: RegistryHistory | None = None, *,
                   invalid_events: Collection[tuple[str, int]] | None = None) -> list[NoticeRecord]:
    """Every ``notice`` event in chain order, each judged by the rules above. `invalid_events` (oracle,
    seq) are events the caller already found in batches that do not verify (the audit passes its own);
    without it each event's batch is verified here (memoised, `chain.audit_batch.batch_verifies`)."""
    rows = db.execute("SELECT oracle, seq, batch_id, block, log_index, tx_hash, timestamp, payload FROM events "
                      "WHERE kind = ? ORDER BY block, log_index", (NOTICE,)).fetchall()
    if not rows:
        return []  # no registry replay for a history without notices
    history = history or RegistryHistory.from_db(db)
    invalid = {(o.lower(), int(s)) for o, s in invalid_events or ()}
    verifies = signature_check(db) if invalid_events is None else None
    out: list[NoticeRecord] = []
    first: dict[str, int] = {}  # id → block of its counting event
    for oracle, seq, batch_id, block, log_index, tx_hash, timestamp, payload in rows:
        recorder = str(oracle).lower()
        make = functools.partial(NoticeRecord, recorder, int(seq), int(batch_id), int(block), int(log_index),
                                 str(tx_hash), None if timestamp is None else int(timestamp))
        try:
            body = json.loads(bytes(payload))
        except ValueError:
            body = None
        broken = _payload_problem(body)
        if not broken and canonical_payload(body) != bytes(payload):  # a repeated key, spaces, another order:
            broken = "a notice event whose payload is not canonical JSON (sorted keys, each once, no spaces)"
        if broken:
            out.append(make(id="", sha256="", audience="", sector="", reason=broken))
            continue
        assert isinstance(body, dict)
        record = functools.partial(make, id=body["id"], sha256=body["sha256"], audience=body["audience"],
                                   sector=body["sector"])
        if (recorder, int(seq)) in invalid or (verifies is not None and not verifies(recorder, int(seq))):
            out.append(record(reason=f"notice {body['id']}: its batch signature does not verify"))
        elif not history.has_role_at("IsolationQuorum", REPAIR_ROLE, recorder, (int(block), int(log_index))):
            out.append(record(reason=f"notice {body['id']}: recorded by {recorder}, which does not hold "
                                     f"REPAIR_ROLE at block {block} (not the control room)",
                              public_reason=f"notice {body['id']}: not recorded by the control room"))
        elif body["id"] in first:
            out.append(record(reason=f"notice {body['id']}: recorded again (it counts from block "
                                     f"{first[body['id']]}; a re-issued notice gets a new id)"))
        else:
            first[body["id"]] = int(block)
            out.append(record())
    return out


def counting_notices(records: list[NoticeRecord]) -> dict[str, NoticeRecord]:
    """The counting event of each notice id."""
    return {r.id: r for r in records if r.counts}
