"""Indicators of compromise read back from chain data, each publication's quorum recounted.

An oracle whose wire monitor caught an attack records an ``intrusion`` event whose payload lists
the indicators it found (``indicators: [{kind, value}, ...]``: the attacker's address, the client
identity it used, the command's signature). When as many distinct Active oracles of one sector as
that sector's quorum needs have named the same indicator, the controller publishes it: an
``indicator`` event ``{state: published, id, kind, value, confidence, source_sector, first_seen,
expires, description, evidence: [[oracle, seq], ...], required}``. Every other sector's gateways read
it from here and enforce it (`intel.enforce`); the controller may withdraw it (``{state: withdrawn,
id, reason}``), on evidence or on the control room's order.

Whoever reads them (the gateways, the auditor) recounts, never trusts the payload
(`chain.quarantines.count_cited_verdicts`): a publication counts only if its recorder held
REPAIR_ROLE at that position, its indicator parses (`intel.indicator` rules, kind and value) and its
id is the id of that kind and value, and at least q(n) of ``source_sector``'s members at that
position have a cited intrusion event naming that indicator, recorded before, in a batch that
verifies. A withdrawal counts only from a REPAIR_ROLE holder. Expiry is read from the indicator: an
expired one is enforced nowhere.

What "the same indicator" is (its kind, its value normalised, its id) is `core.indicator_values`, which
`intel.indicator`'s model uses too.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chain.quarantines import count_cited_verdicts, signature_check
from chain.registry_history import REPAIR_ROLE, Position, RegistryHistory, sector_key
from core.indicator_values import indicator_id, normalise_value
from core.kinds import kind_by_name

__all__ = ["IndicatorRecord", "active_indicators", "in_force", "indicator_records", "names_indicator"]

_INDICATOR = kind_by_name("indicator")


def names_indicator(ident: str, body: Any) -> bool:
    """Whether an intrusion verdict's payload lists the indicator ``ident`` (by kind and value)."""
    if not isinstance(body, dict) or not isinstance(body.get("indicators"), list):
        return False
    for item in body["indicators"]:
        if isinstance(item, dict) and isinstance(item.get("kind"), str) and isinstance(item.get("value"), str):
            try:
                if indicator_id(item["kind"], normalise_value(item["kind"], item["value"])) == ident:
                    return True
            except ValueError:
                continue
    return False


@dataclass(frozen=True)
class IndicatorRecord:
    oracle: str  # who recorded it (the controller)
    seq: int
    block: int
    log_index: int
    timestamp: int | None  # the block's time (unix seconds), where the index has it
    state: str  # published | withdrawn | unreadable
    id: str
    body: dict[str, Any]  # the payload as recorded
    required: int = 0
    matching: int = 0
    reason: str = ""  # why it does not count ("" when it does)
    rejected: tuple[str, ...] = ()

    @property
    def position(self) -> Position:
        return (self.block, self.log_index)

    @property
    def counts(self) -> bool:
        return not self.reason and self.state in ("published", "withdrawn")

    def expires(self) -> datetime | None:
        try:
            return _utc(self.body["expires"])
        except (KeyError, ValueError, OverflowError):
            return None

    @property
    def evidence(self) -> tuple[str, ...]:
        cites = self.body.get("evidence")
        return tuple(f"{o}:{s}" for o, s in cites) if isinstance(cites, list) else ()


