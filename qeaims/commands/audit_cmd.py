"""`qeaims audit events|verify`: what the chain says happened, and whether it all checks out."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from core.errors import AuditFailed, ConfigError
from core.kinds import kind_by_name
from qeaims.commands._chain_index import synced_index
from qeaims.commands._common import check_sector, console, err_console, print_json, settings_of
from qeaims.commands.proof_cmd import proof

if TYPE_CHECKING:  # the audit (py_ecc, eth_account, the chain client) loads when a command audits
    from chain.audit import AuditReport

app = typer.Typer(help="Query and verify the on-chain history (auditors and regulators).", no_args_is_help=True)


_RELATIVE = re.compile(r"^(\d+)([smhd])$")


def _since(value: str | None) -> int | None:
    """`--since 2026-11-26T05:00:00Z`, `--since 2026-11-26`, or relative: `30m`, `2h`, `1d`."""
    if value is None:
        return None
    match = _RELATIVE.match(value)
    if match:
        seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return max(0, int(time.time()) - seconds)  # "since 10,000 years ago" means everything
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since {value!r} is neither an ISO time (2026-11-26T05:00:00Z) nor like 30m, 2h, 1d") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@app.command()
def events(
    ctx: typer.Context,
    sector: Annotated[str | None, typer.Option(help="only events from this sector's oracles")] = None,
    node: Annotated[str | None, typer.Option(help="only events about this node")] = None,
    kind: Annotated[str | None, typer.Option(help="only this kind, e.g. fault")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or 30m / 2h / 1d")] = None,
    limit: Annotated[int, typer.Option(min=1, help="show at most this many (newest)")] = 200,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recorded events, newest last, read from chain logs (the local index is only a cache)."""
    from chain.connect import connect
    from chain.event_query import EventFilters, query_events
    from keys.ids import to_bytes32

    settings = settings_of(ctx)
    sector_name = None if sector is None else check_sector(sector)
    if node is not None:
        to_bytes32(node)  # a bad name is the user's error before the chain is asked anything
    filters = EventFilters(sector=sector_name, node=node, kind=None if kind is None else kind_by_name(kind),
                           since=_since(since))
    client, _ = connect(settings)
    index = synced_index(settings, client, show_progress=not json_out)
    try:
        rows = query_events(index.db, filters, limit=limit, newest_first=True)[::-1]
    finally:
        index.close()
    out: list[dict[str, Any]] = [row.as_dict() for row in rows]
    if json_out:
        print_json(out)
        return
    table = Table(title=f"{len(out)} events")
    for column in ("block", "time", "sector", "oracle", "seq", "kind", "node", "payload"):
        table.add_column(column, overflow="fold")
    for e in out:
        payload_text = json.dumps(e["payload"], separators=(",", ":"))
        table.add_row(str(e["block"]), (e["time"] or "")[11:19], e["sector"], e["oracle"][:10] + "…", str(e["seq"]),
                      e["kind"], e["node"], payload_text[:60] + ("…" if len(payload_text) > 60 else ""))
    console.print(table)


@app.command()
def verify(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json")] = False,
    anchor: Annotated[list[str] | None, typer.Option(
        "--anchor", help="BLOCK:0xHASH printed by an earlier audit; the chain must still hold it (repeatable)")] = None,
) -> None:
    """Re-check the whole history from chain data alone: every signature, key epoch and sequence, every
    vote and quorum, council approval, quarantine, role change, override and status change, and the
    index against on-chain counters.

    The index is always built afresh from eth_getLogs in a temporary directory: nothing local is
    trusted (a cached index could have been edited in ways no counter shows). Each run prints an
    anchor (the head block's number and hash); keep it outside this machine and pass it back with
    --anchor to prove later that the history you audited was not rewritten or cut.
    """
    from chain.audit_anchor import parse_anchors
    from chain.audit_run import audit_afresh
    from chain.connect import connect

    anchors = parse_anchors(anchor or [])
    settings = settings_of(ctx)
    client, deployment = connect(settings)
    with Progress(console=err_console, transient=True, disable=json_out) as bar:
        task = bar.add_task("indexing chain logs", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total or None)

        report, head_anchor = audit_afresh(client, deployment, anchors=anchors, progress=step,
                                              max_logs_range=settings.max_logs_range)
    _print_report(report, head_anchor, json_out)
    if not report.ok:
        raise AuditFailed(f"{len(report.invalid) + len(report.problems)} findings: the history does not verify")


def _print_report(report: AuditReport, anchor: str, json_out: bool) -> None:
    if json_out:
        print_json({**report.as_dict(), "ok": report.ok, "anchor": anchor})
        return
    table = Table(title=f"Audit of the on-chain history (up to block {report.head})", show_header=False)
    table.add_row("events", str(report.events))
    table.add_row("valid", f"[green]{report.valid}[/green]" if not report.invalid else f"[red]{report.valid}[/red]")
    table.add_row("invalid", str(len(report.invalid)))
    table.add_row("signed batches", str(report.batches))
    table.add_row("oracles / key epochs", f"{report.oracles} / {report.key_epochs}")
    table.add_row("other findings", str(len(report.problems)))
    console.print(table)
    lines = report.lines()
    for line in lines[:50]:
        console.print(f"[red]✗[/red] {escape(line)}", highlight=False, soft_wrap=True)
    if len(lines) > 50:
        console.print(f"… and {len(lines) - 50} more (--json lists them all)")
    for skipped in report.skipped:
        console.print(f"[yellow]skipped[/yellow] {skipped}")
    if report.ok:
        console.print("[green]the whole history verifies[/green]")
    console.print(f"anchor {anchor}  (keep it elsewhere; `qeaims audit verify --anchor {anchor}` proves later "
                  "that this history was not rewritten)", highlight=False, soft_wrap=True)


app.command("proof")(proof)  # `qeaims audit proof`, defined in `qeaims.commands.proof_cmd`
