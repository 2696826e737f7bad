"""An indicator of compromise, as one sector's quorum publishes it and every other sector enforces it.

Kinds (what a gateway or an oracle can match on its own traffic, without the sector that found it):

================== =========================================== ===================================
kind               value                                       enforced as
================== =========================================== ===================================
source-address     an IPv4 or IPv6 address                     a deny entry at every gateway
client-id          a device-protocol client identity (an MQTT  a deny entry at every gateway
                   client id or user name, a Modbus client's
                   configured name), 1-128 printable chars
key-fingerprint    SHA-256 hex of a public key (a link's or    its links refuse the key
                   an oracle's)
command-signature  SHA-256 hex of a normalised command (the    gateways refuse that command
                   Modbus PDU, the MQTT topic and payload)
spoofing-pattern   ``<sensor>|<attack>``: a sensor and the     oracles distrust the sensor's
                   falsification seen on it (bias, freeze...)   readings of that pattern
================== =========================================== ===================================

An indicator's id is the SHA-256 of its kind and value: the same address found by two sectors is one
indicator (its publications add up, a withdrawal withdraws it). It carries a confidence (0-100, STIX
2.1's scale), the sector whose quorum found it, when it was first seen and when it expires; an
expired indicator is enforced nowhere and cannot be published.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.indicator_values import KINDS, indicator_id, normalise_value

__all__ = ["DEFAULT_TTL", "KINDS", "Indicator", "IndicatorKind", "indicator_id", "parse_indicator"]

IndicatorKind = Literal["source-address", "client-id", "key-fingerprint", "command-signature", "spoofing-pattern"]
assert get_args(IndicatorKind) == KINDS
DEFAULT_TTL = timedelta(hours=24)
"""How long an indicator holds unless its publisher says otherwise: long enough to outlast an
attacker's retries, short enough that a reassigned address is not blocked for good."""

class Indicator(BaseModel):
    """One indicator (module docstring). Times are UTC; ``expires`` after ``first_seen``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IndicatorKind
    value: str
    confidence: Annotated[int, Field(ge=0, le=100)]
    source_sector: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
    first_seen: datetime
    expires: datetime
    description: Annotated[str, Field(max_length=280)] = ""

    @field_validator("first_seen", "expires")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _checked(self) -> Indicator:
        object.__setattr__(self, "value", normalise_value(self.kind, self.value))
        if self.expires <= self.first_seen:
            raise ValueError("an indicator must expire after it was first seen")
        return self

    @property
    def id(self) -> str:
        return indicator_id(self.kind, self.value)

    def expired(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) >= self.expires

    def payload_fields(self) -> dict[str, object]:
        """What a publication carries about the indicator itself (``chain.indicators`` adds the rest)."""
        return {"id": self.id, "kind": self.kind, "value": self.value, "confidence": self.confidence,
                "source_sector": self.source_sector, "first_seen": self.first_seen.isoformat(),
                "expires": self.expires.isoformat(), "description": self.description}


def parse_indicator(data: object, *, now: datetime | None = None, allow_expired: bool = False) -> Indicator:
    """An indicator from untrusted data (a command's input, a chain payload): one plain `ConfigError` line
    for an unknown kind, a malformed value, or (unless ``allow_expired``) an expired indicator."""
    if isinstance(data, dict) and data.get("kind") not in KINDS:
        raise ConfigError(f"unknown indicator kind {data.get('kind')!r}: choose one of {', '.join(KINDS)}")
    try:
        indicator = Indicator.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "indicator"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid indicator ({where}): {message}") from None
    if not allow_expired and indicator.expired(now):
        raise ConfigError(f"indicator {indicator.kind} {indicator.value} expired at {indicator.expires.isoformat()}: "
                          "an expired indicator is enforced nowhere and is not published")
    return indicator
