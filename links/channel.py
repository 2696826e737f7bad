"""The hybrid channel of one link: a signed handshake, three secrets into one key, AES-256-GCM with counters.

This module is the channel's public face; the work is in two small modules:

- :mod:`links.handshake` — `Handshake`, `initiate` (master), `accept` (slave), `verify_handshake`,
  and the HKDF-SHA256 key schedule over QKD ‖ ML-KEM-768 ‖ X25519;
- :mod:`links.session` — `Session` (seal / open envelopes with per-direction counters), `peek`,
  `RotationPolicy`, `ChannelStats`, `ChannelRefused` and its `REASONS`.

The construction, why it is secure while any one secret holds, and the envelope format are in
``docs/channel.md``.
"""

from __future__ import annotations

from links.handshake import (
    CONTEXT,
    KDF_CONTEXT,
    QKD_KEY_BYTES,
    Handshake,
    Mode,
    accept,
    initiate,
    verify_handshake,
)
from links.session import (
    HEADER,
    MAGIC,
    REASONS,
    REPLAY_WINDOW,
    TAG,
    ChannelRefused,
    ChannelStats,
    RotationPolicy,
    Session,
    peek,
)

__all__ = [
    "CONTEXT",
    "HEADER",
    "KDF_CONTEXT",
    "MAGIC",
    "QKD_KEY_BYTES",
    "REASONS",
    "REPLAY_WINDOW",
    "TAG",
    "ChannelRefused",
    "ChannelStats",
    "Handshake",
    "Mode",
    "RotationPolicy",
    "Session",
    "accept",
    "initiate",
    "peek",
    "verify_handshake",
]
