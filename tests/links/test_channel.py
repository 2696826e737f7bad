"""links.channel: handshakes, the three-secret key schedule, envelopes that refuse every tampering."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from core.errors import ConfigError
from links import channel
from links.channel import (
    ChannelRefused,
    Handshake,
    RotationPolicy,
    Session,
    accept,
    initiate,
    peek,
    verify_handshake,
)
from links.endpoint import Directory, EndpointKeys, ensure_endpoints

MASTER, SLAVE = EndpointKeys.generate("twin-water"), EndpointKeys.generate("oracle-water-1")
LINK = "twin-water~oracle-water-1"


def pair(qkd: bytes | None = b"q" * 32, epoch: int = 1) -> tuple[Handshake, Session, Session]:
    handshake, sender = initiate(LINK, epoch, MASTER, SLAVE.public(), qkd_key=qkd,
                                 qkd_key_ids=("k-1",) if qkd is not None else ())
    receiver = accept(handshake, SLAVE, MASTER.public(), qkd_key=qkd, expected_link_id=LINK)
    return handshake, sender, receiver


def test_both_directions_round_trip_and_the_session_is_the_same_at_both_ends() -> None:
    handshake, sender, receiver = pair()
    assert sender.keys == receiver.keys and sender.session_id == receiver.session_id
    for i in range(5):
        assert receiver.open(sender.seal(b"reading %d" % i, sender=MASTER.sae_id), sender=MASTER.sae_id) == \
            b"reading %d" % i
    assert sender.open(receiver.seal(b"command", sender=SLAVE.sae_id), sender=SLAVE.sae_id) == b"command"
    assert handshake.mode == "hybrid" and handshake.qkd_key_ids == ("k-1",)
    again = Session.from_state(receiver.to_state())
    assert again.keys == receiver.keys and again.received == receiver.received


def test_every_altered_byte_truncation_replay_reorder_and_wrong_direction_is_refused_and_changes_nothing() -> None:
    _, sender, receiver = pair()
    first = sender.seal(b"x" * 40, sender=MASTER.sae_id)
    refused: dict[str, int] = {}
    for i in range(len(first)):
        bad = first[:i] + bytes([first[i] ^ 0x01]) + first[i + 1:]
        with pytest.raises(ChannelRefused) as caught:
            receiver.open(bad, sender=MASTER.sae_id)
        refused[caught.value.reason] = refused.get(caught.value.reason, 0) + 1
    assert set(refused) <= {"tamper", "malformed", "wrong-direction", "wrong-epoch", "replay"} and refused["tamper"] > 40
    for cut in (0, 5, 16, 31, len(first) - 1):
        with pytest.raises(ChannelRefused, match="truncated|tamper"):
            receiver.open(first[:cut], sender=MASTER.sae_id)
    assert receiver.received == [0, 0]  # nothing moved the window
    assert receiver.open(first, sender=MASTER.sae_id) == b"x" * 40
    with pytest.raises(ChannelRefused, match="replay"):
        receiver.open(first, sender=MASTER.sae_id)
    second, third = sender.seal(b"2", sender=MASTER.sae_id), sender.seal(b"3", sender=MASTER.sae_id)
    assert receiver.open(third, sender=MASTER.sae_id) == b"3"
    with pytest.raises(ChannelRefused, match="replay"):  # reordered: 2 after 3
        receiver.open(second, sender=MASTER.sae_id)
    with pytest.raises(ChannelRefused, match="wrong-direction"):
        receiver.open(sender.seal(b"4", sender=MASTER.sae_id), sender=SLAVE.sae_id)
    with pytest.raises(ChannelRefused, match="wrong-direction"):
        sender.seal(b"x", sender="someone-else")
    _, other, _ = pair(epoch=2)
    with pytest.raises(ChannelRefused, match="wrong-epoch"):
        receiver.open(other.seal(b"5", sender=MASTER.sae_id), sender=MASTER.sae_id)
    assert peek(first)[0:2] == (0, 1)


def test_forged_altered_and_replayed_handshakes_are_refused() -> None:
    handshake, _, _ = pair()
    for name in ("signature_mldsa65", "signature_ed25519", "kem_ciphertext", "x25519_ephemeral"):
        value = getattr(handshake, name)
        flipped = handshake.model_copy(update={name: ("0" if value[0] != "0" else "1") + value[1:]})
        with pytest.raises(ChannelRefused, match="forged"):
            accept(flipped, SLAVE, MASTER.public(), qkd_key=b"q" * 32, expected_link_id=LINK)
    for name, value in (("link_id", "twin-water~oracle-water-2"), ("epoch", 7), ("mode", "pq-fallback")):
        with pytest.raises(ChannelRefused):
            accept(handshake.model_copy(update={name: value}), SLAVE, MASTER.public(), qkd_key=b"q" * 32,
                   expected_link_id=LINK)
    impostor = EndpointKeys.generate("twin-water")
    forged, _ = initiate(LINK, 9, impostor, SLAVE.public(), qkd_key=b"q" * 32, qkd_key_ids=("k-9",))
    with pytest.raises(ChannelRefused, match="forged"):
        accept(forged, SLAVE, MASTER.public(), qkd_key=b"q" * 32, expected_link_id=LINK)
    with pytest.raises(ChannelRefused, match="stale-epoch"):
        accept(handshake, SLAVE, MASTER.public(), qkd_key=b"q" * 32, expected_link_id=LINK, after_epoch=1)
    with pytest.raises(ChannelRefused, match="malformed"):
        Handshake.from_bytes(b'{"link_id": 1}')
    verify_handshake(handshake, MASTER.public(), expected_link_id=LINK)


def test_fallback_sessions_work_and_cannot_pass_as_hybrid_or_the_reverse() -> None:
    fallback, sender, receiver = pair(qkd=None)
    assert fallback.mode == "pq-fallback" and fallback.qkd_key_ids == ()
    assert receiver.open(sender.seal(b"on", sender=MASTER.sae_id), sender=MASTER.sae_id) == b"on"
    with pytest.raises(ChannelRefused, match="qkd-key"):
        accept(fallback, SLAVE, MASTER.public(), qkd_key=b"q" * 32, expected_link_id=LINK)
    hybrid, _, _ = pair()
    with pytest.raises(ChannelRefused, match="qkd-key"):
        accept(hybrid, SLAVE, MASTER.public(), qkd_key=None, expected_link_id=LINK)
    with pytest.raises(ChannelRefused, match="qkd-key"):
        accept(hybrid, SLAVE, MASTER.public(), qkd_key=b"short", expected_link_id=LINK)


class KnownKem:
    """An ML-KEM encapsulation whose shared secret the observer knows (the test's seam)."""

    def __init__(self, inner: MLKEM768PublicKey, secret: bytes) -> None:
        self.inner, self.secret = inner, secret

    def encapsulate(self) -> tuple[bytes, bytes]:
        return self.secret, self.inner.encapsulate()[1]


@pytest.mark.parametrize("holds", ["qkd", "mlkem", "x25519"])
def test_the_channel_stays_secret_while_any_one_of_the_three_secrets_holds(holds: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Two secrets are forced to values the observer knows; the third is the only thing it lacks.
    The observer sees the handshake and an envelope and derives keys with the known values and its
    best guess of the third. It must fail; and with all three known it must succeed (a control)."""
    qkd = b"\x00" * 32 if holds != "qkd" else os.urandom(32)  # a known QKD key, unless it is the one that holds
    known_kem = b"\x11" * 32
    if holds != "mlkem":
        real = MLKEM768PublicKey.from_public_bytes
        monkeypatch.setattr(channel.MLKEM768PublicKey, "from_public_bytes",
                            staticmethod(lambda data: KnownKem(real(data), known_kem)))
    known_eph = X25519PrivateKey.from_private_bytes(b"\x22" * 32)
    if holds != "x25519":
        monkeypatch.setattr(channel.X25519PrivateKey, "generate", staticmethod(lambda: known_eph))
    handshake, sender = initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=qkd, qkd_key_ids=("k-1",))
    envelope = sender.seal(b"the reading", sender=MASTER.sae_id)

    def observer_opens(qkd_guess: bytes, kem_guess: bytes, x_guess: bytes) -> bool:
        keys = channel._derive(handshake, qkd_guess, kem_guess, x_guess)
        guessed = Session(LINK, 1, handshake.mode, handshake.master, handshake.slave, handshake.qkd_key_ids,
                          handshake.created_at, "", keys)
        try:
            return guessed.open(envelope, sender=MASTER.sae_id) == b"the reading"
        except ChannelRefused:
            return False

    known_x = known_eph.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(SLAVE.public().x25519)))
    guesses = {"qkd": b"\x00" * 32, "mlkem": known_kem, "x25519": known_x}
    # what the observer can compute for the secret that holds: nothing better than a guess
    attempts = [os.urandom(32) for _ in range(8)] + [b"\x00" * 32, bytes.fromhex(handshake.x25519_ephemeral)[:32]]
    for attempt in attempts:
        tried = dict(guesses, **{holds: attempt})
        assert not observer_opens(tried["qkd"], tried["mlkem"], tried["x25519"])
    # the control: given the real third secret too, the same observer opens it, so the test can fail
    real_third = {"qkd": qkd, "mlkem": SLAVE.mlkem.decapsulate(bytes.fromhex(handshake.kem_ciphertext)),
                  "x25519": SLAVE.x25519.exchange(X25519PublicKey.from_public_bytes(
                      bytes.fromhex(handshake.x25519_ephemeral)))}[holds]
    everything = dict(guesses, **{holds: real_third})
    assert observer_opens(everything["qkd"], everything["mlkem"], everything["x25519"])


def test_rotation_is_due_by_count_and_by_age() -> None:
    _, sender, _ = pair()
    policy = RotationPolicy(max_messages=3, max_age_s=60)
    assert not sender.due(policy, sender.created_at)
    for _ in range(3):
        sender.seal(b".", sender=MASTER.sae_id)
    assert sender.due(policy, sender.created_at)
    _, fresh, _ = pair()
    assert fresh.due(policy, fresh.created_at + 61) and not fresh.due(policy, fresh.created_at + 59)


def test_keys_files_and_the_directory(tmp_path: Path) -> None:
    directory = ensure_endpoints(tmp_path / "directory.json", tmp_path / "endpoints", ["a", "b"])
    first = (tmp_path / "endpoints" / "a.json").read_bytes()
    assert stat.S_IMODE((tmp_path / "endpoints" / "a.json").stat().st_mode) == 0o600
    again = ensure_endpoints(tmp_path / "directory.json", tmp_path / "endpoints", ["a", "b", "c"])
    assert (tmp_path / "endpoints" / "a.json").read_bytes() == first  # never regenerated
    assert again.get("a") == directory.get("a") and "c" in again
    loaded = EndpointKeys.load(tmp_path / "endpoints" / "a.json")
    assert loaded.public() == directory.get("a")
    assert Directory.load(tmp_path / "directory.json").get("c").fingerprint() == again.get("c").fingerprint()
    (tmp_path / "endpoints" / "b.json").write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        EndpointKeys.load(tmp_path / "endpoints" / "b.json")
    with pytest.raises(ConfigError, match="no public keys"):
        again.get("z")
    with pytest.raises(ConfigError, match="no link keys"):
        EndpointKeys.load(tmp_path / "nope.json")
