"""Failure prediction: a robust trend on a degrading signal, and the time left until it crosses a limit.

Anomaly detection says "something is wrong now"; maintenance wants "this pump will be wrong in
three days". Wear shows as a slow trend (bearing vibration creeping up, linearly or exponentially)
buried in noise and the odd spike, so the trend is a Theil–Sen fit (median of pairwise slopes):
up to ~29 % of the points can be outliers without moving it. Both a linear and an exponential
(linear in log) trend are fitted; the one with the smaller median absolute residual wins. A
maintenance verdict is raised only when the trend is significant (its rise over the window clearly
exceeds the noise) and the projected crossing is within the horizon — before the limit is reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from core.messages import Sector, Verdict, VerdictKind

__all__ = ["TrendForecast", "fit_trend", "maintenance_verdict", "theil_sen"]

Array = NDArray[np.float64]
_MAX_POINTS = 400  # pairwise slopes are O(n²): thin long histories evenly


def theil_sen(t: Array, y: Array) -> tuple[float, float, float]:
    """Slope, intercept and median absolute residual of the Theil–Sen line through (t, y)."""
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(t) > _MAX_POINTS:
        idx = np.linspace(0, len(t) - 1, _MAX_POINTS).astype(int)
        t, y = t[idx], y[idx]
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    ok = dt != 0
    if not ok.any():
        return 0.0, float(np.median(y)), float(np.median(np.abs(y - np.median(y))))
    slope = float(np.median((y[j] - y[i])[ok] / dt[ok]))
    intercept = float(np.median(y - slope * t))
    mad = float(np.median(np.abs(y - (slope * t + intercept))))
    return slope, intercept, mad


@dataclass(frozen=True)
class TrendForecast:
    """A fitted trend of one signal; times are seconds since the first sample used."""

    model: str  # "linear" or "exponential"
    slope: float  # per second (of the value, or of its log for "exponential")
    intercept: float
    noise: float  # median absolute residual, in the fitted space
    significant: bool
    current: float  # the trend's value at the last sample
    seconds_to_limit: float | None  # None: not heading for the limit

    def value_at(self, seconds: float) -> float:
        v = self.slope * seconds + self.intercept
        return math.exp(v) if self.model == "exponential" else v


def fit_trend(seconds: Sequence[float] | Array, values: Sequence[float] | Array, limit: float, *,
              significance: float = 3.0) -> TrendForecast:
    """Fit linear and exponential trends; project when the better one reaches `limit` (upper limit).

    Significant means the trend's rise over the observed span is more than `significance` times the
    residual noise; an insignificant trend never yields a time to the limit.
    """
    t = np.asarray(seconds, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if len(t) != len(y) or len(t) < 5:
        raise ValueError("need at least 5 (time, value) pairs of equal length")
    t = t - t[0]
    candidates = [("linear", *theil_sen(t, y), y, limit)]
    if np.all(y > 0) and limit > 0:
        ly = np.log(y)
        candidates.append(("exponential", *theil_sen(t, ly), ly, math.log(limit)))

    def value_space_error(c: tuple[str, float, float, float, Array, float]) -> float:
        # compare fits in the value space so the log fit is not favoured by its smaller numbers
        fitted = c[1] * t + c[2]
        back = np.exp(fitted) if c[0] == "exponential" else fitted
        return float(np.median(np.abs(y - back)))

    name, slope, intercept, mad, _, lim = min(candidates, key=value_space_error)
    span = float(t[-1] - t[0])
    rise = slope * span
    significant = rise > significance * max(mad, 1e-12)
    now = slope * t[-1] + intercept
    current = math.exp(now) if name == "exponential" else now
    seconds_to_limit: float | None = None
    if significant and slope > 0:
        seconds_to_limit = max((lim - now) / slope, 0.0)
    return TrendForecast(model=name, slope=slope, intercept=intercept, noise=mad, significant=significant,
                         current=current, seconds_to_limit=seconds_to_limit)


def maintenance_verdict(
    times: Sequence[datetime],
    values: Sequence[float],
    *,
    limit: float,
    horizon: timedelta,
    sector: Sector,
    asset_id: str,
    sensor: str,
    unit: str = "",
) -> Verdict | None:
    """A MAINTENANCE verdict if the signal's trend crosses `limit` within `horizon`, else None.

    Score is the trend's current value and threshold the limit, so the verdict reads like any other;
    the reason gives the estimated time to the limit, which the controller can schedule against.
    """
    if len(times) != len(values):
        raise ValueError("times and values must have the same length")
    seconds = [(t - times[0]).total_seconds() for t in times]
    forecast = fit_trend(seconds, values, limit)
    eta = forecast.seconds_to_limit
    if eta is None or eta > horizon.total_seconds():
        return None
    reached = float(values[-1]) >= limit
    hours = eta / 3600
    when = "has reached" if reached else f"will reach its limit in about {_human(hours)}"
    reason = (f"{sensor} is rising ({forecast.model} trend, now {forecast.current:.3g}{unit}) and {when} "
              f"{limit:.3g}{unit}; schedule maintenance before it does")
    return Verdict(sector=sector, asset_id=asset_id, kind=VerdictKind.MAINTENANCE, score=float(forecast.current),
                   threshold=float(limit), sensors=(sensor,), reason=reason[:512], observed_at=times[-1])


def _human(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
