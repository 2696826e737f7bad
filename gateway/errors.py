"""The gateway's errors: one for bytes that are not a frame, one for a gateway or profile that cannot be used.

The parsers raise only `FrameError` whatever the bytes (a fuzz test holds them to it), so the proxy
can turn any garbage on the wire into one observation and a closed connection, never a traceback.
"""

from __future__ import annotations

from core.errors import QeaimsError

__all__ = ["FrameError", "GatewayError"]


class GatewayError(QeaimsError):
    """A gateway, profile or policy cannot be used as asked (a port in use, an unreadable profile file)."""


class FrameError(GatewayError):
    """Bytes on the wire that are not a valid Modbus TCP ADU or MQTT control packet."""
