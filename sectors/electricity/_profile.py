"""The daily load profile: how much of its nominal (peak) demand each load draws at a given time.

case33bw's loads are the feeder's *peak* demand (3.715 MW, 2.3 Mvar), so the profile peaks at 1.0
(19:00, the evening residential peak) and falls to 0.46 at 03:00 — the shape of a residential-heavy
urban feeder with a commercial daytime plateau. Between the hourly points it is interpolated
linearly, so the load moves smoothly from step to step. Reactive power follows active power
(constant power factor per load).

On top of the shared shape each load gets its own small deviation (Gaussian, ``noise`` relative
standard deviation, clipped to ±3σ) so that sensors are not perfectly correlated. It is drawn from
a generator seeded by ``(seed, minute of the epoch)``: the same seed and time always give the same
loads, whatever the order or spacing of the steps that led there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAILY_PROFILE", "load_multipliers", "profile_factor"]

DAILY_PROFILE: tuple[float, ...] = (
    0.55, 0.50, 0.47, 0.46, 0.47, 0.52, 0.62, 0.74, 0.80, 0.82, 0.83, 0.84,
    0.85, 0.84, 0.83, 0.84, 0.87, 0.93, 0.98, 1.00, 0.97, 0.90, 0.78, 0.65,
)
"""Fraction of peak demand at each hour 00:00 … 23:00 (local time = the twin's clock)."""


def profile_factor(at: datetime) -> float:
    """The shared daily multiplier at ``at``, interpolated between the hourly points."""
    hours = at.hour + at.minute / 60.0 + (at.second + at.microsecond / 1e6) / 3600.0
    low = int(hours) % 24
    frac = hours - int(hours)
    return (1.0 - frac) * DAILY_PROFILE[low] + frac * DAILY_PROFILE[(low + 1) % 24]


def load_multipliers(at: datetime, *, seed: int, noise: float, count: int) -> NDArray[np.float64]:
    """Per-load multipliers of nominal demand at ``at``: the profile times each load's deviation."""
    base = np.full(count, profile_factor(at))
    if noise <= 0.0:
        return base
    stamp = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    minute = int(stamp.timestamp() // 60)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, minute & 0xFFFFFFFFFFFF])
    deviation = np.clip(rng.standard_normal(count), -3.0, 3.0) * noise
    result: NDArray[np.float64] = base * (1.0 + deviation)
    return result
