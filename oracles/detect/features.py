"""Edge step: readings into a regular table, and a cheap first-pass check before the models run.

Detectors want rows of equally spaced samples with one column per sensor; sensors deliver
`Reading`s at their own pace, sometimes late or missing. `readings_to_frame` resamples them onto
one clock (mean per slot, gaps carried forward a bounded number of slots) so a model sees the
same shape online as in training. `FirstPassCheck` catches the blunt failures — a value outside
anything seen in normal operation, a sensor stuck at one value, a jump faster than the process can
move — in microseconds, so an obviously broken sensor is named even before a model scores it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.messages import Reading

__all__ = ["Finding", "FirstPassCheck", "numeric_columns", "readings_to_frame", "to_matrix"]

Array = NDArray[np.float64]


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose values are (mostly) numbers; time stamps and text columns are left out."""
    out = []
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.notna().mean() >= 0.9:
            out.append(str(col))
    return out


def to_matrix(frame: pd.DataFrame, columns: Sequence[str]) -> Array:
    """The named columns as floats; gaps filled from the previous (else next) sample."""
    values = frame[list(columns)].apply(pd.to_numeric, errors="coerce").ffill().bfill()
    if values.isna().any().any():
        empty = [c for c in columns if values[c].isna().all()]
        raise ValueError(f"column(s) without any numeric value: {', '.join(empty)}")
    out: Array = values.to_numpy(dtype=np.float64)
    return out


