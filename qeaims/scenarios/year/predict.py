"""Failure predictions for the year: a daily degradation signal per asset, watched by a CUSUM.

Why simulate the signal: the twins have no ageing physics, so the year draws one. Every asset's
daily condition reading is noise (standard normal: readings standardised on the asset's own
history); before a failure that has a precursor (``PRECURSOR_SHARE`` of them) a drift grows
linearly over ``PRECURSOR_DAYS`` to ``PRECURSOR_SHIFT_SD``. `oracles.detect.cusum` watches each
asset, restarting after every alarm (the crew's visit resets the reference). The CUSUM threshold
is chosen on normal signals only, drawn from a fixed training seed that no scored run uses, to
keep ``FALSE_ALARMS_PER_ASSET_YEAR``; the failures never tune it.

An alarm is a true prediction when the same asset fails within ``PRECURSOR_DAYS`` after it;
otherwise it is a false alarm that still costs a crew visit.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracles.detect.cusum import first_alarm, threshold_for_rate
from qeaims.scenarios.year import assumptions as A
from qeaims.scenarios.year.faults import Asset, Fault

__all__ = ["TRAINING_SEED", "Alarm", "alarms", "threshold"]

TRAINING_SEED = 20_261_205
"""Seed of the normal signals the threshold is chosen on; distinct from any run's fault draw."""
_TRAINING_ASSET_YEARS = 4000
DAY_S = 86_400.0


@dataclass(frozen=True)
class Alarm:
    asset: Asset
    at_s: float
    fault: Fault | None  # the failure it predicts, or None for a false alarm


@functools.cache
def threshold() -> float:
    """The CUSUM threshold ``h`` (see the module docstring), on normal signals only."""
    normal = np.random.default_rng(TRAINING_SEED).normal(size=(_TRAINING_ASSET_YEARS, int(A.YEAR_H // 24)))
    return threshold_for_rate(normal, A.CUSUM_K, A.FALSE_ALARMS_PER_ASSET_YEAR)


def _signal(rng: np.random.Generator, days: int, onsets: Sequence[float]) -> np.ndarray:
    z = rng.normal(size=days)
    for onset in onsets:
        end = onset / DAY_S
        for d in range(max(0, int(end - A.PRECURSOR_DAYS)), min(days, int(np.ceil(end)))):
            z[d] += A.PRECURSOR_SHIFT_SD * max(0.0, 1.0 - (end - (d + 1)) / A.PRECURSOR_DAYS)
    return z


def alarms(all_assets: Sequence[Asset], faults: Sequence[Fault], *, seed: int,
           horizon_s: float = A.YEAR_H * 3600) -> list[Alarm]:
    """Every alarm of the year, in time order, matched to the failure it predicts (if any)."""
    h = threshold()
    days = int(np.ceil(horizon_s / DAY_S))
    out: list[Alarm] = []
    for asset in all_assets:
        own = [f for f in faults if f.asset == asset]
        # one stream per asset: its signal does not depend on which other assets are watched
        rng = np.random.default_rng([seed, 2, *asset.asset_id.encode()])
        z = _signal(rng, days, [f.at_s for f in own if f.precursor])
        start = 0
        while start < days:
            hit = int(first_alarm(z[start:][None, :], A.CUSUM_K, h)[0])
            if hit < 0:
                break
            at = (start + hit + 1) * DAY_S  # the day's reading is in at its end
            fault = next((f for f in own if at < f.at_s <= at + A.PRECURSOR_DAYS * DAY_S), None)
            out.append(Alarm(asset, at, fault))
            start += hit + 1
    return sorted(out, key=lambda a: (a.at_s, a.asset.asset_id))
