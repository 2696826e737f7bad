"""One detected attack, as the monitor reports it and as the chain will record it (an `intrusion` event).

A `Detection` names the attack class, the target (sector, device), the source, when the FIRST
malicious packet arrived (wall UTC for the record, monotonic for measuring the time to detection
and to the chain), and the evidence: SHA-256 hashes of the frames, never their bytes, plus counts.

`payload()` is the canonical JSON the lead signs and records: keys sorted, no whitespace, ASCII,
times in UTC ISO-8601 with milliseconds, at most `MAX_PAYLOAD` bytes (hashes beyond what fits are
dropped and counted in ``evidence.omitted``, a client id or user name is cut at `MAX_FIELD`
characters, so the size bound holds whatever the attacker sends). The
monotonic stamps stay out of it: they mean nothing outside this process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.observation import Source

__all__ = ["ATTACK_CLASSES", "MAX_PAYLOAD", "AttackClass", "Detection"]

AttackClass = Literal["unprofiled-function", "unknown-client", "register-scan", "auth-burst", "replay", "rate"]
ATTACK_CLASSES: tuple[AttackClass, ...] = ("unprofiled-function", "unknown-client", "register-scan", "auth-burst",
                                           "replay", "rate")
MAX_PAYLOAD = 4096
MAX_FIELD = 128  # a client id or user name in the payload is cut here (MQTT allows 65,535 bytes)
PAYLOAD_VERSION = 1


@dataclass(frozen=True, slots=True)
class Detection:
    attack: AttackClass
    protocol: Literal["modbus", "mqtt"]
    sector: str
    device: str
    source: Source
    first_seen_wall: datetime  # UTC, of the first malicious packet
    first_seen_mono: float
    detected_wall: datetime
    detected_mono: float
    evidence: tuple[str, ...]  # SHA-256 hex of the frames, first first
    counts: tuple[tuple[str, int], ...]  # e.g. (("frames", 12), ("distinct_addresses", 9))
    detail: str = ""  # what was seen, in words and numbers, never payload bytes

    @property
    def latency_s(self) -> float:
        """Seconds from the first malicious packet to this detection (monotonic)."""
        return self.detected_mono - self.first_seen_mono

    def payload(self) -> bytes:
        """The canonical JSON of this detection (≤ `MAX_PAYLOAD` bytes)."""
        hashes = list(self.evidence)
        while True:
            body = {
                "v": PAYLOAD_VERSION,
                "class": self.attack,
                "protocol": self.protocol,
                "sector": self.sector,
                "device": self.device,
                "source": {k: None if v is None else v[:MAX_FIELD] for k, v in self.source.to_json().items()},
                "first_seen": _iso(self.first_seen_wall),
                "detected": _iso(self.detected_wall),
                "detail": self.detail[:256],
                "evidence": {"sha256": hashes, "counts": dict(self.counts),
                             "omitted": len(self.evidence) - len(hashes)},
            }
            data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
            if len(data) <= MAX_PAYLOAD or not hashes:  # without hashes it is < 1 KiB: fields are capped
                return data
            hashes.pop()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
