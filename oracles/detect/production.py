"""The detector the oracles run, named in configuration before any benchmark runs.

A benchmark figure is worth something only if it is the figure of what production runs. So there
is one description of a sector's detector — `DetectorConfig`: which detector, its options, and how
it is calibrated (`Calibration`: target false-alarm rate on held-back normal rows, the hold-out
share, the causal smoothing window, the floor at the training rows' own scores) — and one function
that fits it, `fit_config`. `oracles.training.fit_model` calls it to build the model an oracle
loads; `qeaims detect eval` calls it on the public benchmarks. Nothing in the evaluation chooses a
setting: they all come from the sector's plugin (`sectors.<sector>.plugin`, `TrainingPlan.detector`,
`detector_options`, `smoothing_rows`) and from `Calibration`'s defaults, fixed before a test label
is read.

Which sector's detector the benchmarks judge: **water's** (`BENCHMARK_SECTOR`). Both public
benchmarks are water plants — SKAB a water-circulation testbed (a pump, valves, a tank loop),
BATADAL the C-Town distribution network — so the detector a water oracle runs is the one they
measure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ConfigError
from core.messages import Sector
from oracles.detect.calibrate import CalibratedDetector, fit_calibrated, floored, widened
from oracles.detect.models import Detector, make_detector
from sectors.plugin import plugin_of

__all__ = ["BENCHMARK_SECTOR", "Calibration", "DetectorConfig", "fit_config", "sector_config"]

BENCHMARK_SECTOR = Sector.WATER
"""The sector whose production detector `qeaims detect eval` judges (SKAB and BATADAL are water plants)."""


@dataclass(frozen=True)
class Calibration:
    """How a fitted detector's threshold is set, the same for every sector.

    `target_far`: the false-alarm rate wanted on the held-back normal rows (0.5 %: at a row every
    30 s that is one smoothed score over the line every 100 minutes of normal operation, and the
    oracles' episodes and second rows stand between it and a vote). `holdout`: the newest share of
    normal rows, kept out of fitting to set the threshold. `window`: the causal rolling median over
    scores, in rows. `floor`: no training row may score over the threshold (`calibrate.floored`).
    `margin`: the threshold of a detector that scores windows of rows, once floored, is multiplied
    by it (1: none; `calibrate.widened`, which says why row-wise detectors need none). A sector sets
    it in its plan (`TrainingPlan.threshold_margin`; water: see `sectors/water/plugin.py`).
    """

    target_far: float = 0.005
    holdout: float = 0.25
    window: int = 3
    floor: bool = True
    margin: float = 1.0


@dataclass(frozen=True)
class DetectorConfig:
    """A named detector with its options and calibration: what one sector's oracles run."""

    detector: str
    options: Mapping[str, Any] = field(default_factory=dict)
    calibration: Calibration = Calibration()
    source: str = ""  # where it is configured, for the report

    def make(self) -> Detector:
        """A fresh, unfitted detector of this configuration."""
        return make_detector(self.detector, **self.options)

    def as_dict(self) -> dict[str, Any]:
        c = self.calibration
        return {"detector": self.detector, "options": dict(self.options), "target_far": c.target_far,
                "holdout": c.holdout, "window": c.window, "floor": c.floor, "margin": c.margin,
                "source": self.source}

    def with_detector(self, name: str) -> DetectorConfig:
        """Another detector under the same calibration (a secondary row of a benchmark)."""
        return DetectorConfig(name, {}, self.calibration, f"{self.source}, detector replaced by {name!r}")


def sector_config(sector: Sector = BENCHMARK_SECTOR) -> DetectorConfig:
    """The detector `sector`'s oracles run, from its plugin's training plan."""
    plugin = plugin_of(sector)
    plan = plugin.training
    if not isinstance(plan.detector, str):
        raise ConfigError(f"the {sector.value} plugin builds its detector in code; name one to benchmark it")
    return DetectorConfig(plan.detector, dict(plan.detector_options),
                          Calibration(window=plan.smoothing_rows, margin=plan.threshold_margin),
                          source=f"sectors/{sector.value}/plugin.py (TrainingPlan) + oracles/detect/production.py "
                                 "(Calibration)")


def fit_config(normal: NDArray[np.float64], config: DetectorConfig,
               detector: Detector | None = None, *, stride: int = 1) -> CalibratedDetector:
    """Fit and calibrate `config` on normal rows (oldest first), exactly as an oracle's model is built.

    `detector` replaces the configured one (a plugin's detector factory, or a test's own instance).
    `stride`: report periods between the normal rows (a sector twin's training samples every
    `TrainingPlan.stride`-th period; a benchmark's rows are consecutive). A detector with a `stride`
    attribute is told, so that it learns nothing across rows that would mean something else online
    (`oracles.detect.drift`); the others are row-wise and do not care.
    """
    c = config.calibration
    det = detector or config.make()
    if hasattr(det, "stride"):
        det.stride = stride
    fitted = fit_calibrated(normal, detector=det, target_far=c.target_far, holdout=c.holdout, window=c.window)
    fitted = floored(fitted, normal) if c.floor else fitted
    return widened(fitted, normal, c.margin)
