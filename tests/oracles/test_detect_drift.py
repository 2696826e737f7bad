"""The drift-aware PCA (`oracles.detect.drift`): slow drift is not a fault, a step still is."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.detect.calibrate import CalibratedDetector, fit_calibrated, widened
from oracles.detect.drift import DriftPca, causal_baseline, slow_ratio
from oracles.detect.models import DETECTORS, PcaT2Q
from oracles.detect.pca import ShrunkT2, ledoit_wolf_shrinkage
from oracles.detect.production import Calibration, DetectorConfig, fit_config, sector_config

TRAIN = 400


def plant(n: int, seed: int = 0) -> np.ndarray:
    """A pump at one operating point: flow, current (levels with fast noise) and a fluid temperature
    that warms steadily (0.5 °C per 100 rows) with a little sensor noise."""
    rng = np.random.default_rng(seed)
    flow = 120 + 0.5 * rng.standard_normal(n)
    current = 2.4 + 0.05 * rng.standard_normal(n) + 0.004 * (flow - 120)
    temperature = 26 + 0.005 * np.arange(n) + 0.01 * rng.standard_normal(n)
    return np.column_stack([flow, current, temperature])


def model(x: np.ndarray) -> CalibratedDetector:
    """Fitted on the first 400 rows with the water sector's calibration, as `qeaims detect eval` fits it."""
    return fit_config(x[:TRAIN], DetectorConfig(DriftPca.name, {}, sector_config().calibration))


def test_slow_ratio_tells_a_level_from_a_drift() -> None:
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((300, 1))
    walk = np.cumsum(rng.standard_normal((300, 1)), axis=0)
    assert 0.7 < slow_ratio(noise)[0] < 1.4
    assert slow_ratio(walk)[0] > 20
    assert slow_ratio(np.ones((300, 1)))[0] == 0.0  # a constant: nothing drifts


def test_only_the_drifting_channel_is_judged_by_its_baseline() -> None:
    det = DriftPca().fit(plant(300))
    assert det.drifting.tolist() == [False, False, True]
    assert det.context == det.baseline_rows + det.mean_rows


def test_a_slow_ramp_raises_no_alarm_where_plain_pca_fires() -> None:
    x = plant(1200, seed=2)
    flags = model(x).flags(x)[TRAIN:]
    assert not flags.any(), "the temperature's drift at its training rate is normal"
    plain = fit_config(x[:TRAIN], DetectorConfig(PcaT2Q.name, {}, sector_config().calibration))
    assert plain.flags(x)[TRAIN:].mean() > 0.5, "without the drift treatment the ramp is out of range"


@pytest.mark.parametrize("seed", [3, 4])
def test_a_step_on_a_level_channel_is_an_alarm_while_it_lasts(seed: int) -> None:
    x = plant(1200, seed=seed)
    m = model(x)
    y = x.copy()
    y[800:, 0] += 2.0  # 4 noise sd of flow, held
    flags = m.flags(y)
    assert not flags[TRAIN:800].any()
    assert flags[800:815].any(), "within half the 30 rows of the scores' mean"
    assert flags[800:].mean() > 0.9, "a level channel's step lasts as long as the fault"


@pytest.mark.parametrize("seed", [3, 4])
def test_a_step_on_a_drifting_channel_is_an_alarm_at_its_onset(seed: int) -> None:
    x = plant(1200, seed=seed)
    m = model(x)
    y = x.copy()
    y[800:, 2] += 0.3  # 30 sd of the temperature's noise, a minute's drift in 6 s
    flags = m.flags(y)
    assert not flags[TRAIN:800].any()
    assert flags[800:805].any()
    assert flags[800:].sum() >= 20, "shown until the baseline has taken the new level in"


def test_a_change_in_the_drift_rate_shows_for_as_long_as_it_lasts() -> None:
    x = plant(1200, seed=4)
    m = model(x)
    y = x.copy()
    y[800:, 2] += 0.02 * np.arange(400)  # heating 5× faster than in training
    flags = m.flags(y)
    assert isinstance(m.detector, DriftPca)
    assert flags[800 + 2 * m.detector.mean_rows:].mean() > 0.9


def test_strided_training_rows_make_it_plain_pca() -> None:
    """Rows taken 30 report periods apart say nothing about a rate between consecutive online rows."""
    x = plant(600, seed=5)
    water = sector_config().calibration
    drift = fit_config(x[:TRAIN], DetectorConfig(DriftPca.name, {}, water), stride=30)
    plain = fit_config(x[:TRAIN], DetectorConfig(PcaT2Q.name, {}, Calibration(window=water.window)))
    assert isinstance(drift.detector, DriftPca) and water.margin > 1.0
    assert not drift.detector.drifting.any() and drift.context == plain.context == water.window
    np.testing.assert_array_equal(drift.score(x), plain.score(x))
    assert drift.threshold == plain.threshold


def test_streaming_gives_the_batch_scores_and_never_looks_ahead() -> None:
    x = plant(700, seed=6)
    m = model(x)
    batch = m.score(x)
    stream = m.stream()
    streamed = np.array([stream.push(row)[0] for row in x])
    np.testing.assert_array_equal(streamed[m.context:], batch[m.context:])
    later = x.copy()
    later[500:] += 100.0
    np.testing.assert_array_equal(m.score(later)[:500], batch[:500])


