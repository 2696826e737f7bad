"""A session stays secret while any ONE of its three secrets (QKD, ML-KEM-768, X25519) holds.

For each secret in turn, the other two are forced to values an observer knows, through the seam
`links.handshake._initiate` (it takes the ML-KEM encapsulation and the X25519 ephemeral key as
arguments): the QKD key is 32 zero bytes, the ML-KEM "encapsulation" returns a shared secret the
observer chose (with a real ciphertext, so the handshake looks normal), the ephemeral X25519 key is
one whose private half the observer holds. The observer sees the handshake and the envelopes and
derives keys exactly as the endpoints do, from the two known secrets and its best attempts at the
third: random, zeros, and values computed from every public value it has. None opens a message.
The control: given the real third secret as well, the same observer opens it, so the test can fail.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from links import handshake as hs
from links.channel import ChannelRefused, Handshake, Session, accept
from links.endpoint import EndpointKeys

MASTER, SLAVE = EndpointKeys.generate("twin-water"), EndpointKeys.generate("oracle-water-1")
M, S = MASTER.sae_id, SLAVE.sae_id
LINK = "twin-water~oracle-water-1"
KNOWN_QKD = b"\x00" * 32
KNOWN_KEM = b"\x11" * 32
KNOWN_EPHEMERAL = X25519PrivateKey.from_private_bytes(b"\x22" * 32)
SECRETS = ("qkd", "mlkem", "x25519")


def known_kem(peer: MLKEM768PublicKey) -> tuple[bytes, bytes]:
    """An encapsulation whose shared secret the observer knows (the ciphertext is a real one)."""
    return KNOWN_KEM, peer.encapsulate()[1]


def observer_opens(handshake: Handshake, envelope: bytes, qkd: bytes, kem: bytes, x25519: bytes) -> bool:
    """What an observer does: derive the session keys from the handshake and three guessed secrets."""
    keys = hs._derive(handshake, qkd, kem, x25519)
    guessed = Session(handshake.link_id, handshake.epoch, handshake.mode, handshake.master, handshake.slave,
                      handshake.qkd_key_ids, handshake.created_at, handshake.session_id(), keys)
    try:
        guessed.open(envelope, sender=M)
    except ChannelRefused as exc:
        assert exc.reason == "tamper"
        return False
    return True


def attempts_from_public_values(handshake: Handshake) -> list[bytes]:
    """The observer's candidates for the secret it lacks: random, constant, and derived from every
    public value it has (the handshake's key shares, both endpoints' public keys, the transcript)."""
    kem_ct = bytes.fromhex(handshake.kem_ciphertext)
    eph = bytes.fromhex(handshake.x25519_ephemeral)
    slave_x, master_x = bytes.fromhex(SLAVE.public().x25519), bytes.fromhex(MASTER.public().x25519)
    own_kem = MLKEM768PrivateKey.generate()  # the observer's own ML-KEM key: implicit rejection output
    out = [os.urandom(32) for _ in range(16)] + [b"\x00" * 32, b"\xff" * 32, KNOWN_KEM, eph, slave_x, master_x,
                                                 kem_ct[:32], kem_ct[-32:], own_kem.decapsulate(kem_ct),
                                                 hashlib.sha256(kem_ct).digest(), hashlib.sha256(eph + slave_x).digest(),
                                                 hashlib.sha256(handshake.signed_bytes()).digest(),
                                                 bytes.fromhex(handshake.session_id())]
    for private in (eph, slave_x, master_x):  # public keys used as if they were private ones
        try:
            out.append(X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(slave_x)))
            out.append(X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(eph)))
        except ValueError:
            pass
    out.append(KNOWN_EPHEMERAL.exchange(X25519PublicKey.from_public_bytes(master_x)))  # DH with the wrong static key
    return out


# pq-fallback has no QKD secret (its QKD input is the public 32 zero bytes): two cases, not three
CASES = [(holds, "hybrid") for holds in SECRETS] + [("mlkem", "pq-fallback"), ("x25519", "pq-fallback")]


@pytest.mark.parametrize(("holds", "mode"), CASES)
def test_the_channel_stays_secret_while_any_one_secret_holds(holds: str, mode: str) -> None:
    real_qkd = os.urandom(32) if holds == "qkd" else KNOWN_QKD
    qkd_key = real_qkd if mode == "hybrid" else None
    ephemeral = X25519PrivateKey.generate() if holds == "x25519" else KNOWN_EPHEMERAL
    handshake, master = hs._initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=qkd_key,
                                     qkd_key_ids=("k-1",) if qkd_key else (), now=None,
                                     encapsulate=hs._real_encapsulate if holds == "mlkem" else known_kem,
                                     ephemeral=ephemeral)
    assert handshake.mode == mode
    envelopes = [master.seal(b"the reading %d" % i, sender=M) for i in range(3)]
    seen = Handshake.from_bytes(handshake.to_bytes())  # the observer works from what went over the wire

    slave_x = X25519PublicKey.from_public_bytes(bytes.fromhex(SLAVE.public().x25519))
    known = {"qkd": KNOWN_QKD, "mlkem": KNOWN_KEM, "x25519": KNOWN_EPHEMERAL.exchange(slave_x)}
    real_third = {"qkd": real_qkd,
                  "mlkem": SLAVE.mlkem.decapsulate(bytes.fromhex(seen.kem_ciphertext)),
                  "x25519": SLAVE.x25519.exchange(X25519PublicKey.from_public_bytes(
                      bytes.fromhex(seen.x25519_ephemeral)))}[holds]
    attempts = attempts_from_public_values(seen)
    assert real_third not in attempts
    for attempt in attempts:
        guess = known | {holds: attempt}
        assert not any(observer_opens(seen, e, guess["qkd"], guess["mlkem"], guess["x25519"]) for e in envelopes)
    # the control: with the real third secret as well, the same observer reads every message
    everything = known | {holds: real_third}
    assert all(observer_opens(seen, e, everything["qkd"], everything["mlkem"], everything["x25519"])
               for e in envelopes)


@pytest.mark.parametrize("holds", ["qkd", "x25519"])
def test_the_seam_derives_as_initiate_does(holds: str) -> None:
    """Through the seam, with the real encapsulation, the slave derives the master's keys: the seam
    changes where randomness comes from, not the key schedule the observer is tested against."""
    qkd = os.urandom(32) if holds == "qkd" else KNOWN_QKD
    handshake, master = hs._initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=qkd, qkd_key_ids=("k-1",), now=None,
                                     encapsulate=hs._real_encapsulate,
                                     ephemeral=KNOWN_EPHEMERAL if holds == "qkd" else X25519PrivateKey.generate())
    slave = accept(handshake, SLAVE, MASTER.public(), qkd_key=qkd, expected_link_id=LINK)
    assert slave.keys == master.keys
    assert slave.open(master.seal(b"hello", sender=M), sender=M) == b"hello"
