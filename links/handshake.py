"""The signed handshake that starts a session, and the key schedule over the three secrets.

Handshake (master → slave, one message, published in the clear: it holds no secret)::

    version, link id, master, slave, epoch, mode ("hybrid" | "pq-fallback"), QKD key ids,
    ML-KEM-768 ciphertext (a fresh secret encapsulated to the slave's public key),
    X25519 ephemeral public key (the secret is DH(ephemeral, slave's static key)),
    created_at, ML-DSA-65 and Ed25519 signatures over the canonical bytes of all of the above

Key schedule::

    IKM  = qkd (32; zeros in pq-fallback) ‖ ML-KEM shared secret (32) ‖ X25519 shared secret (32)
    salt = SHA-256(transcript)            transcript = the signed bytes of the handshake
    info = "qeaims-link-session-v1" ‖ link id ‖ mode ‖ epoch ‖ key ids   (each length-prefixed)
    HKDF-SHA256(IKM, salt, info, 64) = master→slave AES-256 key ‖ slave→master AES-256 key

Why it stays secret while any one of the three holds: HKDF-Extract is a PRF/randomness extractor
over its IKM, so an attacker who knows two of the inputs and not the third still faces 32 unknown
uniform bytes (the QKD key by privacy amplification; the ML-KEM secret by IND-CCA2 under Module-LWE;
the X25519 secret by CDH). Why both signatures: Ed25519 falls to a quantum computer, ML-DSA-65 is
young; requiring both means an attacker must break both to start a session in a master's name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from links.endpoint import EndpointKeys, EndpointPublic
from links.session import ChannelRefused, Session

__all__ = ["CONTEXT", "KDF_CONTEXT", "QKD_KEY_BYTES", "Handshake", "Mode", "accept", "initiate", "verify_handshake"]

Mode = Literal["hybrid", "pq-fallback"]
CONTEXT = b"qeaims-link-handshake-v1"  # the signatures' domain separation (ML-DSA context, Ed25519 prefix)
KDF_CONTEXT = b"qeaims-link-session-v1"
SESSION_ID_CONTEXT = b"qeaims-link-session-id-v1"
QKD_KEY_BYTES = 32
NO_QKD = bytes(QKD_KEY_BYTES)
MLKEM768_CIPHERTEXT_BYTES = 1088
X25519_BYTES = 32

#: (shared secret, ciphertext) for a peer's ML-KEM-768 public key: the real encapsulation, or a test's.
Encapsulate = Callable[[MLKEM768PublicKey], tuple[bytes, bytes]]


def _hex(value: str, size: int | None = None) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError("not hex") from None
    if raw.hex() != value:  # one spelling per value: lower case, no spaces
        raise ValueError("not canonical lower-case hex")
    if size is not None and len(raw) != size:
        raise ValueError(f"{len(raw)} bytes, expected {size}")
    return value


class Handshake(BaseModel):
    """The master's signed offer of a session (module docstring); `to_bytes` is what goes on the wire."""

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

    @field_validator("kem_ciphertext")
    @classmethod
    def _kem(cls, value: str) -> str:
        return _hex(value, MLKEM768_CIPHERTEXT_BYTES)

    @field_validator("x25519_ephemeral")
    @classmethod
    def _x25519(cls, value: str) -> str:
        return _hex(value, X25519_BYTES)

    @field_validator("signature_mldsa65", "signature_ed25519")
    @classmethod
    def _signature(cls, value: str) -> str:
        return _hex(value)

    def signed_bytes(self) -> bytes:
        """The transcript: the context string, then canonical JSON of every field but the signatures."""
        body = self.model_dump(exclude={"signature_mldsa65", "signature_ed25519"})
        return CONTEXT + b"\0" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def session_id(self) -> str:
        """Public name of the session this handshake keys (goes on-chain): a hash of the transcript."""
        return hashlib.sha256(SESSION_ID_CONTEXT + b"\0" + self.signed_bytes()).hexdigest()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Handshake:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ChannelRefused("malformed", f"not a handshake: {str(exc).splitlines()[0]}") from None