def _utc(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _published_fields(body: dict[str, Any]) -> str:
    """Why a publication's own fields do not hold together ('' when they do): what counts must be what every
    reader can use (`intel.indicator.Indicator`'s rules: a reader that cannot parse a counting publication
    would stop enforcing everything)."""
    try:
        kind, value = body["kind"], body["value"]
        if not isinstance(kind, str) or not isinstance(value, str):
            return "its kind and value are not text"
        normalised = normalise_value(kind, value)
        confidence = body["confidence"]
        if not isinstance(confidence, int) or isinstance(confidence, bool) or not 0 <= confidence <= 100:
            return "its confidence is not a whole number from 0 to 100"
        first_seen, expires = _utc(body["first_seen"]), _utc(body["expires"])
        if expires <= first_seen:
            return "it expires before it was first seen"
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > 280:
            return "its description is not text of at most 280 characters"
        sector = body["source_sector"]
        if not isinstance(sector, str):
            return "its source sector is not a name"
        sector_key(sector)
        if not isinstance(body["evidence"], list):
            return "its evidence is not a list of [oracle, seq]"
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        return f"it is not a readable indicator ({str(exc)[:80]})"
    if normalised != value or indicator_id(kind, value) != body.get("id"):
        return "its id is not the id of its kind and value"
    return ""


def indicator_records(db: sqlite3.Connection, history: RegistryHistory | None = None, *,
                      invalid_events: Collection[tuple[str, int]] | None = None) -> list[IndicatorRecord]:
    """Every ``indicator`` event in chain order, each publication recounted against the registry at its position."""
    history = history or RegistryHistory.from_db(db)
    invalid = {(o.lower(), int(s)) for o, s in invalid_events or ()}
    verifies = signature_check(db) if invalid_events is None else None
    rows = db.execute("SELECT oracle, seq, payload, block, log_index, timestamp FROM events WHERE kind = ? "
                      "ORDER BY block, log_index", (_INDICATOR,)).fetchall()
    out: list[IndicatorRecord] = []
    withdrawn_at: dict[str, Position] = {}  # id → its last counting withdrawal: older verdicts count no more
    for oracle, seq, payload, block, log_index, timestamp in rows:
        recorder, at = str(oracle).lower(), (int(block), int(log_index))
        make = functools.partial(IndicatorRecord, recorder, int(seq), int(block), int(log_index),
                                 None if timestamp is None else int(timestamp))
        try:
            body = json.loads(bytes(payload))
            state, ident = str(body["state"]), str(body["id"])[:64]
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(make(state="unreadable", id="", body={}, reason="an indicator event that does not parse"))
            continue
        role = ""
        if (recorder, int(seq)) in invalid or (verifies is not None and not verifies(recorder, int(seq))):
            role = "its batch signature does not verify"
        elif not history.has_role_at("IsolationQuorum", REPAIR_ROLE, recorder, at):
            role = f"recorded by {recorder}, which does not hold REPAIR_ROLE at block {block}"
        if state == "withdrawn":
            out.append(make(state=state, id=ident, body=body, reason=role))
            if not role:
                withdrawn_at[ident] = at
            continue
        if state != "published":
            out.append(make(state="unreadable", id=ident, body=body, reason=f"unknown indicator state {state!r}"))
            continue
        if role:  # nothing to recount: a publication without the role costs no reader a recount
            out.append(make(state=state, id=ident, body=body, reason=role))
            continue
        broken = _published_fields(body)
        if broken:
            out.append(make(state="unreadable", id=ident, body=body, reason=f"indicator {ident[:12]}…: {broken}"))
            continue
        sector = str(body["source_sector"])
        required = history.required_at(sector, at)
        matching, rejected = count_cited_verdicts(db, history, body["evidence"],
                                                  functools.partial(names_indicator, ident),
                                                  f"indicator {body['kind']} {body['value']}", sector, at, invalid,
                                                  verifies, since=withdrawn_at.get(ident))
        reason = ""
        floor = history.below_floor(sector, at)
        if not reason and floor:
            reason = f"indicator {body['kind']} {body['value']} from {sector}, which had {floor}"
        if not reason and matching < required:
            reason = (f"indicator {body['kind']} {body['value']} cites {matching} matching intrusion verdicts of "
                      f"{sector}, needs {required}")
            if rejected:
                reason += "; " + "; ".join(rejected)
        out.append(make(state=state, id=ident, body=body, required=required, matching=matching, reason=reason,
                        rejected=tuple(rejected)))
    return out


def in_force(records: list[IndicatorRecord], now: datetime) -> dict[str, IndicatorRecord]:
    """Of records in chain order, the indicators in force at ``now``, by id: the latest counting
    publication, unless a counting withdrawal came after it or it expired."""
    active: dict[str, IndicatorRecord] = {}
    for record in records:
        if not record.counts:
            continue
        if record.state == "withdrawn":
            active.pop(record.id, None)
        else:
            active[record.id] = record
    return {i: r for i, r in active.items() if (r.expires() or now) > now}


def active_indicators(db: sqlite3.Connection, now: datetime | None = None,
                      history: RegistryHistory | None = None) -> dict[str, IndicatorRecord]:
    """Indicators in force now (`in_force` over every record of the chain)."""
    return in_force(indicator_records(db, history), now or datetime.now(UTC))
