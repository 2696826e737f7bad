"""Structured logs: one JSON object per line, on stderr, for every ``qeaims.*`` logger."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["log_line", "setup_logging"]


class _Stamped(logging.Formatter):
    """The line's JSON object with its wall-clock time first (``"ts"``, UTC, milliseconds): a city's
    processes write a log each, and a fault's path through them (twin → broker → oracle → chain →
    controller) is read by lining those logs up in time."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.startswith("{"):
            return message
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return f'{{"ts": "{ts}", ' + message[1:] if message != "{}" else f'{{"ts": "{ts}"}}'


def setup_logging() -> None:
    """Route every ``qeaims.*`` logger to stderr as bare lines (each one JSON object, stamped)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Stamped())
    root = logging.getLogger("qeaims")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def log_line(logger: str, event: str, **fields: object) -> None:
    """One JSON line on `logger`: ``{"event": ..., **fields}``."""
    logging.getLogger(logger).info("%s", json.dumps({"event": event, **fields}, sort_keys=True, default=str))
