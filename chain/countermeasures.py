"""Countermeasures read back from chain data: what a sector's gateways must enforce beyond indicators.

An indicator denies a *source* everywhere (`chain.indicators`). A countermeasure acts on the sector's
own devices: ``quarantine-device`` (the device's commands refused at its gateway, its readings still
flowing, until it is repaired) and ``safe-mode`` (every write to the sector's devices refused, reads
pass). Neither takes a node out of service (readings flow, the node stays Active in the registry):
that remains the isolation quorum's alone. Events (kind ``countermeasure``)::

    {"state": "applied", "id", "type": "quarantine-device", "sector", "device",
     "indicator": the published indicator it follows, "reason"}
    {"state": "applied", "id", "type": "safe-mode", "sector", "indicators": [ids], "devices": [names],
     "reason"}
    {"state": "lifted", "id", "reason"}

Both are recorded by the controller and count only from a holder of the quorum's REPAIR_ROLE at their
position; an ``applied`` one counts only if the indicator it follows was published by a quorum (it
recounts, `chain.indicators`) from the same sector, so no countermeasure stands on one oracle's word.
An id counts as applied once: the same event recorded again (a replay, a restarted controller) counts
for nothing. A ``lifted`` one (after the repair, or on the control room's order) lifts that id.

**Safe mode is a campaign's answer, not one device's** (`SAFE_MODE_DEVICES`, `SAFE_MODE_WINDOW`). A
command attack on one device quarantines that device; a sector goes to safe mode when its quorum has
published, within one hour, indicators whose cited verdicts show command attacks (`COMMAND_ATTACKS`)
on at least three distinct devices of the sector: an attacker working through the sector's devices
one after the other, whose next target nobody knows. Recounted here, never read from the payload: a
device counts for a cited indicator only if at least the quorum's number of that publication's cited
verdicts (the same recount as the publication's, `chain.quarantines.count_cited_verdicts`: batches
that verify, Active oracles of the sector at both positions, after the indicator's last withdrawal)
name that indicator, that device as their subject and a command-attack class (and the event may name
no device the recount does not find); and a cited indicator
counts only if it is of the sector, published by a quorum before the safe mode, in force at it (not
withdrawn, not expired at its block's time), within the window before it, and recorded after the
sector's last safe mode was lifted (so the control room's lift is not undone by the same evidence,
and an old safe mode recorded again stands on nothing). Safe mode refuses writes, not readings: it
isolates no node. It is in force only while its evidence holds: once fewer than three of its devices
are backed by cited indicators still in force (withdrawn, expired), it lapses for every reader, and
the controller records the lift (`controller._safe_mode`).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chain.indicators import IndicatorRecord, in_force, indicator_records, names_indicator
from chain.quarantines import count_cited_verdicts, signature_check
from chain.registry_history import REPAIR_ROLE, Position, RegistryHistory
from core.kinds import kind_by_name

__all__ = ["COMMAND_ATTACKS", "SAFE_MODE_DEVICES", "SAFE_MODE_WINDOW", "TYPES", "Campaign", "CountermeasureRecord",
           "SafeModeReader", "active_countermeasures", "countermeasure_records", "in_force_measures", "last_lifts",
           "sector_in_force"]

TYPES = ("quarantine-device", "safe-mode")
COMMAND_ATTACKS = frozenset({"unprofiled-function", "replay"})
"""Wire attack classes in which a device took (or was sent) a command it should not have."""
SAFE_MODE_DEVICES = 3
"""Distinct devices of one sector under command attack that make a campaign (module docstring)."""
SAFE_MODE_WINDOW = timedelta(hours=1)
"""How recent every indicator of a campaign must be at the safe mode's block."""
MAX_CITED = 32  # indicators one safe mode may cite (what a recount of it costs is bounded)
_COUNTERMEASURE = kind_by_name("countermeasure")
_INTRUSION = kind_by_name("intrusion")
_END: Position = (2**62, 0)


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
    shown: tuple[tuple[str, str], ...] = ()  # a safe mode's recounted (device, indicator id) pairs

    @property
    def counts(self) -> bool:
        return not self.reason and self.state in ("applied", "lifted")

    @property
    def position(self) -> Position:
        return (self.block, self.log_index)


