"""From a stream of readings to verdict *episodes*: what an oracle says, and says once.

Sensors report one reading per sensor per period; a detector wants one row per period with a
column per sensor (`SectorModel.sensors`). `SectorStream` assembles rows by timestamp in arrival
order — a row closes when every sensor has reported for it, or when a reading for a later time
arrives (then a sensor that missed the period keeps its last value) — and hands each row, with the
recent ones, to the model.

A fault lasts many periods, and a verdict every minute for the same broken feeder is noise on a
ledger. So verdicts are grouped into episodes per (subject, kind), the subject being the on-chain
node the asset belongs to (`sectors.anchors`) or the asset itself: the first verdict opens the
episode and is the one recorded; the episode closes after `clear_rows` rows without a verdict on
that subject. The episode's key (subject, kind, onset time) is in the event payload, which is how a
restarted oracle recognises verdicts it already wrote. A physics rule's verdict (`PHYSICS_NOTE`)
is grouped by the instrument it names first as well: rules name their instruments the same way
row after row, and a second rule broken on the same subject (a declared MCI at a hospital whose
load was already a fault) is a new story to vote on, not a row of the old one.

Failure prediction runs beside the model: a sensor whose quantity has a wear limit (`WEAR_LIMITS`,
e.g. pump bearing vibration) keeps a history, and every `wear_every` samples a robust trend is
fitted (`oracles.detect.predict`); if it will cross the limit within the horizon, a MAINTENANCE
episode opens (one per sensor, until a later check no longer predicts the crossing).

The stream is deterministic and its whole state is a JSON document (`state()` / `restore()`), so
after a crash the oracle restores the state saved with its cursor and replays the readings stored
after it: the same rows, the same verdicts, the same episode keys.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bus.mqtt import sensor_key
from core.messages import Reading, Sector, Verdict
from oracles.detect.predict import maintenance_verdict
from oracles.merkle import timestamp_ms
from oracles.sector_model import PHYSICS_NOTE
from sectors.anchors import anchor_node

__all__ = ["WEAR_LIMITS", "Episode", "SectorModelLike", "SectorStream", "sensor_key"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

WEAR_LIMITS: dict[str, tuple[float, timedelta]] = {
    # ISO 10816-3, medium machines on rigid foundations: 7.1 mm/s rms is the zone C/D boundary
    # ("vibration causes damage"); plan the repair when the trend will get there within two weeks.
    "vibration_mm_s": (7.1, timedelta(days=14)),
}
_WEAR_HISTORY = 400
_WEAR_MIN = 30
_ROW_TIMES = 512  # row field times kept: a settling window looks back this far for its fail-back


CLEAR_FIELD_S = 300.0  # field seconds of quiet that close an episode
CLEAR_ROWS_MIN = 5


class SectorModelLike(Protocol):
    """What the stream needs of a trained sector model (`oracles.training.SectorModel`)."""

    sector: Sector
    sensors: tuple[str, ...]

    def assess(self, recent: NDArray[np.float64], observed_at: datetime) -> Verdict | None: ...


@dataclass(frozen=True)
class Episode:
    """A verdict that opened an episode: the one thing about it that goes on-chain."""

    key: str  # "subject|kind|onset_ms": stable across restarts
    subject: str
    anchor: str | None  # the registered node to isolate, if the subject is isolable
    verdict: Verdict


class SectorStream:
    def __init__(self, model: SectorModelLike, *, history: int = 32, warmup: int = 3, clear_rows: int | None = None,
                 wear_every: int = 10) -> None:
        """`clear_rows` (quiet rows that close an episode; twice that is a reintegrated node's settling
        window) defaults to five minutes of the model's rows and never fewer than 5: the field time
        these windows were tuned in when every sector reported once a minute, kept when a feeder RTU
        reports every 5 s (60 rows) so that a fault does not close and reopen between two readings."""
        if clear_rows is None:
            clear_rows = max(CLEAR_ROWS_MIN, math.ceil(CLEAR_FIELD_S / float(getattr(model, "period_s", 60) or 60)))
        if history < 2 or warmup < 1 or clear_rows < 1:
            raise ValueError("history must be ≥ 2, warmup and clear_rows ≥ 1")
        self.model = model
        self.sector = model.sector
        # at least the rows the detector's newest score depends on, and the one a totaliser's increment
        # drops (`oracles.sector_model.increments`): a windowed detector keeps a longer history
        inner = getattr(model, "model", None)
        self.history = max(history, int(getattr(inner, "context", 1)) + 1)
        self.warmup = warmup
        self.clear_rows = clear_rows
        self._column = {name: j for j, name in enumerate(model.sensors)}
        self._last: list[float | None] = [None] * len(model.sensors)
        self._pending_ms: int | None = None
        self._row_ms: deque[int] = deque(maxlen=_ROW_TIMES)  # field times of the latest complete rows
        self._pending: dict[int, float] = {}
        self._recent: list[list[float]] = []
        self._episodes: dict[str, dict[str, int]] = {}  # "subject|kind" → {"onset": ms, "quiet": rows}
        self.rows = 0
        self.wear_every = wear_every
        self._wear: dict[str, list[list[float]]] = {}  # sensor key → [[ms, value], ...] (oldest first)
        self._wear_new: dict[str, int] = {}  # samples since the last trend check
        self._wear_open: dict[str, int] = {}  # sensor key → onset ms of its open maintenance episode

    # --- feeding -------------------------------------------------------------------------------

    def feed(self, readings: Iterable[Reading]) -> list[Episode]:
        """Take readings in arrival order; return the episodes they open."""
        opened: list[Episode] = []
        for r in readings:
            if r.sector != self.sector:
                continue  # stored and anchored all the same, just not this oracle's to judge
            if r.quantity in WEAR_LIMITS:
                opened.extend(self._wear_sample(r))
            j = self._column.get(sensor_key(r))
            if j is None:
                continue  # not part of this model
            ms = timestamp_ms(r.timestamp)
            if self._pending_ms is None or ms > self._pending_ms:
                if self._pending_ms is not None:
                    opened.extend(self._close_row())
                self._pending_ms = ms
            elif ms < self._pending_ms:
                continue  # a late sample of a period already judged
            self._pending[j] = r.value
            if len(self._pending) == len(self._column):
                opened.extend(self._close_row())
        return opened

    def flush(self) -> list[Episode]:
        """Close the row being assembled (when its period is certainly over)."""
        return self._close_row() if self._pending_ms is not None else []

    def _close_row(self) -> list[Episode]:
        ms = self._pending_ms
        assert ms is not None
        for j, value in self._pending.items():
            self._last[j] = value
        self._pending, self._pending_ms = {}, None
        if any(v is None for v in self._last):
            return []  # some sensor has never reported: no complete row yet
        self._recent.append([float(v) for v in self._last if v is not None])
        del self._recent[: -self.history]
        self.rows += 1
        self._row_ms.append(ms)
        if len(self._recent) < self.warmup:
            return []
        at = _EPOCH + timedelta(milliseconds=ms)
        verdict = self.model.assess(np.asarray(self._recent, dtype=np.float64), at)
        return self._episode(verdict, ms)

    def _episode(self, verdict: Verdict | None, ms: int) -> list[Episode]:
        current = None
        opened: list[Episode] = []
        if verdict is not None:
            anchor = anchor_node(self.sector, verdict.asset_id)
            subject = anchor or verdict.asset_id
            current = f"{subject}|{verdict.kind.value}"
            if PHYSICS_NOTE in verdict.reason and verdict.sensors:
                # a rule's verdict is an episode of its own per instrument it names first: an MCI
                # declared at a hospital whose load verdicts are excused (the aftermath of a
                # diversion, `oracles.node.voting._lingering`) is a new story, and must be voted
                current += f"|{verdict.sensors[0]}"
            if current not in self._episodes:
                self._episodes[current] = {"onset": ms, "quiet": 0}
                opened.append(Episode(f"{current}|{ms}", subject, anchor, verdict))
            self._episodes[current]["quiet"] = 0
        for key in list(self._episodes):
            if key != current:
                self._episodes[key]["quiet"] += 1
                if self._episodes[key]["quiet"] >= self.clear_rows:
                    del self._episodes[key]
        return opened

    def _wear_sample(self, r: Reading) -> list[Episode]:
        key = sensor_key(r)
        history = self._wear.setdefault(key, [])
        ms = timestamp_ms(r.timestamp)
        if history and ms <= history[-1][0]:
            return []  # a repeat or a late sample: a trend needs strictly increasing time
        history.append([float(ms), r.value])
        del history[: -_WEAR_HISTORY]
        self._wear_new[key] = self._wear_new.get(key, 0) + 1
        if len(history) < _WEAR_MIN or self._wear_new[key] < self.wear_every:
            return []
        self._wear_new[key] = 0
        limit, horizon = WEAR_LIMITS[r.quantity]
        times = [_EPOCH + timedelta(milliseconds=int(t)) for t, _ in history]
        verdict = maintenance_verdict(times, [v for _, v in history], limit=limit, horizon=horizon,
                                      sector=self.sector, asset_id=r.asset_id, sensor=key, unit=f" {r.unit}")
        if verdict is None:
            self._wear_open.pop(key, None)
            return []
        if key in self._wear_open:
            return []
        self._wear_open[key] = ms
        return [Episode(f"{key}|maintenance|{ms}", r.asset_id, anchor_node(self.sector, r.asset_id), verdict)]

    def rows_since(self, ms: int) -> int:
        """How many of the rows judged are at or after field time `ms` (as far back as it remembers)."""
        return sum(1 for at in self._row_ms if at >= ms)

    @property
    def open_episodes(self) -> list[str]:
        return sorted(self._episodes)

    # --- persistence ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything the next row depends on, as plain JSON values."""
        return {
            "sensors": len(self._column), "last": self._last, "pending_ms": self._pending_ms,
            "pending": {str(j): v for j, v in self._pending.items()}, "recent": self._recent,
            "episodes": self._episodes, "rows": self.rows,
            "wear": self._wear, "wear_new": self._wear_new, "wear_open": self._wear_open,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take a saved state whole, or raise and change nothing."""
        if int(state["sensors"]) != len(self._column):
            raise ValueError(f"saved stream has {state['sensors']} sensors, the model {len(self._column)}: "
                             "the model changed; the oracle starts a fresh stream")
        last = [None if v is None else float(v) for v in state["last"]]
        pending_ms = None if state["pending_ms"] is None else int(state["pending_ms"])
        pending = {int(j): float(v) for j, v in state["pending"].items()}
        recent = [[float(v) for v in row] for row in state["recent"]]
        if len(last) != len(self._column) or any(len(row) != len(self._column) for row in recent):
            raise ValueError("saved stream rows do not match the model's sensors")
        if any(not all(math.isfinite(v) for v in row) for row in recent):
            raise ValueError("saved stream holds a non-finite value")
        episodes = {str(k): {"onset": int(v["onset"]), "quiet": int(v["quiet"])} for k, v in state["episodes"].items()}
        rows = int(state["rows"])
        wear = {str(k): [[float(t), float(v)] for t, v in h] for k, h in state.get("wear", {}).items()}
        wear_new = {str(k): int(v) for k, v in state.get("wear_new", {}).items()}
        wear_open = {str(k): int(v) for k, v in state.get("wear_open", {}).items()}
        self._last, self._pending_ms, self._pending, self._recent = last, pending_ms, pending, recent
        self._episodes, self.rows = episodes, rows
        self._wear, self._wear_new, self._wear_open = wear, wear_new, wear_open
