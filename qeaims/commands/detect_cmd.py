"""`qeaims detect`: the oracles' sector models (`train`, `show`) and their benchmarks (`eval`, `attribution`).

`train` runs a sector twin under normal operation, fits the first-pass check and the calibrated
detector, and saves the model where the oracle processes load it (`<home>/models/<sector>.joblib`,
see `oracles.training`); `show` prints a saved model's sidecar without unpickling it.

`eval` measures the detectors on labelled public data (a benchmark, not a test). Two modes, one output: `--dataset skab PATH` follows the SKAB leaderboard's outlier setting;
`--train/--test` takes any CSVs with a time and a label column (BATADAL: train on training set 1,
test on training set 2 with ATT_FLAG). Bad paths or columns end as one `error:` line, exit 2.

`attribution` breaks each sector twin the ways its fault API allows and reports which asset the
first verdict names (`oracles.detect.attribution`): attribution (the right node to isolate),
detection, delay, wrongful isolation votes and false alarms before the fault, on evaluation seeds
the model was not trained on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from core.messages import Sector
from oracles.detector_names import DETECTOR_NAMES
from qeaims.commands._common import console, err_console, print_json, sector_help, settings_of
from sectors.runner import parse_sector

if TYPE_CHECKING:  # the detectors (pandas, scikit-learn) are imported by the commands that run them
    from oracles.detect.attribution import AttributionReport
    from oracles.detect.eval import Report
    from oracles.training import SectorModel

app = typer.Typer(help="Anomaly detection: the oracles' sector models and detector benchmarks.",
                  no_args_is_help=True)

@app.command("eval")
def eval_(
    dataset: Annotated[tuple[str, Path] | None, typer.Option(
        help="named benchmark and its folder: `--dataset skab PATH` or `--dataset batadal PATH`")] = None,
    train: Annotated[list[Path] | None, typer.Option(help="normal-operation CSV (repeatable)")] = None,
    test: Annotated[Path | None, typer.Option(help="labelled CSV to score (batadal: instead of training set 2)")]
    = None,
    time_column: Annotated[str | None, typer.Option(help="time column of --test")] = None,
    label_column: Annotated[str | None, typer.Option(help="0/1 label column (other values: unlabelled)")] = None,
    predictions_out: Annotated[Path | None, typer.Option(help="write time, score, flag per test row")] = None,
    blind: Annotated[bool, typer.Option("--blind", help="score a test file without labels: predictions only "
                                                        "(needs --predictions-out)")] = False,
    sep: Annotated[str, typer.Option(help="CSV separator of --train/--test")] = ",",
    detector: Annotated[list[str] | None, typer.Option(
        help=f"another detector as a secondary row (repeatable): {', '.join(DETECTOR_NAMES)}")] = None,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The water oracles' production detector on a labelled benchmark, beside baselines and published rows.

    Nothing here sets a threshold or a window: the detector and its calibration are the ones the
    oracles run (`oracles/detect/production.py`), fitted on training rows only.
    """
    from oracles.detect.eval import EvalError
    from oracles.detect.eval_csv import BATADAL_LABEL, BATADAL_TIME, Predictions, batadal_paths, evaluate_csv
    from oracles.detect.eval_skab import evaluate_skab
    from oracles.detect.models import DETECTORS
    from oracles.detect.production import BENCHMARK_SECTOR, sector_config

    names = list(detector or ())
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ConfigError(f"unknown detector {unknown[0]!r}: choose from {', '.join(DETECTORS)}")
    kind = None if dataset is None or dataset[0] is None else dataset[0].lower()
    if kind is not None and kind not in ("skab", "batadal"):
        raise ConfigError(f"unknown dataset {dataset[0] if dataset else kind!r}: choose skab or batadal, "
                          "or use --train/--test")
    if (kind is not None) == bool(train) or (kind is None and test is None and not train):
        raise ConfigError("give either --dataset skab|batadal PATH or --train CSV ... --test CSV")
    if kind == "skab" and (test is not None or blind):
        raise ConfigError("--test and --blind do not apply to skab (its files carry their own test rows)")
    if kind is None and (test is None or not time_column or (not label_column and not blind)):
        raise ConfigError("--train, --test, --time-column and --label-column are all needed")
    if blind and predictions_out is None:
        raise ConfigError("--blind scores without labels: give --predictions-out FILE for the predictions")
    config = sector_config(BENCHMARK_SECTOR)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[item]}"),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        task = bar.add_task("evaluating", total=None, item="")

        def progress(item: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, item=item)

        try:
            report: Report | Predictions
            if kind == "skab":
                assert dataset is not None
                report = evaluate_skab(dataset[1], config, secondary=names, progress=progress)
            elif kind == "batadal":
                assert dataset is not None
                normal, validation = batadal_paths(dataset[1])
                report = evaluate_csv([normal], test or validation, config, time_column=BATADAL_TIME,
                                      label_column=BATADAL_LABEL, secondary=names, predictions_out=predictions_out,
                                      blind=blind, dataset="batadal", progress=progress)
            else:
                assert train and test is not None and time_column
                report = evaluate_csv(train, test, config, time_column=time_column,
                                      label_column=label_column or "", secondary=names, sep=sep,
                                      predictions_out=predictions_out, blind=blind, progress=progress)
        except (EvalError, ValueError) as exc:
            raise ConfigError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    if isinstance(report, Predictions):
        if json_out:
            print_json({"predictions": str(report.path), "rows": report.rows, "settings": report.settings})
        else:
            console.print(f"{report.rows} rows scored, predictions written to {report.path} (no labels read)")
        return
    if json_out:
        print_json(report.as_dict())
        return
    _print_report(report)


