"""The public status page's source: the twins' service messages, kept per sector and district.

Each running twin publishes its service level on ``qeaims-svc/<sector>`` every report period
(`sectors.service.service_message`: the share of the sector's service delivered now). `ServiceWatch`
subscribes to them on the bus, as the scenario runner's `ServiceFeed` does (through the operations
SAE's links when the city runs secure links), and keeps per (sector, district) the newest level and
a bounded ring of recent ones, from which the page's "availability over the last hour" is computed
(time-weighted: each level holds until the next one).

Districts. The twins report a sector as a whole: a message names no district, so its level is
recorded for every district of the sector (`core.sectors.DISTRICTS` that its nodes are in). A message
that names a ``district`` of the sector is recorded for that district only, so a twin that one day
reports per district needs no change here. The page says so.

Nothing here blocks the API's start: `start` connects in a thread that retries while the broker is
down; paho reconnects by itself after that. Without a message yet a sector reads "no data yet".
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bus.client import NamedClient
from bus.secure import SecureLinks
from core.errors import ConfigError
from core.logs import log_line

__all__ = ["HOUR_S", "MINUTE_S", "OK_AT", "OUTAGE_BELOW", "SERIES_MINUTES", "STALE_S", "DistrictService", "ServiceWatch",
           "percent", "state_of"]

HOUR_S = 3600.0
RING = 2048
"""Samples kept per (sector, district): an hour of 5-second reports (electricity, the fastest) is 720."""
OK_AT = 0.99
"""Availability at or above which a district's service reads "ok"."""
OUTAGE_BELOW = 0.5
"""Availability below which it reads "outage" (in between: "degraded")."""
STALE_S = 600.0
"""A district's newest level older than this reads "no recent data": the twin stopped reporting."""
MINUTE_S = 60.0
SERIES_MINUTES = 1440
"""Minutes of history kept per (sector, district) for the availability series: a day."""


def percent(share: float) -> float:
    """A share (0..1) as percent with two decimals, never 100 unless it is whole: 0.99996 is 99.99, not 100
    (the nines are the point of an uptime figure)."""
    if share >= 1.0:
        return 100.0
    return min(round(100.0 * share, 2), 99.99)


def state_of(availability: float | None, age_s: float | None) -> str:
    """The plain word for a level: ok, degraded, outage; or no data yet / no recent data."""
    if availability is None or age_s is None:
        return "no data yet"
    if age_s > STALE_S:
        return "no recent data"
    if availability >= OK_AT:
        return "ok"
    return "degraded" if availability >= OUTAGE_BELOW else "outage"


@dataclass(frozen=True)
class DistrictService:
    """One district's service as the public page shows it."""

    sector: str
    district: str
    state: str
    availability_hour: float | None  # time-weighted share over the last hour (0..1), None without data
    current: float | None
    updated: float | None  # POSIX seconds of the newest level
    since: float | None  # when the current run of not-ok states began (None while ok or without data)


class _Track:
    __slots__ = ("minutes", "ring", "since")

    def __init__(self) -> None:
        self.ring: deque[tuple[float, float]] = deque(maxlen=RING)  # (POSIX seconds, availability)
        self.since: float | None = None
        # settled per-minute sums, oldest first: [minute index, level × seconds, seconds covered]
        self.minutes: deque[list[float]] = deque(maxlen=SERIES_MINUTES + 1)

    def hold(self, start: float, end: float, value: float) -> None:
        """Add `value` held over [start, end) to the minutes it spans (a level holds at most STALE_S)."""
        end = min(end, start + STALE_S)
        at = start
        while at < end:
            minute = math.floor(at / MINUTE_S)
            upto = min(end, (minute + 1) * MINUTE_S)
            if not self.minutes or self.minutes[-1][0] < minute:
                self.minutes.append([float(minute), 0.0, 0.0])
            bucket = self.minutes[-1]
            if bucket[0] == minute:
                bucket[1] += value * (upto - at)
                bucket[2] += upto - at
            at = upto


