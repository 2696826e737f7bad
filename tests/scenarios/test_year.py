"""The offline year: its report's shape, the controller beating the baseline where it must, crews that
queue, a predictor that predicts, a min-loss day that saves, and bad input refused in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.config import load_settings
from core.errors import ConfigError
from core.messages import FaultKind, Sector
from qeaims.scenarios.year import assumptions as A
from qeaims.scenarios.year.dispatch import Job, dispatch
from qeaims.scenarios.year.energy import feeder_day
from qeaims.scenarios.year.faults import Asset, Fault, assets, draw_faults
from qeaims.scenarios.year.outcomes import baseline_outcome, controller_outcome
from qeaims.scenarios.year.predict import alarms
from qeaims.scenarios.year.run import parse_sectors, run_year
from tests.conftest import cli_env, free_port, run_cli

WORLD_KEYS = {"availability", "recovery_h", "full_restoration_h", "unserved", "crew_hours", "truck_rolls", "cost_usd"}


@pytest.fixture(scope="module")
def banking_year() -> dict[str, object]:
    return run_year(seed=3, scale=5.0, sectors=[Sector.BANKING], days=120, energy=False)


def test_report_shape(banking_year: dict[str, object]) -> None:
    report = banking_year
    assert set(report) >= {"sectors", "total", "energy", "assumptions", "not_covered", "seed", "faults_scale"}
    row = report["sectors"]["banking"]  # type: ignore[index]
    assert row["faults"] > 0
    assert set(row["controller"]) >= WORLD_KEYS and set(row["baseline"]) >= WORLD_KEYS
    orders = row["work_orders"]
    assert orders["corrective"] + orders["preventive_before_failure"] + orders["preventive_false_alarm"] == \
        row["controller"]["truck_rolls"]
    assert row["baseline"]["truck_rolls"] == row["faults"]  # without prediction every order is corrective
    assert 0.0 <= report["total"]["preventive_share"] <= 1.0  # type: ignore[index]
    assert "sewage" in report["not_covered"]  # type: ignore[operator]
    assert report["assumptions"]["VOLL_USD_PER_MWH"] == A.VOLL_USD_PER_MWH  # type: ignore[index]


def test_controller_beats_the_baseline_where_it_must(banking_year: dict[str, object]) -> None:
    # a data centre fails over and an ATM cluster drains in minutes; without automation they wait for a crew
    row = banking_year["sectors"]["banking"]  # type: ignore[index]
    c, b = row["controller"], row["baseline"]
    assert c["availability"] > b["availability"]
    assert c["recovery_h"]["mean"] < b["recovery_h"]["mean"]
    assert c["unserved"]["value"] < b["unserved"]["value"]


def test_a_line_fault_the_controller_can_restore_around_costs_less_service() -> None:
    line = next(a for a in assets(Sector.ELECTRICITY) if a.asset_id == "line-7")
    fault = Fault(line, at_s=10 * 3600.0, precursor=False)
    ctl = dispatch([Job("f", Sector.ELECTRICITY, fault.at_s + A.AUTO_RESPONSE_S)])["f"]
    base = dispatch([Job("f", Sector.ELECTRICITY, fault.at_s)])["f"]
    with_controller, without = controller_outcome(fault, ctl), baseline_outcome(fault, base)

    def lost(outcome: object) -> float:
        return sum(s.deficit * s.seconds for s in outcome.spans)  # type: ignore[attr-defined]

    assert lost(with_controller) < 0.5 * lost(without)
    assert with_controller.weighted_outage_s < without.weighted_outage_s


def test_the_year_is_deterministic_for_a_seed(banking_year: dict[str, object]) -> None:
    again = run_year(seed=3, scale=5.0, sectors=[Sector.BANKING], days=120, energy=False)
    assert {k: v for k, v in again.items() if k != "wall_s"} == {k: v for k, v in banking_year.items() if k != "wall_s"}
    other = draw_faults([Sector.BANKING], seed=4, scale=5.0)
    assert [f.at_s for f in other] != [f.at_s for f in draw_faults([Sector.BANKING], seed=3, scale=5.0)]


def test_a_sectors_year_does_not_depend_on_the_others_chosen() -> None:
    both = draw_faults([Sector.WATER, Sector.BANKING], seed=0, scale=3.0)
    alone = draw_faults([Sector.BANKING], seed=0, scale=3.0)
    assert [f for f in both if f.asset.sector is Sector.BANKING] == alone


def test_scale_multiplies_the_faults() -> None:
    few = len(draw_faults([Sector.WATER], seed=0, scale=1.0))
    many = len(draw_faults([Sector.WATER], seed=0, scale=20.0))
    assert many > 5 * max(few, 1)


def test_a_busy_crew_makes_the_next_job_wait() -> None:
    jobs = [Job(f"j{i}", Sector.BANKING, 0.0) for i in range(3)]
    visits = dispatch(jobs, crews_per_sector=2)
    starts = sorted(v.started_s for v in visits.values())
    assert starts[:2] == [0.0, 0.0] and starts[2] == min(v.done_s for v in visits.values())


def test_corrective_work_goes_before_preventive() -> None:
    jobs = [Job("busy", Sector.BANKING, 0.0), Job("plan", Sector.BANKING, 10.0, preventive=True),
            Job("fix", Sector.BANKING, 20.0)]
    visits = dispatch(jobs, crews_per_sector=1)
    assert visits["fix"].started_s < visits["plan"].started_s


def test_the_predictor_sees_most_precursors_and_few_healthy_assets() -> None:
    pipes = assets(Sector.WATER)[:60]
    faults = [Fault(a, at_s=200 * 86400.0, precursor=True) for a in pipes[:30]]
    found = alarms(pipes, faults, seed=11)
    predicted = {a.asset for a in found if a.fault is not None and a.at_s < a.fault.at_s}
    false = [a for a in found if a.fault is None and a.asset in pipes[30:]]
    assert len(predicted) >= 20
    assert len(false) <= 3  # 30 healthy asset-years at a 1 % target rate


def test_min_loss_reconfiguration_saves_losses_over_hours() -> None:
    day = feeder_day(hours=3)
    assert day.controlled_kwh < 0.9 * day.base_kwh
    assert day.switching_ops > 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="not 'sewage'"):
        parse_sectors("electricity,sewage")
    with pytest.raises(ConfigError, match="positive"):
        run_year(scale=0.0, sectors=[Sector.BANKING])
    assert parse_sectors(None) == (Sector.ELECTRICITY, Sector.WATER, Sector.BANKING)


def test_cli_refuses_bad_input_in_one_line_and_runs_a_year(tmp_path: Path) -> None:
    env = cli_env(load_settings(home=tmp_path / "home", rpc_port=free_port()))
    for args in (["--sectors", "banking,sewage"], ["--faults-scale", "0"], ["--faults-scale", "-2"]):
        done = run_cli(["scenario", "run", "year", *args], env)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    done = run_cli(["scenario", "run", "year", "--sectors", "banking", "--seed", "1", "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert list(report["sectors"]) == ["banking"] and report["seed"] == 1
    kept = sorted((tmp_path / "home" / "scenarios" / "reports").glob("year-*.json"))  # what `/kpis` reads
    assert len(kept) == 1 and re.fullmatch(r"year-\d{8}T\d{6}Z\.json", kept[0].name), kept
    assert json.loads(kept[0].read_text()) == report and str(kept[0]) in done.stderr


def test_asset_rates_follow_the_cited_figures() -> None:
    lines = assets(Sector.ELECTRICITY)
    assert len(lines) == 32  # the five tie branches are normally open: nobody is fed through them
    assert sum(a.per_year for a in lines) == pytest.approx(32 * A.LINE_FAULTS_PER_KM_YEAR)
    km = sum(a.per_year for a in assets(Sector.WATER)) / A.MAIN_BREAKS_PER_100KM_YEAR * 100
    assert 60 < km < 70  # Net3's 117 pipes, about 66 km
    assert all(isinstance(a, Asset) and a.kind is FaultKind.OUTAGE for a in assets(Sector.BANKING))


def test_a_feeder_fault_calls_for_the_controllers_protective_commands() -> None:
    from qeaims.scenarios.year.cascade import protective_commands

    commands = protective_commands(Sector.ELECTRICITY, "line-7")
    assert {"sector": "banking", "asset": "atm-cluster-1", "actuator": "atm-cluster-1/mode",
            "action": "drain"} in commands
    assert protective_commands(Sector.BANKING, "atm-cluster-2") == ()  # not an on-chain node: no cascade step


def test_the_table_shows_both_worlds(banking_year: dict[str, object]) -> None:
    from rich.console import Console

    from qeaims.scenarios.year.table import year_table

    console = Console(width=200, record=True)
    console.print(year_table(banking_year))
    text = console.export_text()
    assert "automation off" in text and "availability" in text and "preventive maintenance share" in text