def _print_report(report: Report) -> None:
    """The production row first, then secondary rows, the constant baselines and the published rows;
    BATADAL's S in a second table over the same rows (one table would not fit a terminal)."""

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    runs = [(r.role, r.label, r.as_dict()) for r in (report.production, *report.secondary)]
    rows = [*runs, *(("baseline", name.replace("_", " "), base) for name, base in report.baselines.items()),
            *(("published", str(p["detector"]), p) for p in report.published)]
    table = Table(title=f"Detection quality ({report.dataset}): FAR and MAR in %")
    for col in ("row", "detector", "F1", "FAR", "MAR", "rows/s", "delay (found)"):
        table.add_column(col, justify="left" if col in ("row", "detector") else "right")
    for role, label, d in rows:
        if role == "published" and d.get("f1") is None:
            continue  # BATADAL's entries publish S only: they are in the second table
        delay = f"{num(d['rows_to_detect_median'], '.0f')} ({d['anomalies_detected']}/{d['anomalies']})" \
            if "anomalies" in d else ""
        table.add_row(role, label, num(d.get("f1"), ".3f"), num(d.get("far"), ".2f"), num(d.get("mar"), ".2f"),
                      num(d.get("rows_per_s"), ",.0f") if role in ("production", "secondary") else "", delay)
    console.print(table)
    if "S" in report.production.extra:
        scores = Table(title="BATADAL score (published rows: the competition's test period)")
        for col in ("row", "detector", "S", "S_TTD", "S_CM", "TPR", "TNR"):
            scores.add_column(col, justify="left" if col in ("row", "detector") else "right")
        for role, label, d in rows:
            scores.add_row(role, label, *(num(d.get(k), ".3f") for k in ("S", "S_TTD", "S_CM", "tpr", "tnr")))
        console.print(scores)
        console.print("rows (hours) to detect each attack: "
                      + ", ".join("missed" if d is None else str(d) for d in report.production.delays))
    s = report.settings
    console.print(f"production detector: {s['detector']} {s['options'] or ''} (target FAR {s['target_far']}, "
                  f"threshold margin {s.get('margin', 1.0)}, "
                  f"hold-out {s['holdout']}, window {s['window']} rows, floor {'on' if s['floor'] else 'off'}), "
                  f"configured in {s['source']}; delay: median rows from an anomaly's start to its first flag")
    if "physics" in s:
        p = s["physics"]
        console.print(f"joined by the network's physics ({p['combine']}): {len(p['thresholds'])} checks of "
                      f"{p['network']}, thresholds fitted on {p['fitted_on']} only, an alarm held {p['hold_rows']} rows")


