"""Which asset a fault verdict names: the node that broke, not the ones that feel it.

The cheap sectors (banking, healthcare: < 1 ms a row) run with their default training plans, so
these figures are the ones the oracles would produce; the rest of the matrix is in the slow test
and in `qeaims detect attribution --sector all`.
"""

from __future__ import annotations

import json

import pytest

from core.messages import FaultKind, Sector, VerdictKind
from oracles.detect.attribution import DEFAULT_FAULTS, FaultCase, evaluate_attribution, run_case
from oracles.training import SectorModel, collect_normal, normal_twin
from qeaims.cli import main
from tests.conftest import ModelCache

EVAL_SEEDS = (1, 2)


@pytest.fixture(scope="module")
def bank(model_cache: ModelCache) -> SectorModel:
    return model_cache.train(Sector.BANKING, seed=0)


@pytest.fixture(scope="module")
def health(model_cache: ModelCache) -> SectorModel:
    return model_cache.train(Sector.HEALTHCARE, seed=0)


@pytest.mark.parametrize("seed", EVAL_SEEDS)
def test_data_centre_outage_is_attributed_to_the_data_centre(bank: SectorModel, seed: int) -> None:
    # the switch's latency and error rate soar, but the data centre is what stopped: isolate it
    run = run_case(bank, FaultCase(FaultKind.OUTAGE, "dc-primary"), seed=seed)
    assert run.false_alarms == ()
    assert run.rows_to_detect is not None and run.rows_to_detect <= 3
    assert run.kind == VerdictKind.FAULT.value and run.asset == "dc-primary" and run.attributed, run.reason
    assert run.wrongful == (), "a FAULT verdict voted another node (switch-1) out of service"


@pytest.mark.parametrize("seed", EVAL_SEEDS)
def test_hospital_power_loss_is_attributed_to_that_hospital(health: SectorModel, seed: int) -> None:
    for hospital in ("hospital-1", "hospital-2"):
        run = run_case(health, FaultCase(FaultKind.POWER_LOSS, hospital), seed=seed)
        assert run.false_alarms == () and run.wrongful == ()
        assert run.kind == VerdictKind.FAULT.value and run.asset == hospital and run.attributed, run.reason


def test_banking_matrix_has_no_wrongful_vote_and_no_false_alarm(bank: SectorModel) -> None:
    report = evaluate_attribution(Sector.BANKING, model=bank, eval_seeds=EVAL_SEEDS, max_rows=4)
    figures = report.sectors[0]
    normal = sum(case.kind is None for case in DEFAULT_FAULTS[Sector.BANKING])
    assert figures.runs == (len(DEFAULT_FAULTS[Sector.BANKING]) - normal) * len(EVAL_SEEDS)
    assert figures.normal_runs == normal * len(EVAL_SEEDS)
    assert figures.detected == figures.runs and figures.attributed == figures.detected
    assert figures.wrongful_runs == 0 and figures.false_alarm_runs == 0
    # an outage of an unregistered cluster is named, and votes nothing
    atm2 = [r for r in report.runs if r.fault == "outage atm-cluster-2"]
    assert atm2 and all(r.asset == "atm-cluster-2" and r.anchor is None for r in atm2)


def test_threshold_covers_the_training_rows(model_cache: ModelCache) -> None:
    # a short run's held-back rows are a quiet night: the threshold may not sit below the scores of
    # the rows the detector was fit on (a fresh twin then raised verdicts from its third row)
    short = model_cache.train(Sector.BANKING, rows=200)
    with normal_twin(Sector.BANKING) as runner:
        _, rows = collect_normal(runner, rows=200)
    assert short.model.score(rows)[: short.model.n_train].max() <= short.model.threshold


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(["detect", "attribution", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_command_prints_figures_and_refuses_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["--sector", "banking", "--rows", "600", "--eval-seed", "1", "--max-rows", "3", "--json"],
                        capsys)
    assert code == 0
    data = json.loads(out)
    assert data["eval_seeds"] == [1] and data["sectors"][0]["sector"] == "banking"
    assert {"attribution_pct", "detection_pct", "wrongful_runs", "false_alarm_runs"} <= data["sectors"][0].keys()
    by_class = {c["class"]: c for c in data["classes"]}
    assert {"outage", "degradation", "bias"} <= by_class.keys()
    # the spoofed switch latency: an intrusion (quarantined), not a fault; its kind is the acted-on one
    assert by_class["bias"]["detected_pct"] == 100.0 and by_class["bias"]["acted_kind_pct"] == 100.0
    assert all(c["wrongful_runs"] == 0 for c in data["classes"])
    for bad, words in ((["--sector", "gas"], "unknown sector"),
                       (["--sector", "banking", "--eval-seed", "0"], "training seed"),
                       (["--sector", "banking", "--max-rows", "0"], "--max-rows")):
        code, _, err = _cli(bad, capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error") and words in lines[0], err


@pytest.mark.slow
@pytest.mark.parametrize("sector", [Sector.SEWAGE, Sector.ELECTRICITY])
def test_other_sectors_attribute_every_detected_fault(sector: Sector) -> None:
    figures = evaluate_attribution(sector, eval_seeds=(1,)).sectors[0]
    assert figures.false_alarm_runs == 0 and figures.wrongful_runs == 0
    assert figures.attributed == figures.detected > 0


@pytest.mark.slow
def test_water_breaks_name_the_main_and_nothing_votes_wrongly() -> None:
    # known gap: pump 10 runs by the clock (01:00-15:00) and its case fails it at 00:04, while it is off
    # by schedule, so nothing shows in the watch; pump 335 runs by tank 1's level, and a rule names its
    # failure in the first row (`sectors.water.rules`), as it does a break away from a tank
    report = evaluate_attribution(Sector.WATER, eval_seeds=(1,))
    assert report.sectors[0].wrongful_runs == 0
    breaks = [r for r in report.runs if r.fault.startswith("pipe-break")]
    assert breaks and all(r.attributed and r.kind == "fault" for r in breaks)
    first = [r for r in report.runs if r.fault in ("pipe-break pipe:159", "pipe-break pipe:123",
                                                     "pump-failure pump:335")]
    assert len(first) == 3 and all(r.attributed and r.rows_to_detect == 1 for r in first), first


def test_a_falsified_sensor_is_attributed_only_when_that_sensor_is_the_one_named() -> None:
    """An asset has several instruments: an intrusion on pump 10 that quarantines its honest meter while its
    run contact lies is not the right answer, though the asset is."""
    from oracles.detect.attribution import RunResult

    def run(sensor: str | None) -> RunResult:
        return RunResult(sector="water", fault="bias pump:10/status", seed=1, expected_asset="pump:10",
                         expected_anchor=None, false_alarms=(), rows_to_detect=1, kind=VerdictKind.INTRUSION.value,
                         asset="pump:10", anchor=None, wrongful=(), attack=True, sensor=sensor,
                         expected_sensor="pump:10/status")

    assert run("pump:10/status").attributed
    assert not run("pump:10/flow_m3s").attributed
    assert not run(None).attributed
