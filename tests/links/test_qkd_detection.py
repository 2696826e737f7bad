"""Attacks are caught from the measured statistics alone; the clean link raises no false alarm.

The thresholds are fixed a priori in `links.qkd.monitor` (Z = 5.5); nothing here tunes them.
"""

from __future__ import annotations

import numpy as np
import pytest

from links.qkd import Eavesdropper, run_block

DISTANCE = 25.0
PULSES = 10_000_000


def _alarmed(blocks: int, eve: Eavesdropper | None, seed: int, pulses: int = PULSES) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    return [run_block(DISTANCE, pulses, rng=rng, eve=eve).alarms for _ in range(blocks)]


def test_intercept_resend_on_10_percent_is_caught_every_block() -> None:
    alarms = _alarmed(100, Eavesdropper("intercept-resend", 0.1), seed=1)
    assert all(any(a.startswith("qber-high") for a in block) for block in alarms)


def test_no_false_alarm_without_eve() -> None:
    alarms = _alarmed(100, None, seed=2)
    assert not any(alarms)


@pytest.mark.slow
def test_intercept_resend_caught_in_1000_blocks() -> None:
    alarms = _alarmed(1000, Eavesdropper("intercept-resend", 0.1), seed=3)
    assert all(alarms)


@pytest.mark.slow
def test_no_false_alarm_in_1000_blocks() -> None:
    alarms = _alarmed(1000, None, seed=4)
    assert not any(alarms)