def test_the_baseline_is_causal_and_of_fixed_length() -> None:
    x = np.arange(10.0)[:, None]
    base = causal_baseline(x, 3)
    assert base[:, 0].tolist() == [0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    np.testing.assert_array_equal(causal_baseline(x[4:], 3)[3:], base[7:])


def test_column_scores_match_scoring_the_trial_rows() -> None:
    x = plant(500, seed=7)
    det = DriftPca().fit(x[:TRAIN])
    tail = x[-det.context:]
    values = np.quantile(x[:TRAIN], [0.1, 0.5, 0.9], axis=0)
    got = det.column_scores(tail, [0, 2], values)  # (columns, rows, values)
    for k, j in enumerate([0, 2]):
        for v in range(3):
            trial = tail.copy()
            trial[-1, j] = values[v, j]
            assert got[k, -1, v] == pytest.approx(det.score(trial)[-1])


def test_widened_leaves_a_row_wise_detector_alone() -> None:
    normal = np.random.default_rng(9).standard_normal((400, 2))
    fitted = fit_calibrated(normal, detector="pca", target_far=0.01, window=1)
    assert widened(fitted, normal, 4.5) is fitted


def test_widened_multiplies_the_threshold_of_a_known_distribution() -> None:
    rng = np.random.default_rng(8)
    normal = rng.standard_normal((4000, 1))
    windowed = PcaT2Q()
    windowed.context = 2  # as if it looked back a row: `widened` applies
    fitted = fit_calibrated(normal, detector=windowed, target_far=0.01, holdout=0.5, window=1)
    # T² of one standard normal channel is z²/q99(z²): its 99th percentile is ≈ 1
    assert fitted.threshold == pytest.approx(1.0, abs=0.15)
    wide = widened(fitted, normal, 1.5)
    assert wide.threshold == pytest.approx(1.5 * fitted.threshold)
    assert wide.holdout_far < fitted.holdout_far
    with pytest.raises(ValueError):
        widened(fitted, normal, 0.5)


def test_registered() -> None:
    assert DETECTORS[DriftPca.name] is DriftPca


def test_a_windowed_verdict_is_explained_with_the_history_its_features_need() -> None:
    """The oracles explain a verdict from the rows the newest score depends on (`context`), not the last
    `window` rows alone: a drift-aware model asked about 3 rows has no baseline and no trailing mean,
    and named whichever channel that starved computation made large."""
    from core.messages import Sector
    from oracles.detect.classify import explain, value_grid
    from oracles.stream import SectorStream

    x = plant(1200, seed=7)
    m = model(x)
    y = x.copy()
    y[800:, 1] += 0.4  # the current steps up by 8 noise sd: a motor fault
    ev = explain(m, y[:840], ["flow", "current", "temperature"], grid=value_grid(x[:TRAIN]))
    assert ev.score > ev.threshold
    assert max(ev.shares, key=ev.shares.__getitem__) == "current" and ev.suspect == "current", ev

    class Held:  # what SectorStream reads of a sector model
        sector = Sector.WATER
        sensors = ("flow", "current", "temperature")
        period_s = 1
        model = m

    assert SectorStream(Held()).history > m.context  # type: ignore[arg-type]


def correlated(n: int, seed: int) -> np.ndarray:
    """Three channels, the first two strongly correlated (a pump's current and its flow)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    return np.column_stack([a, 0.9 * a + 0.3 * rng.standard_normal(n), rng.standard_normal(n)])


def test_ledoit_wolf_trusts_many_independent_rows_and_not_few() -> None:
    z = correlated(2000, seed=11)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    assert ledoit_wolf_shrinkage(z, 2000) < 0.02, "2,000 independent rows: the correlation is known"
    assert ledoit_wolf_shrinkage(z, 3) == 1.0, "3 independent rows: nothing of it is"
    assert ledoit_wolf_shrinkage(z, 200) < ledoit_wolf_shrinkage(z, 20) < 1.0


def test_fully_shrunk_t2_is_the_sum_of_squared_z_scores() -> None:
    x = correlated(300, seed=12)
    det = ShrunkT2(independent=300).fit(x)  # one independent row: α = 1
    assert det.alpha == 1.0
    t2, _ = det.statistics(x[:50])
    z = det.scaler.transform(x[:50])
    np.testing.assert_allclose(t2, (z * z).sum(axis=1), rtol=1e-9)
    assert np.all(det.score(x[:50]) == t2 / det.t2_ref)


def test_shrunk_t2_with_many_rows_is_close_to_the_mahalanobis_distance() -> None:
    x = correlated(3000, seed=13)
    det = ShrunkT2(independent=1).fit(x)
    assert det.alpha < 0.02
    off = np.array([[1.0, -1.0, 0.0]])  # against the correlation: far in Mahalanobis terms, not in z
    along = np.array([[1.0, 1.0, 0.0]])
    assert det.score(off)[0] > 5 * det.score(along)[0]


def test_shrunk_t2_column_scores_match_scoring_the_trial_rows() -> None:
    x = correlated(400, seed=14)
    det = ShrunkT2(independent=30).fit(x)
    values = np.quantile(x, [0.05, 0.5, 0.95], axis=0)
    got = det.column_scores(x[:4], [0, 2], values)
    for k, j in enumerate([0, 2]):
        for v in range(3):
            trial = x[:4].copy()
            trial[:, j] = values[v, j]
            np.testing.assert_allclose(got[k, :, v], det.score(trial), rtol=1e-9)


def test_windowed_scores_use_the_shrunk_covariance_only_when_asked() -> None:
    """Production is T²+Q (run 4's shrinkage was not kept, docs/detection.md); ``shrink=True`` repeats run 4."""
    x = plant(400, seed=15)
    shrunk = DriftPca(shrink=True).fit(x)
    assert shrunk.windowed and isinstance(shrunk.inner, ShrunkT2)
    assert shrunk.inner.independent == shrunk.mean_rows
    assert type(DriftPca().fit(x).inner) is PcaT2Q
    strided = DriftPca(stride=30, shrink=True).fit(x)
    assert not strided.windowed and type(strided.inner) is PcaT2Q
