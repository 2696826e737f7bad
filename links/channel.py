"""The hybrid channel of one link: a signed handshake, three secrets into one key, AES-256-GCM with counters.

Handshake (master → slave, one message, published in the clear: it holds no secret)::

    link id, master, slave, epoch, mode ("hybrid" | "pq-fallback"), QKD key ids,
    ML-KEM-768 ciphertext (a fresh secret encapsulated to the slave's public key),
    X25519 ephemeral public key (the secret is DH(ephemeral, slave's static key)),
    created_at, ML-DSA-65 and Ed25519 signatures over all of the above

Key schedule: ``HKDF-SHA256(IKM = qkd ‖ mlkem ‖ x25519, salt = SHA-256(signed handshake bytes),
info = context ‖ link id ‖ mode ‖ epoch ‖ key ids)`` → 64 bytes: the master→slave and slave→master
AES-256 keys. The QKD key comes from the KME (`dec_keys` at the slave, by the ids in the handshake);
in ``pq-fallback`` mode it is 32 zero bytes and the mode is bound into the key. Why it stays secret
while any one of the three holds: HKDF is a PRF keyed by its input, so an attacker who knows two of
the inputs and not the third faces a random 32-byte unknown in the IKM (the QKD key is uniformly
random by privacy amplification; the ML-KEM secret is IND-CCA2 under Module-LWE; the X25519 secret
is CDH under the ephemeral and static keys). The tests force two secrets to known values and show an
observer still cannot open a message (`tests/links/test_channel.py`).

Envelope: ``"QL1" ‖ direction (1 byte: 0 master→slave, 1 slave→master) ‖ epoch (4) ‖ counter (8) ‖
AES-256-GCM(ciphertext ‖ tag)``, nonce = ``"QL" ‖ direction ‖ 0 ‖ counter``, AAD = the 16-byte
header ‖ SHA-256(link id). A counter is used once per direction and session (each session has its
own keys), and a receiver accepts only counters above the highest it has accepted: a replayed or
reordered envelope is refused ("replay"), an altered one fails the tag ("tamper"), a short one is
"truncated". Refusals change nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import QeaimsError
from links.endpoint import EndpointKeys, EndpointPublic

__all__ = [
    "ChannelRefused",
    "ChannelStats",
    "Handshake",
    "RotationPolicy",
    "Session",
    "accept",
    "initiate",
    "peek",
    "verify_handshake",
]

Mode = Literal["hybrid", "pq-fallback"]
MAGIC = b"QL1"
HEADER = 16  # magic 3, direction 1, epoch 4, counter 8
TAG = 16
CONTEXT = b"qeaims-link-handshake-v1"
KDF_CONTEXT = b"qeaims-link-session-v1"
QKD_KEY_BYTES = 32
NO_QKD = bytes(QKD_KEY_BYTES)


class ChannelRefused(QeaimsError):
    """A handshake or an envelope that is not accepted; `reason` is a short tag that is counted."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class RotationPolicy:
    """A session ends after `max_messages` envelopes (both ways) or `max_age_s` seconds, whichever first."""

    max_messages: int = 50_000
    max_age_s: float = 600.0


@dataclass
class ChannelStats:
    sealed: int = 0
    opened: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"sealed": self.sealed, "opened": self.opened, "refused": dict(self.refused)}


