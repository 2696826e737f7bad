"""An oracle's watch for an indicator naming its own key (part of `oracles.node`).

When a sector's quorum publishes a ``key-fingerprint`` indicator naming this oracle's current ML-DSA
key (and nobody withdrew it: expired or not, `chain.rotation.named_key` says why) (`chain.rotation.key_fingerprint`), the key may be in other hands: the oracle signs nothing more
with it and rotates (`KeyRotationOwed`, which `qeaims oracle` answers with `chain.rotation.
rotate_oracle_key`, the registry's ``KeyRotated`` log, and serves again on the new key). Once per
indicator by construction: the new key has another fingerprint, so the same indicator names it no more.

Cheap: every peer check (`NodeOptions.peer_interval_s`) reads only the ``indicator`` events the index
took since the last one and looks for this key's indicator id in them; the recount
(`chain.rotation.named_key`: a quorum's publication, not withdrawn) runs only when one of them carries
it, and again only when another does. A publication's recount is fixed at its position (the registry as
it was then), so nothing but a new event can bring it into force later.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from chain.indicators import IndicatorRecord
from chain.rotation import key_fingerprint, named_key
from core.indicator_values import indicator_id
from core.kinds import kind_by_name

__all__ = ["KeyWatch"]

_INDICATOR = kind_by_name("indicator")


@dataclass
class KeyWatch:
    """Whether a quorum's indicator names the key ``pq_public_key`` (module docstring)."""

    pq_public_key: bytes
    fingerprint: str = ""
    ident: str = ""
    cursor: tuple[int, int] = (-1, -1)  # (block, log_index) of the last indicator event read
    recounts: int = 0  # full recounts run (what the watch costs)
    _due: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.fingerprint = key_fingerprint(self.pq_public_key)
        self.ident = indicator_id("key-fingerprint", self.fingerprint)

    def check(self, db: sqlite3.Connection) -> IndicatorRecord | None:
        """The publication that names this key (not withdrawn), or None; recounts only after an event that
        carries it."""
        rows = db.execute("SELECT payload, block, log_index FROM events WHERE kind = ? AND (block > ? OR "
                          "(block = ? AND log_index > ?)) ORDER BY block, log_index",
                          (_INDICATOR, self.cursor[0], self.cursor[0], self.cursor[1])).fetchall()
        for payload, block, log_index in rows:
            self.cursor = (int(block), int(log_index))
            try:
                body = json.loads(bytes(payload))
            except ValueError:
                continue
            if isinstance(body, dict) and body.get("id") == self.ident:
                self._due = True
        if not self._due:
            return None
        self.recounts += 1
        record = named_key(db, self.fingerprint)
        self._due = record is not None  # named: asked again until acted on; else only a new event re-arms it
        return record
