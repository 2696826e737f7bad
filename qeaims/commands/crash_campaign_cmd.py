"""`qeaims campaign crash` and `qeaims campaign chain-down`: fault campaigns that must lose nothing.

Plain functions with typer annotations, registered under the `campaign` group (docs/crash-campaign.md).
Both run a throwaway city of their own (`qeaims.crash_city`): they never touch the city under --home.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from core.errors import ConfigError
from core.messages import Sector
from qeaims.commands._common import console, err_console, print_json

__all__ = ["chain_down", "crash", "parse_campaign_sectors"]

SectorsOpt = Annotated[str, typer.Option(help="comma-separated sectors of the throwaway city (one or two are cheap)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
KeepOpt = Annotated[bool, typer.Option(help="keep the throwaway city's data directory (logs, outboxes, journal) "
                                            "for a post-mortem; its path is in the report")]


def parse_campaign_sectors(text: str) -> tuple[Sector, ...]:
    from sectors.runner import parse_sector

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--sectors is empty: name one or two sectors, e.g. banking or banking,healthcare")
    sectors = tuple(parse_sector(n) for n in names)
    if len(set(sectors)) != len(sectors):
        raise ConfigError("--sectors names a sector twice")
    return sectors


def crash(
    runs: Annotated[int, typer.Option(help="runs; each kills one process (every kind once in five runs)")] = 10,
    seed: Annotated[int, typer.Option(help="seed of the kill order, victims and moments (replay a campaign)")] = 1,
    sectors: SectorsOpt = "banking",
    kinds: Annotated[str, typer.Option(help="which processes to kill: comma-separated of chain, oracle, "
                                            "controller, twin, broker")] = "chain,oracle,controller,twin,broker",
    keep_home: KeepOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Kill -9 the chain, an oracle, the controller, a twin or the broker mid-scenario; measure recovery; check
    that no reading, event or decision was lost or applied twice."""
    from qeaims.crash_campaign import RECOVERY_GOAL_S, CrashOptions, run_crash_campaign, summary_rows

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, not {runs}")
    options = CrashOptions(runs=runs, seed=seed, sectors=parse_campaign_sectors(sectors),
                           kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), keep_home=keep_home)
    with err_console.status("crash campaign") as spinner:
        report = run_crash_campaign(options, progress=lambda msg: spinner.update(msg))
    body = report.as_json()
    if json_out:
        print_json(body)
    else:
        table = Table(title=f"Crash campaign: {runs} runs, seed {seed}, sectors {sectors}")
        for column in ("process", "kills", "recovered", "recovery p50 s", "recovery p95 s", "recovery max s",
                       "injected", "detected", "isolated", "restored", "healthy after"):
            table.add_column(column, justify="left" if column == "process" else "right")
        for row in summary_rows(report):
            table.add_row(*row)
        console.print(table)
        _print_verdict(body, RECOVERY_GOAL_S)
    if not report.ok:
        raise typer.Exit(1)


def _print_verdict(body: dict[str, Any], goal_s: float) -> None:
    ledger = body["ledger"]
    console.print(f"events lost: {body['events_lost']} · duplicates: {body['duplicates']} · recovery p50 "
                  f"{body['recovery_p50_s']} s, p95 {body['recovery_p95_s']} s (goal ≤ {goal_s:g} s) · "
                  f"{ledger['events']} events from {ledger['recorders']} recorders, {ledger['telemetry_batches']} "
                  f"telemetry batches ({ledger['telemetry_readings']} readings) · audit: {body['audit']['valid']} "
                  f"valid, {len(body['audit']['invalid'] or [])} invalid")
    for problem in (ledger["lost_ids"] + ledger["duplicate_ids"] + ledger["out_of_order"] + ledger["duplicate_verdicts"]
                    + ledger["duplicate_decisions"] + ledger["telemetry_problems"] + body["outbox_problems"])[:20]:
        console.print(f"[red]problem[/]: {problem}")
    runs = body["scenarios"]
    console.print(f"scenarios: {runs['runs']} runs, fault injected in {runs['injected']} (valid runs), detected "
                  f"{runs['detected']}, isolated {runs['isolated']}, restored {runs['restored']}, city healthy after "
                  f"{runs['healthy_after']}; passed {runs['passed']}")
    for kill in body["kills"]:
        if not kill["recovered"] or not kill["scenario_ok"] or not kill["healthy_after"]:
            console.print(f"run {kill['run']}: kill {kill['victim']} at {kill['at_s']} s: "
                          f"{'recovered' if kill['recovered'] else 'NOT recovered'}; scenario "
                          f"{'ok' if kill['scenario_ok'] else 'not ok'}{'' if kill['valid'] else ' (not valid)'} "
                          f"{kill['scenario_note']} {kill['settle_note']}".rstrip(), soft_wrap=True)
    console.print("[green]nothing lost, nothing applied twice[/]" if body["ok"] else "[red]campaign FAILED[/]")


def chain_down(
    seconds: Annotated[float, typer.Option(help="how long the chain stays unreachable")] = 60.0,
    sectors: SectorsOpt = "banking",
    keep_home: KeepOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Make the chain unreachable mid-scenario; check that oracles and controller queue, nothing is decided
    without the quorum, nothing is lost, and the backlog drains in order once it returns."""
    from qeaims.chain_down_campaign import ChainDownOptions, run_chain_down

    if seconds < 1:
        raise ConfigError(f"--seconds must be at least 1, not {seconds:g}")
    options = ChainDownOptions(seconds=seconds, sectors=parse_campaign_sectors(sectors), keep_home=keep_home)
    with err_console.status("chain-down campaign") as spinner:
        report = run_chain_down(options, progress=lambda msg: spinner.update(msg))
    body = report.as_json()
    if json_out:
        print_json(body)
    else:
        table = Table(title=f"Chain down for {seconds:g} s (SIGSTOP), sectors {sectors}")
        table.add_column("check")
        table.add_column("result", justify="right")
        for name, value in report.rows():
            table.add_row(name, value)
        console.print(table)
        for problem in report.problems()[:20]:
            console.print(f"[red]problem[/]: {problem}")
        console.print("[green]queued, nothing lost, drained in order[/]" if report.ok else "[red]campaign FAILED[/]")
    if not report.ok:
        raise typer.Exit(1)