class Handshake(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    link_id: str = Field(min_length=1, max_length=200)
    master: str = Field(min_length=1, max_length=64)
    slave: str = Field(min_length=1, max_length=64)
    epoch: int = Field(ge=1, lt=2**32)
    mode: Mode
    qkd_key_ids: tuple[str, ...] = Field(default=(), max_length=8)
    kem_ciphertext: str
    x25519_ephemeral: str
    created_at: float
    signature_mldsa65: str = ""
    signature_ed25519: str = ""

    def signed_bytes(self) -> bytes:
        body = self.model_dump(exclude={"signature_mldsa65", "signature_ed25519"})
        return CONTEXT + b"\0" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Handshake:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ChannelRefused("malformed", f"not a handshake: {str(exc).splitlines()[0]}") from None


def _direction(session: Session, sender: str) -> int:
    if sender == session.master:
        return 0
    if sender == session.slave:
        return 1
    raise ChannelRefused("wrong-direction", f"{sender} is not an end of {session.link_id}")


@dataclass
class Session:
    link_id: str
    epoch: int
    mode: str
    master: str
    slave: str
    qkd_key_ids: tuple[str, ...]
    created_at: float
    session_id: str
    keys: tuple[bytes, bytes]  # master→slave, slave→master
    sent: list[int] = field(default_factory=lambda: [0, 0])  # highest counter sealed, per direction
    received: list[int] = field(default_factory=lambda: [0, 0])  # highest counter accepted, per direction

    def _aad(self, header: bytes) -> bytes:
        return header + hashlib.sha256(self.link_id.encode()).digest()

    def seal(self, plaintext: bytes, *, sender: str) -> bytes:
        direction = _direction(self, sender)
        counter = self.sent[direction] + 1
        header = MAGIC + bytes([direction]) + self.epoch.to_bytes(4, "big") + counter.to_bytes(8, "big")
        nonce = b"QL" + bytes([direction, 0]) + counter.to_bytes(8, "big")
        body = AESGCM(self.keys[direction]).encrypt(nonce, plaintext, self._aad(header))
        self.sent[direction] = counter
        return header + body

    def open(self, envelope: bytes, *, sender: str) -> bytes:
        expected = _direction(self, sender)
        direction, epoch, counter = peek(envelope)
        if direction != expected:
            raise ChannelRefused("wrong-direction", f"an envelope of direction {direction} claimed by {sender}")
        if epoch != self.epoch:
            raise ChannelRefused("wrong-epoch", f"epoch {epoch}, this session is {self.epoch}")
        if counter <= self.received[direction]:
            raise ChannelRefused("replay", f"counter {counter} ≤ {self.received[direction]} already accepted")
        header = envelope[:HEADER]
        nonce = b"QL" + bytes([direction, 0]) + counter.to_bytes(8, "big")
        try:
            plaintext = AESGCM(self.keys[direction]).decrypt(nonce, envelope[HEADER:], self._aad(header))
        except InvalidTag:
            raise ChannelRefused("tamper", f"the tag of envelope {counter} does not verify") from None
        self.received[direction] = counter
        return plaintext

    def due(self, policy: RotationPolicy, now: float) -> bool:
        return sum(self.sent) + sum(self.received) >= policy.max_messages or now - self.created_at >= policy.max_age_s

    def to_state(self) -> dict[str, Any]:
        """Everything to resume the session after a restart: SECRET (the keys), kept in a 0600 file."""
        return {"link_id": self.link_id, "epoch": self.epoch, "mode": self.mode, "master": self.master,
                "slave": self.slave, "qkd_key_ids": list(self.qkd_key_ids), "created_at": self.created_at,
                "session_id": self.session_id, "keys": [k.hex() for k in self.keys], "sent": list(self.sent),
                "received": list(self.received)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Session:
        return cls(str(state["link_id"]), int(state["epoch"]), str(state["mode"]), str(state["master"]),
                   str(state["slave"]), tuple(str(k) for k in state["qkd_key_ids"]), float(state["created_at"]),
                   str(state["session_id"]), (bytes.fromhex(state["keys"][0]), bytes.fromhex(state["keys"][1])),
                   [int(x) for x in state["sent"]], [int(x) for x in state["received"]])


def peek(envelope: bytes) -> tuple[int, int, int]:
    """(direction, epoch, counter) of an envelope, unauthenticated: for routing only."""
    if len(envelope) < HEADER + TAG:
        raise ChannelRefused("truncated", f"{len(envelope)} bytes, an envelope has at least {HEADER + TAG}")
    if envelope[:3] != MAGIC or envelope[3] not in (0, 1):
        raise ChannelRefused("malformed", "not a QL1 envelope")
    return envelope[3], int.from_bytes(envelope[4:8], "big"), int.from_bytes(envelope[8:16], "big")


def _derive(handshake: Handshake, qkd_secret: bytes, kem_secret: bytes, x25519_secret: bytes) -> tuple[bytes, bytes]:
    """The two direction keys from the three secrets, bound to the whole signed handshake."""
    info = b"|".join([KDF_CONTEXT, handshake.link_id.encode(), handshake.mode.encode(),
                      str(handshake.epoch).encode(), ",".join(handshake.qkd_key_ids).encode()])
    okm = HKDF(hashes.SHA256(), 64, hashlib.sha256(handshake.signed_bytes()).digest(), info).derive(
        qkd_secret + kem_secret + x25519_secret)
    return okm[:32], okm[32:]


def _qkd_secret(mode: str, qkd_key: bytes | None) -> bytes:
    if mode == "hybrid":
        if qkd_key is None or len(qkd_key) != QKD_KEY_BYTES:
            raise ChannelRefused("qkd-key", f"a hybrid session needs a {QKD_KEY_BYTES}-byte QKD key")
        return qkd_key
    if qkd_key is not None:
        raise ChannelRefused("qkd-key", "a pq-fallback session takes no QKD key")
    return NO_QKD


def _session(handshake: Handshake, keys: tuple[bytes, bytes]) -> Session:
    return Session(handshake.link_id, handshake.epoch, handshake.mode, handshake.master, handshake.slave,
                   handshake.qkd_key_ids, handshake.created_at, hashlib.sha256(handshake.to_bytes()).hexdigest(), keys)


def initiate(link_id: str, epoch: int, me: EndpointKeys, peer: EndpointPublic, *, qkd_key: bytes | None,
             qkd_key_ids: Sequence[str], now: float | None = None) -> tuple[Handshake, Session]:
    """The master's side: a signed handshake and the session it keys (`qkd_key=None`: pq-fallback)."""
    mode: Mode = "hybrid" if qkd_key is not None else "pq-fallback"
    if mode == "hybrid" and not qkd_key_ids:
        raise ChannelRefused("qkd-key", "a hybrid session names the QKD key ids the slave fetches")
    if mode == "pq-fallback" and qkd_key_ids:
        raise ChannelRefused("qkd-key", "a pq-fallback session has no QKD key ids")
    qkd_secret = _qkd_secret(mode, qkd_key)
    kem_secret, kem_ciphertext = MLKEM768PublicKey.from_public_bytes(bytes.fromhex(peer.mlkem768)).encapsulate()
    ephemeral = X25519PrivateKey.generate()
    x25519_secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(peer.x25519)))
    unsigned = Handshake(link_id=link_id, master=me.sae_id, slave=peer.sae_id, epoch=epoch, mode=mode,
                         qkd_key_ids=tuple(qkd_key_ids), kem_ciphertext=kem_ciphertext.hex(),
                         x25519_ephemeral=ephemeral.public_key().public_bytes_raw().hex(),
                         created_at=time.time() if now is None else now)
    message = unsigned.signed_bytes()
    handshake = unsigned.model_copy(update={"signature_mldsa65": me.mldsa.sign(message, CONTEXT).hex(),
                                            "signature_ed25519": me.ed25519.sign(message).hex()})
    return handshake, _session(handshake, _derive(handshake, qkd_secret, kem_secret, x25519_secret))


