"""Readings in and judged: the sink drained into the store, the stored readings replayed through the
sector's stream, each new episode's verdict written ahead to the outbox (part of `oracles.node`).

1. **Store.** The sink (filled by the MQTT/Modbus threads) is drained into the oracle's
   `TelemetryStore`; a reading counts as taken in once that commit is on disk.
2. **Judge.** Readings stored after the *detection cursor* are replayed from the store through the
   sector's `SectorStream` (rows → model → episodes). Each new episode's verdict is written ahead
   to the outbox as an anomaly/fault/intrusion/maintenance event whose payload carries the episode
   key; a fault on an isolable node also queues an isolation action. The cursor, the stream's state
   and the queued actions are committed together in the oracle's state file.

Exactly once. Readings: the store commit. Verdicts: a crash between the outbox append and the state
commit replays the same readings from the same saved stream state, which re-derives the same
episode keys; keys already in the outbox are not appended again.
"""

from __future__ import annotations

import json

from chain.recorder import canonical_payload
from core.messages import Reading, VerdictKind
from keys.ids import to_bytes32
from oracles.merkle import reading_from_body
from oracles.node.state import VERDICT_KINDS, NodeState, log_line
from oracles.stream import Episode
from oracles.telemetry_chunks import read_bodies

__all__ = ["Judging"]


class Judging(NodeState):
    """Steps 1 and 2 of `OracleNode.run_once`: store, then judge."""

    def store_waiting(self) -> int:
        """Move everything in the sink into the store (durable; the MQTT acknowledgements go out)."""
        total = 0
        while True:
            ids = self.sink.drain_into(self.store, max_items=self.options.judge_chunk)
            if not ids:
                self.stats.stored += total
                return total
            total += len(ids)

    def _replay(self, upto: int | None = None) -> None:
        """Judge readings stored after the cursor (left unjudged by a crash), straight from the store."""
        last = self._stored_last_id() if upto is None else upto
        while self._cursor < last:
            hi = min(last, self._cursor + self.options.judge_chunk, *self._window_edges())
            readings = [reading_from_body(body) for body in read_bodies(self._reader, self._cursor + 1, hi)]
            self._judge(readings, hi)
            for window in (*self._repairs.values(), *self._settling.values()):
                window.advance(self._cursor, self.stream)

    def _window_edges(self) -> list[int]:
        """Where a `RowsSince` starts counting: judging stops there once, so the count starts exactly."""
        return [w.after_id for w in (*self._repairs.values(), *self._settling.values())
                if w.start_row is None and w.after_id > self._cursor]

    def _judge(self, readings: list[Reading], last_id: int) -> None:
        episodes = self.stream.feed(readings)
        actions: list[tuple[str, str, int]] = []
        for ep in episodes:
            seq = self._recorded.get(ep.key)
            if seq is None:
                seq = self.outbox.append(VERDICT_KINDS[ep.verdict.kind], to_bytes32(ep.subject), _payload(ep))
                self._recorded[ep.key] = seq
                self.stats.episodes += 1
                log_line("verdict", oracle=self.me, seq=seq, episode=ep.key, kind=ep.verdict.kind.value,
                         asset=ep.verdict.asset_id, reason=ep.verdict.reason)
            if ep.verdict.kind is VerdictKind.FAULT and ep.anchor is not None:
                actions.append((ep.key, ep.anchor, seq))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR IGNORE INTO actions(episode, target, evidence_seq) VALUES (?, ?, ?)",
                                 actions)
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('cursor', ?)", (str(last_id),))
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('stream', ?)",
                             (json.dumps(self.stream.state(), separators=(",", ":")),))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._cursor = last_id
        self.stats.judged += len(readings)


def _payload(ep: Episode) -> bytes:
    v = ep.verdict
    return canonical_payload({
        "episode": ep.key, "subject": ep.subject, "sector": v.sector.value, "asset": v.asset_id,
        "verdict": v.kind.value, "score": round(v.score, 6), "threshold": round(v.threshold, 6),
        "sensors": list(v.sensors), "reason": v.reason, "observed_at": v.observed_at.isoformat(),
    })
