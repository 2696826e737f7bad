"""The errors of the device paths: one set shared by the wire (`bus`) and the oracle's ingest (`oracles.ingest`)."""

from __future__ import annotations

from core.errors import QeaimsError

__all__ = ["IngestError", "MessageRejected"]


class IngestError(QeaimsError):
    """A device path cannot be set up as asked (a broker that cannot bind, a subscriber that cannot connect)."""


class MessageRejected(IngestError):
    """One incoming message or device value is not a valid reading; `reason` is a short stable tag."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