def verify_handshake(handshake: Handshake, master: EndpointPublic, *, expected_link_id: str) -> None:
    """Both signatures by `master`, on the expected link; `ChannelRefused` otherwise."""
    if handshake.link_id != expected_link_id:
        raise ChannelRefused("wrong-link", f"a handshake for {handshake.link_id}, not {expected_link_id}")
    if handshake.master != master.sae_id:
        raise ChannelRefused("forged", f"the handshake names {handshake.master} as master, not {master.sae_id}")
    message = handshake.signed_bytes()
    try:
        MLDSA65PublicKey.from_public_bytes(bytes.fromhex(master.mldsa65)).verify(
            bytes.fromhex(handshake.signature_mldsa65), message, CONTEXT)
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(master.ed25519)).verify(
            bytes.fromhex(handshake.signature_ed25519), message)
    except (InvalidSignature, ValueError):
        raise ChannelRefused("forged", f"a signature of the {handshake.link_id} handshake does not verify") from None


def accept(handshake: Handshake, me: EndpointKeys, peer: EndpointPublic, *, qkd_key: bytes | None,
           expected_link_id: str, after_epoch: int = 0, max_age_s: float | None = None,
           now: float | None = None) -> Session:
    """The slave's side: check the handshake (module docstring) and derive the same session."""
    verify_handshake(handshake, peer, expected_link_id=expected_link_id)
    if handshake.slave != me.sae_id:
        raise ChannelRefused("wrong-link", f"the handshake is for {handshake.slave}, not {me.sae_id}")
    if handshake.epoch <= after_epoch:
        raise ChannelRefused("stale-epoch", f"epoch {handshake.epoch} ≤ {after_epoch} already accepted")
    if max_age_s is not None and (time.time() if now is None else now) - handshake.created_at > max_age_s:
        raise ChannelRefused("stale-epoch", f"the handshake is older than {max_age_s:g} s")
    if (handshake.mode == "hybrid") != bool(handshake.qkd_key_ids):
        raise ChannelRefused("malformed", "a hybrid handshake names QKD key ids, a fallback one none")
    qkd_secret = _qkd_secret(handshake.mode, qkd_key)
    try:
        kem_secret = me.mlkem.decapsulate(bytes.fromhex(handshake.kem_ciphertext))
        x25519_secret = me.x25519.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(handshake.x25519_ephemeral)))
    except ValueError as exc:
        raise ChannelRefused("malformed", f"a key share does not decode: {exc}") from None
    return _session(handshake, _derive(handshake, qkd_secret, kem_secret, x25519_secret))
