"""Detection for the oracles: edge features, detectors, calibration, verdicts, failure prediction.

What an oracle calls, in order: `FirstPassCheck(sensors).fit(normal)` and
`fit_calibrated(normal, detector="pca")` once on normal operation; then for each new row
`assess(model, recent, sensors, ..., findings=check.check(recent))` → `Verdict | None`, and
periodically `maintenance_verdict(times, values, limit=..., horizon=...)` per wear signal.
`qeaims detect eval` runs the same code, configured as the oracles run it (`production.py`), on public
labelled data (`eval.py`, `eval_skab.py`, `eval_csv.py`).
"""

from oracles.detect.calibrate import CalibratedDetector, fit_calibrated, rolling_median, threshold_for
from oracles.detect.features import Finding, FirstPassCheck, numeric_columns, readings_to_frame, to_matrix
from oracles.detect.models import DETECTORS, Detector, IsolationForestDetector, Mset, PcaT2Q, make_detector
from oracles.detect.predict import TrendForecast, fit_trend, maintenance_verdict
from oracles.detect.verdicts import assess, make_verdict, top_sensors

__all__ = [
    "DETECTORS",
    "CalibratedDetector",
    "Detector",
    "Finding",
    "FirstPassCheck",
    "IsolationForestDetector",
    "Mset",
    "PcaT2Q",
    "TrendForecast",
    "assess",
    "fit_calibrated",
    "fit_trend",
    "maintenance_verdict",
    "make_detector",
    "make_verdict",
    "numeric_columns",
    "readings_to_frame",
    "rolling_median",
    "threshold_for",
    "to_matrix",
    "top_sensors",
]
