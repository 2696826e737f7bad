"""The pinned Besu image, in a module of its own.

`qeaims network generate` shows it as its ``--besu-image`` default, and typer builds every option's
default when any `qeaims` command starts; `chain.besu.compose` (which re-exports it) loads the RPC
client (requests) with its other imports, which the other commands should not pay for.
"""

from __future__ import annotations

__all__ = ["DEFAULT_BESU_IMAGE"]

DEFAULT_BESU_IMAGE = "hyperledger/besu:25.10.0"
"""Pinned: every validator of a network must run a Besu that agrees on the forks in the genesis."""