def readings_to_frame(readings: Iterable[Reading], *, period: str = "1s", max_gap: int = 5) -> pd.DataFrame:
    """One row per `period`, one column per sensor id, mean of the readings in each slot.

    A sensor silent for up to `max_gap` slots keeps its last value; longer silences stay NaN so the
    caller sees the outage instead of a fabricated flat line.
    """
    rows = [(r.timestamp, r.sensor_id, r.value) for r in readings]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["time", "sensor", "value"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    table = frame.pivot_table(index="time", columns="sensor", values="value", aggfunc="mean")
    table = table.resample(period).mean().ffill(limit=max_gap)
    table.columns.name = None
    return table


@dataclass(frozen=True)
class Finding:
    """One blunt problem with one sensor in the latest window, in words an operator can read."""

    sensor: str
    kind: str  # "range", "frozen" or "jump"
    message: str


class FirstPassCheck:
    """Range, frozen-value and rate-of-change limits learned from normal rows.

    Limits: the normal min/max widened by `range_margin` of the normal span; a jump is a step
    larger than `jump_factor` times the largest normal step; frozen means no change at all over
    `frozen_rows` consecutive rows for a sensor that did change in normal operation.
    """

    def __init__(self, sensors: Sequence[str], *, range_margin: float = 0.25, jump_factor: float = 3.0,
                 frozen_rows: int = 30) -> None:
        self.sensors = list(sensors)
        self.range_margin = range_margin
        self.jump_factor = jump_factor
        self.frozen_rows = frozen_rows
        self.low: Array = np.zeros(0)
        self.high: Array = np.zeros(0)
        self.max_step: Array = np.zeros(0)
        self.moves: NDArray[np.bool_] = np.zeros(0, dtype=bool)

    def fit(self, normal: Array, *, groups: Sequence[str] | None = None, stride: int = 1) -> FirstPassCheck:
        """Learn the limits from normal rows (oldest first), taken `stride` report periods apart.

        `stride` matters to the frozen check, which counts online rows: a sensor constant over `k`
        training rows was constant for at least `(k - 1) * stride + 1` report periods. Without it a
        water pipe that rests at 0 flow for half an hour (3 rows of 15 minutes in training) was "moving"
        and, online at a row a minute, "stuck" after 30 rows: four oracles voted its main out of
        service on the storm day before any fault was injected.

        `groups` (one key per sensor) makes sensors with the same key share their range and step
        limits, the widest any of them showed, and the values any of them rested at for a frozen
        stretch (which then do not count as stuck). For sensors on identical assets (the links of
        a road grid), what one did in normal operation another may do next time.
        """
        x = np.asarray(normal, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.sensors) or len(x) < 2:
            raise ValueError(f"expected at least 2 rows of {len(self.sensors)} sensors, got shape {x.shape}")
        if groups is not None and len(groups) != len(self.sensors):
            raise ValueError(f"expected one group per sensor ({len(self.sensors)}), got {len(groups)}")
        lo, hi = x.min(axis=0), x.max(axis=0)
        steps = np.abs(np.diff(x, axis=0)).max(axis=0)
        if groups is not None:
            for key in set(groups):
                cols = [j for j, g in enumerate(groups) if g == key]
                lo[cols], hi[cols], steps[cols] = lo[cols].min(), hi[cols].max(), steps[cols].max()
        span = np.maximum(hi - lo, np.maximum(np.abs(hi), 1.0) * 0.01)
        self.low, self.high = lo - self.range_margin * span, hi + self.range_margin * span
        self.max_step = np.maximum(steps, 1e-9)
        # a sensor "moves" if it changed at least once in every stretch as long as the frozen limit
        if stride < 1:
            raise ValueError(f"stride must be ≥ 1, got {stride}")
        runs = _longest_constant_run(x)
        self.moves = (runs - 1) * stride + 1 < self.frozen_rows
        # values a group's sensors rest at for a frozen stretch in normal operation: a free-flowing
        # link reads exactly its free-flow speed for as long as nobody queues on it
        self.rest: list[frozenset[float]] = [frozenset()] * len(self.sensors)
        # A pooled group whose sensors read exactly 0 in normal operation counts 0 as a rest value
        # too (a loop over an empty road counts no cars however long): detector-health practice
        # (PeMS) calls a loop stuck when it holds a *non-zero* value, and treats zeros as no traffic
        # unless they last the whole day. Training covers the morning peak, when every link sees a
        # car within half an hour; in the late morning an edge link can stay empty longer, and its
        # density was called a spoofed sensor and quarantined (storm day, link:n13-n23).
        if groups is not None:
            held = _rest_values(x, math.ceil((self.frozen_rows - 1) / stride) + 1)
            for key in set(groups):
                cols = [j for j, g in enumerate(groups) if g == key]
                values = frozenset().union(*(held[j] for j in cols))
                if len(cols) > 1 and bool(np.any(x[:, cols] == 0.0)):
                    values = values | {0.0}
                for j in cols:
                    self.rest[j] = values
        return self

    def check(self, window: Array) -> list[Finding]:
        """Findings for the latest rows (oldest first); empty when nothing is bluntly wrong."""
        x = np.asarray(window, dtype=np.float64)
        findings: list[Finding] = []
        last = x[-1]
        for j, name in enumerate(self.sensors):
            if last[j] < self.low[j] or last[j] > self.high[j]:
                findings.append(Finding(name, "range", f"{name} = {last[j]:.4g} is outside its normal range "
                                                       f"[{self.low[j]:.4g}, {self.high[j]:.4g}]"))
        if len(x) >= 2:
            step = np.abs(x[-1] - x[-2])
            for k in np.flatnonzero(step > self.jump_factor * self.max_step).tolist():
                name = self.sensors[k]
                findings.append(Finding(name, "jump", f"{name} jumped by {step[k]:.4g}, more than "
                                                      f"{self.jump_factor:g}× the largest normal step"))
        if len(x) >= self.frozen_rows:
            tail = x[-self.frozen_rows:]
            stuck = np.all(tail == tail[0], axis=0) & self.moves
            rest: list[frozenset[float]] = getattr(self, "rest", [])
            for k in np.flatnonzero(stuck).tolist():
                if rest and any(bool(_same(tail[0, k], v)) for v in rest[k]):
                    continue  # a value sensors like it hold for as long in normal operation
                name = self.sensors[k]
                findings.append(Finding(name, "frozen", f"{name} has not changed for {self.frozen_rows} samples "
                                                        f"(stuck at {tail[0, k]:.4g})"))
        return findings


_SAME = 1e-9
"""Relative difference below which two samples are one value: a simulator's rounding is not a change."""


def _same(a: Array | float, b: Array | float) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = np.abs(np.asarray(a) - np.asarray(b)) <= _SAME * np.maximum(np.abs(np.asarray(b)), 1.0)
    return out


def _rest_values(x: Array, length: int) -> list[frozenset[float]]:
    """Per column, the values it held (to rounding) for at least `length` consecutive rows."""
    out: list[frozenset[float]] = []
    for col in x.T:
        held: set[float] = set()
        start = 0
        for i in range(1, len(col) + 1):
            if i == len(col) or not bool(_same(col[i], col[start])):
                if i - start >= length:
                    held.add(float(col[start]))
                start = i
        out.append(frozenset(held))
    return out


def _longest_constant_run(x: Array) -> NDArray[np.int64]:
    """Per column, the longest stretch of consecutive values equal to rounding.

    An empty road link reads exactly its free-flow speed, one with a car at free flow the same
    speed to the twelfth digit; in training that looked like a sensor that never rests, and the
    first quiet stretch online like a stuck one.
    """
    same = _same(x[1:], x[:-1])
    best = np.ones(x.shape[1], dtype=np.int64)
    current = np.ones(x.shape[1], dtype=np.int64)
    for row in same:
        current = np.where(row, current + 1, 1)
        best = np.maximum(best, current)
    return best
