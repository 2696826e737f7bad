"""links.channel: handshakes that refuse forgery and replay, envelopes that refuse every alteration."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from core.errors import ConfigError
from links.channel import (
    HEADER,
    REASONS,
    TAG,
    ChannelRefused,
    ChannelStats,
    Handshake,
    RotationPolicy,
    Session,
    accept,
    initiate,
    peek,
    verify_handshake,
)
from links.endpoint import EndpointKeys

MASTER, SLAVE = EndpointKeys.generate("twin-water"), EndpointKeys.generate("oracle-water-1")
M, S = MASTER.sae_id, SLAVE.sae_id
LINK = "twin-water~oracle-water-1"
QKD = b"q" * 32


def pair(qkd: bytes | None = QKD, epoch: int = 1) -> tuple[Handshake, Session, Session]:
    handshake, sender = initiate(LINK, epoch, MASTER, SLAVE.public(), qkd_key=qkd,
                                 qkd_key_ids=("k-1",) if qkd is not None else ())
    receiver = accept(handshake, SLAVE, MASTER.public(), qkd_key=qkd, expected_link_id=LINK)
    return handshake, sender, receiver


def refused(call: Callable[[], object], stats: ChannelStats | None = None) -> str:
    """The reason `call` was refused (counted in `stats`, as the integration layer does)."""
    with pytest.raises(ChannelRefused) as caught:
        call()
    assert caught.value.reason in REASONS
    if stats is not None:
        stats.count(caught.value.reason)
    return caught.value.reason


def test_both_directions_round_trip_and_both_ends_hold_the_same_session() -> None:
    handshake, master, slave = pair()
    assert master.keys == slave.keys and master.keys[0] != master.keys[1]
    assert master.session_id == slave.session_id == handshake.session_id()
    assert all(k.hex() not in master.session_id and k.hex() not in repr(master) for k in master.keys)
    for i in range(5):
        assert slave.open(master.seal(b"reading %d" % i, sender=M), sender=M) == b"reading %d" % i
    for i in range(3):
        assert master.open(slave.seal(b"command %d" % i, sender=S), sender=S) == b"command %d" % i
    assert master.sent == [5, 0] and master.received == [0, 3]
    assert slave.sent == [0, 3] and slave.received == [5, 0]
    assert (handshake.mode, handshake.qkd_key_ids, handshake.epoch) == ("hybrid", ("k-1",), 1)
    assert Handshake.from_bytes(handshake.to_bytes()) == handshake
    envelope = master.seal(b"", sender=M)
    assert len(envelope) == HEADER + TAG and peek(envelope) == (0, 1, 6)
    assert peek(slave.seal(b"x", sender=S)) == (1, 1, 4)


def test_the_envelope_layout() -> None:
    _, master, _ = pair(epoch=0x01020304)
    envelope = master.seal(b"abc", sender=M)
    assert envelope[:3] == b"QL1" and envelope[3] == 0 and envelope[4:8] == bytes([1, 2, 3, 4])
    assert envelope[8:16] == (1).to_bytes(8, "big") and len(envelope) == 16 + 3 + 16


def test_session_state_survives_a_restart_and_keeps_its_windows() -> None:
    _, master, slave = pair()
    first = master.seal(b"1", sender=M)
    assert slave.open(first, sender=M) == b"1"
    restored = Session.from_state(slave.to_state())
    assert restored.keys == slave.keys and restored.received == [1, 0] and restored.session_id == slave.session_id
    assert refused(lambda: restored.open(first, sender=M)) == "replay"  # a replay after a crash
    assert restored.open(master.seal(b"2", sender=M), sender=M) == b"2"
    resumed = Session.from_state(master.to_state())
    assert peek(resumed.seal(b"3", sender=M))[2] == 3  # the sender's counter never goes back
    for damage in ({"keys": ["00", "11"]}, {"sent": [1]}, {"epoch": "x"}, {"received": [-1, 0]}):
        with pytest.raises(ConfigError, match="damaged"):
            Session.from_state(slave.to_state() | damage)
    with pytest.raises(ConfigError, match="damaged"):
        Session.from_state({})


def test_every_altered_byte_is_refused_counted_and_changes_nothing() -> None:
    _, master, slave = pair()
    assert slave.open(master.seal(b"warm-up", sender=M), sender=M) == b"warm-up"
    envelope = master.seal(b"x" * 40, sender=M)
    stats, before = ChannelStats(), slave.to_state()
    for i in range(len(envelope)):
        for flip in (0x01, 0x02, 0x80):
            bad = envelope[:i] + bytes([envelope[i] ^ flip]) + envelope[i + 1:]
            reason = refused(lambda bad=bad: slave.open(bad, sender=M), stats)  # type: ignore[misc]
            if i >= HEADER:
                assert reason == "tamper", i
    counts = stats.snapshot()["refused"]
    assert sum(counts.values()) == 3 * len(envelope)
    assert set(counts) == {"malformed", "wrong-direction", "wrong-epoch", "replay", "tamper"}
    assert counts["tamper"] >= 3 * (len(envelope) - HEADER)
    assert slave.to_state() == before
    assert slave.open(envelope, sender=M) == b"x" * 40  # the legitimate one still opens


def test_truncations_are_refused_and_change_nothing() -> None:
    _, master, slave = pair()
    envelope = master.seal(b"y" * 20, sender=M)
    for cut in (0, 1, 3, 4, 15, 16, 31):
        assert refused(lambda cut=cut: slave.open(envelope[:cut], sender=M)) == "truncated"  # type: ignore[misc]
        assert refused(lambda cut=cut: peek(envelope[:cut])) == "truncated"  # type: ignore[misc]
    for cut in (32, 33, len(envelope) - 1):  # long enough to hold a tag: the tag fails instead
        assert refused(lambda cut=cut: slave.open(envelope[:cut], sender=M)) == "tamper"  # type: ignore[misc]
    assert refused(lambda: slave.open(envelope + b"\0", sender=M)) == "tamper"
    assert refused(lambda: peek(b"XYZ" + envelope[3:])) == "malformed"
    assert slave.received == [0, 0]
    assert slave.open(envelope, sender=M) == b"y" * 20


def test_replay_wrong_direction_and_wrong_epoch_are_refused_and_a_late_envelope_opens_once() -> None:
    _, master, slave = pair()
    one = master.seal(b"1", sender=M)
    assert slave.open(one, sender=M) == b"1"
    assert refused(lambda: slave.open(one, sender=M)) == "replay"
    two, three = master.seal(b"2", sender=M), master.seal(b"3", sender=M)
    assert slave.open(three, sender=M) == b"3"
    assert slave.open(two, sender=M) == b"2"  # reordered, 2 after 3: within the window it opens once
    assert refused(lambda: slave.open(two, sender=M)) == "replay"
    four = master.seal(b"4", sender=M)
    assert refused(lambda: slave.open(four, sender=S)) == "wrong-direction"  # claimed by the other end
    assert refused(lambda: master.open(four, sender=S)) == "wrong-direction"  # reflected back to its sender
    assert refused(lambda: slave.open(four, sender="someone-else")) == "wrong-direction"
    assert refused(lambda: master.seal(b"x", sender="someone-else")) == "wrong-direction"
    _, other, _ = pair(epoch=2)
    assert refused(lambda: slave.open(other.seal(b"5", sender=M), sender=M)) == "wrong-epoch"
    assert slave.received == [3, 0]
    assert slave.open(four, sender=M) == b"4"


def test_two_threads_sealing_never_share_a_counter() -> None:
    _, master, slave = pair()
    out: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [master.seal(b"m", sender=M) for _ in range(500)]
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counters = sorted(peek(e)[2] for e in out)
    assert counters == list(range(1, 2001))
    for envelope in sorted(out, key=lambda e: peek(e)[2]):
        assert slave.open(envelope, sender=M) == b"m"


def reject_handshake(handshake: Handshake, **kwargs: object) -> str:
    args: dict[str, object] = {"qkd_key": QKD, "expected_link_id": LINK} | kwargs
    return refused(lambda: accept(handshake, SLAVE, MASTER.public(), **args))  # type: ignore[arg-type]


def flip_hex(value: str, at: int = 0) -> str:
    return value[:at] + ("0" if value[at] != "0" else "1") + value[at + 1:]


def test_forged_and_altered_handshakes_are_refused() -> None:
    handshake, _, _ = pair()
    for name in ("signature_mldsa65", "signature_ed25519", "kem_ciphertext", "x25519_ephemeral"):
        value = getattr(handshake, name)
        for at in (0, len(value) // 2, len(value) - 1):
            assert reject_handshake(handshake.model_copy(update={name: flip_hex(value, at)})) == "forged", name
    # a flipped link id: refused as another link, and as forged by the one expecting that link id
    other_link = "twin-water~oracle-water-2"
    assert reject_handshake(handshake.model_copy(update={"link_id": other_link})) == "wrong-link"
    assert reject_handshake(handshake.model_copy(update={"link_id": other_link}),
                            expected_link_id=other_link) == "forged"
    for name, value in (("epoch", 7), ("created_at", handshake.created_at + 1), ("qkd_key_ids", ("k-2",))):
        assert reject_handshake(handshake.model_copy(update={name: value})) == "forged", name
    impostor = EndpointKeys.generate(M)  # the right name, another endpoint's keys
    forged, _ = initiate(LINK, 9, impostor, SLAVE.public(), qkd_key=QKD, qkd_key_ids=("k-9",))
    assert reject_handshake(forged) == "forged"
    stranger = EndpointKeys.generate("twin-power")
    forged, _ = initiate(LINK, 9, stranger, SLAVE.public(), qkd_key=QKD, qkd_key_ids=("k-9",))
    assert reject_handshake(forged) == "forged"  # names twin-power as master
    # one honest signature is not enough: Ed25519 from the master, ML-DSA from the impostor, and the reverse
    honest_ed = forged.model_copy(update={"master": M})
    message = honest_ed.signed_bytes()
    for mldsa, ed in ((impostor, MASTER), (MASTER, impostor)):
        mixed = honest_ed.model_copy(update={"signature_mldsa65": mldsa.mldsa.sign(message, b"qeaims-link-handshake-v1").hex(),
                                             "signature_ed25519": ed.ed25519.sign(message).hex()})
        assert reject_handshake(mixed) == "forged"
    to_other_slave, _ = initiate(LINK, 3, MASTER, EndpointKeys.generate("oracle-water-9").public(), qkd_key=QKD,
                                 qkd_key_ids=("k-3",))
    assert reject_handshake(to_other_slave) == "wrong-link"
    verify_handshake(handshake, MASTER.public(), expected_link_id=LINK)


def test_an_old_handshake_replayed_is_refused() -> None:
    first, _, _ = pair(epoch=1)
    second, _, _ = pair(epoch=2)
    assert accept(second, SLAVE, MASTER.public(), qkd_key=QKD, expected_link_id=LINK, after_epoch=1).epoch == 2
    assert reject_handshake(first, after_epoch=2) == "stale-epoch"
    assert reject_handshake(second, after_epoch=2) == "stale-epoch"  # the same one again
    assert reject_handshake(first, max_age_s=60.0, now=first.created_at + 61) == "stale-epoch"
    assert accept(first, SLAVE, MASTER.public(), qkd_key=QKD, expected_link_id=LINK, max_age_s=60.0,
                  now=first.created_at + 59).epoch == 1


def test_malformed_handshakes_are_refused() -> None:
    handshake, _, _ = pair()
    good = handshake.model_dump()
    for data in (b"", b"{", b"[]", b'{"link_id": 1}', b"\xff\xfe",
                 Handshake.model_validate(good).model_dump_json().replace('"version":1', '"version":2').encode(),
                 Handshake.model_validate(good).model_dump_json().replace('"epoch":1', '"epoch":0').encode(),
                 Handshake.model_validate(good).model_dump_json().replace('"hybrid"', '"plain"').encode(),
                 Handshake.model_validate(good).model_dump_json()[:-1].encode() + b',"extra":1}'):
        assert refused(lambda data=data: Handshake.from_bytes(data)) == "malformed", data[:40]  # type: ignore[misc]
    upper = handshake.to_bytes().replace(handshake.x25519_ephemeral.encode(), handshake.x25519_ephemeral.upper().encode())
    assert refused(lambda: Handshake.from_bytes(upper)) == "malformed"
    short = handshake.to_bytes().replace(handshake.kem_ciphertext.encode(), handshake.kem_ciphertext[:-2].encode())
    assert refused(lambda: Handshake.from_bytes(short)) == "malformed"


def test_fallback_works_and_cannot_pass_as_hybrid_or_the_reverse() -> None:
    fallback, master, slave = pair(qkd=None)
    assert fallback.mode == "pq-fallback" and fallback.qkd_key_ids == ()
    assert slave.open(master.seal(b"on", sender=M), sender=M) == b"on"
    assert master.open(slave.seal(b"ack", sender=S), sender=S) == b"ack"
    assert reject_handshake(fallback, qkd_key=QKD) == "qkd-key"
    hybrid, _, _ = pair()
    assert reject_handshake(hybrid, qkd_key=None) == "qkd-key"
    assert reject_handshake(hybrid, qkd_key=b"short") == "qkd-key"
    # relabelling the mode breaks the signatures, whichever way
    assert reject_handshake(hybrid.model_copy(update={"mode": "pq-fallback", "qkd_key_ids": ()}), qkd_key=None) \
        == "forged"
    assert reject_handshake(fallback.model_copy(update={"mode": "hybrid", "qkd_key_ids": ("k-1",)})) == "forged"
    with pytest.raises(ChannelRefused, match="qkd-key"):
        initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=QKD, qkd_key_ids=())
    with pytest.raises(ChannelRefused, match="qkd-key"):
        initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=None, qkd_key_ids=("k-1",))
    with pytest.raises(ChannelRefused, match="qkd-key"):
        initiate(LINK, 1, MASTER, SLAVE.public(), qkd_key=b"q" * 31, qkd_key_ids=("k-1",))


def test_the_qkd_key_is_bound_into_the_session() -> None:
    handshake, master, _ = pair()
    wrong = accept(handshake, SLAVE, MASTER.public(), qkd_key=b"r" * 32, expected_link_id=LINK)
    assert refused(lambda: wrong.open(master.seal(b"z", sender=M), sender=M)) == "tamper"


def test_rotation_is_due_by_count_and_by_age() -> None:
    _, master, slave = pair()
    policy = RotationPolicy(max_messages=3, max_age_s=60)
    assert RotationPolicy() == RotationPolicy(max_messages=50_000, max_age_s=600.0)
    assert not master.due(policy, master.created_at)
    slave.open(master.seal(b".", sender=M), sender=M)
    master.open(slave.seal(b".", sender=S), sender=S)
    assert not master.due(policy, master.created_at)
    master.seal(b".", sender=M)
    assert master.due(policy, master.created_at)
    _, fresh, _ = pair()
    assert fresh.due(policy, fresh.created_at + 60) and not fresh.due(policy, fresh.created_at + 59)


def test_channel_stats_count_from_many_threads() -> None:
    stats = ChannelStats()

    def work() -> None:
        for _ in range(1000):
            stats.count("tamper")
            stats.add_sealed()
            stats.add_opened(2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.snapshot() == {"sealed": 4000, "opened": 8000, "refused": {"tamper": 4000}}
    snap = stats.snapshot()
    snap["refused"]["tamper"] = 0
    assert stats.refused["tamper"] == 4000  # a snapshot is a copy


def test_the_replay_window_takes_late_envelopes_once_and_refuses_what_is_older() -> None:
    """A counter below the highest opens once if it is within `REPLAY_WINDOW` of it and was not
    accepted yet; a copy, or anything older than the window, is a replay. The window survives a
    restart, and a state saved before it existed counts everything up to the highest as accepted."""
    from links.session import REPLAY_WINDOW

    _, master, slave = pair()
    envelopes = [master.seal(b"%d" % i, sender=M) for i in range(REPLAY_WINDOW + 3)]
    assert slave.open(envelopes[4], sender=M) == b"4"  # counter 5 first
    assert slave.open(envelopes[1], sender=M) == b"1"  # then a late one
    assert refused(lambda: slave.open(envelopes[1], sender=M)) == "replay"
    restored = Session.from_state(slave.to_state())
    assert restored.open(envelopes[0], sender=M) == b"0"  # still late, still once
    assert refused(lambda: restored.open(envelopes[4], sender=M)) == "replay"
    assert restored.open(envelopes[-1], sender=M) == b"%d" % (REPLAY_WINDOW + 2)  # counter 4099
    assert refused(lambda: restored.open(envelopes[2], sender=M)) == "replay"  # counter 3: out of the window
    assert restored.open(envelopes[3], sender=M) == b"3"  # counter 4: the oldest the window holds
    legacy = slave.to_state()
    del legacy["seen"]
    old = Session.from_state(legacy)
    assert refused(lambda: old.open(envelopes[2], sender=M)) == "replay"  # at or below 5: accepted before
