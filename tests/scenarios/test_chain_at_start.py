"""A scenario that starts while its chain is away waits for it (crash campaign run 19 ended with exit 2
because its chain was killed while the scenario was still starting; the supervisor had it back in
seconds). The chain here is a real Anvil, stopped and started again by `chain.node` as a supervisor does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from chain.node import start_anvil, stop_anvil
from core.config import load_settings
from core.errors import ChainNotRunning
from qeaims.scenarios.clock import BlockStamps
from qeaims.scenarios.runner import connect_waiting, while_chain_away
from tests.conftest import free_port

pytestmark = pytest.mark.chain


def test_a_scenario_connecting_to_a_restarting_chain_waits_for_it(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    settings = fresh_chain.settings
    head = int(fresh_chain.client.rpc.call("eth_blockNumber"), 16)
    stop_anvil(settings)
    waits: list[float] = []
    restarted = threading.Thread(target=lambda: (time.sleep(2.0), start_anvil(settings)), daemon=True)
    restarted.start()
    client, deployment = connect_waiting(settings, timeout_s=120.0, on_wait=waits.append)
    restarted.join(60)
    assert waits and waits[0] == 0.0  # it was told the chain was away, and so waited
    assert int(client.rpc.call("eth_blockNumber"), 16) == head  # the replayed chain, deployment and all
    assert deployment.registry == fresh_chain.deployment.registry


def test_a_chain_that_stays_away_is_the_error_it_was_once_the_wait_is_over(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", rpc_port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ChainNotRunning, match="start it with `qeaims chain up`"):
        connect_waiting(settings, timeout_s=1.5)
    assert 1.5 <= time.monotonic() - started < 5.0


def test_the_block_clock_of_a_starting_scenario_waits_for_its_chain_too(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """The 20-run campaign of session 40 lost run 19 so again: the chain died after the scenario's index
    had synced, and the block clock's first poll (`BlockStamps.start`) ended the scenario with exit 2."""
    settings = fresh_chain.settings
    stamps = BlockStamps(fresh_chain.client.rpc)
    stop_anvil(settings)
    with pytest.raises(ChainNotRunning):
        BlockStamps(fresh_chain.client.rpc).start()  # what `play` met
    restarted = threading.Thread(target=lambda: (time.sleep(2.0), start_anvil(settings)), daemon=True)
    restarted.start()
    try:
        assert while_chain_away(stamps.start, timeout_s=120.0) is stamps  # what `play` does now
    finally:
        restarted.join(60)
        stamps.close()
