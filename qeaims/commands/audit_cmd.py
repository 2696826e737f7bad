"""`qeaims audit events|verify`: what the chain says happened, and whether it all checks out."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from chain.audit import verify_chain_history
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.indexer import Indexer
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
def verify(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Re-check every event's ML-DSA signature, key epoch and sequence from chain data alone."""
    settings = settings_of(ctx)
    client, deployment = connect(settings)
    index = synced_index(settings, client, show_progress=not json_out)
    if json_out:
        report = verify_chain_history(index.db, chain_id=client.chain_id, ledger=deployment.event_ledger,
                                      registry=deployment.registry)
    else:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("verifying batches", total=None)
            report = verify_chain_history(
                index.db, chain_id=client.chain_id, ledger=deployment.event_ledger, registry=deployment.registry,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    index.close()
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table(title="Audit of the on-chain history", show_header=False)
        table.add_row("events", str(report.events))
        table.add_row("valid", f"[green]{report.valid}[/green]" if report.ok else f"[red]{report.valid}[/red]")
        table.add_row("invalid", str(len(report.invalid)))
        table.add_row("signed batches", str(report.batches))
        table.add_row("oracles / key epochs", f"{report.oracles} / {report.key_epochs}")
        console.print(table)
        for item in report.invalid[:20]:
            console.print(f"[red]invalid[/red] oracle {item['oracle']} seq {item['seq']} "
                          f"(batch {item['batch']}, block {item['block']}): {item['reason']}")
    if not report.ok:
        raise AuditFailed(f"{len(report.invalid)} records do not verify")
from qeaims.commands import proof_cmd as _proof_cmd  # noqa: F401  (registers `qeaims audit proof`)
