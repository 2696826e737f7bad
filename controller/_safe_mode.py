"""The controller's safe-mode decision: a sector whose devices are attacked one after another refuses writes.

The rule (`chain.countermeasures`, which every reader recounts): when the sector's quorum has published,
within `SAFE_MODE_WINDOW`, indicators still in force whose cited verdicts show command attacks on at
least `SAFE_MODE_DEVICES` distinct devices of the sector, and none of that sector's safe modes is in
force, the controller records a ``countermeasure`` event ``{state: applied, type: safe-mode, sector,
indicators, devices, reason}``. One device attacked is that device's quarantine (`controller.
_intrusion_response`); three in an hour is a campaign whose next target is unknown, so every device of
the sector refuses writes at its gateway while readings flow (no node leaves service: isolation stays
the quorum's). It is lifted by evidence (its indicators withdrawn or expired until fewer than three
devices are backed: every reader stops enforcing it at once, and the controller records the lift) or
by the control room (`qeaims intel lift ID --reason`); after a lift only indicators published since
count towards the next, so a lift is not undone by the evidence it overruled.

Cheap: the recount (every publication, every countermeasure) runs only when the index holds new
``indicator`` or ``countermeasure`` events, or every `RECHECK_S` (expiries, registry changes); not on
every pass of the loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chain.countermeasures import (
    SAFE_MODE_DEVICES,
    SAFE_MODE_WINDOW,
    CountermeasureRecord,
    SafeModeReader,
    countermeasure_records,
    in_force_measures,
    last_lifts,
)
from chain.indicators import indicator_records
from chain.quarantines import signature_check
from chain.recorder import EventRecorder, canonical_payload
from chain.registry_history import RegistryHistory
from controller._controller_state import COUNTERMEASURE, INDICATOR, log_line
from keys.ids import to_bytes32

__all__ = ["RECHECK_S", "SafeModes"]

RECHECK_S = 15.0
"""How often the decision is recounted with no new indicator or countermeasure event (expiries)."""

_END = (2**62, 0)


@dataclass
class SafeModes:
    """The controller's safe-mode decisions and evidence lifts (module docstring)."""

    me: str
    recheck_s: float = RECHECK_S
    _seen: tuple[Any, ...] | None = None
    sent: dict[str, str] = field(default_factory=dict)  # id → "applied" | "lifted": what this controller sent

    def load(self, recorder: EventRecorder) -> None:
        """What this controller already recorded, from its outbox: a restart, or an event not yet on the
        chain's index, is never sent twice."""
        for row in recorder.outbox.rows_of_kinds([COUNTERMEASURE]):
            try:
                body = json.loads(row.payload)
                if body["state"] == "lifted" or body.get("type") == "safe-mode":
                    self.sent[str(body["id"])] = str(body["state"])
            except (ValueError, KeyError, TypeError):
                continue

    def step(self, db: Any, recorder: EventRecorder, now: datetime) -> list[str]:
        """Decide and record; the ids recorded (applied or lifted) this time."""
        counts = db.execute("SELECT COUNT(*), MAX(block) FROM events WHERE kind IN (?, ?)",
                            (INDICATOR, COUNTERMEASURE)).fetchone()
        seen = (tuple(counts), int(now.timestamp() // self.recheck_s))
        if seen == self._seen or not counts[0]:
            return []
        self._seen = seen
        history = RegistryHistory.from_db(db)
        records = indicator_records(db, history)
        measures = countermeasure_records(db, history, indicators=records)
        active = in_force_measures(measures, records, now)
        done = self._lift_lapsed(recorder, measures, active)
        on = {str(m.body.get("sector")) for m in active.values() if m.body.get("type") == "safe-mode"}
        pending = {i for i, state in self.sent.items() if state == "applied"} - {m.id for m in measures}
        on |= {i.split(":")[1] for i in pending if i.count(":") >= 2}
        reader = SafeModeReader(db, history, records, signature_check(db))
        lifts = last_lifts(measures)
        sectors = sorted({str(r.body.get("source_sector")) for r in records if r.counts and r.state == "published"})
        for sector in sectors:
            if sector in on:
                continue
            campaign = reader.campaign(sector, _END, now, after=lifts.get(sector))
            if not campaign.quorate:
                continue
            newest = max((r for r in records if r.id in campaign.indicators and r.counts and r.state == "published"),
                         key=lambda r: r.position)
            ident = f"safe-mode:{sector}:{newest.block}.{newest.log_index}"
            if ident in self.sent:
                continue
            devices = sorted(campaign.devices)
            body = {"state": "applied", "id": ident, "type": "safe-mode", "sector": sector,
                    "indicators": list(campaign.indicators), "devices": devices,
                    "reason": (f"command attacks on {len(devices)} devices of {sector} ({', '.join(devices)})"[:200]
                               + f" published by its quorum within {SAFE_MODE_WINDOW}; "
                               f"{SAFE_MODE_DEVICES} make a campaign")}
            seq = recorder.write_ahead(COUNTERMEASURE, to_bytes32(sector), canonical_payload(body))
            self.sent[ident] = "applied"  # noted once durable: a failed send is retried, not the safe mode
            done.append(ident)
            log_line("controller-safe-mode", sector=sector, devices=len(devices), seq=seq)
            recorder.flush()
        return done

    def _lift_lapsed(self, recorder: EventRecorder, measures: list[CountermeasureRecord],
                     active: dict[str, CountermeasureRecord]) -> list[str]:
        """This controller's safe modes whose evidence no longer holds (every reader already stopped
        enforcing them): their lift recorded, once."""
        lifted = {m.id for m in measures if m.counts and m.state == "lifted"}
        done: list[str] = []
        for m in measures:
            if (not m.counts or m.state != "applied" or m.body.get("type") != "safe-mode" or m.id in active
                    or m.id in lifted or m.oracle != self.me.lower() or self.sent.get(m.id) == "lifted"):
                continue
            body = {"state": "lifted", "id": m.id,
                    "reason": f"evidence lapsed: its indicators in force back fewer than {SAFE_MODE_DEVICES} devices"}
            seq = recorder.write_ahead(COUNTERMEASURE, to_bytes32(str(m.body.get("sector"))), canonical_payload(body))
            self.sent[m.id] = "lifted"  # noted once durable, as above
            done.append(m.id)
            log_line("controller-safe-mode-lifted", sector=m.body.get("sector"), id=m.id, seq=seq)
            recorder.flush()
        return done
