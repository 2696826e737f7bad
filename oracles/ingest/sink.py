"""The hand-off between device ingesters (MQTT, Modbus) and the oracle that stores their readings.

Ingesters run on their own threads (paho's network thread, a poller thread) and must never wait on
SQLite or the chain; the oracle's main loop must never wait on a device. So they meet here: a
bounded, thread-safe FIFO of validated `Reading`s.

- `put_many` is all-or-nothing per call (one MQTT message, one Modbus poll) and blocks up to
  `timeout_s` for room, which slows a publisher down (paho acknowledges a QoS 1 message only after
  its callback returns) instead of growing memory without bound. What still does not fit is dropped,
  counted and logged: a full sink means the oracle is down or far behind, and that must be visible.
- `drain` / `drain_into` take readings out in arrival order, in bounded chunks.
- Acknowledge after storing: `put_many(..., on_stored=ack)` runs `ack` once every reading of that
  call is stored (`drain_into`), handed to a caller (`drain`) or dropped. The MQTT
  subscriber acknowledges a QoS 1 message this way, so a broker that redelivers unacknowledged
  messages (Mosquitto, EMQX) never loses one that sat in this in-memory queue when the oracle died.
- `reject` counts a bad message or device value and logs it as one structured JSON line on the
  ``qeaims.ingest`` logger (``{"event": "reading-rejected", "source", "reason", "where", "detail"}``).
  Lines are rate-limited (a device spewing garbage must not flood the log); the next line that is
  written carries how many were ``suppressed``. The counters are never rate-limited.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chain.recorder import EventRecorder
from core.errors import ConfigError
from core.messages import Reading
from oracles.telemetry import TelemetryStore

__all__ = ["LOGGER_NAME", "ReadingSink", "SinkStats"]

LOGGER_NAME = "qeaims.ingest"
_log = logging.getLogger(LOGGER_NAME)
_DETAIL_MAX = 200


@dataclass(frozen=True)
class SinkStats:
    """Counters since the sink was made; `rejected` and `accepted` are per source (``mqtt``, ``modbus``)."""

    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    pending: int = 0


class ReadingSink:
    """A bounded FIFO of readings, safe to fill from many threads and drain from one."""

    def __init__(self, capacity: int = 100_000, *, log_lines_per_s: float = 20.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1:
            raise ConfigError("sink capacity must be at least 1")
        self.capacity = capacity
        self._queue: deque[Reading] = deque()
        self._cond = threading.Condition()
        self._accepted: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._dropped = 0
        self._log_lines_per_s = log_lines_per_s
        self._clock = clock
        self._log_window = (float("-inf"), 0)  # (start of the current second, lines written in it)
        self._suppressed = 0
        self._acks: deque[tuple[int, Callable[[], None]]] = deque()  # (reading count that settles it, ack)
        self._put_total = 0  # readings ever queued
        self._settled_total = 0  # readings ever stored, handed over or dropped

    # --- filling ---------------------------------------------------------------------------------

    def put_many(self, readings: Sequence[Reading], *, source: str, timeout_s: float = 1.0,
                 on_stored: Callable[[], None] | None = None) -> bool:
        """Queue all of `readings` or none; waits up to `timeout_s` for room. False: dropped (and logged).

        `on_stored` runs (on the draining thread) once all of them are stored or handed over; at once
        if they were dropped, so a sender is never left waiting for an acknowledgement.
        """
        if not readings:
            if on_stored is not None:
                on_stored()
            return True
        if len(readings) > self.capacity:
            self._drop(readings, source, f"{len(readings)} readings exceed the sink capacity {self.capacity}")
            if on_stored is not None:
                on_stored()
            return False
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._queue) + len(readings) > self.capacity:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            else:
                self._queue.extend(readings)
                self._accepted[source] += len(readings)
                self._put_total += len(readings)
                if on_stored is not None:
                    self._acks.append((self._put_total, on_stored))
                self._cond.notify_all()
                return True
        self._drop(readings, source, f"sink full ({self.capacity}) for {timeout_s} s: is the oracle draining it?")
        if on_stored is not None:
            on_stored()
        return False

    def _drop(self, readings: Sequence[Reading], source: str, why: str) -> None:
        with self._cond:
            self._dropped += len(readings)
        self.log_line("readings-dropped", source=source, reason="sink-full", where=readings[0].asset_id,
                      detail=why, count=len(readings))

    def reject(self, *, source: str, reason: str, where: str, detail: str) -> None:
        """Count one bad message or device value from `source` and log it as one structured line."""
        with self._cond:
            self._rejected[source] += 1
        self.log_line("reading-rejected", source=source, reason=reason, where=where, detail=detail)

    def log_line(self, event: str, *, source: str, reason: str, where: str, detail: str, count: int = 1) -> None:
        """One JSON line on the ``qeaims.ingest`` logger, at most `log_lines_per_s` per second."""
        with self._cond:
            now = self._clock()
            start, lines = self._log_window
            if now - start >= 1.0:
                start, lines = now, 0
            if lines >= self._log_lines_per_s:
                self._suppressed += 1
                self._log_window = (start, lines)
                return
            self._log_window = (start, lines + 1)
            suppressed, self._suppressed = self._suppressed, 0
        record: dict[str, object] = {
            "event": event, "source": source, "reason": reason, "where": where[:_DETAIL_MAX],
            "detail": " ".join(detail.split())[:_DETAIL_MAX],
        }
        if count != 1:
            record["count"] = count
        if suppressed:
            record["suppressed"] = suppressed
        _log.warning("%s", json.dumps(record, sort_keys=True, ensure_ascii=True))

    # --- draining --------------------------------------------------------------------------------

    def wait(self, timeout_s: float) -> bool:
        """Block until a reading is waiting (True) or `timeout_s` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._queue), timeout_s)

    def drain(self, max_items: int = 10_000) -> list[Reading]:
        """Take up to `max_items` readings out, oldest first (the caller is now responsible for them)."""
        out = self._take(max_items)
        self._settle(len(out))
        return out

    def _take(self, max_items: int) -> list[Reading]:
        with self._cond:
            count = min(max_items, len(self._queue))
            out = [self._queue.popleft() for _ in range(count)]
            if out:
                self._cond.notify_all()
            return out

    def _put_back(self, chunk: list[Reading]) -> None:
        with self._cond:
            self._queue.extendleft(reversed(chunk))

    def _settle(self, count: int) -> None:
        """`count` more readings from the head are safe: run the acknowledgements that covers."""
        if not count:
            return
        due: list[Callable[[], None]] = []
        with self._cond:
            self._settled_total += count
            while self._acks and self._acks[0][0] <= self._settled_total:
                due.append(self._acks.popleft()[1])
        for ack in due:
            try:
                ack()
            except Exception as exc:  # noqa: BLE001 - an ack that fails must not stop ingestion
                self.log_line("ack-failed", source="sink", reason="ack", where="", detail=str(exc))

    def drain_into(self, store: TelemetryStore, recorder: EventRecorder | None = None, *,
                   max_items: int = 10_000) -> list[int]:
        """Drain one chunk into the oracle's store; with a `recorder`, anchor whatever batch that fills.

        This is `TelemetryStore.ingest` split at the point that matters here: if storing fails, the
        chunk goes back to the front of the sink, so nothing is lost; once stored, a failed anchor
        (the recorder's `ChainError`) is raised as is, and the store's next `anchor` sends it.
        Returns the store's arrival numbers (`TelemetryStore.ref_of` turns them into reading ids).
        """
        chunk = self._take(max_items)
        if not chunk:
            return []
        try:
            ids = store.add_many(chunk)  # one transaction: on failure nothing was stored
        except BaseException:
            self._put_back(chunk)
            raise
        self._settle(len(chunk))
        if recorder is not None and store.due():
            store.anchor(recorder)
        return ids

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(dict(self._accepted), dict(self._rejected), self._dropped, len(self._queue))

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)
