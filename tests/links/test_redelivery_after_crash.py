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



def _sealed(twin, n: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [next(p for t, p, _ in twin.seal(READING, f"r{i}".encode()) if t == data_topic(L_CONTROLLER, TWIN))
            for i in range(n)]


def test_envelopes_that_arrive_late_open_once_and_a_second_copy_waits_for_the_first(site: Site) -> None:  # noqa: F811
    """Mosquitto sends a reconnected client's live messages beside the backlog it queued: the newest
    arrives before older ones. Each opens once; a copy of one still being stored is neither delivered
    again nor refused (acknowledged away): its acknowledgement waits for the first copy's settle."""
    _wait_for_keys(site, [CONTROLLER_SAE])
    twin = _links(site, TWIN)
    hs = _handshakes(twin)[L_CONTROLLER]
    envelopes = _sealed(twin, 6)
    ctl = _links(site, CONTROLLER_SAE)
    reader, oracle = ctl.reader("scada", ["qeaims/#"]), Oracle()
    reader.receive(handshake_topic(L_CONTROLLER), hs, oracle.deliver, oracle.refuse, oracle.ack)
    for i in (5, 0, 1, 4, 2, 3, 1, 5):  # late ones, then copies of two still held
        reader.receive(data_topic(L_CONTROLLER, TWIN), envelopes[i], oracle.deliver, oracle.refuse, oracle.ack)
    assert [p for _, p, _ in oracle.held] == [b"r5", b"r0", b"r1", b"r4", b"r2", b"r3"]
    assert oracle.refused == [] and oracle.acked == 1  # only the handshake: the copies wait
    forged = bytearray(envelopes[3])
    forged[-1] ^= 1  # a forged "copy" of one still held is refused, not held
    reader.receive(data_topic(L_CONTROLLER, TWIN), bytes(forged), oracle.deliver, oracle.refuse, oracle.ack)
    assert oracle.refused == ["tamper"] and oracle.acked == 2
    oracle.store()
    assert oracle.acked == 2 + 6 + 2  # every first copy, then both copies
    reader.receive(data_topic(L_CONTROLLER, TWIN), envelopes[2], oracle.deliver, oracle.refuse, oracle.ack)
    assert oracle.refused == ["tamper", "replay"]  # settled: a copy now is a replay
