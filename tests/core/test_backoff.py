"""The chain back-off grows through an outage and starts over once the chain answers having lost a send."""

from __future__ import annotations

import pytest

from core.backoff import next_backoff
from core.errors import ChainNotRunning, ContractRejected, TransactionLost

pytestmark = pytest.mark.unit

STEPS = (0.5, 1.0, 2.0, 5.0)


def test_an_outage_backs_off_step_by_step_up_to_the_last() -> None:
    failures, delays = 0, []
    for _ in range(6):
        failures, delay = next_backoff(failures, ChainNotRunning("no chain answers"), STEPS)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 5.0, 5.0, 5.0]
    assert next_backoff(failures, ContractRejected("EventLedger", "SequenceGap", {}), STEPS) == (7, 5.0)


def test_a_chain_back_without_what_was_sent_is_tried_again_soon() -> None:
    # after a chain kill the outage had reached the 5 s step; the restarted chain lost the last blocks
    assert next_backoff(4, TransactionLost("EventLedger.recordBatch was dropped by the node"), STEPS) == (1, 0.5)
