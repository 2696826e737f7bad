"""One keyed session of a link: AES-256-GCM envelopes with per-direction counters, rotation, stats.

Envelope (all integers big-endian)::

    offset  size  field
    0       3     magic b"QL1"
    3       1     direction: 0 = master→slave, 1 = slave→master
    4       4     epoch (the handshake's)
    8       8     counter (1, 2, 3, … per direction)
    16      n+16  AES-256-GCM ciphertext ‖ 16-byte tag

``nonce = SHA-256("qeaims-link-nonce-v1" ‖ direction ‖ epoch)[:4] ‖ counter`` and
``AAD = header (16 bytes) ‖ SHA-256(link id)``. Why the nonce never repeats under one key: each
direction has its own key, each epoch has new keys, and a direction's counter only grows (the sender
must persist it before an envelope leaves; `to_state`). Why a receiver refuses any counter not above
the highest it accepted: MQTT QoS 1 delivers one publisher's messages in order, so a lower counter is
a replay or a reordering by someone on the path; one integer per direction is then the whole window.
A refused envelope changes no state, so an attacker cannot desynchronise the receiver by sending junk.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import ConfigError, QeaimsError

__all__ = [
    "HEADER",
    "MAGIC",
    "REASONS",
    "REPLAY_WINDOW",
    "TAG",
    "ChannelRefused",
    "ChannelStats",
    "RotationPolicy",
    "Session",
    "peek",
]

MAGIC = b"QL1"
HEADER = 16  # magic 3, direction 1, epoch 4, counter 8
TAG = 16
MASTER_TO_SLAVE, SLAVE_TO_MASTER = 0, 1
MAX_COUNTER = 2**64 - 1
REPLAY_WINDOW = 16_384
"""Counters a receiver remembers below its highest, as IPsec and DTLS do: an envelope that arrives
late (a broker that sends a reconnected client's live messages before its queued ones) still opens
once if it is within this many of the highest, and never twice; anything older is refused. Sized
above the backlog of the supervisor's longest restart back-off (30 s) at the busiest link's rate at
600x (electricity: about 120 envelopes a second, 3,600); the bitmask costs 2 KiB a direction."""
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
_NONCE_CONTEXT = b"qeaims-link-nonce-v1"

#: Every `ChannelRefused.reason` the links raise (the integration layer counts them by tag).
REASONS = frozenset({
    "malformed",        # not a handshake / envelope at all
    "truncated",        # an envelope shorter than header + tag
    "tamper",           # the GCM tag does not verify
    "replay",           # a counter already accepted, or more than REPLAY_WINDOW below the highest
    "wrong-epoch",      # an envelope of another epoch than this session's
    "wrong-direction",  # an envelope whose direction byte does not match its claimed sender
    "wrong-link",       # a handshake for another link, or another slave
    "forged",           # a handshake signature (either one) does not verify, or the wrong master
    "stale-epoch",      # a handshake not newer than the last accepted one, or too old
    "qkd-key",          # hybrid without a 32-byte QKD key, or fallback with one
    "exhausted",        # a direction's counter is used up (rotate)
    # raised by the integration layer (bus.secure):
    "no-kme", "no-session", "not-carried", "unknown-epoch", "topic",
})


class ChannelRefused(QeaimsError):
    """A handshake or an envelope that is not accepted.

    `reason` is a short tag from `REASONS` (what gets counted and alarmed on); `detail` is the one
    line a person reads. Kept apart so that counting never depends on the wording of a message.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class RotationPolicy:
    """A session ends after `max_messages` envelopes (both ways) or `max_age_s` seconds, whichever first.

    Why rotate at all with AES-256-GCM: to bound what one compromised session key exposes, and to
    pull fresh QKD key material into the link regularly (a new handshake per epoch)."""

    max_messages: int = 50_000
    max_age_s: float = 600.0


@dataclass
class ChannelStats:
    """Per-link counters kept by the integration layer; `snapshot` is what status and metrics show."""

    sealed: int = 0
    opened: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def count(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def add_sealed(self, n: int = 1) -> None:
        with self._lock:
            self.sealed += n

    def add_opened(self, n: int = 1) -> None:
        with self._lock:
            self.opened += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"sealed": self.sealed, "opened": self.opened, "refused": dict(self.refused)}


def peek(envelope: bytes) -> tuple[int, int, int]:
    """(direction, epoch, counter) of an envelope, unauthenticated: for routing to a session only."""
    if len(envelope) < HEADER + TAG:
        raise ChannelRefused("truncated", f"{len(envelope)} bytes, an envelope has at least {HEADER + TAG}")
    if envelope[:3] != MAGIC or envelope[3] not in (MASTER_TO_SLAVE, SLAVE_TO_MASTER):
        raise ChannelRefused("malformed", "not a QL1 envelope")
    return envelope[3], int.from_bytes(envelope[4:8], "big"), int.from_bytes(envelope[8:16], "big")


def header(direction: int, epoch: int, counter: int) -> bytes:
    return MAGIC + bytes([direction]) + epoch.to_bytes(4, "big") + counter.to_bytes(8, "big")


def nonce_prefix(direction: int, epoch: int) -> bytes:
    """The 4 fixed bytes of a direction's nonces (distinct per direction and epoch: defence in depth,
    since the keys already differ)."""
    return hashlib.sha256(_NONCE_CONTEXT + bytes([direction]) + epoch.to_bytes(4, "big")).digest()[:4]


@dataclass
class Session:
    """Both ends hold one: the master from `initiate`, the slave from `accept`.

    `keys` are secret (never in `repr`); `session_id` is public (it goes on-chain). `sent[d]` is the
    last counter sealed in direction d, `received[d]` the highest accepted. A lock makes `seal`
    atomic: two threads sealing at once must never get the same counter (a GCM nonce reused under
    one key leaks the XOR of the plaintexts and the authentication key).
    """

    link_id: str
    epoch: int
    mode: str
    master: str
    slave: str
    qkd_key_ids: tuple[str, ...]
    created_at: float
    session_id: str
    keys: tuple[bytes, bytes] = field(repr=False)  # master→slave, slave→master
    sent: list[int] = field(default_factory=lambda: [0, 0])
    received: list[int] = field(default_factory=lambda: [0, 0])
    seen: list[int] = field(default_factory=lambda: [0, 0])
    """Per direction, bit i set: counter ``received[d] - i`` was accepted (`REPLAY_WINDOW` bits)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def _direction(self, sender: str) -> int:
        if sender == self.master:
            return MASTER_TO_SLAVE
        if sender == self.slave:
            return SLAVE_TO_MASTER
        raise ChannelRefused("wrong-direction", f"{sender} is not an end of {self.link_id}")

    def _aad(self, head: bytes) -> bytes:
        return head + hashlib.sha256(self.link_id.encode()).digest()

    def seal(self, plaintext: bytes, *, sender: str) -> bytes:
        """An envelope from `sender` (the SAE id of the side sending) to the other end."""
        direction = self._direction(sender)
        with self._lock:
            counter = self.sent[direction] + 1
            if counter > MAX_COUNTER:
                raise ChannelRefused("exhausted", f"direction {direction} of {self.link_id} has used every counter")
            head = header(direction, self.epoch, counter)
            body = AESGCM(self.keys[direction]).encrypt(
                nonce_prefix(direction, self.epoch) + counter.to_bytes(8, "big"), plaintext, self._aad(head))
            self.sent[direction] = counter
        return head + body

    def open(self, envelope: bytes, *, sender: str) -> bytes:
        """The plaintext of an envelope claimed to come from `sender`; `ChannelRefused` and no state
        change for anything else."""
        expected = self._direction(sender)
        direction, epoch, counter = peek(envelope)
        if direction != expected:
            raise ChannelRefused("wrong-direction", f"an envelope of direction {direction} claimed by {sender}")
        if epoch != self.epoch:
            raise ChannelRefused("wrong-epoch", f"epoch {epoch}, this session is {self.epoch}")
        with self._lock:
            if self.accepted(direction, counter):
                top = self.received[direction]
                raise ChannelRefused("replay", f"counter {counter} already accepted (or more than {REPLAY_WINDOW} "
                                               f"below the highest, {top})")
            plaintext = self._decrypt(envelope, direction, epoch, counter)
            top = self.received[direction]
            if counter > top:
                shift = counter - top
                self.seen[direction] = ((self.seen[direction] << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW \
                    else 1
                self.received[direction] = counter
            else:
                self.seen[direction] |= 1 << (top - counter)
        return plaintext

    def accepted(self, direction: int, counter: int) -> bool:
        """Was `counter` accepted in `direction` already (or is it too far below the highest to tell)?"""
        offset = self.received[direction] - counter
        return counter == 0 or offset >= REPLAY_WINDOW or (offset >= 0 and bool(self.seen[direction] >> offset & 1))

    def authentic(self, envelope: bytes, *, sender: str) -> bool:
        """Does `envelope` verify under this session (its tag), whatever the replay window says? For a
        receiver that gets a second copy of an envelope it is still handling; no state changes."""
        direction, epoch, counter = peek(envelope)
        if direction != self._direction(sender) or epoch != self.epoch:
            return False
        try:
            self._decrypt(envelope, direction, epoch, counter)
        except ChannelRefused:
            return False
        return True

    def _decrypt(self, envelope: bytes, direction: int, epoch: int, counter: int) -> bytes:
        try:
            return AESGCM(self.keys[direction]).decrypt(nonce_prefix(direction, epoch) + counter.to_bytes(8, "big"),
                                                        envelope[HEADER:], self._aad(envelope[:HEADER]))
        except InvalidTag:
            raise ChannelRefused("tamper", f"the tag of envelope {counter} does not verify") from None

    def due(self, policy: RotationPolicy, now: float) -> bool:
        """Whether the master should start a new epoch (see `RotationPolicy`)."""
        with self._lock:
            used = sum(self.sent) + sum(self.received)
        return used >= policy.max_messages or now - self.created_at >= policy.max_age_s

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart. SECRET: it holds both AES keys, so it belongs
        only in a 0600 file. The sender must write it *before* an envelope leaves (a restarted sender
        that reused a counter would reuse a nonce); the receiver before handing a message on (a
        restarted receiver would otherwise accept a replay)."""
        with self._lock:
            return {"link_id": self.link_id, "epoch": self.epoch, "mode": self.mode, "master": self.master,
                    "slave": self.slave, "qkd_key_ids": list(self.qkd_key_ids), "created_at": self.created_at,
                    "session_id": self.session_id, "keys": [k.hex() for k in self.keys], "sent": list(self.sent),
                    "received": list(self.received), "seen": [format(m, "x") for m in self.seen]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Session:
        """The inverse of `to_state`; a damaged state raises `ConfigError`."""
        try:
            keys = (bytes.fromhex(state["keys"][0]), bytes.fromhex(state["keys"][1]))
            sent, received = [int(x) for x in state["sent"]], [int(x) for x in state["received"]]
            # a state from before the window: everything up to the highest counts as accepted
            seen = [int(str(x), 16) for x in state["seen"]] if "seen" in state else [_WINDOW_MASK, _WINDOW_MASK]
            if any(len(k) != 32 for k in keys) or len(sent) != 2 or len(received) != 2 or len(seen) != 2 \
                    or not all(0 <= c <= MAX_COUNTER for c in sent + received) \
                    or not all(0 <= m <= _WINDOW_MASK for m in seen):
                raise ValueError("keys or counters out of shape")
            return cls(str(state["link_id"]), int(state["epoch"]), str(state["mode"]), str(state["master"]),
                       str(state["slave"]), tuple(str(k) for k in state["qkd_key_ids"]),
                       float(state["created_at"]), str(state["session_id"]), keys, sent, received, seen)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ConfigError(f"a saved link session is damaged ({exc!r}): move the state file away") from None
