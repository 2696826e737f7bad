"""Review s40b: a backlog longer than the replay window (`links.session.REPLAY_WINDOW`) is lost.

The window is 4,096 counters below the highest one a reader opened, while the broker queue is sized
for far more (`bus.mosquitto.MAX_QUEUED_MESSAGES`: a day at 30x) and a session for far more too
(`RotationPolicy.max_messages` 50,000). If one live envelope overtakes a restarted reader's queued
backlog (what Mosquitto was seen to do, the reason the window exists), every envelope of that
epoch's backlog more than 4,096 below it is refused as a replay and acknowledged away, though the
reader never saw it. At 600x an oracle link carries about 120 envelopes a wall second: 34 s of
backlog. (The same rule written to disk, and the unsettled set pruned at 4,096, lose envelopes
only when more than 4,096 opened ones are unacknowledged at once, which Mosquitto's
``max_inflight_messages 100`` prevents on an oracle's path: see the review report, commit 6fdbd07.)
"""

from __future__ import annotations

from bus.secure import SecureLinks, _inner, data_topic, handshake_topic
from links.plan import CONTROLLER_SAE
from links.session import REPLAY_WINDOW
from tests.links.test_attacks import (
    L_CONTROLLER,
    READING,
    TWIN,
    Site,
    _handshakes,
    _links,
    _wait_for_keys,
    site,  # noqa: F401 - the fixture
)
from tests.links.test_redelivery_after_crash import Oracle

BEYOND = 100  # envelopes past the window


def _many(twin: SecureLinks, n: int) -> list[bytes]:
    """`n` envelopes of the twin's real session on the controller link (its state written once, not n times)."""
    first = next(p for t, p, _ in twin.seal(READING, b"r0") if t == data_topic(L_CONTROLLER, TWIN))
    session = twin._sessions[L_CONTROLLER][twin._current[L_CONTROLLER]]
    rest = [session.seal(_inner(READING, f"r{i}".encode()), sender=TWIN) for i in range(1, n)]
    twin._save()
    return [first, *rest]


def test_a_backlog_longer_than_the_window_overtaken_by_a_live_envelope_is_not_acknowledged_away(
        site: Site) -> None:  # noqa: F811
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = _many(twin, REPLAY_WINDOW + BEYOND)
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/#"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    # the broker's queue for a restarted reader, with one live envelope sent ahead of it
    for envelope in [envelopes[-1], *envelopes[:-1]]:
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    lost = len(envelopes) - len(oracle.held)
    assert oracle.refused == [], (f"{lost} never-seen envelopes of the backlog refused as "
                                  f"{sorted(set(oracle.refused))} and acknowledged: lost for good")

