"""An envelope handed on but never stored is accepted again when the broker redelivers it.

A reader keeps a replay window per link on disk (`bus.secure.LinkReader`). It used to move that
window past an envelope *before* handing the envelope on, so an oracle killed after opening a batch
but before storing it refused the broker's redelivery as a replay, acknowledged it, and lost the
readings for good (the crash campaign's one period short at two of four oracles after an oracle
kill). The window on disk now moves only past what was settled (stored, or finished with);
replays of settled envelopes are still refused after a restart.
"""

from __future__ import annotations

from collections.abc import Callable

from bus.secure import data_topic, handshake_topic
from tests.links.test_attacks import (
    CONTROLLER_SAE,
    L_CONTROLLER,
    READING,
    TWIN,
    Site,
    _handshakes,
    _links,
    _wait_for_keys,
    site,  # noqa: F401 - the fixture
)


class Oracle:
    """A reading client that stores only when told to (`store`): what it holds in memory dies with it."""

    def __init__(self) -> None:
        self.held: list[tuple[str, bytes, Callable[[], None]]] = []
        self.stored: list[bytes] = []
        self.refused: list[str] = []
        self.acked = 0

    def deliver(self, topic: str, payload: bytes, settle: Callable[[], None]) -> None:
        self.held.append((topic, payload, settle))

    def refuse(self, reason: str, _detail: str) -> None:
        self.refused.append(reason)
        self.acked += 1

    def ack(self) -> None:
        self.acked += 1

    def store(self) -> None:
        for _topic, payload, settle in self.held:
            self.stored.append(payload)
            settle()
        self.held = []


def test_an_envelope_delivered_but_not_stored_is_accepted_again_after_a_restart(site: Site) -> None:  # noqa: F811
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = [next(p for t, p, _ in twin.seal(READING, f"r{i}".encode()) if t == data_topic(L_CONTROLLER, TWIN))
                 for i in (1, 2, 3)]
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/#"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    reader.receive(data_topic(L_CONTROLLER, TWIN), envelopes[0], oracle.deliver, oracle.refuse, oracle.ack)
    oracle.store()  # r1 stored and acknowledged
    reader.receive(data_topic(L_CONTROLLER, TWIN), envelopes[1], oracle.deliver, oracle.refuse, oracle.ack)
    reader.receive(data_topic(L_CONTROLLER, TWIN), envelopes[2], oracle.deliver, oracle.refuse, oracle.ack)
    assert oracle.stored == [b"r1"] and len(oracle.held) == 2 and oracle.acked == 2  # handshake, r1
    # killed before storing r2 and r3: the broker redelivers what was not acknowledged
    ctl.close()
    ctl2 = _links(site, CONTROLLER_SAE)
    reader2, restarted = ctl2.reader("scada", ["qeaims/#"]), Oracle()
    for envelope in envelopes:  # a replayed r1 too: it was settled, so it stays refused
        reader2.receive(data_topic(L_CONTROLLER, TWIN), envelope, restarted.deliver, restarted.refuse, restarted.ack)
    restarted.store()
    assert restarted.stored == [b"r2", b"r3"] and restarted.refused == ["replay"]
    # and once stored, a replay of them is refused too, also after another restart
    ctl2.close()
    ctl3 = _links(site, CONTROLLER_SAE)
    reader3, again = ctl3.reader("scada", ["qeaims/#"]), Oracle()
    for envelope in envelopes:
        reader3.receive(data_topic(L_CONTROLLER, TWIN), envelope, again.deliver, again.refuse, again.ack)
    assert again.held == [] and again.refused == ["replay"] * 3


def test_an_envelope_never_settled_does_not_hold_the_window_open_for_ever(site: Site, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """A receiver that fails an envelope and never settles it would keep the window on disk below it
    for the session's life, so everything since could be replayed once after a restart; past
    `UNSETTLED_SPAN` newer envelopes it is given up on."""
    monkeypatch.setattr("bus.secure.UNSETTLED_SPAN", 8)
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = [next(p for t, p, _ in twin.seal(READING, f"r{i}".encode()) if t == data_topic(L_CONTROLLER, TWIN))
                 for i in range(80)]
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/#"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    for envelope in envelopes[:70]:  # the first 70 are failed: opened, never settled
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    oracle.held = []
    for envelope in envelopes[70:]:
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelope, oracle.deliver, oracle.refuse, oracle.ack)
    oracle.store()
    ctl.close()
    ctl2 = _links(site, CONTROLLER_SAE)
    reader2, replayed = ctl2.reader("scada", ["qeaims/#"]), Oracle()
    for envelope in envelopes:
        reader2.receive(data_topic(L_CONTROLLER, TWIN), envelope, replayed.deliver, replayed.refuse, replayed.ack)
    # all 70 failed ones are more than the span behind the newest: every replay is refused
    assert replayed.held == [] and replayed.refused == ["replay"] * 80
