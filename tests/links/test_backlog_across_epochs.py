"""An oracle that was down longer than a session lives must still get every batch the broker kept for it.

Review of session 40 (what the links do with a backlog; the behaviour is older than the session).
The broker keeps an oracle's QoS 1 messages while it is down (`bus.mosquitto`: "an oracle that is
down for an hour at 30x gets every batch it missed"), and the twin starts a new link session every
`RotationPolicy.max_age_s` (600 s) with a handshake. When the oracle comes back, the handshakes of
the epochs it missed are older than `max_age_s + HANDSHAKE_SLACK_S` (11 minutes), and
`SecureLinks.accept_handshake` refuses them as "stale-epoch" ("a recording, not the master"); the
envelopes of those epochs then have no session, are refused as "unknown-epoch" and acknowledged:
every reading of them is lost. This test runs the same rule on a shorter clock (1 s sessions, 1 s
slack) so it takes seconds, not eleven minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.mosquitto import mosquitto_executable
from bus.mqtt import wire_sensor
from bus.secure import SecureLinks
from core.messages import Reading, Sector
from links.channel import RotationPolicy
from links.plan import twin_sae
from oracles.ingest.mqtt import MqttSubscriber
from oracles.ingest.sink import ReadingSink
from sectors.publish import TwinPublisher
from sectors.runner import open_twin
from tests.links.linked_city import linked_city, sae_links, start_oracle
from tests.support import wait_until

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")

POLICY = RotationPolicy(max_age_s=1.0)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    with linked_city(tmp_path) as site:
        yield site


def _links(home: Path, sae: str) -> SecureLinks:
    return sae_links(home, sae, POLICY)


def _oracle(home: Path, port: int, sink: ReadingSink) -> tuple[SecureLinks, MqttSubscriber]:
    return start_oracle(home, port, sink, policy=POLICY)


def _key(r: Reading) -> tuple[str, str, str]:
    return r.asset_id, wire_sensor(r), r.timestamp.isoformat()  # the wire names a sensor without its asset


@pytest.mark.slow  # 11 s of sessions expiring for an open finding: `make test-slow` (make test's 20-minute budget)
@pytest.mark.xfail(strict=True, reason="review s40 finding 3, open (older than session 40): the missed epochs' "
                   "handshakes are refused as stale (older than a session's life plus HANDSHAKE_SLACK_S), so their "
                   "envelopes are unknown-epoch and acknowledged away; accepting a never-seen later epoch late "
                   "needs its own review of the handshake freshness rule")
def test_an_oracle_down_longer_than_a_session_lives_gets_its_backlog(
        city: tuple[Path, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bus.secure.HANDSHAKE_SLACK_S", 1.0)  # 60 s in production
    home, port = city
    up = ReadingSink()
    links, oracle = _oracle(home, port, up)
    twin_links = _links(home, twin_sae("banking"))
    sent: list[Reading] = []
    try:
        with open_twin(Sector.BANKING) as runner, TwinPublisher(runner, port=port, links=twin_links) as twin:
            first = runner.advance()
            twin.publish(first)
            wait_until(lambda: len(up) == len(first), 15, what="the oracle to take the first period")
            up.drain()  # stored and acknowledged
            time.sleep(0.5)
            oracle.stop()  # the oracle goes down; the broker keeps its session and queues for it
            links.close()
            for _ in range(3):  # a period a session: each one in a new epoch, with its own handshake
                time.sleep(1.2)
                readings = runner.advance()
                twin.publish(readings)
                sent.extend(readings)
        time.sleep(2.5)  # down for longer than a session lives plus the slack
        back = ReadingSink()
        links, oracle = _oracle(home, port, back)
        got: set[tuple[str, str, str]] = set()

        def arrived() -> bool:
            got.update(_key(r) for r in back.drain())
            return {_key(r) for r in sent} <= got

        try:
            wait_until(arrived, 4, what="the backlog to reach the oracle")
        except AssertionError:
            pass
        missing = {_key(r) for r in sent} - got
        assert not missing, (f"{len(missing)} of {len(sent)} readings of the backlog lost; the oracle refused "
                             f"{back.stats().rejected} (stale handshakes, then unknown epochs)")
    finally:
        oracle.stop()
        links.close()
        twin_links.close()
