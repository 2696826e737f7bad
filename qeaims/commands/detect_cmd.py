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
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import ConfigError
from core.messages import Sector
from oracles.detect.attribution import AttributionReport, evaluate_attribution
from oracles.detect.eval import DetectorResult, EvalError, Settings, evaluate_generic, evaluate_skab
from oracles.detect.models import DETECTORS
from oracles.training import (
    PLANS,
    SectorModel,
    load_model,
    model_path,
    read_sidecar,
    save_model,
    train_sector,
)
from qeaims.commands._common import console, err_console, print_json, sector_help, settings_of
from sectors.runner import parse_sector

app = typer.Typer(help="Anomaly detection: the oracles' sector models and detector benchmarks.",
                  no_args_is_help=True)

DEFAULT_DETECTORS = ("pca", "mset")


@app.command("eval")
def eval_(
    dataset: Annotated[tuple[str, Path] | None, typer.Option(
        help="named benchmark and its folder: `--dataset skab PATH`")] = None,
    train: Annotated[list[Path] | None, typer.Option(help="normal-operation CSV (repeatable)")] = None,
    test: Annotated[Path | None, typer.Option(help="labelled CSV to score")] = None,
    time_column: Annotated[str | None, typer.Option(help="time column of --test")] = None,
    label_column: Annotated[str | None, typer.Option(help="0/1 label column (other values: unlabelled)")] = None,
    predictions_out: Annotated[Path | None, typer.Option(help="write time, score, flag per test row")] = None,
    sep: Annotated[str, typer.Option(help="CSV separator of --train/--test")] = ",",
    detector: Annotated[list[str] | None, typer.Option(
        help=f"detector to run (repeatable): {', '.join(DETECTORS)}; default pca and mset")] = None,
    target_far: Annotated[float, typer.Option(min=0.0001, max=0.5, help="false-alarm rate on held-back normal")]
    = Settings.target_far,
    window: Annotated[int, typer.Option(min=1, max=1000, help="rolling-median window over scores")]
    = Settings.window,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """F1, FAR and MAR (percent, as SKAB computes them) of the detectors on a labelled dataset."""
    names = list(detector or DEFAULT_DETECTORS)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ConfigError(f"unknown detector {unknown[0]!r}: choose from {', '.join(DETECTORS)}")
    settings = Settings(target_far=target_far, window=window)
    has_dataset = dataset is not None and dataset[0] is not None
    if has_dataset == bool(train or test):
        raise ConfigError("give either --dataset skab PATH or --train CSV ... --test CSV")
    if has_dataset and dataset is not None and dataset[0].lower() != "skab":
        raise ConfigError(f"unknown dataset {dataset[0]!r}: only 'skab' is built in; use --train/--test")
    if not has_dataset and (not train or test is None or not time_column or not label_column):
        raise ConfigError("--train, --test, --time-column and --label-column are all needed")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[item]}"),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:
        task = bar.add_task("evaluating", total=None, item="")

        def progress(item: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, item=item)

        try:
            if has_dataset:
                assert dataset is not None
                path = dataset[1]
                results = evaluate_skab(path, names, settings=settings, progress=progress)
                header: dict[str, Any] = {"dataset": "skab", "path": str(path)}
            else:
                assert train and test is not None and time_column and label_column
                results = evaluate_generic(train, test, time_column=time_column, label_column=label_column,
                                           detectors=names, sep=sep, settings=settings,
                                           predictions_out=predictions_out, progress=progress)
                header = {"dataset": "csv", "train": [str(p) for p in train], "test": str(test)}
        except (EvalError, ValueError) as exc:
            raise ConfigError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    _report(results, header, settings, json_out=json_out)


def _report(results: list[DetectorResult], header: dict[str, Any], settings: Settings, *, json_out: bool) -> None:
    best = max(results, key=lambda r: r.metrics.f1)
    data: dict[str, Any] = {
        **header,
        **{k: v for k, v in best.as_dict().items()},
        "settings": {"target_far": settings.target_far, "holdout": settings.holdout, "window": settings.window},
        "detectors": [r.as_dict() for r in results],
    }
    if json_out:
        print_json(data)
        return
    extra_keys = [k for k in ("s_ttd", "s_cm", "batadal_s") if k in best.extra]
    table = Table(title=f"Detection quality ({header['dataset']}); FAR and MAR in %")
    for col in ("detector", "F1", "FAR", "MAR", "n_test", *extra_keys):
        table.add_column(col, justify="left" if col == "detector" else "right")
    for r in results:
        m = r.metrics
        table.add_row(DETECTORS[r.detector].label, f"{m.f1:.3f}", f"{m.far:.2f}", f"{m.mar:.2f}", str(m.n_test),
                      *[f"{r.extra[k]:.3f}" for k in extra_keys])
    console.print(table)


def _sectors(name: str) -> list[Sector]:
    return list(Sector) if name == "all" else [parse_sector(name)]


@app.command("train")
def train(
    ctx: typer.Context,
    sector: Annotated[str, typer.Option(help=sector_help(" or all"))],
    rows: Annotated[int | None, typer.Option(min=8, help="training rows (default: per sector, see PLANS)")] = None,
    seed: Annotated[int, typer.Option(min=0, help="twin seed of the normal run")] = 0,
    detector: Annotated[str | None, typer.Option(
        help=f"detector: {', '.join(DETECTORS)} (default: the sector's own plan, e.g. MSET for sewage)")] = None,
    stride: Annotated[int | None, typer.Option(min=1, help="report periods between training rows")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace a saved model")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train each sector's model on its twin's normal operation and save it for the oracles."""
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
