"""Photon-number splitting, tuned so the signal gain is the expected one, is seen by the decoys."""

from __future__ import annotations

import numpy as np
import pytest

from links.qkd import Eavesdropper, expected_stats, run_block
from links.qkd.params import DEFAULT_SOURCE, GYS
from links.qkd.simulate import pns_forwarding_transmittance

DISTANCE = 25.0
PULSES = 20_000_000
PNS = Eavesdropper("pns", 0.5)


def _blocks(count: int, seed: int) -> list[tuple[str, ...]]:
    rng = np.random.default_rng(seed)
    results = [run_block(DISTANCE, PULSES, rng=rng, eve=PNS) for _ in range(count)]
    expected = expected_stats(DISTANCE)
    # Eve hid in the signal gain: it is what Bob expects, within statistics
    mean_gain = np.mean([r.gain_signal for r in results])
    assert mean_gain == pytest.approx(expected.signal.gain, rel=0.01)
    assert not any(a.startswith("signal-gain") for r in results for a in r.alarms)
    # and the QBER does not betray her either
    assert not any(a.startswith("qber") for r in results for a in r.alarms)
    return [r.alarms for r in results]


def test_eve_tunes_her_line_between_fibre_and_lossless() -> None:
    t = pns_forwarding_transmittance(DISTANCE, GYS, DEFAULT_SOURCE, 0.5)
    assert GYS.transmittance(DISTANCE) < t < GYS.eta_bob


def test_pns_on_half_the_pulses_is_caught_by_the_decoy_analysis_every_block() -> None:
    alarms = _blocks(100, seed=5)
    assert all(any(a.startswith(("y1-low", "decoy-ratio")) for a in block) for block in alarms)


@pytest.mark.slow
def test_pns_caught_in_1000_blocks() -> None:
    alarms = _blocks(1000, seed=6)
    assert all(any(a.startswith(("y1-low", "decoy-ratio")) for a in block) for block in alarms)
