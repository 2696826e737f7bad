"""Review s40b: where the 4,096-counter replay window (`links.session.REPLAY_WINDOW`) loses real envelopes.

The window is counted back from the highest counter a reader *opened*, not the highest it
*settled*, and the broker queue and the oracle's sink are both far larger than 4,096 envelopes
(`bus.mosquitto.MAX_QUEUED_MESSAGES` is a day at 30x; `ReadingSink` holds 100,000 readings). Two ways
an envelope that no one ever stored is then refused as a replay and acknowledged away:

- a backlog longer than the window that one live envelope overtakes (what Mosquitto was seen to do
  for a restarted oracle, the reason the window exists) loses its oldest part at once;
- an oracle that opened more than 4,096 envelopes beyond the oldest one it has not stored yet (a
  catch-up that outruns its store) writes that oldest one to disk as accepted: killed then, it
  refuses the broker's redelivery.
"""

from __future__ import annotations

from bus.secure import LinkReader, SecureLinks, _inner, data_topic, handshake_topic
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


def test_an_envelope_not_yet_stored_is_accepted_again_after_a_restart_however_many_opened_since(
        site: Site) -> None:  # noqa: F811
    """Any settle writes the window counted from the highest counter opened, and an unsettled envelope
    more than 4,096 below it is written as accepted. Here the settle that writes it is a message this
    reader does not want (settled at once); at an oracle it is a batch rejected or dropped at once, or,
    with live envelopes interleaved in a catch-up (as Mosquitto was seen to send them), the settle of
    any stored envelope while older ones still sit in the sink."""
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = _many(twin, REPLAY_WINDOW + BEYOND)
    session = twin._sessions[L_CONTROLLER][twin._current[L_CONTROLLER]]
    service = session.seal(_inner("qeaims-svc/water", b"{}"), sender=TWIN)
    twin._save()
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/water/+/+"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    for envelope in envelopes:  # a catch-up: opened in order, held in the sink faster than stored
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    assert len(oracle.held) == len(envelopes) and oracle.refused == []
    reader.receive(data_topic(L_CONTROLLER, TWIN), service, oracle.deliver, oracle.refuse, oracle.ack)
    assert oracle.acked == 2  # handshake, service level: settled at once, and the window written
    ctl.close()  # the reader is killed: not one reading was stored
    ctl2 = _links(site, CONTROLLER_SAE)
    reader2, restarted = ctl2.reader("scada", ["qeaims/water/+/+"]), Oracle()
    for envelope in envelopes:  # the broker redelivers every one it holds unacknowledged
        reader2.receive(data_topic(L_CONTROLLER, TWIN), envelope, restarted.deliver, restarted.refuse, restarted.ack)
    assert restarted.refused == [], (f"{len(restarted.refused)} envelopes never stored refused after the restart as "
                                     f"{sorted(set(restarted.refused))} and acknowledged: lost for good")


def test_a_waiting_copy_is_acknowledged_once_its_first_copy_settles_however_many_opened_since(
        site: Site) -> None:  # noqa: F811
    """The broker's second copy of an envelope still in the sink waits for its settle; if more than
    4,096 envelopes open meanwhile (a catch-up), the reader forgets that it waits and never acknowledges
    it: the broker keeps it in flight for good, and each such copy takes one of the session's in-flight
    slots (`max_inflight_messages 100`) until the broker stops sending the reader anything."""
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = _many(twin, REPLAY_WINDOW + 2)
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = LinkReader(ctl, "scada", ("qeaims/#",), None), Oracle()  # no disk: the window in memory
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    for envelope in [envelopes[0], envelopes[0], *envelopes[1:]]:  # r0, the broker's copy of r0, the rest
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    assert len(oracle.held) == len(envelopes) and oracle.refused == [] and oracle.acked == 1
    expected = 1 + len(envelopes) + 1  # the handshake, every first copy, the copy of r0
    oracle.store()
    assert oracle.acked == expected, "the copy of r0 was never acknowledged"


def test_a_catch_up_with_live_envelopes_interleaved_loses_nothing_it_had_not_stored_when_killed(
        site: Site) -> None:  # noqa: F811
    """An oracle's path only: every envelope a reading, held in the sink, stored in arrival order. The
    broker sends one live envelope, the queued backlog, and more live ones while the backlog is still
    being stored; the first store writes the window from the newest opened, past the backlog's oldest."""
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = _many(twin, REPLAY_WINDOW + BEYOND)
    backlog, live = envelopes[:REPLAY_WINDOW - BEYOND], envelopes[REPLAY_WINDOW - BEYOND:]
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/#"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    for envelope in [live[0], *backlog, *live[1:]]:
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    assert len(oracle.held) == len(envelopes) and oracle.refused == []
    oracle.held[0][2]()  # the first one in the sink (the first live envelope) is stored ...
    ctl.close()  # ... and the oracle is killed with the whole backlog still in its sink
    ctl2 = _links(site, CONTROLLER_SAE)
    reader2, restarted = ctl2.reader("scada", ["qeaims/#"]), Oracle()
    for envelope in [*backlog, *live[1:]]:  # the broker redelivers every one it holds unacknowledged
        reader2.receive(data_topic(L_CONTROLLER, TWIN), envelope, restarted.deliver, restarted.refuse, restarted.ack)
    assert restarted.refused == [], (f"{len(restarted.refused)} backlog envelopes never stored refused after the "
                                     f"restart as {sorted(set(restarted.refused))} and acknowledged: lost for good")
