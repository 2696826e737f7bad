"""The monitor: one detector per attack class, fed by the gateways' observations, from traffic alone.

Every gateway hands every observation to `Monitor.observe` (on its own loop thread; the monitor
serialises them under one lock and does constant work per observation, so it adds microseconds to
a request, not a round trip). Detections are delivered after the lock is released: to the
`on_detection` callback if one is given (it runs on the gateway's thread: hand the work off, don't
block), else to the thread-safe queue `detections`.

The detectors, precisely (a "client" is `Source.client_key`; thresholds are `Thresholds`):

``unknown-client``
    A request (Modbus ADU, MQTT CONNECT or any later packet) from a client the device's profile
    neither learnt nor declares as maintenance. Needs a profile.
``unprofiled-function``
    A request from a known client outside what it did in training: a Modbus (unit, function) it
    never used, or a register span not inside the spans it used with that function (a write to a
    protection setting from a client that only ever read is both); an MQTT PUBLISH to a topic it
    never published to, a SUBSCRIBE to a filter it never used. Declared maintenance allows reads of
    any span and identity queries (FC 43/14, FC 17), never writes. Needs a profile.
``register-scan``
    From one source address within ``scan_window_s``: ``scan_addresses`` distinct (unit, function,
    start) probes outside the client's profile (all of them for an unknown client; a maintenance
    client's reads are not counted), or ``scan_units`` distinct unit ids the device never answered
    in training, or ``scan_illegal`` exception responses ILLEGAL DATA ADDRESS (2), GATEWAY PATH
    UNAVAILABLE (10) or GATEWAY TARGET FAILED TO RESPOND (11) to that source's requests.
``auth-burst``
    From one source address within ``auth_window_s``: ``auth_refusals`` CONNACKs refusing
    authentication (3.1.1: 4, 5; 5.0: 0x86, 0x87, 0x8C) or ``connect_burst`` CONNECTs. The evidence
    and first_seen are the refused CONNECTs (their hashes leave the password out).
``replay``
    (a) A write request (Modbus: anything not known to be read-only, `ModbusFrame.is_write`; MQTT:
    a PUBLISH to a command topic) whose bytes are identical (same SHA-256: for Modbus that includes
    the transaction id, so a client re-sending the same value in a fresh transaction is not a
    replay) to a write seen on another connection to the same device within ``replay_window_s``,
    unless the profile learnt that this client repeats identical writes across connections
    (`ClientProfile.repeats_writes`: a master that reconnects per transaction and restarts at
    transaction id 1). An MQTT client resending an unacknowledged QoS>0 PUBLISH sets DUP, so its
    bytes differ from the original: a redelivery is not a replay.
    (b) Out of order: on one Modbus connection, a write request whose transaction id is behind the
    highest id that connection has used (modulo 2^16, "behind" meaning by less than 2^15, so the
    counter's wrap is not an alarm); it applies to every client. MQTT packet ids carry no order (the
    spec lets a client reuse any free id), so (b) is Modbus only.
``rate``
    A profiled client's requests in the last ``Rate.window_s`` (a sliding window) exceed the limit
    its profile drew from training (`gateway.profile._limit`).

One attack gives one detection: detections of the same (class, source, device) within
``holdoff_s`` of the last one are counted in `suppressed`, not delivered. `first_seen` is the first
malicious packet: the packet itself for per-packet classes, the oldest packet of the window that
crossed the threshold for the others.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.detection import AttackClass, Detection
from gateway.modbus_frames import ModbusFrame
from gateway.mqtt_frames import CONNECT, MqttPacket, is_refusal
from gateway.observation import Observation, Source
from gateway.profile import Profile, request_spans

__all__ = ["Monitor", "Thresholds"]

SCAN_EXCEPTIONS = frozenset({0x02, 0x0A, 0x0B})
GC_EVERY = 4096  # observations between sweeps of ended windows


@dataclass(frozen=True, slots=True)
class Thresholds:
    scan_window_s: float = 10.0
    scan_addresses: int = 8
    scan_units: int = 3
    scan_illegal: int = 4
    auth_window_s: float = 10.0
    auth_refusals: int = 5
    connect_burst: int = 20
    replay_window_s: float = 3600.0
    holdoff_s: float = 60.0
    max_evidence: int = 32


@dataclass(frozen=True, slots=True)
class _Hit:
    mono: float
    wall: datetime
    digest: str
    item: Any = None


class _Window:
    """Hits within the last `span` seconds (monotonic), oldest first."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.hits: deque[_Hit] = deque()

    def add(self, hit: _Hit) -> None:
        self.hits.append(hit)
        while self.hits and self.hits[0].mono < hit.mono - self.span:
            self.hits.popleft()

    def distinct(self) -> int:
        return len({h.item for h in self.hits})

    def clear(self) -> None:
        self.hits.clear()


