"""`qeaims kme`: the key management entity (ETSI GS QKD 014 over HTTPS)."""

from __future__ import annotations

from core.errors import ConfigError


def kme() -> None:
    """Serve the key management entity (being built: issue 15)."""
    raise ConfigError("the KME is being built")
