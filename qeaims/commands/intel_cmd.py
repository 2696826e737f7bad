"""`qeaims intel ...`: the indicators of compromise the sectors' quorums published, and the countermeasures in
force, as the chain says them."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from core.errors import ConfigError
from core.indicator_values import KINDS, indicator_id, normalise_value
from qeaims.commands._common import console, print_json, record_as_controller, settings_of

if TYPE_CHECKING:  # the chain client and the modules below load in the commands that use them
    from chain.countermeasures import CountermeasureRecord
    from chain.indicators import IndicatorRecord
    from intel.stix import ExportItem

T = TypeVar("T")

app = typer.Typer(help="Threat intelligence: indicators published on-chain by a sector's quorum.",
                  no_args_is_help=True)


def _from_chain(ctx: typer.Context, read: Callable[[sqlite3.Connection], T]) -> T:
    """``read`` over an index built afresh from the chain's logs (nothing local is trusted)."""
    from chain.connect import connect, contract_abis
    from chain.indexer import Indexer

    settings = settings_of(ctx)
    client, deployment = connect(settings)
    with tempfile.TemporaryDirectory(prefix="qeaims-intel-") as tmp:
        index = Indexer(Path(tmp) / "index.sqlite", client.rpc, deployment, contract_abis(),
                        max_logs_range=settings.max_logs_range)
        try:
            index.sync()
            return read(index.db)
        finally:
            index.close()


def _records(ctx: typer.Context) -> list[IndicatorRecord]:
    from chain.indicators import indicator_records

    return _from_chain(ctx, indicator_records)


def _measures(ctx: typer.Context) -> dict[str, CountermeasureRecord]:
    from chain.countermeasures import active_countermeasures

    return _from_chain(ctx, active_countermeasures)


def _row(record: IndicatorRecord) -> dict[str, Any]:
    b = record.body
    return {"id": record.id, "kind": b.get("kind"), "value": b.get("value"), "confidence": b.get("confidence"),
            "source_sector": b.get("source_sector"), "expires": b.get("expires"), "block": record.block,
            "evidence": list(record.evidence), "description": b.get("description")}


@app.command("list")
def list_(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The indicators in force now (each publication recounted), and the publications that do not count."""
    from chain.indicators import in_force

    records, measures = _records(ctx), _measures(ctx)
    active = in_force(records, datetime.now(UTC))
    refused = [r for r in records if r.reason]
    if json_out:
        print_json({"in_force": [_row(r) for r in active.values()],
                    "countermeasures": [{"id": m.id, "type": m.body.get("type"), "sector": m.body.get("sector"),
                                         "device": m.body.get("device"), "block": m.block} for m in measures.values()],
                    "not_counted": [{"oracle": r.oracle, "seq": r.seq, "block": r.block, "reason": r.reason}
                                    for r in refused]})
        return
    table = Table(title="Indicators in force")
    for column in ("kind", "value", "confidence", "from", "expires", "evidence"):
        table.add_column(column)
    for r in active.values():
        row = _row(r)
        table.add_row(str(row["kind"]), str(row["value"]), str(row["confidence"]), str(row["source_sector"]),
                      str(row["expires"])[:19], f"{len(row['evidence'])} verdicts")
    console.print(table)
    for m in measures.values():
        console.print(f"countermeasure in force: {m.id} ({m.body.get('type')}, {m.body.get('sector')}"
                      f"{', ' + str(m.body['device']) if m.body.get('device') else ''})", markup=False)
    for r in refused:
        console.print(f"not counted: block {r.block}: {r.reason}", markup=False)


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="write the bundle here (default: standard output)")] = None,
) -> None:
    """Every indicator ever published (withdrawn ones revoked), as a STIX 2.1 bundle."""
    from intel.feed import indicator_of
    from intel.stix import ExportItem, stix_bundle

    records = _records(ctx)
    latest: dict[str, ExportItem] = {}
    for record in records:
        if not record.counts:
            continue
        if record.state == "published":
            published = datetime.fromtimestamp(record.timestamp or 0, UTC)
            latest[record.id] = ExportItem(indicator_of(record), published, evidence=record.evidence)
        elif record.id in latest:
            item = latest[record.id]
            latest[record.id] = ExportItem(item.indicator, item.published_at, withdrawn=True, evidence=item.evidence)
    text = json.dumps(stix_bundle(latest.values()), indent=2, sort_keys=True)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")
        console.print(f"{len(latest)} indicators written to {out} (STIX 2.1)")


@app.command()
def withdraw(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(help=f"the indicator's kind: {', '.join(KINDS)}")],
    value: Annotated[str, typer.Option(help="its value, e.g. 10.0.0.7")],
    reason: Annotated[str, typer.Option(help="why (recorded on-chain)")] = "",
) -> None:
    """Withdraw an indicator in force (the control room's order, signed by the controller's identity)."""
    from chain.indicators import in_force

    if kind not in KINDS:
        raise ConfigError(f"unknown indicator kind {kind!r}: choose one of {', '.join(KINDS)}")
    try:
        ident = indicator_id(kind, normalise_value(kind, value))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not reason.strip():
        raise ConfigError("say why with --reason (it goes on-chain)")
    records = _records(ctx)
    now = datetime.now(UTC)
    if ident not in in_force(records, now):
        ever = [r for r in records if r.id == ident and r.counts and r.state == "published"]
        expired = ever and (ever[-1].expires() or now) <= now
        raise ConfigError(f"indicator {kind} {value} " + (
            f"expired at {ever[-1].expires()}: nothing to withdraw" if expired else "is not in force"))
    seq = record_as_controller(settings_of(ctx), "indicator", "intel", {"state": "withdrawn", "id": ident, "reason": reason[:280]})
    console.print(f"indicator {kind} {value} withdrawn (controller event {seq})")


@app.command()
def lift(
    ctx: typer.Context,
    countermeasure: Annotated[str, typer.Argument(help="the countermeasure's id (see `qeaims intel list`)")],
    reason: Annotated[str, typer.Option(help="why: the repair done, or the order given (recorded on-chain)")] = "",
) -> None:
    """Lift a countermeasure in force (a device's quarantine, a sector's safe mode): the control room's order
    after the repair, signed by the controller's identity."""
    if not reason.strip():
        raise ConfigError("say why with --reason (it goes on-chain)")
    active = _measures(ctx)
    if countermeasure not in active:
        raise ConfigError(f"no countermeasure {countermeasure!r} is in force"
                          + (f" (in force: {', '.join(sorted(active))})" if active else ""))
    sector = str(active[countermeasure].body.get("sector", ""))
    seq = record_as_controller(settings_of(ctx), "countermeasure", sector or "intel",
                             {"state": "lifted", "id": countermeasure, "reason": reason[:280]})
    console.print(f"countermeasure {countermeasure} lifted (controller event {seq})")
