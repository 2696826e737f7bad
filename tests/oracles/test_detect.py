"""Detectors, calibration, verdicts and failure prediction on small synthetic plant data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.messages import Reading, Sector, VerdictKind
from oracles.detect import (
    FirstPassCheck,
    assess,
    fit_calibrated,
    fit_trend,
    maintenance_verdict,
    make_detector,
    readings_to_frame,
    rolling_median,
)

SENSORS = ["flow", "pressure", "current", "temperature"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def plant(n: int, seed: int = 0) -> np.ndarray:
    """A pump: one hidden load drives flow, pressure and current; temperature lags slowly."""
    rng = np.random.default_rng(seed)
    load = 1.0 + 0.3 * np.sin(np.arange(n) / 25.0) + 0.05 * rng.standard_normal(n)
    flow = 30 * load + 0.5 * rng.standard_normal(n)
    pressure = 2.0 * load + 0.05 * rng.standard_normal(n)
    current = 5.0 * load + 0.1 * rng.standard_normal(n)
    temperature = 60 + 2 * np.convolve(load, np.ones(10) / 10, mode="same") + 0.2 * rng.standard_normal(n)
    return np.column_stack([flow, pressure, current, temperature])


def inject(x: np.ndarray, kind: str, start: int, column: int) -> np.ndarray:
    y = x.copy()
    spread = x[:start, column].std()
    if kind == "step":
        y[start:, column] += 6 * spread
    elif kind == "drift":
        y[start:, column] += np.linspace(0, 10 * spread, len(y) - start)
    elif kind == "frozen":
        y[start:, column] = y[start, column]
    return y


@pytest.mark.parametrize("detector", ["pca", "mset"])
@pytest.mark.parametrize(("kind", "column"), [("step", 1), ("drift", 2), ("frozen", 0)])
def test_injected_faults_are_detected_and_attributed(detector: str, kind: str, column: int) -> None:
    normal = plant(800, seed=1)
    model = fit_calibrated(normal, detector=detector, target_far=0.01, window=5)
    clean = plant(400, seed=2)
    test = inject(clean, kind, 200, column)
    flags = model.flags(test)
    assert flags[:200].mean() < 0.08, "too many false alarms before the fault"
    # a drift needs time to grow; a frozen value shows only once the process moves away from it
    visible = np.zeros(len(test), dtype=bool)
    visible[300:] = True
    if kind == "frozen":
        visible = np.abs(test[:, column] - clean[:, column]) > 5.0  # flow units: 10× its sensor noise
        visible[:205] = False  # let the smoothing window fill
        assert visible.sum() > 20
    assert flags[visible].mean() > 0.7, f"{kind} on {SENSORS[column]} missed by {detector}"
    verdict = assess(model, test[380:], SENSORS, sector=Sector.WATER, asset_id="pump-7", observed_at=T0)
    assert verdict is not None and verdict.kind is VerdictKind.ANOMALY
    assert SENSORS[column] in verdict.sensors
    assert verdict.score > verdict.threshold
    assert "threshold" in verdict.reason and SENSORS[column] in verdict.reason


def test_threshold_calibration_hits_target_false_alarm_rate() -> None:
    normal = plant(3000, seed=3)
    for target in (0.01, 0.05):
        model = fit_calibrated(normal, detector="pca", target_far=target, holdout=0.3)
        assert model.holdout_far == pytest.approx(target, abs=0.005)
        fresh = model.flags(plant(3000, seed=4)).mean()
        assert fresh == pytest.approx(target, abs=2.5 * target), f"fresh normal FAR {fresh} for target {target}"


def test_normal_window_gives_no_verdict_and_contributions_have_sensor_shape() -> None:
    model = fit_calibrated(plant(600), detector="pca", target_far=0.001, window=5)
    quiet = plant(50, seed=9)
    assert assess(model, quiet, SENSORS, sector=Sector.WATER, asset_id="pump-7", observed_at=T0) is None
    for name in ("pca", "mset", "iforest"):
        det = make_detector(name).fit(plant(300))
        assert det.contributions(quiet).shape == quiet.shape
        assert det.score(quiet).shape == (50,)


def test_bad_input_is_refused() -> None:
    det = make_detector("pca").fit(plant(100))
    with pytest.raises(ValueError, match="sensors per row"):
        det.score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        det.score(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("oracle-of-delphi")
    with pytest.raises(ValueError, match="false-alarm rate"):
        fit_calibrated(plant(100), target_far=0.0)


def test_rolling_median_is_causal() -> None:
    s = np.array([0.0, 10.0, 0.0, 0.0, 10.0, 10.0])
    assert rolling_median(s, 3).tolist() == [0.0, 5.0, 0.0, 0.0, 0.0, 10.0]


def test_first_pass_check_names_frozen_out_of_range_and_jumping_sensors() -> None:
    normal = plant(500)
    check = FirstPassCheck(SENSORS, frozen_rows=20).fit(normal)
    assert check.check(plant(40, seed=5)) == []
    window = plant(40, seed=5)
    window[-25:, 0] = window[-25, 0]  # flow stuck
    window[-1, 1] = 50.0  # pressure far out of range, and a jump
    kinds = {(f.sensor, f.kind) for f in check.check(window)}
    assert {("flow", "frozen"), ("pressure", "range"), ("pressure", "jump")} <= kinds
    model = fit_calibrated(normal, detector="pca")
    verdict = assess(model, window, SENSORS, sector=Sector.WATER, asset_id="pump-7", observed_at=T0,
                     findings=check.check(window))
    assert verdict is not None and "not changed for 20 samples" in verdict.reason


def test_readings_are_resampled_onto_one_clock() -> None:
    readings = [Reading(sector=Sector.WATER, asset_id="pump-7", sensor_id=s, quantity="q", unit="u",
                        value=v, timestamp=T0 + timedelta(milliseconds=ms))
                for s, v, ms in [("a", 1.0, 0), ("a", 3.0, 500), ("b", 7.0, 100), ("a", 5.0, 1200)]]
    frame = readings_to_frame(readings, period="1s")
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [2.0, 5.0]
    assert frame["b"].tolist() == [7.0, 7.0]  # carried forward one slot


def _vibration(hours: int, *, seed: int, exponential: bool) -> tuple[list[datetime], np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(hours, dtype=float)
    base = 2.0 * np.exp(t / 150.0) if exponential else 2.0 + 0.02 * t
    values = base + 0.05 * rng.standard_normal(hours)
    values[::37] += 1.5  # spikes the robust fit must ignore
    return [T0 + timedelta(hours=h) for h in range(hours)], values


@pytest.mark.parametrize("exponential", [False, True])
def test_failure_prediction_fires_before_the_limit_is_crossed(exponential: bool) -> None:
    limit = 7.1  # mm/s, ISO 10816 class II "unsatisfactory"
    full_times, full = _vibration(400, seed=6, exponential=exponential)
    crossing = int(np.argmax(full >= limit)) if (full >= limit).any() else len(full)
    fired_at = None
    for now in range(48, crossing, 6):
        verdict = maintenance_verdict(full_times[now - 48:now], full[now - 48:now], limit=limit,
                                      horizon=timedelta(days=3), sector=Sector.WATER, asset_id="pump-7",
                                      sensor="vibration", unit=" mm/s")
        if verdict is not None:
            fired_at = now
            assert verdict.kind is VerdictKind.MAINTENANCE and verdict.sensors == ("vibration",)
            assert "will reach its limit" in verdict.reason
            break
    assert fired_at is not None and fired_at < crossing, "no maintenance verdict before the limit"
    assert crossing - fired_at <= 80, "fired far earlier than the 3-day horizon allows"


def test_flat_noisy_signal_is_not_a_trend() -> None:
    rng = np.random.default_rng(8)
    values = 3.0 + 0.2 * rng.standard_normal(100)
    forecast = fit_trend(np.arange(100.0) * 3600, values, limit=4.0)
    assert forecast.seconds_to_limit is None
    times = [T0 + timedelta(hours=h) for h in range(100)]
    assert maintenance_verdict(times, values, limit=4.0, horizon=timedelta(days=30), sector=Sector.WATER,
                               asset_id="pump-7", sensor="vibration") is None


@pytest.mark.parametrize("detector", ["pca", "mset"])
def test_single_sensor_reconstructions_match_scoring_each_trial_row(detector: str) -> None:
    """`explain` tries every candidate sensor at each of its grid values; PCA does it in closed form,
    the others in batched calls. Both must equal scoring every trial row one column at a time."""
    from oracles.detect.classify import _reconstructed, value_grid

    normal = plant(600)
    model = fit_calibrated(normal, detector=detector, window=3)
    tail = inject(plant(60, seed=4), "step", 30, 1)[-3:]
    grid = value_grid(normal)
    expected = []
    for j in range(len(SENSORS)):
        trial = np.repeat(tail, len(grid), axis=0)
        trial[:, j] = np.tile(grid[:, j], len(tail))
        expected.append(float(np.median(model.detector.score(trial).reshape(len(tail), len(grid)).min(axis=1))))
    assert _reconstructed(model, tail, list(range(len(SENSORS))), grid, window=len(tail)) == pytest.approx(expected, rel=1e-9)
    assert int(np.argmin(expected)) == 1  # the stepped sensor is the one whose reconstruction helps most


def test_reconstructions_are_remembered_per_row_and_the_same_as_computed_afresh() -> None:
    """A row is reconstructed once per detector (it recurs in the next rows' windows), with the answer
    a fresh computation gives: per column, the median over the tail of the best score on its grid."""
    from oracles.detect.calibrate import fit_calibrated
    from oracles.detect.classify import _reconstructed, value_grid
    from oracles.detect.models import Mset

    rng = np.random.default_rng(7)
    normal = rng.normal(size=(300, 6))
    normal[:, 1] = normal[:, 0] * 2 + rng.normal(scale=0.1, size=300)
    model = fit_calibrated(normal, detector=Mset(memory=60), target_far=0.01, window=3)
    grid = value_grid(normal, points=9)
    rows = rng.normal(size=(5, 6))
    rows[:, 1] += 4.0  # column 1 off its relation to column 0
    calls: list[int] = []
    score = model.detector.score
    model.detector.score = lambda x: (calls.append(len(x)), score(x))[1]  # type: ignore[method-assign]
    first = _reconstructed(model, rows[:3], [0, 1, 2], grid, window=3)
    second = _reconstructed(model, rows[1:4], [0, 1, 2], grid, window=3)
    assert sum(calls[:1]) == 3 * 3 * 9 and sum(calls[1:]) == 3 * 9  # only the new row's trials
    for tail, got in ((rows[:3], first), (rows[1:4], second)):
        for j, value in zip([0, 1, 2], got, strict=True):
            trial = np.repeat(tail, 9, axis=0)
            trial[:, j] = np.tile(grid[:, j], 3)
            assert value == pytest.approx(float(np.median(score(trial).reshape(3, 9).min(axis=1))))
    assert int(np.argmin(first)) == 1  # the inconsistent column explains most
