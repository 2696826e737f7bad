"""`qeaims audit events|verify`: what the chain says happened, and whether it all checks out."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from chain.audit import AuditReport, check_index_against_chain, verify_everything
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.indexer import Indexer
from chain.manifest import Deployment
from chain.registry_history import RegistryHistory
from keys.errors import KeysError
from keys.ids import from_bytes32, to_bytes32
from qeaims.commands._common import check_sector, console, err_console, print_json, settings_of
from qeaims.config import Settings
from qeaims.errors import AuditFailed, ConfigError
from qeaims.kinds import kind_by_name, kind_name

app = typer.Typer(help="Query and verify the on-chain history (auditors and regulators).", no_args_is_help=True)


def synced_index(settings: Settings, client: ChainClient, *, show_progress: bool = False) -> Indexer:
    _, deployment = connect(settings)
    index = Indexer(settings.index_path, client.rpc, deployment, contract_abis())
    if show_progress:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("indexing chain logs", total=None)
            index.sync(lambda done, total: bar.update(task, completed=done, total=total))
    else:
        index.sync()
    return index


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


def _node_name(node_hex: str) -> str:
    """A node id as its ASCII name, or as hex when it is not one (an oracle address, a hash)."""
    if node_hex == "0x" + "00" * 32:
        return ""
    try:
        return from_bytes32(bytes.fromhex(node_hex[2:]))
    except KeysError:
        return node_hex


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
    settings = settings_of(ctx)
    clauses: list[str] = ["1=1"]
    params: list[str | int] = []
    if sector is not None:
        clauses.append("k.sector = ?")
        params.append("0x" + to_bytes32(check_sector(sector)).hex())
    if node is not None:
        clauses.append("e.node = ?")
        params.append("0x" + to_bytes32(node).hex())
    if kind is not None:
        clauses.append("e.kind = ?")
        params.append(kind_by_name(kind))
    start = _since(since)
    if start is not None:
        clauses.append("e.timestamp >= ?")
        params.append(start)
    client, _ = connect(settings)
    index = synced_index(settings, client, show_progress=not json_out)
    query = (
        "SELECT e.oracle, e.seq, e.kind, e.node, e.payload, e.block, e.tx_hash, e.timestamp, k.sector, e.batch_id "
        "FROM events e LEFT JOIN oracle_keys k ON k.oracle = e.oracle AND k.epoch = 1 "
        f"WHERE {' AND '.join(clauses)} ORDER BY e.block DESC, e.log_index DESC LIMIT ?"
    )
    rows = index.db.execute(query, (*params, limit)).fetchall()[::-1]
    index.close()
    out: list[dict[str, Any]] = []
    for oracle, seq, kind_value, node_hex, payload, block, tx_hash, ts, sector_hex, batch_id in rows:
        text = bytes(payload).decode(errors="replace")
        try:
            body: Any = json.loads(text)
        except json.JSONDecodeError:
            body = text
        out.append({
            "oracle": oracle, "seq": seq, "kind": kind_name(kind_value),
            "node": _node_name(node_hex),
            "sector": from_bytes32(bytes.fromhex(sector_hex[2:])) if sector_hex else "",
            "payload": body, "block": block, "tx": tx_hash, "batch": batch_id,
            "time": datetime.fromtimestamp(ts, UTC).isoformat() if ts else None,
        })
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
    cached: Annotated[bool, typer.Option("--cached", help="reuse the cached index, if it passes the checks "
                                                          "against the chain")] = False,
    index_path: Annotated[Path | None, typer.Option("--index", help="reuse this index file, if it passes the "
                                                                      "checks against the chain")] = None,
) -> None:
    """Re-check the whole history from chain data alone: every signature, key epoch and sequence, every
    quarantine, role change, override and status change, and the index against on-chain counters.

    By default the index is built afresh from eth_getLogs in a temporary directory; nothing local is
    trusted. With --cached/--index an existing index is reused only after it matched the chain's
    counters, statuses, key epochs and block hashes; otherwise it is rebuilt.
    """
    settings = settings_of(ctx)
    client, deployment = connect(settings)
    with Progress(console=err_console, transient=True, disable=json_out) as bar:
        task = bar.add_task("indexing chain logs", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total or None)

        with tempfile.TemporaryDirectory(prefix="qeaims-audit-") as tmp:
            notes: list[str] = []
            index: Indexer | None = None
            head = 0
            if cached or index_path is not None:
                index, head, rejected = _trusted_cache(index_path or settings.index_path, client, deployment, step)
                if rejected:
                    notes.append(f"the cached index {index_path or settings.index_path} disagrees with the chain "
                                 f"({rejected[0]['message']}"
                                 + (f", and {len(rejected) - 1} more" if len(rejected) > 1 else "")
                                 + "): rebuilt from the chain")
            if index is None:
                index = Indexer(Path(tmp) / "index.sqlite", client.rpc, deployment, contract_abis())
                head = index.sync(lambda done, total: step("indexing chain logs", done, total)).to_block
            try:
                report = verify_everything(index.db, client, deployment, head=head, progress=step)
            finally:
                index.close()
    _print_report(report, notes, json_out)
    if not report.ok:
        raise AuditFailed(f"{len(report.invalid) + len(report.problems)} findings: the history does not verify")


def _trusted_cache(path: Path, client: ChainClient, deployment: Deployment,
                   step: Callable[[str, int, int], None]) -> tuple[Indexer | None, int, list[dict[str, Any]]]:
    """The cached index, synced, if it matches the chain; else (None, 0, what disagreed)."""
    index = Indexer(path, client.rpc, deployment, contract_abis())
    try:
        head = index.sync(lambda done, total: step("indexing chain logs (cached index)", done, total)).to_block
        step("checking the cached index against the chain", 0, 1)
        rejected = check_index_against_chain(index.db, client, RegistryHistory.from_db(index.db), head)
    except BaseException:
        index.close()
        raise
    if rejected:
        index.close()
        return None, 0, rejected
    return index, head, []


def _print_report(report: AuditReport, notes: list[str], json_out: bool) -> None:
    if json_out:
        print_json({**report.as_dict(), "ok": report.ok, "notes": notes})
        return
    for note in notes:
        err_console.print(f"[yellow]note[/yellow] {note}")
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


from qeaims.commands import proof_cmd as _proof_cmd  # noqa: F401  (registers `qeaims audit proof`)
