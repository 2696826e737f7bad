"""Adversarial review of the city's secure links (issue: attack the communication layer).

Each test is one attack, with the real code: a real KME over HTTPS on a free port, the real
`SecureLinks`/`LinkReader`, real ML-KEM/X25519/ML-DSA/Ed25519/AES-GCM, and where the wire matters a
real `EmbeddedBroker`. A test that FAILS demonstrates a finding; a test whose docstring starts with
"HOLDS" is an attack that the code resisted, kept as a regression test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bus.mqtt import EmbeddedBroker
from bus.secure import PENDING_MAX, SecureLinks, _inner, data_topic, handshake_topic, open_links
from controller.link_watch import QKD_ALARM, LinkWatch
from core.errors import ConfigError
from links.channel import ChannelRefused, Handshake
from links.endpoint import Directory
from links.files import LinkFiles
from links.kme.client import KmeClient, KmeError
from links.kme.server import KmeServer
from links.pki import DevPki
from links.plan import CONTROLLER_SAE, OPERATIONS_SAE, LinkPlan, city_plan, link_id_for, oracle_sae, twin_sae
from links.session import header
from links.site import prepare
from tests.conftest import free_port
from tests.support import wait_until

TWIN = twin_sae("water")
ORACLE1, ORACLE2 = oracle_sae("water", 1), oracle_sae("water", 2)
L_ORACLE1 = link_id_for(TWIN, ORACLE1)
L_CONTROLLER = link_id_for(TWIN, CONTROLLER_SAE)
L_OPS = link_id_for(TWIN, OPERATIONS_SAE)
READING = "qeaims/water/_batch/twin-water"


@dataclass
class Site:
    home: Path
    files: LinkFiles
    plan: LinkPlan
    mqtt_port: int
    kme: KmeServer
    opened: list[SecureLinks]


def _make_site(tmp_path: Path, *, refill: bool) -> Iterator[Site]:
    kme_port, mqtt_port = free_port(), free_port()
    files = LinkFiles.of(tmp_path)
    plan = city_plan(["water"], oracles_per_sector=2, kme_url=f"https://127.0.0.1:{kme_port}")
    prepare(files, plan)
    with KmeServer(plan, DevPki(files.pki), port=kme_port, state_path=files.kme_state, refill=refill, seed=7) as kme, \
            EmbeddedBroker(port=mqtt_port):
        site = Site(tmp_path, files, plan, mqtt_port, kme, [])
        try:
            yield site
        finally:
            for links in site.opened:  # keep-alive KME connections would hold the server's shutdown
                links.close()
                if links.kme is not None:
                    links.kme.close()  # type: ignore[attr-defined]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _make_site(tmp_path, refill=True)


@pytest.fixture
def quiet_site(tmp_path: Path) -> Iterator[Site]:
    """The KME's QKD pairs run only when the test says so (`site.kme.supply.run_block`)."""
    yield from _make_site(tmp_path, refill=False)


def _links(site: Site, sae: str) -> SecureLinks:
    links = open_links(site.home, sae)
    assert links is not None
    site.opened.append(links)
    return links


def _kme(site: Site, sae: str) -> KmeClient:
    return KmeClient(site.plan.kme_url, sae, DevPki(site.files.pki))


def _wait_for_keys(site: Site, slaves: list[str]) -> None:
    with _kme(site, TWIN) as kme:
        wait_until(lambda: all(kme.status(s).stored_key_count > 0 for s in slaves), 15,
                   what="QKD keys at the KME", interval_s=0.1)


def _handshakes(links: SecureLinks) -> dict[str, bytes]:
    return {topic.split("/")[1]: payload for topic, payload, _ in links.handshakes()}


class Sink:
    def __init__(self) -> None:
        self.delivered: list[tuple[str, bytes]] = []
        self.refused: list[str] = []
        self.done = 0

    def deliver(self, topic: str, payload: bytes, settle: Callable[[], None]) -> None:
        self.delivered.append((topic, payload))
        settle()  # stored at once

    def refuse(self, reason: str, _detail: str) -> None:
        self.refused.append(reason)

    def ack(self) -> None:
        self.done += 1


def _feed(reader: Any, sink: Sink, topic: str, payload: bytes) -> None:
    reader.receive(topic, payload, sink.deliver, sink.refuse, sink.ack)


