"""`qeaims audit events|verify`: what the chain says happened, and whether it all checks out."""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from chain.audit import AuditReport, problem, verify_everything
from chain.client import ChainClient
from chain.connect import connect, contract_abis
from chain.indexer import Indexer
from core.errors import AuditFailed, ConfigError
from core.kinds import kind_by_name, kind_name
from keys.errors import KeysError
from keys.ids import from_bytes32, to_bytes32
from qeaims.commands._chain_index import synced_index
from qeaims.commands._common import check_sector, console, err_console, print_json, settings_of
from qeaims.commands.proof_cmd import proof

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


_ANCHOR = re.compile(r"^(\d+):(0x[0-9a-fA-F]{64})$")


def _anchors(values: list[str]) -> list[tuple[int, str]]:
    out = []
    for value in values:
        match = _ANCHOR.match(value.strip())
        if match is None:
            raise ConfigError(f"--anchor {value!r} must look like BLOCK:0xHASH (as a previous audit printed it)")
        out.append((int(match.group(1)), match.group(2).lower()))
    return out


def _check_anchors(client: ChainClient, anchors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Each anchor a previous audit printed must still be in the chain: a chain that no longer holds
    that block, or holds another one at that height, has had its history rewritten or cut (a dev
    chain's journal truncated and replayed, say). Nothing local can tell that; a hash kept elsewhere can."""
    problems = []
    for number, expected in anchors:
        block = client.rpc.call("eth_getBlockByNumber", [hex(number), False])
        actual = None if block is None else str(block["hash"]).lower()
        if actual != expected:
            seen = "no such block" if actual is None else f"block {number} is {actual}"
            problems.append(problem("anchor", f"the chain no longer holds block {number} as {expected} ({seen}): "
                                              "its history was rewritten or cut after that audit", number))
    return problems


def audited_anchor(db: sqlite3.Connection, client: ChainClient, head: int) -> tuple[str, list[dict[str, Any]]]:
    """The anchor of what was audited: the head block's hash as the index read the logs against it
    (its checkpoint), not as the chain says after the audit; and a finding if the chain no longer
    holds that block (its history was replaced while the audit ran, so the anchor would vouch for a
    history nobody audited)."""
    row = db.execute("SELECT hash FROM checkpoints WHERE number = ?", (head,)).fetchone()
    if row is None:
        return "", [problem("anchor", f"the index has no checkpoint for the audited head {head}", head)]
    audited = str(row[0]).lower()
    return f"{head}:{audited}", _check_anchors(client, [(head, audited)])


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
    anchors = _anchors(anchor or [])
    settings = settings_of(ctx)
    client, deployment = connect(settings)
    with Progress(console=err_console, transient=True, disable=json_out) as bar:
        task = bar.add_task("indexing chain logs", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total or None)

        with tempfile.TemporaryDirectory(prefix="qeaims-audit-") as tmp:
            index = Indexer(Path(tmp) / "index.sqlite", client.rpc, deployment, contract_abis())
            try:
                head = index.sync(lambda done, total: step("indexing chain logs", done, total)).to_block
                report = verify_everything(index.db, client, deployment, head=head, progress=step)
                head_anchor, moved = audited_anchor(index.db, client, head)
            finally:
                index.close()
    report.problems += moved + _check_anchors(client, anchors)
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
