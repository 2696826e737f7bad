"""The cybersecurity response to spoofed sensors: quarantine by quorum, a crew to the device, lift.

An oracle that finds one sensor inconsistent with the rest of the network records an *intrusion*
verdict naming it (`oracles.detect.classify`); it never votes to isolate the physical asset for it
(a spoofed reading is not a broken pump). One oracle's word is not enough to act on — it may be
the compromised party — so the response starts when the sector's quorum agrees: as many distinct
*active* oracles of the sector as `IsolationQuorum.requiredVotes` asks for an isolation have named
the same sensor in intrusion verdicts. Then the controller:

1. records a ``sensor-quarantine`` event (``state: quarantined``) citing those verdicts as evidence
   (oracle, seq), so an auditor can recount the quorum from chain data alone; oracles stop
   trusting the sensor from that event on and judge its asset from its redundant neighbours;
2. sends a crew to the device (the gateway is inspected, the tampering removed, its credentials
   re-issued), at the sector's crew travel and repair times, most critical node first;
3. when the crew is done, clears the attack in the field and records ``sensor-quarantine`` with
   ``state: lifted`` and the quarantine's seq, after which the sensor counts again.

Both steps are write-ahead (the controller's outbox), so a restart neither repeats nor loses one.
Forged *signatures* are the other intrusion: those senders are oracles, and their peers quarantine
them through the quorum's own Quarantine action (`oracles.peer_check`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chain.commanded import field_ms
from chain.quarantines import named_sensor
from controller.deadlines import Deadline
from core.indicator_values import indicator_id, normalise_value
from core.messages import Sector
from gateway import ATTACK_CLASSES

__all__ = ["TECHNICIAN_S", "Candidate", "IndicatorTally", "IntrusionTally", "Quarantine", "Told"]

TECHNICIAN_S = 3600.0
"""Simulated seconds for a technician to reach the device, remove the tampering and re-issue the
gateway's credentials (travel ~30 min in a city, ~30 min on site)."""


def _read_since(db: Any, kinds: tuple[int, ...], cursor: int,
                add: Callable[[str, int, dict[str, Any], int], None]) -> int:
    """Hand each event of ``kinds`` after row ``cursor``, in row (chain) order, to ``add`` (oracle, seq,
    payload, kind); the new cursor."""
    marks = ",".join("?" * len(kinds))
    rows = db.execute(f"SELECT rowid, oracle, seq, payload, kind FROM events WHERE kind IN ({marks}) AND rowid > ? "
                      "ORDER BY rowid", (*kinds, cursor)).fetchall()
    for rowid, oracle, seq, payload, kind in rows:
        cursor = max(cursor, int(rowid))
        try:
            body = json.loads(bytes(payload))
        except (ValueError, TypeError):
            continue
        if isinstance(body, dict):
            add(str(oracle), int(seq), body, int(kind))
    return cursor


def _utility_sectors() -> set[str]:
    """The registered sectors (read when called: a plug-in registered later counts)."""
    return {s.value for s in Sector}


@dataclass
class Quarantine:
    """One sensor's quarantine: from the quorum's evidence to the crew's repair."""

    sector: str
    sensor: str
    asset: str
    node: str
    evidence: list[tuple[str, int]]  # (oracle, seq) of the intrusion verdicts that made the quorum
    observed_ms: int | None = None  # the field time of the latest reading that evidence judged
    observed: tuple[int | None, ...] = ()  # the field time each voter's verdict judged, in `evidence` order
    # at the lift: each oracle's latest verdict on the sensor, this quarantine's story (None: unknown,
    # a lift recorded before this was kept, and no verdict counts again)
    seen: dict[str, int] | None = None
    seq: int = 0  # the quarantine event's seq (0: not recorded yet)
    crew: str = ""
    due: Deadline = field(default_factory=lambda: Deadline(wall=0.0))  # the technician's (`controller.deadlines`)
    lifted: bool = False

    @property
    def key(self) -> str:
        return f"{self.sector}|{self.sensor}"


