"""A redelivery that arrives while the oracle still holds the original must not be acknowledged away.

Review of session 40's `bus.secure.LinkReader` (the window on disk moves only past settled
envelopes). An oracle's in-memory window moves the moment an envelope opens, so when the broker
resends its unacknowledged messages to the *same* oracle process (the broker restarted cleanly, or
the oracle's connection dropped and paho reconnected its persistent session), every resent copy is
refused as a "replay" and acknowledged at once, although the original is still only in the
oracle's memory (its sink), not stored and not settled. The broker then forgets it. If the oracle
dies before storing the original, the restarted oracle's window on disk would accept the
redelivery, but there is none left: the readings are lost for good, the very loss the change set
out to close. (The twin's sent log does not cover it: it resends only the last
`sectors.sent_log.RESEND_WINDOW_S` wall seconds, and only when the twin itself reconnected; a
lagging oracle holds readings much older than that.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.mosquitto import MosquittoBroker, mosquitto_executable
from oracles.ingest.sink import ReadingSink
from tests.links.linked_city import (
    linked_city,
    publish_periods_held,
    restart_oracle_and_collect,
    start_oracle,
)
from tests.support import wait_until

pytestmark = pytest.mark.skipif(mosquitto_executable() is None, reason="Mosquitto is not installed (make system)")

@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    with linked_city(tmp_path, broker=False) as city:
        yield city


def test_a_redelivery_to_a_live_oracle_is_not_acknowledged_before_the_original_is_stored(
        site: tuple[Path, int], tmp_path: Path) -> None:
    home, port = site
    broker = MosquittoBroker(port=port, data_dir=tmp_path / "broker").start()
    held = ReadingSink()  # a lagging oracle: it has opened the batches, stores nothing yet
    links, oracle = start_oracle(home, port, held)
    try:
        sent = publish_periods_held(home, port, held)
        # the broker restarts cleanly (it saves the oracle's session and its unacknowledged messages);
        # the oracle process stays up, paho resumes its session and the broker resends them
        broker.stop()
        broker = MosquittoBroker(port=port, data_dir=tmp_path / "broker").start()
        reader = oracle._reader
        assert reader is not None
        wait_until(lambda: reader.copies_held >= 1, 20, what="the broker's resend to reach the live oracle")
        assert held.stats().rejected == {} and len(held) == len(sent)  # held: neither delivered again nor refused
        # the oracle dies before its loop stored what it held
        links, oracle, got = restart_oracle_and_collect(home, port, links, oracle, len(sent), timeout_s=10)
        assert len(got) == len(sent), (
            f"{len(sent) - len(got)} of {len(sent)} readings lost: the live oracle refused the broker's resend "
            f"as a replay ({held.stats().rejected}) and acknowledged it while the original was still unstored")
    finally:
        oracle.stop()
        links.close()
        broker.stop()
