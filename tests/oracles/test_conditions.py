"""Normal conditions are not faults: rain on the sewers, the morning peak on the roads, demand at hospitals.

A model that has never seen a storm calls the storm the fault, and the CSO outfall (spilling as
designed) was voted out of service while the pump that really failed went unnamed. These tests
run the default training plans (what the oracles load) through those conditions:

- sewage: a storm alone raises nothing; the duty pump failing in that storm is a FAULT on it;
- transportation (slow): the morning peak with nothing broken raises no verdict on a link (the
  first-pass checks had called ordinary queues and empty links spoofed or failed sensors);
- healthcare: a surge (a declared mass-casualty incident) is a FAULT on the hospital in its first
  row, on the dispatch centre's and the hospital's word together (the controller's answer is to
  divert its admissions); one of them alone, or a falsified arrivals count rising alone, is not.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core.messages import AttackKind, FaultKind, Sector, VerdictKind
from oracles.detect.attribution import DEFAULT_FAULTS, FaultCase, run_case
from oracles.detect.features import FirstPassCheck
from oracles.training import (
    FORMAT_VERSION,
    SectorModel,
    increments,
    load_or_train,
    model_path,
    normal_twin,
    save_model,
    sidecar_path,
)
from sectors.sewage.weather import STORM_MM_H, rain_series
from tests.conftest import ModelCache
from tests.oracles.test_training import watch


@pytest.fixture(scope="module")
def sewage(model_cache: ModelCache) -> SectorModel:
    return model_cache.train(Sector.SEWAGE)


@pytest.fixture(scope="module")
def health(model_cache: ModelCache) -> SectorModel:
    return model_cache.train(Sector.HEALTHCARE)


# --- sewage: rain is weather ----------------------------------------------------------------------

def test_rain_series_has_dry_spells_and_storms_and_is_reproducible() -> None:
    a = rain_series(np.random.default_rng(0), 12 * 86400, step_s=300)
    b = rain_series(np.random.default_rng(0), 12 * 86400, step_s=300)
    assert a == b and len(a) == 12 * 86400 // 300
    wet = np.array(a) > 0
    assert 0.1 < wet.mean() < 0.6  # mostly dry, but far from never wet
    assert max(a) > 25.0 and max(a) <= STORM_MM_H  # the storm-day's 25 mm/h is within normal weather
    assert a[:72] == [0.0] * 72  # six dry hours first: the twin settles on sanitary flow


@pytest.mark.parametrize("mm_h", [25.0, 40.0])
def test_a_storm_alone_raises_nothing(sewage: SectorModel, mm_h: float) -> None:
    # three hours of storm from the first row, a row a minute: inflow, wet well and CSO spill rise,
    # by design; the first minutes (the gauge at 40 mm/h, no runoff yet) are normal too
    run = run_case(sewage, FaultCase(None, rain_mm_h=mm_h, max_rows=180), seed=1)
    assert run.wrongful == (), "a storm voted a node out of service"
    assert run.false_alarms == ()


def test_pump_failure_in_a_storm_is_a_fault_on_the_pump_in_its_first_row(sewage: SectorModel) -> None:
    # 40 minutes into the storm, both pumps running (the storm day): the pump's run contact and flow and the
    # station's power meter all see the trip in the row it happens, and the pump rule names it there
    # (issue 16: 30-second rows plus the oracles' lag leave one row for 60 field seconds)
    case = FaultCase(FaultKind.PUMP_FAILURE, "pump:P1", rain_mm_h=25.0, warm_rows=40, max_rows=30)
    run = run_case(sewage, case, seed=1)
    assert run.false_alarms == () and run.wrongful == ()
    assert run.rows_to_detect == 1, run
    assert run.kind == VerdictKind.FAULT.value and run.asset == "pump:P1" and run.anchor == "lift-1", run.reason
    assert "physics rule" in run.reason


def test_a_falsified_wet_well_level_does_not_fail_a_pump(sewage: SectorModel) -> None:
    """The pump rule reads the wet-well level: an attacker who raises it by 2 m in dry weather makes an
    idle, healthy pump look failed. The model finds the level alone inconsistent with the flows, so
    the verdict is an intrusion on that sensor, and nothing is voted out of service."""
    with normal_twin(Sector.SEWAGE, seed=1) as runner:
        first = runner.advance()
        names = [r.sensor_id for r in first]
        rows = [[r.value for r in first]] + [[r.value for r in runner.advance()] for _ in range(59)]
    level = names.index("storage:WW/level_m")
    spoofed = np.array(rows[-32:])
    spoofed[-6:, level] += 2.0
    assert sewage.broken_rules(spoofed), "the falsified level must break the pump rule, or this test tries nothing"
    at = first[0].timestamp
    verdicts = [sewage.assess(spoofed[:k], at) for k in range(len(spoofed) - 5, len(spoofed) + 1)]
    kinds = {(v.kind, v.asset_id) for v in verdicts if v is not None}
    assert (VerdictKind.INTRUSION, "storage:WW") in kinds, kinds
    assert all(kind is not VerdictKind.FAULT for kind, _ in kinds), kinds


SEWERS = [c for c in DEFAULT_FAULTS[Sector.SEWAGE] if c.kind in (FaultKind.BLOCKAGE, FaultKind.OVERFLOW)]


@pytest.mark.parametrize("case", SEWERS, ids=lambda c: c.label)
def test_a_blocked_sewer_is_a_fault_on_it_in_its_first_rows(sewage: SectorModel, case: FaultCase) -> None:
    """Issue 16: a sewer blockage was detected in none of its runs, and a dry-weather overflow had no
    case. Both are named by the sewer rules (`sectors.sewage.rules`) in their second row: a FAULT on the
    blocked conduit, which the controller relieves by diverting into the storm tank."""
    run = run_case(sewage, case, seed=1)
    assert run.false_alarms == () and run.wrongful == ()
    assert run.kind == VerdictKind.FAULT.value and run.asset == case.named and run.attributed, run
    assert run.rows_to_detect is not None and run.rows_to_detect <= 3, run


def test_the_benchmark_runs_the_sewer_cases() -> None:
    assert {c.kind for c in SEWERS} == {FaultKind.BLOCKAGE, FaultKind.OVERFLOW}
    # a falsified CSO chamber level is among the spoofs (`test_a_spoofed_sensor_is_an_intrusion_on_it`)
    assert "junction:J4/level_m" in {c.target for _, c in SPOOFS}


def test_the_benchmark_runs_the_storm_cases() -> None:
    labels = {c.label for c in DEFAULT_FAULTS[Sector.SEWAGE]}
    assert {"normal in 25 mm/h rain", "pump-failure pump:P1 in 25 mm/h rain"} <= labels
    assert "normal" in {c.label for c in DEFAULT_FAULTS[Sector.TRANSPORTATION]}


def test_a_totaliser_is_judged_by_its_increments() -> None:
    rows = np.array([[1.0, 10.0], [2.0, 10.0], [3.0, 25.0], [4.0, 25.0]])
    out = increments(rows, (1,))
    assert out.tolist() == [[2.0, 0.0], [3.0, 15.0], [4.0, 0.0]]
    assert increments(rows, ()) is rows
    assert increments(rows, (1,), per=3)[1, 1] == 5.0  # training rows three periods apart


# --- transportation: the peak is normal ----------------------------------------------------------

def test_pooled_limits_are_the_widest_of_the_group() -> None:
    normal = np.array([[50.0, 50.0, 100.0], [49.0, 10.0, 100.0], [50.0, 5.0, 101.0]])
    alone = FirstPassCheck(["a/speed", "b/speed", "od/t"]).fit(normal)
    shared = FirstPassCheck(["a/speed", "b/speed", "od/t"]).fit(normal, groups=["speed", "speed", "od/t"])
    queue = np.array([[50.0, 50.0, 100.0], [8.0, 50.0, 100.0], [6.0, 50.0, 100.0]])  # a queue forms on a
    assert {f.sensor for f in alone.check(queue)} == {"a/speed"}
    assert shared.check(queue) == []
    assert shared.low[2] == alone.low[2] and shared.high[2] == alone.high[2]  # not in a group: unchanged
    # free flow: b held exactly 50 for a frozen stretch in training, so a at 50 as long is not stuck
    held = np.array([[50.0, 50.0], [40.0, 50.0], [45.0, 50.0], [30.0, 20.0], [35.0, 25.0]])
    free = np.array([[50.0, 30.0], [50.0, 31.0], [50.0, 32.0]])
    one = FirstPassCheck(["a/speed", "b/speed"], frozen_rows=3)
    assert [f.kind for f in one.fit(held).check(free)] == ["frozen"]
    assert one.fit(held, groups=["speed", "speed"]).check(free) == []
    assert [f.kind for f in one.check(free - 1.0)] == ["frozen"]  # stuck at a value no link rests at
    with pytest.raises(ValueError, match="one group per sensor"):
        FirstPassCheck(["a", "b"]).fit(normal[:, :2], groups=["x"])


def test_an_empty_road_is_not_a_stuck_loop_but_a_held_count_is() -> None:
    # training: the density loops read 0 now and then but never for a frozen stretch
    normal = np.array([[0.0, 10.0], [10.0, 0.0], [20.0, 10.0], [10.0, 20.0], [0.0, 10.0]])
    empty = np.array([[0.0, 12.0], [0.0, 13.0], [0.0, 14.0]])  # link a sees no car for three samples
    pooled = FirstPassCheck(["a/density", "b/density"], frozen_rows=3).fit(normal, groups=["density"] * 2)
    assert pooled.check(empty) == []
    stuck = np.array([[10.0, 12.0], [10.0, 13.0], [10.0, 14.0]])  # a loop holding a count: stuck
    assert [(f.sensor, f.kind) for f in pooled.check(stuck)] == [("a/density", "frozen")]
    # a sensor of its own (not built like any other) keeps zero as a stuck value
    alone = FirstPassCheck(["a/density", "b/density"], frozen_rows=3).fit(normal, groups=["a", "b"])
    assert [f.kind for f in alone.check(empty)] == ["frozen"]


@pytest.mark.slow
def test_morning_peak_raises_no_link_verdict(model_cache: ModelCache) -> None:
    # an hour of the peak on a day the model has not seen: queues at red lights, links that empty
    # out and read their free-flow speed for half an hour; before: 9 to 15 verdicts a run
    model = model_cache.train(Sector.TRANSPORTATION)
    normal = run_case(model, FaultCase(None, max_rows=60), seed=1)
    assert normal.false_alarms == () and normal.wrongful == ()


def test_a_crash_is_told_in_its_first_row_and_decided_once_a_second_system_agrees(model_cache: ModelCache) -> None:
    # the AID camera's alarm alone is an alert (an anomaly on the link: detection, which moves
    # nothing); the police dispatch's record or the standing loops confirm it (the fault voted on)
    model = model_cache.train(Sector.TRANSPORTATION)
    for seed in (1, 2):
        run = run_case(model, FaultCase(FaultKind.INCIDENT, "link:n11-n12", 0.9, max_rows=4), seed=seed, warm_rows=30)
        assert run.false_alarms == () and run.wrongful == (), run
        assert run.rows_to_detect == 1 and run.rows_to_decide is not None and run.rows_to_decide <= 2, run
        assert run.kind == VerdictKind.FAULT.value and run.asset == "link:n11-n12" and run.attributed, run.reason


# --- healthcare: a surge is demand ----------------------------------------------------------------

@pytest.mark.parametrize("hospital,factor", [("hospital-1", 8.0), ("hospital-2", 3.0)])
def test_a_surge_is_a_fault_on_the_hospital_in_its_first_row(health: SectorModel, hospital: str, factor: float) -> None:
    # the ambulance service declares the MCI: its CAD and the hospital's board show it at once, long
    # before the arrival counts can (~1.7 arrivals an hour tripled takes hours to tell from luck)
    for seed in (1, 3):
        run = run_case(health, FaultCase(FaultKind.ADMISSION_SURGE, hospital, factor, max_rows=5), seed=seed)
        assert run.false_alarms == () and run.wrongful == ()
        assert run.rows_to_detect == 1, run
        assert run.kind == VerdictKind.FAULT.value and run.asset == hospital, run.reason
        assert "mass-casualty incident declared" in run.reason


@pytest.mark.parametrize("sensor", ["ambulance-hub/mci_hospital-2", "hospital-2/mci_prealert"])
def test_an_mci_shown_by_one_system_alone_is_a_falsified_instrument(health: SectorModel, sensor: str) -> None:
    # seven casualties "pre-alerted" by one system: diverting a healthy hospital's patients on that
    # would be the attacker's win; the instrument is called falsified (and quarantined), nothing is voted
    run = run_case(health, FaultCase(AttackKind.BIAS, sensor, 7.0, max_rows=5), seed=1)
    assert run.wrongful == () and run.rows_to_detect == 1, run
    assert run.kind == VerdictKind.INTRUSION.value and run.asset == sensor.split("/")[0], run.reason


def test_a_falsified_arrivals_count_is_not_a_surge(health: SectorModel) -> None:
    with normal_twin(Sector.HEALTHCARE, seed=1) as runner:
        verdicts = [v for v in watch(health, runner, 20, before=lambda i: i == 2 and runner.twin.inject_attack(
            AttackKind.BIAS, "hospital-2/arrivals_per_h", magnitude=8.0)) if v is not None]
    assert verdicts, "a count far beyond normal went unnoticed"
    assert all(v.kind is not VerdictKind.FAULT for v in verdicts), [v.reason for v in verdicts]
    assert verdicts[-1].kind is VerdictKind.INTRUSION and verdicts[-1].asset_id == "hospital-2"


def test_hospital_rates_start_in_steady_state() -> None:
    with normal_twin(Sector.HEALTHCARE, seed=2) as runner:
        first = {r.sensor_id: r.value for r in runner.advance()}
    assert first["hospital-1/arrivals_per_h"] > 0.0  # primed: no climb from zero on every restart
    assert first["hospital-1/arrivals_per_h"] > first["hospital-1/admissions_per_h"] > 0.0  # ED attendances, 31 % admitted


# --- an older model is retrained --------------------------------------------------------------------

def test_load_or_train_replaces_an_older_format(tmp_path: Path) -> None:
    old = load_or_train(tmp_path, "banking", rows=60)
    side = sidecar_path(model_path(tmp_path, "banking"))
    side.write_text(side.read_text().replace(f'"format_version": {FORMAT_VERSION}',
                                             f'"format_version": {FORMAT_VERSION - 1}'))
    new = load_or_train(tmp_path, "banking", rows=61)
    assert new.n_rows == 61 and new.trained_at > old.trained_at
    save_model(new, model_path(tmp_path, "banking"))
    assert load_or_train(tmp_path, "banking", rows=62).n_rows == 61  # current: kept


# --- water: limits learned from strided rows hold at the online rate -------------------------------

def test_the_frozen_limit_counts_report_periods_not_training_rows() -> None:
    # training rows 15 periods apart: a flow that rested at 0 for three of them rested for 31 periods
    normal = np.array([[1.0, 5.0], [0.0, 6.0], [0.0, 5.5], [0.0, 6.5], [2.0, 5.0], [1.0, 6.0]])
    resting = np.column_stack([np.zeros(30), np.linspace(5.0, 6.0, 30)])  # 30 online rows at 0
    strided = FirstPassCheck(["pipe:1/flow", "pipe:2/flow"]).fit(normal, stride=15)
    assert strided.check(resting) == []
    naive = FirstPassCheck(["pipe:1/flow", "pipe:2/flow"]).fit(normal)  # as if rows were periods
    assert [(f.sensor, f.kind) for f in naive.check(resting)] == [("pipe:1/flow", "frozen")]
    with pytest.raises(ValueError, match="stride"):
        FirstPassCheck(["a", "b"]).fit(normal, stride=0)


def test_an_hour_of_normal_water_raises_nothing_at_a_row_a_minute(model_cache: ModelCache) -> None:
    # the city's own twin (seed 0) from its start: pipes 330 and 333 rest at 0 flow for half an hour,
    # which the model trained on 15-minute rows had called two stuck sensors, a fault on main-1
    model = model_cache.train(Sector.WATER)
    run = run_case(model, FaultCase(None, max_rows=60), seed=0)
    assert run.false_alarms == () and run.wrongful == ()


# --- spoofed sensors: an intrusion on the sensor, never a fault vote --------------------------------

SPOOFS = [(sector, case) for sector, cases in DEFAULT_FAULTS.items() for case in cases if case.attack]


def test_every_sector_evaluates_a_spoofed_sensor() -> None:
    assert {sector for sector, _ in SPOOFS} == set(Sector)


@pytest.mark.parametrize(("sector", "case"), [s for s in SPOOFS if s[0] in (Sector.WATER, Sector.SEWAGE)],
                         ids=lambda v: getattr(v, "value", None) or getattr(v, "target", ""))
def test_a_spoofed_sensor_is_an_intrusion_on_it(model_cache: ModelCache, sector: Sector, case: FaultCase) -> None:
    """The storm day's spoofed junction pressure was called an anomaly (the busy hour's score counted
    as deviation), so it was never quarantined; the sewage level would call for a healthy pump."""
    run = run_case(model_cache.train(sector), case, seed=1)
    assert run.wrongful == () and run.false_alarms == ()
    assert run.attributed and run.rows_to_detect is not None and run.rows_to_detect <= 2, run


# --- review finding 4: a deviation's bar cannot be raised by the deviation itself ------------------

@pytest.mark.xfail(strict=True, reason="review finding 4, not fixed: a score-only cap also lowers the honest bar "
                   "of a busy hour (water's storm day: 0.973 of the threshold), which the spoofed-junction test needs")
def test_a_sustained_sub_threshold_bias_does_not_raise_the_normal_bar() -> None:
    """A sensor biased just under the threshold for the whole window made every row in it "normal" and
    the window's lowest score the bar a deviation is measured above: a later real fault then looked
    wholly explained by one sensor (an INTRUSION, the healthy sensor quarantined, the fault unvoted).
    A fix must tell this window from a busy hour's (whose rows score as high with nothing falsified),
    e.g. by scoring the earlier rows with the suspect reconstructed; the scores alone cannot."""
    threshold, normal_level = 1.0, 0.2
    biased = np.full(33, 0.97)  # every row of the window just under the threshold

    def baseline(scores: np.ndarray) -> float:
        fake = SimpleNamespace(normal_level=normal_level, model=SimpleNamespace(
            threshold=threshold, score=lambda x: scores))
        return float(SectorModel._baseline(fake, np.zeros((len(scores), 1))))  # type: ignore[arg-type]

    assert baseline(np.full(33, 0.1)) == pytest.approx(normal_level)
    assert baseline(np.full(33, 1.5)) == pytest.approx(normal_level)  # no normal row: the training median
    assert baseline(biased) <= normal_level + 0.5 * (threshold - normal_level)
