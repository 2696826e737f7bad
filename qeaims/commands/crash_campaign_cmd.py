"""`qeaims campaign crash` and `qeaims campaign chain-down`: fault campaigns that must lose nothing.

Plain functions with typer annotations, registered under the `campaign` group (docs/crash-campaign.md).
Both run a throwaway city of their own (`qeaims.crash_city`): they never touch the city under --home.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer
from rich.table import Table

from core.errors import ConfigError
from core.messages import Sector
from qeaims.commands._common import console, err_console, print_json

if TYPE_CHECKING:
    from qeaims.crash_campaign import CrashReport

__all__ = ["chain_down", "crash", "parse_campaign_sectors"]

SectorsOpt = Annotated[str, typer.Option(help="comma-separated sectors of the throwaway city (one or two are cheap)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
KeepOpt = Annotated[bool, typer.Option(help="keep the throwaway city's data directory (logs, outboxes, journal) "
                                            "for a post-mortem; its path is in the report")]


class _Report(Protocol):
    @property
    def ok(self) -> bool: ...

    def as_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=_Report)


def _play(name: str, run: Callable[[Callable[[str], None]], R], json_out: bool,
          show: Callable[[R, dict[str, Any]], None]) -> None:
    """What both commands do around their campaign: a spinner over its progress, then the report as
    JSON or as `show` prints it, and exit 1 when the campaign failed."""
    with err_console.status(f"{name} campaign") as spinner:
        report = run(lambda msg: spinner.update(msg))
    body = report.as_json()
    if json_out:
        print_json(body)
    else:
        show(report, body)
    if not report.ok:
        raise typer.Exit(1)


def _problems(problems: list[str]) -> None:
    for problem in problems[:20]:
        console.print(f"[red]problem[/]: {problem}")


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
    from qeaims.crash_campaign import CrashOptions, run_crash_campaign, summary_rows

    options = CrashOptions(runs=runs, seed=seed, sectors=parse_campaign_sectors(sectors),
                           kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), keep_home=keep_home)

    def show(report: CrashReport, body: dict[str, Any]) -> None:
        table = Table(title=f"Crash campaign: {runs} runs, seed {seed}, sectors {sectors}")
        for column in ("process", "kills", "recovered", "recovery p50 s", "recovery p95 s", "recovery max s",
                       "injected", "detected", "isolated", "restored", "healthy after"):
            table.add_column(column, justify="left" if column == "process" else "right")
        for row in summary_rows(report):
            table.add_row(*row)
        console.print(table)
        _print_verdict(report, body)

    _play("crash", lambda progress: run_crash_campaign(options, progress), json_out, show)


def _print_verdict(report: CrashReport, body: dict[str, Any]) -> None:
    from qeaims.crash_campaign import RECOVERY_GOAL_S

    ending, ledger = report.ending, report.ledger
    console.print(f"events lost: {ending.events_lost} · duplicates: {ledger.duplicates} · recovery p50 "
                  f"{body['recovery_p50_s']} s, p95 {body['recovery_p95_s']} s (goal ≤ {RECOVERY_GOAL_S:g} s) · "
                  f"{ledger.events} events from {ledger.recorders} recorders, {ledger.telemetry_batches} "
                  f"telemetry batches ({ledger.telemetry_readings} readings) · audit: {ending.audit_summary()}")
    _problems(ending.problems())
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
    from qeaims.chain_down_campaign import ChainDownOptions, ChainDownReport, run_chain_down

    options = ChainDownOptions(seconds=seconds, sectors=parse_campaign_sectors(sectors), keep_home=keep_home)

    def show(report: ChainDownReport, _: dict[str, Any]) -> None:
        table = Table(title=f"Chain down for {seconds:g} s (SIGSTOP), sectors {sectors}")
        table.add_column("check")
        table.add_column("result", justify="right")
        for name, value in report.rows():
            table.add_row(name, value)
        console.print(table)
        _problems(report.problems())
        console.print("[green]queued, nothing lost, drained in order[/]" if report.ok else "[red]campaign FAILED[/]")

    _play("chain-down", lambda progress: run_chain_down(options, progress), json_out, show)