@dataclass(frozen=True)
class Campaign:
    """Command attacks on a sector's devices shown by its quorum's indicators: device → indicator ids."""

    sector: str
    devices: dict[str, frozenset[str]]

    @property
    def indicators(self) -> tuple[str, ...]:
        return tuple(sorted({i for ids in self.devices.values() for i in ids}))

    @property
    def quorate(self) -> bool:
        return len(self.devices) >= SAFE_MODE_DEVICES


def _commands_on(ident: str, device: str, body: Any) -> bool:
    """Whether an intrusion verdict names indicator ``ident`` in a command attack on ``device``."""
    if not names_indicator(ident, body) or body.get("subject") != device:
        return False
    wire = body.get("wire")
    return isinstance(wire, dict) and wire.get("class") in COMMAND_ATTACKS


@dataclass
class SafeModeReader:
    """The recount of safe mode over one index's indicators (chain order): which devices each counting
    publication shows under command attack, memoised by its position (a publication never changes)."""

    db: sqlite3.Connection
    history: RegistryHistory
    records: list[IndicatorRecord]
    verifies: Callable[[str, int], bool] | None = None
    _devices: dict[Position, frozenset[str]] = field(default_factory=dict)
    _since: dict[Position, Position | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        withdrawn: dict[str, Position] = {}
        for r in self.records:
            if r.counts and r.state == "withdrawn":
                withdrawn[r.id] = r.position
            elif r.counts and r.state == "published":
                self._since[r.position] = withdrawn.get(r.id)

    def devices_of(self, record: IndicatorRecord) -> frozenset[str]:
        """The devices a quorum of ``record``'s cited verdicts name in a command attack with its indicator."""
        if record.position in self._devices:
            return self._devices[record.position]
        sector = str(record.body.get("source_sector"))
        subjects: set[str] = set()
        for cited in record.body.get("evidence", [])[:64]:
            if not (isinstance(cited, list) and len(cited) == 2 and isinstance(cited[0], str)
                    and isinstance(cited[1], int) and not isinstance(cited[1], bool) and 0 < cited[1] < 2**63):
                continue
            row = self.db.execute("SELECT payload FROM events WHERE oracle = ? AND seq = ? AND kind = ?",
                                  (cited[0].lower(), cited[1], _INTRUSION)).fetchone()
            try:
                subject = json.loads(bytes(row[0])).get("subject") if row is not None else None
            except (ValueError, AttributeError):
                subject = None
            if isinstance(subject, str) and 0 < len(subject) <= 32:
                subjects.add(subject)
        shown: set[str] = set()
        for device in sorted(subjects)[:16]:
            voters, _ = count_cited_verdicts(self.db, self.history, record.body["evidence"],
                                             functools.partial(_commands_on, record.id, device),
                                             f"a command attack on {device}", sector, record.position, (),
                                             self.verifies, since=self._since.get(record.position))
            if voters >= max(record.required, 1):
                shown.add(device)
        self._devices[record.position] = frozenset(shown)
        return self._devices[record.position]

    def campaign(self, sector: str, at: Position, at_time: datetime, *, after: Position | None = None,
                 only: frozenset[str] | None = None) -> Campaign:
        """What the sector's counting publications before ``at`` (and after ``after``), in force at
        ``at_time`` and published within `SAFE_MODE_WINDOW` of it, show (``only``: of these ids)."""
        before = [r for r in self.records if r.position < at]
        live = sector_in_force(before, sector, at_time)
        devices: dict[str, set[str]] = {}
        for ident, r in sorted(live.items()):
            if (r.body.get("source_sector") != sector or (only is not None and ident not in only)
                    or (after is not None and r.position <= after) or r.timestamp is None
                    or datetime.fromtimestamp(r.timestamp, UTC) < at_time - SAFE_MODE_WINDOW):
                continue
            for device in self.devices_of(r):
                devices.setdefault(device, set()).add(ident)
        return Campaign(sector, {d: frozenset(ids) for d, ids in devices.items()})


def _record(oracle: str, seq: int, block: int, log_index: int, state: str, ident: str, body: dict[str, Any],
            reason: str = "", shown: tuple[tuple[str, str], ...] = ()) -> CountermeasureRecord:
    return CountermeasureRecord(oracle, seq, block, log_index, state, ident, body, reason, shown)


def _cited(body: dict[str, Any]) -> frozenset[str] | None:
    cited = body.get("indicators")
    if not isinstance(cited, list) or not 0 < len(cited) <= MAX_CITED or not all(isinstance(i, str) for i in cited):
        return None
    return frozenset(cited)


def _safe_mode(reader: SafeModeReader, body: dict[str, Any], ident: str, at: Position, timestamp: int | None,
               after: Position | None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Why a safe mode does not count ("" when it does), and the (device, indicator) pairs it stands on."""
    cited = _cited(body)
    if cited is None:
        return f"safe mode {ident[:24]} cites no list of at most {MAX_CITED} indicators", ()
    if timestamp is None:
        return f"safe mode {ident[:24]}: the index has no block time to check its window against", ()
    campaign = reader.campaign(str(body["sector"]), at, datetime.fromtimestamp(timestamp, UTC), after=after,
                               only=cited)
    if not campaign.quorate:
        return (f"safe mode {ident[:24]} of {body['sector']}: its indicators show command attacks on "
                f"{len(campaign.devices)} devices ({', '.join(sorted(campaign.devices)) or 'none'}) published by "
                f"its quorum within {SAFE_MODE_WINDOW}, in force and since the last lift; needs {SAFE_MODE_DEVICES}"), ()
    claimed = body.get("devices", [])
    if not isinstance(claimed, list) or not all(isinstance(d, str) for d in claimed):
        return f"safe mode {ident[:24]}: its devices are not a list of names", ()
    if set(claimed) - set(campaign.devices):
        return (f"safe mode {ident[:24]} names devices its indicators do not show under command attack: "
                f"{', '.join(sorted(set(claimed) - set(campaign.devices)))[:120]}"), ()
    return "", tuple(sorted((d, i) for d, ids in campaign.devices.items() for i in ids))


def countermeasure_records(db: sqlite3.Connection, history: RegistryHistory | None = None, *,
                           indicators: list[IndicatorRecord] | None = None) -> list[CountermeasureRecord]:
    """Every ``countermeasure`` event in chain order, each recounted (module docstring)."""
    history = history or RegistryHistory.from_db(db)
    records = indicators if indicators is not None else indicator_records(db, history)
    published = {(r.id, str(r.body.get("source_sector"))): r.position for r in records
                 if r.counts and r.state == "published"}
    reader = SafeModeReader(db, history, records, signature_check(db))
    rows = db.execute("SELECT oracle, seq, payload, block, log_index, timestamp FROM events WHERE kind = ? "
                      "ORDER BY block, log_index", (_COUNTERMEASURE,)).fetchall()
    out: list[CountermeasureRecord] = []
    applied: dict[str, CountermeasureRecord] = {}  # every id that counted as applied, once
    lifted_at: dict[str, Position] = {}  # sector → its last counting lift of a safe mode
    for oracle, seq, payload, block, log_index, timestamp in rows:
        recorder, at = str(oracle).lower(), (int(block), int(log_index))
        make = functools.partial(_record, recorder, int(seq), int(block), int(log_index))

        try:
            body = json.loads(bytes(payload))
            state, ident = str(body["state"]), str(body["id"])[:128]
        except (ValueError, KeyError, TypeError, AttributeError):
            out.append(make("unreadable", "", {}, "a countermeasure event that does not parse"))
            continue
        role = "" if history.has_role_at("IsolationQuorum", REPAIR_ROLE, recorder, at) else (
            f"recorded by {recorder}, which does not hold REPAIR_ROLE at block {block}")
        if state == "lifted":
            out.append(make(state, ident, body, role))
            first = applied.get(ident)
            if not role and first is not None and first.body.get("type") == "safe-mode":
                lifted_at[str(first.body["sector"])] = at
            continue
        if state != "applied" or body.get("type") not in TYPES or not isinstance(body.get("sector"), str):
            out.append(make("unreadable", ident, body, f"countermeasure {ident[:24]}: unknown state or type"))
            continue
        if body["type"] == "quarantine-device" and not isinstance(body.get("device"), str):
            out.append(make("unreadable", ident, body, f"countermeasure {ident[:24]} quarantines no device"))
            continue
        if role or ident in applied:
            out.append(make(state, ident, body, role or f"countermeasure {ident[:24]} was applied before, at "
                            f"block {applied[ident].block}: an id is applied once"))
            continue
        shown: tuple[tuple[str, str], ...] = ()
        if body["type"] == "safe-mode":
            reason, shown = _safe_mode(reader, body, ident, at, None if timestamp is None else int(timestamp),
                                       lifted_at.get(body["sector"]))
        else:
            cause = published.get((str(body.get("indicator")), body["sector"]))
            reason = "" if cause is not None and cause < at else (
                f"countermeasure {ident[:24]} follows no indicator its sector's quorum published before it")
        record = make(state, ident, body, reason, shown)
        out.append(record)
        if not reason:
            applied[ident] = record
    return out


def sector_in_force(records: list[IndicatorRecord], sector: str, now: datetime) -> dict[str, IndicatorRecord]:
    """The indicators `sector`'s quorum published that are in force at ``now``, by id.

    An id is one kind and value, whoever found it; another sector's publication of the same id is that
    sector's story (a scan of its own relays, say): it neither keeps one sector's safe mode alive nor
    takes a device out of its campaign (review of session 35, findings 2 and 3). A withdrawal is of
    the id, so it applies to every sector's publication before it."""
    return in_force([r for r in records if r.state != "published" or r.body.get("source_sector") == sector], now)


def _evidence_holds(record: CountermeasureRecord, live: frozenset[str]) -> bool:
    """A safe mode holds while its cited indicators still in force back `SAFE_MODE_DEVICES` devices."""
    return len({device for device, ident in record.shown if ident in live}) >= SAFE_MODE_DEVICES


def last_lifts(measures: list[CountermeasureRecord]) -> dict[str, Position]:
    """Each sector's last counting lift of a safe mode (what a new safe mode's indicators must follow)."""
    applied = {r.id: r for r in measures if r.counts and r.state == "applied"}
    out: dict[str, Position] = {}
    for r in measures:
        first = applied.get(r.id)
        if r.counts and r.state == "lifted" and first is not None and first.body.get("type") == "safe-mode" \
                and first.position < r.position:
            out[str(first.body["sector"])] = r.position
    return out


def active_countermeasures(db: sqlite3.Connection, history: RegistryHistory | None = None, now: datetime | None = None,
                           *, indicators: list[IndicatorRecord] | None = None) -> dict[str, CountermeasureRecord]:
    """Countermeasures in force at ``now``, by id: applied and counting, not lifted since, and (a safe mode)
    its evidence still holding."""
    history = history or RegistryHistory.from_db(db)
    records = indicators if indicators is not None else indicator_records(db, history)
    return in_force_measures(countermeasure_records(db, history, indicators=records), records, now or datetime.now(UTC))


def in_force_measures(measures: list[CountermeasureRecord], indicators: list[IndicatorRecord],
                      now: datetime) -> dict[str, CountermeasureRecord]:
    """Of recounted countermeasures in chain order, those in force at ``now`` (`active_countermeasures`)."""
    active: dict[str, CountermeasureRecord] = {}
    for record in measures:
        if not record.counts:
            continue
        if record.state == "lifted":
            active.pop(record.id, None)
        else:
            active[record.id] = record
    live: dict[str, frozenset[str]] = {}  # per sector: a safe mode stands on its own sector's publications
    for r in active.values():
        sector = str(r.body.get("sector"))
        if r.body.get("type") == "safe-mode" and sector not in live:
            live[sector] = frozenset(sector_in_force(indicators, sector, now))
    return {i: r for i, r in active.items()
            if r.body.get("type") != "safe-mode" or _evidence_holds(r, live[str(r.body.get("sector"))])}
