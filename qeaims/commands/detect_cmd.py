"""`qeaims detect eval`: the oracles' detectors measured on labelled public data (a benchmark, not a test).

Two modes, one output: `--dataset skab PATH` follows the SKAB leaderboard's outlier setting;
`--train/--test` takes any CSVs with a time and a label column (BATADAL: train on training set 1,
test on training set 2 with ATT_FLAG). Bad paths or columns end as one `error:` line, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oracles.detect.eval import DetectorResult, EvalError, Settings, evaluate_generic, evaluate_skab
from oracles.detect.models import DETECTORS
from qeaims.commands._common import console, err_console, print_json
from qeaims.errors import ConfigError

app = typer.Typer(help="Anomaly detection: benchmarks of the oracles' detectors.", no_args_is_help=True)

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