@dataclass
class _Conn:
    highest_tid: int | None = None
    connect: _Hit | None = None  # the connection's CONNECT, for a refusal's evidence and time


class Monitor:
    """Detectors over observations from any number of gateways; `profiles` by device name.

    Device names are the key everywhere (profiles, policy, detections), so they are unique across the
    gateways one monitor serves (a Modbus RTU and a broker path never share a name).
    """

    def __init__(self, profiles: Mapping[str, Profile] | Iterable[Profile] = (),
                 on_detection: Callable[[Detection], None] | None = None, *,
                 thresholds: Thresholds = Thresholds(),
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 mono: Callable[[], float] = time.monotonic) -> None:
        items = profiles.values() if isinstance(profiles, Mapping) else profiles
        self.profiles: dict[str, Profile] = {p.device: p for p in items}
        self.on_detection = on_detection
        self.thresholds = thresholds
        self.detections: queue.Queue[Detection] = queue.Queue()
        self.suppressed = 0
        self.counts: dict[str, int] = defaultdict(int)  # observations by kind, for reports
        self._wall, self._mono = wall, mono
        self._lock = threading.Lock()
        self._last: dict[tuple[str, Source, str], float] = {}
        self._windows: dict[tuple[str, ...], _Window] = {}
        self._writes: dict[tuple[str, str], tuple[int, float, _Hit]] = {}
        self._conns: dict[tuple[str, int], _Conn] = defaultdict(_Conn)
        self._seen = 0

    # --- entry point --------------------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        with self._lock:
            self.counts[obs.kind] += 1
            found = self._observe(obs)
            self._seen += 1
            if self._seen % GC_EVERY == 0:
                self._collect(obs.mono)
        for detection in found:
            if self.on_detection is not None:
                self.on_detection(detection)
            else:
                self.detections.put(detection)

    def set_profile(self, profile: Profile) -> None:
        """Use `profile` for its device from the next observation on (a profile relearnt, maintenance declared)."""
        with self._lock:
            self.profiles[profile.device] = profile

    def drain(self) -> list[Detection]:
        """Every detection queued so far (only when no callback is set)."""
        out: list[Detection] = []
        while True:
            try:
                out.append(self.detections.get_nowait())
            except queue.Empty:
                return out

    def _observe(self, obs: Observation) -> list[Detection]:
        conn = (obs.gateway_id, obs.connection)
        if obs.kind == "close":
            self._conns.pop(conn, None)
            return []
        if obs.kind != "frame" or obs.frame is None or obs.digest is None:
            return []
        hit = _Hit(obs.mono, obs.wall, obs.digest)
        out: list[Detection | None] = []
        if obs.direction == "response":
            out.append(self._response(obs, hit, conn))
        else:
            out.extend(self._request(obs, hit, conn))
        return [d for d in out if d is not None]

    # --- requests --------------------------------------------------------------------------------

    def _request(self, obs: Observation, hit: _Hit, conn: tuple[str, int]) -> list[Detection | None]:
        frame, key = obs.frame, obs.source.client_key
        profile = self.profiles.get(obs.device)
        out: list[Detection | None] = []
        if isinstance(frame, MqttPacket) and frame.type == CONNECT:
            self._conns[conn].connect = hit
            w = self._window(("connects", obs.device, obs.source.address), self.thresholds.auth_window_s)
            w.add(hit)
            if len(w.hits) >= self.thresholds.connect_burst:
                out.append(self._emit("auth-burst", obs, Source(obs.source.address), w.hits,
                                      (("connects", len(w.hits)),), f"{len(w.hits)} CONNECTs in "
                                      f"{self.thresholds.auth_window_s:g} s"))
        known = profile is None or profile.knows(key)
        allowed = profile is not None and frame is not None and profile.allows(key, frame)
        if not known:
            out.append(self._emit("unknown-client", obs, obs.source, [hit], (),
                                  f"{_describe(frame)} from a client {obs.device} never saw"))
        elif profile is not None and not allowed:
            out.append(self._emit("unprofiled-function", obs, obs.source, [hit], (),
                                  f"{_describe(frame)} is outside the client's profile"))
        if isinstance(frame, ModbusFrame):
            out.extend(self._scan(obs, hit, frame, profile, allowed))
            out.append(self._order(obs, hit, frame, conn))
        if profile is not None and key in profile.clients:
            rate = profile.clients[key].rate
            w = self._window(("rate", obs.device, key), rate.window_s)
            w.add(hit)
            if len(w.hits) > rate.limit:
                out.append(self._emit("rate", obs, obs.source, w.hits, (("requests", len(w.hits)),
                                                                         ("limit", int(rate.limit))),
                                      f"{len(w.hits)} requests in {rate.window_s:g} s, limit {rate.limit:g}"))
        if obs.write and not (profile is not None and key in profile.clients and profile.clients[key].repeats_writes):
            out.append(self._replay(obs, hit, conn))
        return out

    def _scan(self, obs: Observation, hit: _Hit, frame: ModbusFrame, profile: Profile | None,
              allowed: bool) -> list[Detection | None]:
        t, addr, out = self.thresholds, obs.source.address, []
        maintainer = profile.maintainer(obs.source.client_key) if profile is not None else None
        if not allowed and maintainer is None:
            w = self._window(("scan-addr", obs.device, addr), t.scan_window_s)
            spans = request_spans(frame) or [(-1, 0)]
            for start, _count in spans:
                w.add(_Hit(hit.mono, hit.wall, hit.digest, (frame.unit_id, frame.function, start)))
            if w.distinct() >= t.scan_addresses:
                out.append(self._emit("register-scan", obs, Source(addr), w.hits, (("distinct_probes", w.distinct()),),
                                      f"{w.distinct()} distinct addresses outside the profile in {t.scan_window_s:g} s"))
        if profile is not None and profile.units and frame.unit_id not in profile.units:
            w = self._window(("scan-unit", obs.device, addr), t.scan_window_s)
            w.add(_Hit(hit.mono, hit.wall, hit.digest, frame.unit_id))
            if w.distinct() >= t.scan_units:
                out.append(self._emit("register-scan", obs, Source(addr), w.hits, (("distinct_units", w.distinct()),),
                                      f"{w.distinct()} unit ids the device never answered in {t.scan_window_s:g} s"))
        return out

    def _order(self, obs: Observation, hit: _Hit, frame: ModbusFrame, conn: tuple[str, int]) -> Detection | None:
        state = self._conns[conn]
        tid, top = frame.transaction_id, state.highest_tid
        behind = top is not None and 0 < (top - tid) & 0xFFFF < 0x8000
        if not behind:
            state.highest_tid = tid
            return None
        if not obs.write:
            return None
        return self._emit("replay", obs, obs.source, [hit], (("transaction_id", tid), ("highest_before", top or 0)),
                          f"write with transaction id {tid} after {top} on one connection")

    def _replay(self, obs: Observation, hit: _Hit, conn: tuple[str, int]) -> Detection | None:
        key = (obs.device, hit.digest)
        earlier = self._writes.get(key)
        self._writes[key] = (conn[1], hit.mono, hit) if earlier is None or earlier[0] == conn[1] else earlier
        if len(self._writes) > 100_000:  # bounded memory: forget the oldest writes
            for k in list(self._writes)[:10_000]:
                del self._writes[k]
        if earlier is None or earlier[0] == conn[1] or hit.mono - earlier[1] > self.thresholds.replay_window_s:
            return None
        return self._emit("replay", obs, obs.source, [hit], (("first_connection", earlier[0]),
                                                             ("replay_connection", conn[1])),
                          f"{_describe(obs.frame)} identical to a write on connection {earlier[0]}")

    # --- responses -------------------------------------------------------------------------------

    def _response(self, obs: Observation, hit: _Hit, conn: tuple[str, int]) -> Detection | None:
        t, frame, addr = self.thresholds, obs.frame, obs.source.address
        if isinstance(frame, ModbusFrame) and frame.exception in SCAN_EXCEPTIONS:
            w = self._window(("scan-illegal", obs.device, addr), t.scan_window_s)
            w.add(hit)
            if len(w.hits) >= t.scan_illegal:
                return self._emit("register-scan", obs, Source(addr), w.hits, (("illegal_address", len(w.hits)),),
                                  f"{len(w.hits)} ILLEGAL ADDRESS answers in {t.scan_window_s:g} s")
        if isinstance(frame, MqttPacket) and is_refusal(frame):
            w = self._window(("refusals", obs.device, addr), t.auth_window_s)
            w.add(self._conns[conn].connect or hit)  # the attempt itself: its CONNECT, when it was seen
            if len(w.hits) >= t.auth_refusals:
                return self._emit("auth-burst", obs, Source(addr), w.hits, (("refused", len(w.hits)),),
                                  f"{len(w.hits)} refused authentications in {t.auth_window_s:g} s")
        return None

    def _collect(self, now: float) -> None:
        """Forget windows and hold-offs that ended: an attacker spraying addresses or client ids must not
        grow the monitor without bound (what a window forgets could no longer cross its threshold)."""
        for key in [k for k, w in self._windows.items() if not w.hits or w.hits[-1].mono < now - w.span]:
            del self._windows[key]
        for held in [k for k, last in self._last.items() if last < now - self.thresholds.holdoff_s]:
            del self._last[held]

    # --- shared ------------------------------------------------------------------------------------

    def _window(self, key: tuple[str, ...], span: float) -> _Window:
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _Window(span)
        return w

    def _emit(self, attack: AttackClass, obs: Observation, source: Source, hits: Iterable[_Hit],
              counts: tuple[tuple[str, int], ...], detail: str) -> Detection | None:
        # an unauthenticated claim (a CONNECT's client id) is no identity: one address spraying fresh client ids
        # is one attack, held off as one
        held = Source(source.address) if attack in ("unknown-client", "auth-burst", "register-scan") else source
        key = (attack, held, obs.device)
        last = self._last.get(key)
        if last is not None and obs.mono - last < self.thresholds.holdoff_s:
            self.suppressed += 1
            return None
        self._last[key] = obs.mono
        hits = list(hits)
        evidence = tuple(dict.fromkeys(h.digest for h in hits))[:self.thresholds.max_evidence]
        return Detection(attack=attack, protocol=obs.protocol, sector=obs.sector, device=obs.device, source=source,
                         first_seen_wall=hits[0].wall, first_seen_mono=hits[0].mono, detected_wall=self._wall(),
                         detected_mono=self._mono(), evidence=evidence, counts=(("frames", len(hits)), *counts),
                         detail=detail)


def _describe(frame: ModbusFrame | MqttPacket | None) -> str:
    if isinstance(frame, ModbusFrame):
        spans = ", ".join(f"{s}+{n}" for s, n in request_spans(frame))
        return f"unit {frame.unit_id} function {frame.function}" + (f" at {spans}" if spans else "")
    if isinstance(frame, MqttPacket):
        return f"{frame.name}" + (f" to {frame.topic}" if frame.topic else "")
    return "a frame"