def _sectors(name: str) -> list[Sector]:
    return list(Sector) if name == "all" else [parse_sector(name)]


@app.command("train")
def train(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help=sector_help(" or all"))],
    rows: Annotated[int | None, typer.Option(min=8, help="training rows (default: per sector, see PLANS)")] = None,
    seed: Annotated[int, typer.Option(min=0, help="twin seed of the normal run")] = 0,
    detector: Annotated[str | None, typer.Option(
        help=f"detector: {', '.join(DETECTOR_NAMES)} (default: the sector's own plan, e.g. MSET for sewage)")] = None,
    stride: Annotated[int | None, typer.Option(min=1, help="report periods between training rows")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a saved model")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train each sector's model on its twin's normal operation and save it for the oracles."""
    from oracles.detect.models import DETECTORS
    from oracles.training import PLANS, model_path, save_model, train_sector

    if detector is not None and detector not in DETECTORS:
        raise ConfigError(f"unknown detector {detector!r}: choose from {', '.join(DETECTORS)}")
    which = _sectors(sector)
    home = settings_of(ctx).home
    taken = [s.value for s in which if model_path(home, s).exists() and not force]
    if taken:
        raise ConfigError(f"a {taken[0]} model exists at {model_path(home, taken[0])}: pass --force to retrain")
    results: list[dict[str, Any]] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} rows"),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        for s in which:
            task = bar.add_task(f"training {s.value}", total=rows or PLANS[s].rows)

            def progress(done: int, total: int, task: Any = task) -> None:
                bar.update(task, completed=done, total=total)

            t0 = time.perf_counter()
            model = train_sector(s, rows=rows, seed=seed, detector=detector, stride=stride, progress=progress)
            path = save_model(model, model_path(home, s))
            results.append(_summary(model, path, time.perf_counter() - t0))
    if json_out:
        print_json(results if sector == "all" else results[0])
        return
    table = Table(title="Trained sector models")
    for col in ("sector", "sensors", "rows", "threshold", "holdout FAR", "path", "seconds"):
        table.add_column(col, justify="left" if col in ("sector", "path") else "right")
    for r in results:
        table.add_row(r["sector"], str(r["sensors"]), str(r["rows"]), f"{r['threshold']:.4g}",
                      f"{r['holdout_far']:.3f}", r["path"], f"{r['seconds']:.1f}")
    console.print(table)


def _summary(model: SectorModel, path: Path, seconds: float) -> dict[str, Any]:
    return {"sector": model.sector.value, "sensors": len(model.sensors), "rows": model.n_rows,
            "stride": model.stride, "detector": model.detector, "threshold": model.model.threshold,
            "holdout_far": model.model.holdout_far, "path": str(path), "seconds": round(seconds, 2)}


@app.command("show")
def show(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help=sector_help())],
    verify: Annotated[bool, typer.Option("--verify", help="also check the hash and load the model")] = False,
) -> None:
    """Print a saved model's sidecar (JSON): sector, sensors, calibration, sha256."""
    from oracles.training import load_model, model_path, read_sidecar

    path = model_path(settings_of(ctx).home, parse_sector(sector))
    meta = read_sidecar(path)
    if verify:
        load_model(path, sector=sector)
        meta["verified"] = True
    print_json(meta)


