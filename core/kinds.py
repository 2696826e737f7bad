"""Event kind names ↔ the ledger's numeric EventKind values (fixed forever: they are signed)."""

from __future__ import annotations

from core.errors import ConfigError

__all__ = ["KINDS", "kind_by_name", "kind_name"]

KINDS: tuple[str, ...] = (
    "telemetry-root",
    "anomaly",
    "fault",
    "intrusion",
    "isolation-vote",
    "isolated",
    "repair-dispatched",
    "repaired",
    "reintegrated",
    "key-rotation",
    "qkd-alarm",
    "override",
    "maintenance",
    "cascade-analysis",
    "reroute-plan",
    "isolation-applied",
    "sensor-quarantine",
    "vault-write",
    "vault-read",
    "vault-shred",
    "vault-seal",
    "indicator",
    "countermeasure",
    "notice",
)


def kind_by_name(name: str) -> int:
    try:
        return KINDS.index(name)
    except ValueError:
        raise ConfigError(f"unknown event kind {name!r}: choose one of {', '.join(KINDS)}") from None


def kind_name(value: int) -> str:
    return KINDS[value] if 0 <= value < len(KINDS) else f"kind-{value}"