# --------------------------------------------------------------------------------------------------
# FINDING 1: a forged handshake burns the QKD key of the real one (dec_keys before the signatures)
# --------------------------------------------------------------------------------------------------


def test_a_forged_handshake_does_not_burn_the_real_sessions_qkd_key(site: Site) -> None:
    """FINDING (high, DoS of any link by anyone who may publish on the broker).

    `SecureLinks.accept_handshake` calls the KME's `dec_keys` for the handshake's key ids *before*
    `accept` checks the two signatures and the epoch. The key ids are public (the retained handshake,
    the chain), so an attacker copies the real handshake, breaks a signature (or just changes the
    epoch) and gets it to the slave first (e.g. overwrites the retained handshake while the slave is
    restarting). The slave consumes the key at the KME, then refuses the forgery as `forged`; when
    the real handshake arrives, the key is gone (`qkd-key`) and the link has no session for that
    epoch until the master's next rotation (600 s by default)."""
    _wait_for_keys(site, [ORACLE1])
    twin, oracle = _links(site, TWIN), _links(site, ORACLE1)
    real = _handshakes(twin)[L_ORACLE1]
    assert Handshake.from_bytes(real).mode == "hybrid"
    body = json.loads(real)
    sig = bytearray(bytes.fromhex(body["signature_ed25519"]))
    sig[0] ^= 1
    body["signature_ed25519"] = sig.hex()
    forged = json.dumps(body).encode()

    with pytest.raises(ChannelRefused) as refused:
        oracle.accept_handshake(forged)
    assert refused.value.reason == "forged"
    # the real handshake must still be accepted
    try:
        session = oracle.accept_handshake(real)
    except ChannelRefused as exc:
        pytest.fail(f"the real handshake is refused after a forgery burnt its QKD key: {exc}")
    assert session is not None and session.epoch == Handshake.from_bytes(real).epoch


# --------------------------------------------------------------------------------------------------
# FINDING 2: the pending buffer is shared by all links and fillable by unauthenticated junk
# --------------------------------------------------------------------------------------------------


def test_junk_envelopes_of_unknown_epochs_do_not_crowd_out_real_ones(site: Site) -> None:
    """FINDING (medium, cheap DoS). `LinkReader._open` parks *any* envelope whose epoch has no
    session (only its 16-byte header is looked at, nothing is authenticated) in one list shared by
    all the reader's links, capped at PENDING_MAX (2000) for 30 s. 2000 junk envelopes of 32 bytes
    each (64 KB) on any link the reader reads fill it; for the next 30 s every real envelope that has
    to wait for its handshake (the normal case right after a rotation, or while the slave fetches the
    QKD key) is refused `unknown-epoch` and lost (QoS 1 acked), on every link of that reader."""
    _wait_for_keys(site, [ORACLE1])
    twin, oracle = _links(site, TWIN), _links(site, ORACLE1)
    hs = _handshakes(twin)
    reader = oracle.reader("subscriber", ["qeaims/water/#"])
    sink = Sink()
    _feed(reader, sink, handshake_topic(L_ORACLE1), hs[L_ORACLE1])

    # the attacker: junk with a made-up epoch on the link's data topic (no key needed)
    for i in range(PENDING_MAX):
        _feed(reader, sink, data_topic(L_ORACLE1, TWIN), header(0, 4000 + i, 1) + bytes(16))
    # fixed: an epoch far from the link's newest is refused at once instead of parked
    assert sink.refused == ["unknown-epoch"] * PENDING_MAX
    for i in range(PENDING_MAX):  # and junk just ahead of it is held at most PENDING_PER_LINK deep
        _feed(reader, sink, data_topic(L_ORACLE1, TWIN), header(0, 2, 10_000 + i) + bytes(16))

    # the master rotates; its first envelope of the new epoch reaches the reader before the handshake
    published: list[tuple[str, bytes]] = []
    twin.attach_publisher(lambda t, p, _q, _r: published.append((t, p)))
    twin.rotate_now(L_ORACLE1, "due")
    new_hs = next(p for t, p in published if t == handshake_topic(L_ORACLE1))
    envelope = next(p for t, p, _ in twin.seal(READING, b"reading-1") if t == data_topic(L_ORACLE1, TWIN))
    _feed(reader, sink, data_topic(L_ORACLE1, TWIN), envelope)
    _feed(reader, sink, handshake_topic(L_ORACLE1), new_hs)
    assert (READING, b"reading-1") in sink.delivered, f"the real reading was lost: refused {sink.refused[-3:]}"