class ServiceWatch(NamedClient):
    """Service levels per sector and district from ``qeaims-svc/+`` (module docstring)."""

    def __init__(self, districts: Mapping[str, tuple[str, ...]], *, host: str = "127.0.0.1", port: int = 1883,
                 links: SecureLinks | None = None, clock: Callable[[], float] = time.time,
                 client_id: str = "api-service-watch") -> None:
        super().__init__(client_id, host=host, port=port, settle_s=0.0, links=links)
        self.districts = {sector: tuple(names) for sector, names in districts.items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self._listen([("qeaims-svc/+", 0)], self._on_message)

    # --- feeding ------------------------------------------------------------------------------

    def _on_message(self, _topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
            sector, value = str(body["sector"]), float(body["availability"])
            district = body.get("district")
        except (ValueError, KeyError, TypeError):
            return  # not a service message: nothing to show
        self.record(sector, value, district=district if isinstance(district, str) else None)

    def record(self, sector: str, availability: float, *, district: str | None = None,
               at: float | None = None) -> bool:
        """Keep one level (False if it is not a known sector's, or not a share in [0, 1])."""
        names = self.districts.get(sector)
        if names is None or not math.isfinite(availability) or not 0.0 <= availability <= 1.0:
            return False
        if district is not None and district not in names:
            return False
        when = self._clock() if at is None else at
        with self._lock:
            for name in (district,) if district is not None else names:
                track = self._tracks.setdefault((sector, name), _Track())
                if track.ring and when < track.ring[-1][0]:
                    continue  # out of order: the newer level stands
                if track.ring:
                    track.hold(track.ring[-1][0], when, track.ring[-1][1])
                track.ring.append((when, availability))
                if availability >= OK_AT:
                    track.since = None
                elif track.since is None:
                    track.since = when
        return True

    # --- reading ------------------------------------------------------------------------------

    def snapshot(self) -> list[DistrictService]:
        """Every known sector's districts, in the order given, with or without data."""
        now = self._clock()
        out: list[DistrictService] = []
        with self._lock:
            for sector, names in self.districts.items():
                for name in names:
                    track = self._tracks.get((sector, name))
                    if track is None or not track.ring:
                        out.append(DistrictService(sector, name, state_of(None, None), None, None, None, None))
                        continue
                    updated, current = track.ring[-1]
                    state = state_of(current, now - updated)
                    since = track.since if state in ("degraded", "outage") else None
                    out.append(DistrictService(sector, name, state, _hour_share(track.ring, now), current,
                                               updated, since))
        return out

    def series(self, minutes: int) -> tuple[float, dict[str, list[float | None]]]:
        """Per sector, its availability (0..1) for each of the last `minutes` minutes, oldest first, the last
        being the minute now under way: time-weighted within each minute (a level holds until the next one,
        for at most STALE_S), the mean over the sector's districts that have data; None where none has.
        Returns the POSIX seconds the first minute starts at, and the series."""
        now = self._clock()
        first = math.floor(now / MINUTE_S) - minutes + 1
        out: dict[str, list[float | None]] = {}
        with self._lock:
            for sector, names in self.districts.items():
                area = [0.0] * minutes
                count = [0] * minutes
                for name in names:
                    track = self._tracks.get((sector, name))
                    if track is None or not track.ring:
                        continue
                    sums = {int(m): (a, s) for m, a, s in track.minutes if first <= m < first + minutes}
                    last_at, last = track.ring[-1]
                    scratch = _Track()
                    scratch.hold(last_at, now, last)  # the newest level, held until now (not yet settled)
                    for m, a, s in scratch.minutes:
                        prev = sums.get(int(m), (0.0, 0.0))
                        sums[int(m)] = (prev[0] + a, prev[1] + s)
                    for m, (a, s) in sums.items():
                        if s > 0.0 and first <= m < first + minutes:
                            area[m - first] += a / s
                            count[m - first] += 1
                out[sector] = [area[i] / count[i] if count[i] else None for i in range(minutes)]
        return first * MINUTE_S, out

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying while the broker is down); returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="api-service-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.connect(timeout_s=5.0)
            except ConfigError as exc:
                log_line("qeaims.api", "service-watch-waiting", detail=str(exc))
                self._stop.wait(5.0)
                continue
            self.connected.set()
            return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        if self.connected.is_set():
            self.close()
            self.connected.clear()
        if self.links is not None:
            self.links.close()
            kme = getattr(self.links, "kme", None)
            if kme is not None and hasattr(kme, "close"):
                kme.close()  # its keep-alive connection would hold the KME's shutdown


def _hour_share(ring: deque[tuple[float, float]], now: float) -> float:
    """Time-weighted availability over [now - 1 h, now]: each level holds until the next (the newest
    until now); before the first kept level nothing is known, so the window starts there."""
    start = now - HOUR_S
    samples = list(ring)
    area = span = 0.0
    for i, (at, value) in enumerate(samples):
        end = samples[i + 1][0] if i + 1 < len(samples) else now
        lo, hi = max(at, start), min(end, now)
        if hi > lo:
            area += value * (hi - lo)
            span += hi - lo
    if span <= 0.0:
        return samples[-1][1]  # one level just received: it is all there is
    return area / span
