"""Normal operation for training: a fresh twin run with nothing broken, collected row by row.

Rows are one report period apart online (`sectors.runner.REPORT_PERIOD_S`); where a day of
report periods costs too much, training samples every `stride`-th period: the twins' states are
snapshots (a power flow, a hydraulic solution), so a row taken 3 minutes after the last is as
normal as one taken a minute after, and the jump limit learned from wider steps is only more
lenient. Weather is an input (`TrainingPlan.inputs`, a `Drive` per run). A totaliser is judged by
its increments (`increments`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np

from core.errors import ConfigError
from core.messages import Reading, Sector
from oracles.sector_model import Array, increments
from sectors.plugin import plugin_of
from sectors.runner import REPORT_PERIOD_S, TwinRunner, open_twin, parse_sector

__all__ = ["Drive", "Inputs", "Progress", "collect_normal", "increments", "normal_twin"]

Progress = Callable[[int, int], None]
Drive = Callable[[TwinRunner, int], None]
"""Sets a twin's exogenous inputs (weather) before training row `i` is collected."""
Inputs = Callable[[int, int, int, int], Drive]
"""(seed, rows, stride, period_s) -> the `Drive` of one training run."""


def normal_twin(sector: Sector | str, *, seed: int = 0, start: datetime | None = None) -> TwinRunner:
    """A fresh twin for training: as `open_twin`, minus what no sensor reads (transport's baseline)."""
    which = parse_sector(sector)
    opener = plugin_of(which).open_training_twin
    if opener is not None:
        if start is not None:
            raise ConfigError(f"the {which.value} training twin starts at its own time: no start can be given")
        return TwinRunner(which, opener(seed), REPORT_PERIOD_S[which])
    return open_twin(which, seed=seed, start=start)


def collect_normal(runner: TwinRunner, *, rows: int, stride: int = 1, progress: Progress | None = None,
                   drive: Drive | None = None) -> tuple[list[Reading], Array]:
    """Advance `runner` `rows` times by `stride` report periods: the first readings (names) and the rows.

    `drive` sets the twin's exogenous inputs (weather) before each row is collected.
    """
    if rows < 8:
        raise ConfigError(f"train on at least 8 rows, got {rows}")
    if stride < 1:
        raise ConfigError(f"stride must be ≥ 1, got {stride}")
    period = runner.period_s * stride
    if drive is not None:
        drive(runner, 0)
    first = runner.advance(period)
    names = [r.sensor_id for r in first]
    out = np.empty((rows, len(names)), dtype=np.float64)
    readings = first
    for i in range(rows):
        if i:
            if drive is not None:
                drive(runner, i)
            readings = runner.advance(period)
        values = {r.sensor_id: r.value for r in readings}
        out[i] = [values[n] for n in names]
        if progress is not None:
            progress(i + 1, rows)
    return first, out