@dataclass
class IntrusionTally:
    """Which active oracles named which sensor in intrusion verdicts, read incrementally by block."""

    named: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (sector, sensor) → oracle → seq
    observed: dict[tuple[str, str], dict[str, int | None]] = field(default_factory=dict)  # → oracle → field ms
    assets: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # → (asset, node)
    cursor: int = 0  # the last events rowid read
    # (sector, sensor) → oracle → the seq of its latest verdict when the sensor's quarantine was lifted:
    # that quorum's story is over; a second quarantine needs fresh verdicts (the attacker back)
    after: dict[tuple[str, str], dict[str, int] | None] = field(default_factory=dict)

    def add(self, oracle: str, seq: int, payload: dict[str, Any]) -> None:
        sensor, sector = named_sensor(payload), payload.get("sector")
        if sensor is None or not isinstance(sector, str):
            return  # an intrusion raised by first-pass findings alone names no sensor: nothing to quarantine
        if sector not in _utility_sectors():
            return  # the controller's own sector or a vault's: no sensor there, and a one-member "quorum"
        key = (sector, sensor)
        # an oracle's latest verdict on the sensor is its word now: a quarantine found moot on an old
        # episode (the commanded flag's jump at a release) is taken on a fresh one
        self.named.setdefault(key, {})[oracle.lower()] = seq
        self.observed.setdefault(key, {})[oracle.lower()] = field_ms(payload.get("observed_at"))
        self.assets[key] = (str(payload.get("asset", "")), str(payload.get("subject", "")))

    def read(self, db: Any, intrusion_kind: int) -> None:
        """Take the intrusion events recorded since the last call (the indexer's ``events`` table)."""
        self.cursor = _read_since(db, (intrusion_kind,), self.cursor,
                                  lambda oracle, seq, payload, _kind: self.add(oracle, seq, payload))

    def quorate(self, active: dict[str, str] | set[str], required: dict[str, int]) -> list[Quarantine]:
        """Sensors named by at least the sector's required number of distinct active oracles *of that
        sector*: `active` maps each active oracle to its registry sector (a verdict's own ``sector``
        field is the sender's claim, and an oracle of another sector does not count for this one, as
        the audit's recount in `chain.quarantines` insists). A plain set skips the sector check (a
        pre-filter that never decides)."""
        out = []
        for (sector, sensor), by in sorted(self.named.items()):
            if (sector, sensor) in self.after:  # a lifted quarantine's sensor: only verdicts since the lift count
                told = self.after[(sector, sensor)]
                by = {} if told is None else {o: s for o, s in by.items() if s > told.get(o, -1)}
            voters = sorted((o, s) for o, s in by.items()
                            if o in active and (isinstance(active, set) or active[o] == sector))
            if sector in required and len(voters) >= required[sector] > 0:
                asset, node = self.assets[(sector, sensor)]
                seen = [self.observed.get((sector, sensor), {}).get(o) for o, _ in voters]
                latest = None if any(ms is None for ms in seen) else max(ms for ms in seen if ms is not None)
                out.append(Quarantine(sector, sensor, asset, node, voters, observed_ms=latest, observed=tuple(seen)))
        return out



@dataclass
class Told:
    """What one oracle's latest verdict naming an indicator said besides it."""

    seq: int
    wire_class: str = ""  # one of `gateway.ATTACK_CLASSES`, or "" (anything else is not kept)
    first_seen: str = ""  # its ISO time of the first malicious packet, as the oracle wrote it
    device: str = ""


@dataclass
class Candidate:
    """An indicator some oracles of a sector named in wire-intrusion verdicts, and its story so far.

    ``after`` holds each oracle's seq that no longer counts (the verdicts before the latest publication
    or withdrawal: the next publication needs fresh ones), ``published_until`` the latest publication's
    expiry (None: not in force). Both are set as the events come, in chain order, so a restart that
    re-reads the chain arrives at the same story."""

    sector: str
    id: str
    kind: str
    value: str
    by: dict[str, Told] = field(default_factory=dict)  # oracle → its latest verdict naming it
    after: dict[str, int] = field(default_factory=dict)
    published_until: datetime | None = None

    def fresh(self) -> dict[str, Told]:
        return {o: t for o, t in self.by.items() if t.seq > self.after.get(o, 0)}


@dataclass
class IndicatorTally:
    """Which oracles named which indicator in intrusion verdicts (`chain.indicators.names_indicator`'s
    rules: the id of a normalised kind and value), and the controller's own publications and
    withdrawals, read incrementally and in chain order from the controller's index. Keyed by (sector,
    id): two sectors' stories of one address are two stories."""

    me: str = ""
    candidates: dict[tuple[str, str], Candidate] = field(default_factory=dict)  # (sector, id) →
    cursor: int = 0

    def add(self, oracle: str, seq: int, payload: dict[str, Any]) -> None:
        sector, items = payload.get("sector"), payload.get("indicators")
        if not isinstance(sector, str) or not isinstance(items, list) or sector not in _utility_sectors():
            return
        wire = payload.get("wire") if isinstance(payload.get("wire"), dict) else {}
        wire_class = wire.get("class") if isinstance(wire, dict) else None
        subject = payload.get("subject")
        told = Told(seq, wire_class if wire_class in ATTACK_CLASSES else "",
                    str(payload.get("first_seen", ""))[:40],
                    subject if isinstance(subject, str) and 0 < len(subject) <= 32 else "")
        for item in items[:8]:
            if not isinstance(item, dict) or not isinstance(item.get("kind"), str) or not isinstance(item.get("value"), str):
                continue
            try:
                value = normalise_value(item["kind"], item["value"])
            except ValueError:
                continue
            ident = indicator_id(item["kind"], value)
            c = self.candidates.setdefault((sector, ident), Candidate(sector, ident, item["kind"], value))
            c.by[oracle.lower()] = told

    def decided(self, oracle: str, payload: dict[str, Any]) -> None:
        """This controller's publication or withdrawal, in its place in the chain's order."""
        if oracle.lower() != self.me.lower():
            return
        ident, state = payload.get("id"), payload.get("state")
        for (sector, cid), c in self.candidates.items():
            if cid != ident:
                continue
            if state == "published" and payload.get("source_sector") == sector:
                c.after = {o: t.seq for o, t in c.by.items()}
                try:
                    c.published_until = datetime.fromisoformat(str(payload.get("expires")))
                except ValueError:
                    c.published_until = None
            elif state == "withdrawn":  # withdrawn everywhere: what was told before it counts no more
                c.after = {o: t.seq for o, t in c.by.items()}
                c.published_until = None

    def read(self, db: Any, intrusion_kind: int, indicator_kind: int) -> None:
        """Take the intrusion verdicts and this controller's indicator events recorded since the last call."""
        def take(oracle: str, seq: int, payload: dict[str, Any], kind: int) -> None:
            if kind == intrusion_kind:
                self.add(oracle, seq, payload)
            else:
                self.decided(oracle, payload)

        self.cursor = _read_since(db, (intrusion_kind, indicator_kind), self.cursor, take)
