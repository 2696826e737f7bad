"""Structured logs: one JSON object per line, on stderr, for every ``qeaims.*`` logger."""

from __future__ import annotations

import json
import logging
import sys

__all__ = ["log_line", "setup_logging"]


def setup_logging() -> None:
    """Route every ``qeaims.*`` logger to stderr as bare lines (each already one JSON object)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("qeaims")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def log_line(logger: str, event: str, **fields: object) -> None:
    """One JSON line on `logger`: ``{"event": ..., **fields}``."""
    logging.getLogger(logger).info("%s", json.dumps({"event": event, **fields}, sort_keys=True, default=str))
