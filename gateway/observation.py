"""What a gateway saw: one `Observation` per frame, refusal or connection event, handed to an `Observer`.

Observations are the only thing the monitor and the profiles learn from, so a profile can be learnt
from a recorded list (`ObservationLog`) exactly as the monitor would have seen it live. They carry
the frame's parsed fields and the SHA-256 of its bytes, never the bytes: what leaves the gateway as
evidence is a hash, so a register value or an MQTT payload is never copied anywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from gateway.modbus_frames import ModbusFrame
from gateway.mqtt_frames import MqttPacket

__all__ = ["Kind", "Observation", "ObservationLog", "Observer", "Source", "Tee", "canonical_address", "frame_hash"]

Kind = Literal["open", "frame", "refused", "malformed", "close"]
Protocol_ = Literal["modbus", "mqtt"]


def frame_hash(raw: bytes) -> str:
    """The evidence a frame leaves: SHA-256 hex of its exact bytes."""
    return hashlib.sha256(raw).hexdigest()


def canonical_address(address: str) -> str:
    """An IP address as one spelling (an IPv4-mapped IPv6 address as its IPv4); anything else unchanged."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped if mapped is not None else parsed)


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent it: the peer IP, and for MQTT the client id and username it presented (None: not yet / any).

    As a deny entry, a None field matches anything, so ``Source("10.0.0.7")`` blocks every client
    from that address and ``Source("*", client_id="pump-scada")`` blocks that identity from anywhere.
    """

    address: str
    client_id: str | None = None
    username: str | None = None

    def __post_init__(self) -> None:
        # one address, one spelling: a dual-stack socket reports 10.0.0.7 as ::ffff:10.0.0.7, and a deny
        # entry must match it either way
        object.__setattr__(self, "address", canonical_address(self.address))

    def matches(self, other: Source) -> bool:
        """Whether `other` (a connection's source) falls under this entry."""
        return ((self.address in ("*", other.address))
                and (self.client_id is None or self.client_id == other.client_id)
                and (self.username is None or self.username == other.username))

    @property
    def client_key(self) -> str:
        """The key a profile knows a client by: the address for Modbus, ``client_id@username`` for MQTT.

        MQTT clients move between addresses (DHCP, NAT) but keep their id; Modbus has no identity but
        the address.
        """
        if self.client_id is None:
            return self.address
        return f"{self.client_id}@{self.username or ''}"

    def to_json(self) -> dict[str, str | None]:
        return {"address": self.address, "client_id": self.client_id, "username": self.username}


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing a gateway saw on one connection, stamped when its last byte arrived."""

    kind: Kind
    protocol: Protocol_
    sector: str
    device: str
    source: Source
    connection: int  # the gateway's connection number (unique per gateway and run)
    wall: datetime  # UTC
    mono: float  # time.monotonic()
    direction: Literal["request", "response", "none"] = "none"
    frame: ModbusFrame | MqttPacket | None = None
    digest: str | None = None  # frame_hash of the raw bytes
    write: bool = False  # a request that changes the device (Modbus 5/6/15/16/23; MQTT PUBLISH to a command topic)
    action: Literal["pass", "refused"] = "pass"
    reason: str = ""  # why refused / malformed, or the connection's end

    @property
    def gateway_id(self) -> str:
        return f"{self.protocol}:{self.device}"


class Observer(Protocol):
    """What a gateway hands observations to (a `Monitor`, an `ObservationLog`, or both via a tee)."""

    def observe(self, obs: Observation) -> None: ...


@dataclass
class ObservationLog:
    """A thread-safe list of observations: the training window a `Profile` is learnt from."""

    observations: list[Observation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, obs: Observation) -> None:
        with self._lock:
            self.observations.append(obs)

    def snapshot(self) -> list[Observation]:
        with self._lock:
            return list(self.observations)

    def __len__(self) -> int:
        with self._lock:
            return len(self.observations)


class Tee:
    """Hands each observation to several observers in turn (e.g. keep learning while a monitor watches)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def observe(self, obs: Observation) -> None:
        for observer in self.observers:
            observer.observe(obs)