def _lp(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


def _derive(handshake: Handshake, qkd_secret: bytes, kem_secret: bytes, x25519_secret: bytes) -> tuple[bytes, bytes]:
    """The two direction keys from the three secrets, bound to the whole signed handshake.

    Private, but the secrecy tests call it directly as an observer would: it uses only the handshake
    (public) and the three secrets, so whoever knows all three can derive the keys and nobody else."""
    info = KDF_CONTEXT + b"".join(_lp(part) for part in (
        handshake.link_id.encode(), handshake.mode.encode(), handshake.epoch.to_bytes(4, "big"),
        _lp(b"".join(_lp(k.encode()) for k in handshake.qkd_key_ids))))
    okm = HKDF(hashes.SHA256(), 64, hashlib.sha256(handshake.signed_bytes()).digest(), info).derive(
        qkd_secret + kem_secret + x25519_secret)
    return okm[:32], okm[32:]


def _qkd_secret(mode: str, qkd_key: bytes | None) -> bytes:
    if mode == "hybrid":
        if qkd_key is None or len(qkd_key) != QKD_KEY_BYTES:
            raise ChannelRefused("qkd-key", f"a hybrid session needs a {QKD_KEY_BYTES}-byte QKD key")
        return bytes(qkd_key)
    if qkd_key is not None:
        raise ChannelRefused("qkd-key", "a pq-fallback session takes no QKD key")
    return NO_QKD


def _session(handshake: Handshake, keys: tuple[bytes, bytes]) -> Session:
    return Session(handshake.link_id, handshake.epoch, handshake.mode, handshake.master, handshake.slave,
                   handshake.qkd_key_ids, handshake.created_at, handshake.session_id(), keys)


def _real_encapsulate(peer: MLKEM768PublicKey) -> tuple[bytes, bytes]:
    return peer.encapsulate()


def _initiate(link_id: str, epoch: int, me: EndpointKeys, peer: EndpointPublic, *, qkd_key: bytes | None,
              qkd_key_ids: Sequence[str], now: float | None, encapsulate: Encapsulate,
              ephemeral: X25519PrivateKey) -> tuple[Handshake, Session]:
    """`initiate` with its two randomness sources passed in: the seam the secrecy tests use to make an
    ML-KEM secret or an X25519 ephemeral key that the observer knows. Nothing else calls it."""
    mode: Mode = "hybrid" if qkd_key is not None else "pq-fallback"
    if mode == "hybrid" and not qkd_key_ids:
        raise ChannelRefused("qkd-key", "a hybrid session names the QKD key ids the slave fetches")
    if mode == "pq-fallback" and qkd_key_ids:
        raise ChannelRefused("qkd-key", "a pq-fallback session has no QKD key ids")
    qkd_secret = _qkd_secret(mode, qkd_key)
    kem_secret, kem_ciphertext = encapsulate(MLKEM768PublicKey.from_public_bytes(bytes.fromhex(peer.mlkem768)))
    x25519_secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(peer.x25519)))
    unsigned = Handshake(link_id=link_id, master=me.sae_id, slave=peer.sae_id, epoch=epoch, mode=mode,
                         qkd_key_ids=tuple(qkd_key_ids), kem_ciphertext=kem_ciphertext.hex(),
                         x25519_ephemeral=ephemeral.public_key().public_bytes_raw().hex(),
                         created_at=time.time() if now is None else now)
    message = unsigned.signed_bytes()
    handshake = unsigned.model_copy(update={"signature_mldsa65": me.mldsa.sign(message, CONTEXT).hex(),
                                            "signature_ed25519": me.ed25519.sign(message).hex()})
    return handshake, _session(handshake, _derive(handshake, qkd_secret, kem_secret, x25519_secret))


def initiate(link_id: str, epoch: int, me: EndpointKeys, peer: EndpointPublic, *, qkd_key: bytes | None,
             qkd_key_ids: Sequence[str], now: float | None = None) -> tuple[Handshake, Session]:
    """The master's side: a signed handshake and the session it keys.

    `qkd_key=None` is pq-fallback (the QKD link is under attack or out of keys): ML-KEM-768 and X25519
    still protect the session, and the mode is signed and bound into the keys so neither end can be
    talked into the other mode."""
    return _initiate(link_id, epoch, me, peer, qkd_key=qkd_key, qkd_key_ids=qkd_key_ids, now=now,
                     encapsulate=_real_encapsulate, ephemeral=X25519PrivateKey.generate())


def verify_handshake(handshake: Handshake, master: EndpointPublic, *, expected_link_id: str) -> None:
    """Both signatures by `master`, on the expected link; `ChannelRefused` otherwise. (An observer
    such as the controller's link watch can check a handshake without being its slave.)"""
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
    """The slave's side: check the handshake, then derive the same session as the master.

    Checks, in order: both signatures by `peer` on `expected_link_id` ("wrong-link", "forged"); this
    SAE is the slave ("wrong-link"); the epoch is above `after_epoch` ("stale-epoch": an old handshake
    replayed would otherwise roll the link back to old keys); not older than `max_age_s` if given
    ("stale-epoch"); the mode agrees with the key ids and with `qkd_key` ("malformed", "qkd-key")."""
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
