"""The CUSUM predictor: it accumulates a slow drift a single-sample threshold misses, keeps its
false-alarm rate on normal data, and refuses nonsense parameters."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.detect.cusum import cusum_path, first_alarm, threshold_for_rate


def test_statistic_resets_at_zero_and_accumulates() -> None:
    path = cusum_path(np.array([[1.0, 1.0, -5.0, 2.0]]), k=0.5)
    assert path.tolist() == [[0.5, 1.0, 0.0, 1.5]]


def test_a_slow_drift_alarms_before_a_single_sample_threshold_would() -> None:
    rng = np.random.default_rng(1)
    days = 60
    drift = np.concatenate([np.zeros(30), np.linspace(0.0, 3.0, 30)])  # reaches 3 sigma at the failure
    z = rng.normal(size=(200, days)) + drift
    h = threshold_for_rate(rng.normal(size=(2000, 365)), k=0.5, rate=0.05)
    alarms = first_alarm(z, k=0.5, h=h)
    caught = alarms[alarms >= 30]
    assert len(caught) > 150  # most drifting series alarm during the drift...
    assert np.median(caught) < days - 5  # ...days before its end
    single = (z[:, :days - 5] > 4.0).any(axis=1).sum()  # a 4-sigma per-sample rule, same lead
    assert single < len(caught) / 2


def test_threshold_keeps_the_false_alarm_rate_on_fresh_normal_data() -> None:
    rng = np.random.default_rng(2)
    h = threshold_for_rate(rng.normal(size=(4000, 365)), k=0.5, rate=0.02)
    fresh = first_alarm(rng.normal(size=(4000, 365)), k=0.5, h=h)
    assert (fresh >= 0).mean() < 0.04


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        cusum_path(np.zeros((1, 3)), k=-1.0)
    with pytest.raises(ValueError):
        first_alarm(np.zeros((1, 3)), k=0.5, h=0.0)
    with pytest.raises(ValueError):
        threshold_for_rate(np.zeros((10, 3)), k=0.5, rate=1.5)