# --------------------------------------------------------------------------------------------------
# FINDING 3: two processes of one SAE share a state file and reuse AES-GCM nonces
# --------------------------------------------------------------------------------------------------


def test_two_processes_of_one_sae_never_seal_under_the_same_nonce(site: Site) -> None:
    """FINDING (high: nonce reuse; needs two processes of one SAE, e.g. two `qeaims scenario run`
    at once, both `open_links(home, "operations")`). Nothing stops a second process from loading
    `state/operations.json`: both resume the same slave→master session and seal the next envelope
    with the same counter under the same key. The XOR of the two ciphertexts is the XOR of the two
    plaintexts, and the GHASH key can be recovered (forgeries). The state file needs an exclusive
    lock held for the process's lifetime (or a per-process counter range)."""
    _wait_for_keys(site, [OPERATIONS_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_OPS]
    first = _links(site, OPERATIONS_SAE)
    assert first.accept_handshake(hs) is not None
    # fixed: the state is locked for the first process's life; a second one is refused in one line
    with pytest.raises(ConfigError, match="another process already runs operations"):
        _links(site, OPERATIONS_SAE)
    p1 = b'{"cmd":"flood","valve":"V1"}'
    e1 = next(p for t, p, _ in first.seal("qeaims-sim/water", p1) if t == data_topic(L_OPS, OPERATIONS_SAE))
    first.close()  # once it has stopped, the next process resumes above every counter it used
    second = _links(site, OPERATIONS_SAE)
    e2 = next(p for t, p, _ in second.seal("qeaims-sim/water", b"{}") if t == data_topic(L_OPS, OPERATIONS_SAE))
    assert e1[:16] != e2[:16] and int.from_bytes(e2[8:16], "big") > int.from_bytes(e1[8:16], "big")
    assert _inner("qeaims-sim/water", p1)


# --------------------------------------------------------------------------------------------------
# FINDING 4: no freshness check on handshakes: an old fallback session can be replayed
# --------------------------------------------------------------------------------------------------


def test_a_slave_refuses_an_hours_old_handshake(site: Site) -> None:
    """FINDING (medium). `accept` has `max_age_s`, but `SecureLinks.accept_handshake` never passes it,
    so freshness rests only on `after_epoch` from the slave's state file. A slave whose state is gone
    (its file was damaged and "moved away" as the error message says, a new disk, a rebuilt
    container) accepts any old signed pq-fallback handshake recorded from the wire; the attacker then
    replays that epoch's recorded envelopes and the slave delivers them again (old readings, old
    simulation commands). A genuine current handshake is never older than the rotation age (600 s)."""
    twin = _links(site, TWIN)
    twin.kme.close()  # type: ignore[union-attr]
    twin.kme = None  # a fallback session (the KME down, or the link compromised), two hours ago
    twin._clock = lambda: time.time() - 7200
    old = _handshakes(twin)[L_ORACLE1]
    envelope = next(p for t, p, _ in twin.seal(READING, b"old reading") if t == data_topic(L_ORACLE1, TWIN))
    fresh_slave = _links(site, ORACLE1)  # no state file
    sink = Sink()
    reader = fresh_slave.reader("subscriber", ["qeaims/water/#"])
    _feed(reader, sink, handshake_topic(L_ORACLE1), old)
    _feed(reader, sink, data_topic(L_ORACLE1, TWIN), envelope)
    assert not sink.delivered, "a two-hour-old handshake was accepted and its recorded envelope delivered again"


# --------------------------------------------------------------------------------------------------
# FINDING 5: the controller misses a compromise that starts and ends between two polls
# --------------------------------------------------------------------------------------------------


class _Outbox:
    def rows_of_kinds(self, _kinds: Any, after_seq: int = 0) -> list[Any]:
        return []


class _Recorder:
    def __init__(self) -> None:
        self.outbox = _Outbox()
        self.events: list[tuple[int, dict[str, Any]]] = []

    def record(self, kind: int, _node: bytes, payload: bytes) -> int:
        self.events.append((kind, json.loads(payload)))
        return len(self.events)

    write_ahead = record  # the link watch writes ahead, notes, then flushes

    def flush(self) -> None:
        pass


def test_the_link_watch_records_a_compromise_that_ended_before_its_next_poll(quiet_site: Site) -> None:
    """FINDING (medium: a missed `link-compromised` alarm). `LinkWatch._alarm` records only a change
    of the *state* between two polls (every 2 s). A link that turns compromised and is restored in
    between (one alarmed block, then 3 clean blocks at 0.5 s: ~1.5 s; or an Eve who listens for one
    block at a time) leaves nothing on-chain, although the KME reports `alarm_count` and `blocks`
    that say it happened (and the keys delivered before the alarm were exposed). The watch should
    compare `alarm_count` (monotonic) with what it recorded, not only the state."""
    site = quiet_site
    supply = site.kme.supply
    for _ in range(2):
        supply.run_block(L_ORACLE1)
    with _kme(site, CONTROLLER_SAE) as kme:
        watch = LinkWatch(plan=site.plan, directory=Directory.load(site.files.directory), kme=kme,
                          port=site.mqtt_port)
        rec = _Recorder()
        watch.poll()
        watch.record(rec)
        assert not rec.events  # all secure
        with _kme(site, OPERATIONS_SAE) as ops:
            ops.set_eavesdropper(L_ORACLE1, "intercept-resend", 1.0)
            supply.run_block(L_ORACLE1)
            assert supply.compromised(L_ORACLE1)
            ops.clear_eavesdropper(L_ORACLE1)
        for _ in range(10):
            if not supply.compromised(L_ORACLE1):
                break
            supply.run_block(L_ORACLE1)
        assert not supply.compromised(L_ORACLE1)
        watch.poll()
        watch.record(rec)
    alarms = [body for kind, body in rec.events if kind == QKD_ALARM and body.get("type") == "link-compromised"]
    assert alarms, "the KME counted an alarmed block on the link, and nothing went on-chain"


# --------------------------------------------------------------------------------------------------
# Attacks that HOLD (regression tests)
# --------------------------------------------------------------------------------------------------


def test_holds_kme_does_not_give_a_links_key_to_a_third_sae(site: Site) -> None:
    """HOLDS. oracle-water-2 (a valid certificate, and also a slave of twin-water) asks for a key of
    the twin→oracle-water-1 link: 400, and the key stays for oracle-water-1 (once). The controller
    (sees every link's state) cannot take keys as a master. A slave cannot ask for enc_keys."""
    _wait_for_keys(site, [ORACLE1])
    with _kme(site, TWIN) as twin, _kme(site, ORACLE2) as other, _kme(site, ORACLE1) as slave, \
            _kme(site, CONTROLLER_SAE) as ctl:
        key = twin.enc_keys(ORACLE1)[0]
        with pytest.raises(KmeError) as e:
            other.dec_keys(TWIN, [key.key_ID])
        assert e.value.status == 400
        with pytest.raises(KmeError) as e:
            ctl.enc_keys(ORACLE1)
        assert e.value.status == 401
        with pytest.raises(KmeError) as e:
            slave.enc_keys(TWIN)
        assert e.value.status == 401
        got = slave.dec_keys(TWIN, [key.key_ID])[0]
        assert got.key == key.key
        with pytest.raises(KmeError) as e:
            slave.dec_keys(TWIN, [key.key_ID])  # twice
        assert e.value.status == 400


def test_holds_kme_serves_no_key_of_a_compromised_link(quiet_site: Site) -> None:
    """HOLDS. While the QKD link is compromised `enc_keys` is 503 and the keys reserved before the
    alarm are discarded (503 for the slave)."""
    site, supply = quiet_site, quiet_site.kme.supply
    for _ in range(3):
        supply.run_block(L_ORACLE1)
    with _kme(site, TWIN) as twin, _kme(site, ORACLE1) as slave, _kme(site, OPERATIONS_SAE) as ops:
        key = twin.enc_keys(ORACLE1)[0]
        ops.set_eavesdropper(L_ORACLE1, "intercept-resend", 1.0)
        supply.run_block(L_ORACLE1)
        assert supply.compromised(L_ORACLE1)
        with pytest.raises(KmeError) as e:
            twin.enc_keys(ORACLE1)
        assert e.value.status == 503
        with pytest.raises(KmeError) as e:
            slave.dec_keys(TWIN, [key.key_ID])
        assert e.value.status == 503
        ops.clear_eavesdropper(L_ORACLE1)


def test_holds_a_peer_cannot_send_outside_its_topics_and_reflection_is_refused(site: Site) -> None:
    """HOLDS. The operations desk seals `qeaims-cmd/water` on its own link (it has the keys): the
    twin refuses `not-carried`. A Byzantine oracle seals a `qeaims-sim/water` on its link: refused.
    The twin's own envelope reflected back to it as if from the controller: `wrong-direction`. An
    envelope of one link moved to another link's topic: `tamper`/`wrong-epoch`, never delivered."""
    _wait_for_keys(site, [ORACLE1, CONTROLLER_SAE, OPERATIONS_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)
    ops, oracle, ctl = _links(site, OPERATIONS_SAE), _links(site, ORACLE1), _links(site, CONTROLLER_SAE)
    ops.accept_handshake(hs[L_OPS])
    oracle.accept_handshake(hs[L_ORACLE1])
    ctl.accept_handshake(hs[L_CONTROLLER])
    reader = twin.reader("twin", ["qeaims-cmd/water", "qeaims-sim/water", "#"])
    sink = Sink()

    def sealed_by(links: SecureLinks, link_id: str, sender: str, topic: str) -> bytes:
        session = links._sessions[link_id][links._current[link_id]]
        return session.seal(_inner(topic, b'{"cmd":"open"}'), sender=sender)

    _feed(reader, sink, data_topic(L_OPS, OPERATIONS_SAE), sealed_by(ops, L_OPS, OPERATIONS_SAE, "qeaims-cmd/water"))
    _feed(reader, sink, data_topic(L_ORACLE1, ORACLE1), sealed_by(oracle, L_ORACLE1, ORACLE1, "qeaims-sim/water"))
    mine = next(p for t, p, _ in twin.seal(READING, b"r") if t == data_topic(L_CONTROLLER, TWIN))
    _feed(reader, sink, data_topic(L_CONTROLLER, CONTROLLER_SAE), mine)  # reflected
    cmd = sealed_by(ctl, L_CONTROLLER, CONTROLLER_SAE, "qeaims-cmd/water")
    _feed(reader, sink, data_topic(L_OPS, OPERATIONS_SAE), cmd)  # moved to another link
    assert not sink.delivered, sink.delivered
    assert sink.refused[:3] == ["not-carried", "not-carried", "wrong-direction"], sink.refused
    _feed(reader, sink, data_topic(L_CONTROLLER, CONTROLLER_SAE), cmd)  # the genuine one still opens
    assert sink.delivered == [("qeaims-cmd/water", b'{"cmd":"open"}')]


def test_holds_replays_after_a_restart_and_old_handshakes_are_refused(site: Site) -> None:
    """HOLDS. A reader restarted from its state file refuses an envelope it already delivered; an old
    signed handshake (lower epoch) replayed to a slave that has its state is `stale-epoch`; the
    retained handshake seen again changes nothing."""
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs1 = _handshakes(twin)[L_CONTROLLER]
    ctl = _links(site, CONTROLLER_SAE)
    reader = ctl.reader("scada", ["qeaims/#"])
    sink = Sink()
    _feed(reader, sink, handshake_topic(L_CONTROLLER), hs1)
    env = next(p for t, p, _ in twin.seal(READING, b"r1") if t == data_topic(L_CONTROLLER, TWIN))
    _feed(reader, sink, data_topic(L_CONTROLLER, TWIN), env)
    assert sink.delivered == [(READING, b"r1")]
    # restart (the process ends, new objects from the same files) and replay
    ctl.close()
    ctl2 = _links(site, CONTROLLER_SAE)
    reader2, sink2 = ctl2.reader("scada", ["qeaims/#"]), Sink()
    _feed(reader2, sink2, data_topic(L_CONTROLLER, TWIN), env)
    assert not sink2.delivered and sink2.refused == ["replay"]
    # a newer epoch, then the old handshake again
    published: list[tuple[str, bytes]] = []
    twin.attach_publisher(lambda t, p, _q, _r: published.append((t, p)))
    twin.rotate_now(L_CONTROLLER, "due")
    twin.rotate_now(L_CONTROLLER, "due")
    twin.rotate_now(L_CONTROLLER, "due")
    for _t, p in published:
        assert ctl2.accept_handshake(p) is not None
    # epoch 1 was pruned on the slave: the replayed handshake must be refused, not re-accepted
    with pytest.raises(ChannelRefused) as e:
        ctl2.accept_handshake(hs1)
    assert e.value.reason in ("stale-epoch", "qkd-key")


def test_holds_no_key_material_in_status_rotations_or_status_files(site: Site) -> None:
    """HOLDS. `status()`, `rotations`, the status file that `qeaims link status` reads, and the
    handshake (public, recorded on-chain) carry no AES key and no QKD key."""
    from links.site import read_status, write_status

    _wait_for_keys(site, [ORACLE1, CONTROLLER_SAE, OPERATIONS_SAE, ORACLE2])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)
    secrets = [k.hex() for epochs in twin._sessions.values() for s in epochs.values() for k in s.keys]
    write_status(site.files, TWIN, {"sae": TWIN, "links": twin.status()})
    public = json.dumps([twin.status(), twin.rotations, read_status(site.files)], default=str) + \
        b"".join(hs.values()).decode()
    assert secrets and not any(s in public for s in secrets)
    assert not any(s[:16] in public for s in secrets)


def test_holds_broker_wire_shows_only_link_topics_and_a_forged_retained_handshake_is_refused(site: Site) -> None:
    """HOLDS. Through the real broker: an attacker's handshake signed by a key of its own, published
    retained on the link's handshake topic, is refused by the slave, and the master's republished
    real one is accepted."""
    from links.channel import initiate
    from links.endpoint import EndpointKeys

    _wait_for_keys(site, [ORACLE1])
    oracle = _links(site, ORACLE1)
    reader, sink = oracle.reader("subscriber", ["qeaims/water/#"]), Sink()
    lock = threading.Lock()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="oracle-water-1", clean_session=True)
    client.username_pw_set("oracle-water-1")
    client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in oracle.subscriptions()])

    def on_message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        with lock:
            _feed(reader, sink, m.topic, bytes(m.payload))

    client.on_message = on_message
    attacker = paho.Client(CallbackAPIVersion.VERSION2, client_id="eve", clean_session=True)
    attacker.username_pw_set("eve")
    attacker.connect("127.0.0.1", site.mqtt_port)
    attacker.loop_start()
    try:
        forger = EndpointKeys.generate(TWIN)
        forged, _ = initiate(L_ORACLE1, 77, forger, Directory.load(site.files.directory).get(ORACLE1),
                             qkd_key=None, qkd_key_ids=())
        attacker.publish(handshake_topic(L_ORACLE1), forged.to_bytes(), qos=1, retain=True).wait_for_publish(5)
        client.connect("127.0.0.1", site.mqtt_port)
        client.loop_start()
        wait_until(lambda: "forged" in sink.refused, 10, what="the forged retained handshake refused")
        twin = _links(site, TWIN)
        hs = _handshakes(twin)[L_ORACLE1]
        attacker.publish(handshake_topic(L_ORACLE1), hs, qos=1, retain=True).wait_for_publish(5)
        env = next(p for t, p, _ in twin.seal(READING, b"r") if t == data_topic(L_ORACLE1, TWIN))
        attacker.publish(data_topic(L_ORACLE1, TWIN), env, qos=1).wait_for_publish(5)
        wait_until(lambda: (READING, b"r") in sink.delivered, 10, what="the real reading")
    finally:
        client.disconnect()
        client.loop_stop()
        attacker.disconnect()
        attacker.loop_stop()


# --------------------------------------------------------------------------------------------------
# FINDING 6: the counter is "persisted before an envelope leaves", but never fsynced
# --------------------------------------------------------------------------------------------------


def test_the_sending_counter_reaches_the_disk_before_the_envelope_leaves(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """FINDING (medium: nonce reuse after a power cut). `bus.secure._write_private` writes the
    session state to a temporary file and renames it, with no `fsync` of the file (nor of the
    directory), unlike the endpoint keys. After a power cut (not a mere process crash) the file can
    come back with an older `sent` counter, and a slave (which never rotates) seals the next envelopes
    under the same key and nonces it already used; a master can also come back with an older
    `last_epoch`. fsync the temporary file before `os.replace` and the directory after."""
    import os

    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    ctl = _links(site, CONTROLLER_SAE)
    ctl.accept_handshake(_handshakes(twin)[L_CONTROLLER])
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    assert ctl.seal("qeaims-cmd/water", b'{"cmd":"open"}')
    assert synced, "the slave's counter was not fsynced before its envelope was handed to the broker"