@app.command("attribution")
def attribution(
    sector: Annotated[str, typer.Option(help=sector_help(" or all"))],
    train_seed: Annotated[int, typer.Option(min=0, help="twin seed of the training run")] = 0,
    eval_seed: Annotated[list[int] | None, typer.Option(
        help="twin seed of an evaluation run (repeatable); default 1, 2, 3")] = None,
    rows: Annotated[int | None, typer.Option(min=8, help="training rows (default: per sector, see PLANS)")] = None,
    stride: Annotated[int | None, typer.Option(min=1, help="report periods between training rows")] = None,
    warm_rows: Annotated[int, typer.Option(min=3, help="normal rows before the fault")] = 8,
    max_rows: Annotated[int | None, typer.Option(min=1, max=500, help="rows watched after the fault (default: "
                                                                      "ten minutes of the sector's rows)")] = None,
    runs: Annotated[bool, typer.Option("--runs", help="also list every run")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Which asset a fault verdict names, per sector: attribution, detection, false alarms (a benchmark)."""
    from oracles.detect.attribution import evaluate_attribution

    which = _sectors(sector)
    seeds = tuple(eval_seed or (1, 2, 3))
    if any(s < 0 for s in seeds):
        raise ConfigError(f"evaluation seeds must be ≥ 0, got {min(seeds)}")
    if train_seed in seeds:
        raise ConfigError(f"evaluation seed {train_seed} is the training seed: pick seeds the model has not seen")
    reports: list[AttributionReport] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[item]}"),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        task = bar.add_task("attribution", total=None, item="")

        def progress(item: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, item=item)

        for s in which:
            reports.append(evaluate_attribution(s, train_seed=train_seed, eval_seeds=seeds, rows=rows, stride=stride,
                                                warm_rows=warm_rows, max_rows=max_rows, progress=progress))
    if json_out:
        data = [r.as_dict() for r in reports]
        print_json(data if sector == "all" else data[0])
        return
    table = Table(title=f"Fault attribution (train seed {train_seed}, evaluation seeds {', '.join(map(str, seeds))})")
    for col in ("sector", "runs", "detected %", "attributed %", "FAULT kind", "wrongful votes", "false alarms",
                "rows to detect", "field s"):
        table.add_column(col, justify="left" if col == "sector" else "right")
    for rep in reports:
        f = rep.sectors[0]
        table.add_row(f.sector, str(f.runs), f"{f.detection_pct:.0f}", f"{f.attribution_pct:.0f}",
                      f"{f.faults_kind}/{f.detected}", str(f.wrongful_runs), str(f.false_alarm_runs),
                      "-" if f.mean_rows_to_detect is None else f"{f.mean_rows_to_detect:.1f}",
                      "-" if f.mean_seconds_to_detect is None else f"{f.mean_seconds_to_detect:.0f}")
    console.print(table)
    by_class = Table(title="By fault class (field seconds: the slowest detection, and the slowest decision "
                           "the quorum acts on)")
    for col in ("sector", "class", "runs", "detected %", "attributed %", "acted-on kind %", "wrongful votes",
                "false alarms", "max s", "decide s"):
        by_class.add_column(col, justify="left" if col in ("sector", "class") else "right")
    for rep in reports:
        for c in rep.classes():
            by_class.add_row(c["sector"], c["class"], str(c["runs"]), _pct(c["detected_pct"]), _pct(c["attributed_pct"]),
                             _pct(c["acted_kind_pct"]), str(c["wrongful_runs"]), str(c["false_alarm_runs"]),
                             "-" if c["max_seconds_to_detect"] is None else str(c["max_seconds_to_detect"]),
                             "-" if c["max_seconds_to_decide"] is None else str(c["max_seconds_to_decide"]))
    console.print(by_class)
    if runs:
        detail = Table(title="Runs")
        for col in ("sector", "fault", "seed", "expected", "named (node)", "kind", "rows", "wrongful", "before fault"):
            detail.add_column(col)
        for rep in reports:
            for r in rep.runs:
                named = "-" if r.asset is None else f"{r.asset} ({r.anchor or 'none'})"
                detail.add_row(r.sector, r.fault, str(r.seed), r.expected_anchor or r.expected_asset, named,
                               r.kind or "-", _rows(r.rows_to_detect, r.rows_to_decide),
                               ", ".join(r.wrongful), str(len(r.false_alarms)))
        console.print(detail)


def _rows(detect: int | None, decide: int | None) -> str:
    """Rows to detect, and to the decisive verdict where that came later (``2→4``)."""
    if detect is None:
        return "-"
    return str(detect) if decide in (None, detect) else f"{detect}→{decide}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
