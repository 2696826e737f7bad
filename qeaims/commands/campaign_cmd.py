"""`qeaims campaign byzantine`: randomized fault campaigns on a dev chain of their own (docs/campaigns.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from core.errors import ConfigError
from qeaims.campaigns.common import CampaignReport, Tally, parse_seed
from qeaims.commands import crash_campaign_cmd
from qeaims.commands._common import console, err_console, print_json, settings_of

app = typer.Typer(help="Fault campaigns: many randomized runs against the real contracts.", no_args_is_help=True)


@app.command()
def byzantine(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option(help="runs in the campaign (≥ 1)")] = 20,
    seed: Annotated[str | None, typer.Option(help="campaign seed (integer); default: a random one, printed")] = None,
    sectors: Annotated[list[str] | None, typer.Option(
        "--sectors", help="sectors to run (repeatable or comma-separated; default: all)")] = None,
    only: Annotated[int | None, typer.Option(help="play only run number ONLY of the campaign (needs --seed)")] = None,
    replay: Annotated[str | None, typer.Option(help="play only the run with this derived seed (printed per run)")] = None,
    liars: Annotated[int | None, typer.Option(hidden=True, help="force this many liars per sector (tests: f+1)")] = None,
    records: Annotated[bool, typer.Option("--records", help="every run's record in --json, not only failing ones")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Up to f lying oracles per sector, random real faults: count wrongful and missed isolations.

    Runs on a private Anvil of its own under <home>/campaigns/byzantine (the global --port picks its
    port; default a free one). Exits 1 when any run isolated a healthy node or missed a faulty one, naming the seeds to replay."""
    from qeaims.campaigns.byzantine_run import ByzantineOptions, check_sectors, run_byzantine

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, not {runs}")
    if replay is not None and (seed is not None or only is not None):
        raise ConfigError("--replay plays one run by its derived seed: give it without --seed or --only")
    if only is not None and seed is None:
        raise ConfigError("--only needs the campaign's --seed")
    chosen_seed = parse_seed(seed) if seed is not None else None
    replay_seed = parse_seed(replay, "replay seed") if replay is not None else None
    if chosen_seed is None and replay_seed is None:
        chosen_seed = int.from_bytes(os.urandom(8), "big") >> 1
    options = ByzantineOptions(runs=1 if replay_seed is not None else runs, seed=chosen_seed,
                               sectors=check_sectors(sectors or []), liars=liars, only=only, replay=replay_seed,
                               keep_records=records, port=ctx.find_root().params.get("port"))
    settings = settings_of(ctx)
    if not json_out:
        what = f"replay of run seed {replay_seed}" if replay_seed is not None else f"seed {chosen_seed}"
        err_console.print(f"byzantine campaign, {what}, sectors {', '.join(options.sectors)}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tally]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=None, tally="")

        def status(message: str) -> None:
            bar.update(task, description=message)

        def advance(done: int, total: int, tally: Tally) -> None:
            bar.update(task, description="runs", completed=done, total=total,
                       tally=f"wrongful {tally.wrongful} · missed {tally.missed}")

        report = run_byzantine(settings, options, status=status, advance=advance)
    if json_out:
        print_json(report.model_dump())
    else:
        console.print(_table(report))
    if not report.ok:
        if report.failing:
            seeds = ", ".join(f"run {f.index} seed {f.seed}" for f in report.failing)
            err_console.print(f"campaign failed: {report.wrongful} wrongful, {report.missed} missed isolations "
                              f"({seeds}); replay one with: {report.failing[0].replay}")
        else:
            details = report.details
            err_console.print("campaign failed: the auditor's recount disagrees with the peers' check in runs "
                              f"{details.get('peer_check_disagrees_in_runs') or 'none'} or found other problems: "
                              f"{details.get('other_recount_problems') or 'none'}")
        raise typer.Exit(1)


def _table(report: CampaignReport) -> Table:
    table = Table(title=f"Byzantine campaign (seed {report.seed})", show_header=False)
    table.add_row("runs", str(report.runs))
    table.add_row("wrongful isolations (goal 0)", str(report.wrongful))
    table.add_row("missed isolations (goal 0)", str(report.missed))
    table.add_row("failing seeds", ", ".join(str(f.seed) for f in report.failing) or "none")
    table.add_row("duration", f"{report.duration_s:.1f} s (setup {report.setup_s:.1f} s, {report.per_run_s:.2f} s a run)")
    for behaviour, count in report.behaviours.items():
        table.add_row(f"behaviour {behaviour}", str(count))
    for effect, count in report.effects.items():
        table.add_row(f"  {effect}", str(count))
    details = report.details
    table.add_row("audit recount", f"{details.get('votes_not_votes', 0)} votes that are no votes, "
                                   f"{details.get('decisions_without_genuine_quorum', 0)} decisions without a genuine quorum")
    table.add_row("peers' check = recount", "yes" if not details.get("peer_check_disagrees_in_runs") else
                  f"no, runs {details['peer_check_disagrees_in_runs']}")
    return table


# the crash and chain-down campaigns (qeaims/crash_campaign.py, qeaims/chain_down_campaign.py) run processes
app.command("crash")(crash_campaign_cmd.crash)
app.command("chain-down")(crash_campaign_cmd.chain_down)
