"""What the gateways enforce: deny entries with expiries, quarantined devices, safe mode.

The countermeasures of issue 18 item 2 that act on the wire. The lead decides them (a quorum, an
indicator read from the chain) and sets them here; the gateways only read. One `Policy` may serve
many gateways on many loop threads, so every read and change is under one lock. The clock is
injectable (tests move time instead of sleeping); an entry is in force while ``now < until``.

Every change returns a `PolicyChange` saying what it changed (``changed`` is False when it changed
nothing, e.g. lifting a source that was not denied), so the caller can record exactly that on-chain
and never records a no-op as a countermeasure.

Safe mode is per gateway id (``"modbus:<device>"``/``"mqtt:<device>"``) or, with no gateway given,
for every gateway this policy serves: all writes refused, reads pass, so a sector keeps its
telemetry while nobody can command it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gateway.errors import GatewayError
from gateway.observation import Source

__all__ = ["ALL", "Policy", "PolicyChange"]

ALL = "*"  # safe mode for every gateway


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """One change of the policy: what, on whom, before and after (None: absent)."""

    action: Literal["deny", "lift", "quarantine", "release", "safe-mode"]
    target: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


class Policy:
    """Thread-safe enforcement state shared by gateways; `now` returns an aware UTC datetime."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._denied: dict[Source, datetime] = {}
        self._quarantined: set[str] = set()
        self._safe: set[str] = set()

    # --- changes ---------------------------------------------------------------------------------

    def deny(self, source: Source | str, until: datetime) -> PolicyChange:
        """Refuse `source` (a `Source`, or an IP address) at every gateway until `until` (UTC)."""
        entry = Source(source) if isinstance(source, str) else source
        if until.tzinfo is None:
            raise GatewayError(f"deny {_name(entry)}: the expiry {until.isoformat()} has no time zone (give UTC)")
        with self._lock:
            self._expire()
            before = self._denied.get(entry)
            self._denied[entry] = until
        return PolicyChange("deny", _name(entry), _iso(before), _iso(until))

    def lift(self, source: Source | str) -> PolicyChange:
        entry = Source(source) if isinstance(source, str) else source
        with self._lock:
            self._expire()
            before = self._denied.pop(entry, None)
        return PolicyChange("lift", _name(entry), _iso(before), None)

    def quarantine(self, device: str) -> PolicyChange:
        """Refuse every write to `device` (reads pass) until `release`."""
        with self._lock:
            before = device in self._quarantined
            self._quarantined.add(device)
        return PolicyChange("quarantine", device, "quarantined" if before else None, "quarantined")

    def release(self, device: str) -> PolicyChange:
        with self._lock:
            before = device in self._quarantined
            self._quarantined.discard(device)
        return PolicyChange("release", device, "quarantined" if before else None, None)

    def safe_mode(self, on: bool, gateway: str = ALL) -> PolicyChange:
        """Refuse all writes through `gateway` (a gateway id, or every gateway), reads pass."""
        with self._lock:
            before = gateway in self._safe
            if on:
                self._safe.add(gateway)
            else:
                self._safe.discard(gateway)
        return PolicyChange("safe-mode", gateway, "on" if before else None, "on" if on else None)

    # --- what the gateways ask --------------------------------------------------------------------

    def denied(self, source: Source) -> Source | None:
        """The entry in force that refuses `source`, or None."""
        with self._lock:
            self._expire()
            return next((entry for entry in self._denied if entry.matches(source)), None)

    def refuses_writes(self, device: str, gateway: str) -> str | None:
        """Why a write to `device` through `gateway` is refused now ("quarantine", "safe-mode"), or None."""
        with self._lock:
            if device in self._quarantined:
                return "quarantine"
            if ALL in self._safe or gateway in self._safe:
                return "safe-mode"
            return None

    def deny_entries(self) -> dict[Source, datetime]:
        with self._lock:
            self._expire()
            return dict(self._denied)

    def _expire(self) -> None:
        now = self._now()
        for entry in [e for e, until in self._denied.items() if until <= now]:
            del self._denied[entry]


def _name(source: Source) -> str:
    parts = [source.address]
    if source.client_id is not None:
        parts.append(f"client={source.client_id}")
    if source.username is not None:
        parts.append(f"user={source.username}")
    return " ".join(parts)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()
