"""An oracle's own watch over its sector's device traffic: wire detections recorded as signed ``intrusion`` events.

A sector's gateway mirrors what it sees to each of the sector's oracles (a SPAN port in a plant
network; here `gateway.Tee`). Each oracle runs a `gateway.Monitor` of its own over the mirror and
records each detection as an ``intrusion`` event through its own hybrid-signed outbox: one oracle's
word, like any verdict. What makes it actionable is the quorum: when as many distinct oracles of
the sector as its quorum needs have named the same indicator, the controller publishes it
(`controller._intrusion_response._publish_indicators`, recounted by `chain.indicators`).

The event's payload (canonical JSON, at most the ledger's 4,096 bytes)::

    {"sector", "subject": device, "asset": device, "verdict": "intrusion", "first_seen",
     "wire": {"class", "protocol", "source", "detail", "evidence": {"sha256": [...], "counts"}},
     "indicators": [{"kind": "source-address", "value": ...}, {"kind": "client-id", "value": ...}]}

It names no sensor (``sensors`` is absent), so the sensor-quarantine tally leaves it alone. The
evidence is the frames' hashes (the gateway never copies a payload), at most 16 of them.

Detections arrive on the gateway's event loop; recording waits for the chain, so they are queued and
recorded on a thread of the oracle's own (`run`), in order. ``on_recorded`` reports, for each
detection, when its event was confirmed (monotonic), which the intrusion scenario measures.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chain.recorder import EventRecorder, canonical_payload
from core.errors import ChainError
from core.indicator_values import normalise_value
from core.kinds import kind_by_name
from gateway import Detection, Monitor, Observation, Profile
from keys.ids import to_bytes32

__all__ = ["AUTHENTICATED", "MAX_EVIDENCE", "Recorded", "WireOracle", "indicators_of", "intrusion_payload"]

INTRUSION = kind_by_name("intrusion")
MAX_EVIDENCE = 16


AUTHENTICATED = frozenset({"unprofiled-function", "replay", "rate"})
"""Classes seen on a session the broker accepted: only there is a client id an identity, not a claim."""


def indicators_of(detection: Detection) -> list[dict[str, str]]:
    """What other sectors can match on their own traffic: the source's address, and its MQTT identity where
    the broker accepted it. A CONNECT's client id is only a claim until then: naming it after a refused
    or unknown login would let anyone get a real client denied everywhere with one packet. A client id
    that a deny entry could not match exactly (too long, or with spaces) is not named either."""
    out = []
    if detection.source.address not in ("*", ""):
        try:
            out.append({"kind": "source-address", "value": normalise_value("source-address", detection.source.address)})
        except ValueError:
            pass
    client = detection.source.client_id
    if client and detection.attack in AUTHENTICATED:
        try:
            if normalise_value("client-id", client) == client:
                out.append({"kind": "client-id", "value": client})
        except ValueError:
            pass
    return out


def intrusion_payload(detection: Detection) -> bytes:
    wire = json.loads(detection.payload())
    evidence = wire.get("evidence", {})
    body = {
        "sector": detection.sector, "subject": detection.device, "asset": detection.device, "verdict": "intrusion",
        "first_seen": wire.get("first_seen"),
        "wire": {"class": detection.attack, "protocol": detection.protocol, "source": wire.get("source"),
                 "detail": str(wire.get("detail", ""))[:256],
                 "evidence": {"sha256": list(evidence.get("sha256", []))[:MAX_EVIDENCE],
                              "counts": evidence.get("counts", {})}},
        "indicators": indicators_of(detection),
    }
    return canonical_payload(body)


@dataclass(frozen=True)
class Recorded:
    detection: Detection
    seq: int
    confirmed_mono: float  # when the chain confirmed the event (monotonic, this process)

    @property
    def to_chain_s(self) -> float:
        """From the first malicious packet to the on-chain event."""
        return self.confirmed_mono - self.detection.first_seen_mono


class WireOracle:
    """One oracle's monitor over the mirrored traffic of its sector, recording what it detects."""

    def __init__(self, recorder: EventRecorder, profiles: list[Profile], *,
                 on_recorded: Callable[[Recorded], None] | None = None, sends: bool = True) -> None:
        """`sends=False`: append each event to the recorder's outbox and leave the sending to the loop that
        owns that outbox (an oracle node's, in the city: one sender per account keeps its nonces and
        sequence in order); the event is on disk, so a crash loses none. `on_recorded` then never fires."""
        self.recorder = recorder
        self.monitor = Monitor(profiles, on_detection=self._queue)
        self.on_recorded = on_recorded
        self.sends = sends
        self.recorded: list[Recorded] = []
        self.queued = 0  # events appended to the outbox
        self.errors = 0
        self._queue_: queue.Queue[Detection | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def observe(self, obs: Observation) -> None:
        self.monitor.observe(obs)

    def _queue(self, detection: Detection) -> None:
        self._queue_.put(detection)

    def run(self) -> WireOracle:
        self._thread = threading.Thread(target=self._loop, name=f"wire-{self.recorder.identity.address[:8]}",
                                        daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            detection = self._queue_.get()
            if detection is None:
                return
            seq = self.recorder.outbox.append(INTRUSION, to_bytes32(detection.device[:32]), intrusion_payload(detection))
            self.queued += 1
            if not self.sends:
                continue
            while True:
                try:
                    self.recorder.flush()
                    break
                except ChainError:  # kept in the outbox: sent again, in order, once the chain answers
                    self.errors += 1
                    time.sleep(0.5)
            done = Recorded(detection, seq, time.monotonic())
            self.recorded.append(done)
            if self.on_recorded is not None:
                self.on_recorded(done)

    def stop(self) -> None:
        self._queue_.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)
