"""A one-sided CUSUM (Page, 1954): the failure predictor behind the year's preventive work orders.

Why CUSUM and not a learned model: the signal it watches (a slow degradation — insulation
resistance falling, acoustic leak noise rising, a UPS battery's internal resistance creeping up)
drifts over days, and a CUSUM accumulates small, persistent shifts that a per-sample threshold
misses, with one parameter pair whose false-alarm rate can be read off normal data. It is the
simplest predictor that is honest about both its hits and its false alarms.

The statistic on standardised samples ``z`` is ``S_t = max(0, S_{t-1} + z_t - k)``; an alarm is
raised the first time ``S_t > h``. ``k`` is half the shift (in standard deviations) it is tuned to
see; ``h`` sets the false-alarm rate, and :func:`threshold_for_rate` picks it on normal
(fault-free) samples only, never on the failures it is later scored against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["cusum_path", "first_alarm", "threshold_for_rate"]


def cusum_path(z: NDArray[np.float64], k: float) -> NDArray[np.float64]:
    """The upper CUSUM statistic along the last axis of ``z`` (one series per row)."""
    if k < 0:
        raise ValueError(f"the CUSUM reference k must be >= 0, got {k}")
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    out = np.empty_like(z)
    s = np.zeros(z.shape[0])
    for t in range(z.shape[1]):
        s = np.maximum(0.0, s + z[:, t] - k)
        out[:, t] = s
    return out


def first_alarm(z: NDArray[np.float64], k: float, h: float) -> NDArray[np.int64]:
    """Index of each row's first alarm (``S_t > h``), or -1 for a row that never alarms."""
    if h <= 0:
        raise ValueError(f"the CUSUM threshold h must be > 0, got {h}")
    above = cusum_path(z, k) > h
    hit = above.any(axis=1)
    return np.where(hit, above.argmax(axis=1), -1).astype(np.int64)


def threshold_for_rate(normal: NDArray[np.float64], k: float, rate: float) -> float:
    """The smallest ``h`` at which at most ``rate`` of the normal series (rows) alarm at all.

    ``normal`` must hold fault-free series only (each row one asset over the horizon the rate is
    stated for, e.g. a year of daily samples): the threshold is chosen on them and nothing else.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"the false-alarm rate must be in (0, 1), got {rate}")
    peaks = np.sort(cusum_path(normal, k).max(axis=1))
    allowed = int(np.floor(rate * len(peaks)))  # rows that may exceed h
    return float(peaks[len(peaks) - allowed - 1])
