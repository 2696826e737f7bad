"""`qeaims network simulate`: the QBFT validator-network model (`chain.qbft_model`) as a table.

A plain function the `network` group registers; it needs no chain and no data directory: it runs
simulated time only (an hour of four validators takes about a tenth of a second)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from chain import qbft_model
from chain.qbft_model import (
    LEDGER_BATCH_BYTES,
    LEDGER_BATCH_EVENTS,
    LEDGER_GAS_PER_EVENT,
    LOADS,
    NETWORKS,
    QbftConfig,
    max_faulty,
    saturation_tps,
)
from core.errors import ConfigError
from qeaims.commands._common import console, print_json

__all__ = ["parse_validators", "scenarios", "simulate"]


def parse_validators(text: str) -> list[int]:
    """"4,7,10" → [4, 7, 10]; each at least 4 (QBFT with f >= 1)."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--validators takes whole numbers separated by commas, not {text!r}") from None
    if not counts:
        raise ConfigError("--validators needs at least one validator count")
    for n in counts:
        if n < 4:
            raise ConfigError(f"QBFT needs at least 4 validators to tolerate one faulty validator (f >= 1), not {n}")
        if n > 100:
            raise ConfigError(f"the model runs up to 100 validators, not {n}")
    return counts


def scenarios(down: int | None, slow: bool) -> list[tuple[int, int]]:
    """(down, slow) pairs: all up, one down and one slow unless --down or --slow names one."""
    if down is None and not slow:
        return [(0, 0), (1, 0), (0, 1)]
    return [(down or 0, 1 if slow else 0)]


def _label(down: int, slow: int) -> str:
    parts = [f"{down} down"] if down else []
    parts += [f"{slow} slow"] if slow else []
    return ", ".join(parts) or "all up"


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def simulate(
    validators: Annotated[str, typer.Option(help="validator counts to compare, comma-separated (each >= 4)")] = "4,7,10",
    down: Annotated[int | None, typer.Option(min=0, help="validators down (never propose, never vote); "
                                             "more than f stalls the chain, and the table says so")] = None,
    slow: Annotated[bool, typer.Option("--slow", help="one validator sends every message --slow-delay late")] = False,
    slow_delay: Annotated[float, typer.Option(min=0, max=60, help="a slow validator's extra delay per message (s)")] = 1.0,
    block_period: Annotated[int, typer.Option(min=1, max=60, help="blockperiodseconds")] = 2,
    request_timeout: Annotated[int, typer.Option(min=1, max=600, help="requesttimeoutseconds (round 0)")] = 4,
    network: Annotated[str, typer.Option(help="one-way delay profile: lan, metro or wan")] = "metro",
    load: Annotated[str, typer.Option(help="background transactions: idle, city (12 tx/s) or bench (the "
                                      "ledger benchmark's measured rate)")] = "city",
    hours: Annotated[float, typer.Option(min=0.01, max=48, help="simulated time per scenario")] = 1.0,
    isolations: Annotated[int, typer.Option(min=1, max=100_000, help="isolations spread over that time")] = 200,
    controller_steps: Annotated[int, typer.Option(min=1, max=10, help="controller step transactions awaited "
                                                  "one after the other after the quorum")] = 1,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same figures)")] = 0,
    saturation: Annotated[bool, typer.Option("--saturation", help="instead: the most each network sustains, "
                                             "in simple-contract tx/s (the Besu wiki's measure) and ledger events/s")] = False,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Block interval and isolation latency of a simulated Besu QBFT network (docs/qbft-model.md)."""
    counts = parse_validators(validators)
    if network not in NETWORKS:
        raise ConfigError(f"unknown --network {network!r}: choose one of {', '.join(NETWORKS)}")
    if load not in LOADS:
        raise ConfigError(f"unknown --load {load!r}: choose one of {', '.join(LOADS)}")
    if saturation:
        _saturation(counts, block_period, request_timeout, network, seed, json_out)
        return
    cases = scenarios(down, slow)
    for n in counts:
        for d, s in cases:
            if d >= n or d + s > n:
                raise ConfigError(f"{d} down and {s} slow do not fit in {n} validators")
    rows: list[dict[str, Any]] = []
    for n in counts:
        for d, s in cases:
            config = QbftConfig(validators=n, down=d, slow=s, slow_delay_s=slow_delay, block_period_s=block_period,
                                request_timeout_s=request_timeout, network=NETWORKS[network], load=LOADS[load],
                                controller_steps=controller_steps)
            result = qbft_model.simulate(config, seconds=hours * 3600, isolations=isolations, seed=seed)
            rows.append({**result.summary(), "f": max_faulty(n), "scenario": _label(d, s)})
    if json_out:
        print_json({"seed": seed, "scenarios": rows})
        return
    table = Table(caption="N validators, q quorum, f faults tolerated", title=f"Simulated Besu QBFT: blockperiod {block_period} s, request timeout {request_timeout} s, "
                        f"{network} network, {load} load, {hours:g} h and {isolations} isolations per row")
    for column in ("N/q/f", "scenario", "blocks", "round\nchanges", "interval s\nmean/p95",
                   "quorum final\ns p50/p95", "isolation\nfinal s\np50/p95"):
        table.add_column(column, justify="left" if column == "scenario" else "right", no_wrap=not column.startswith(("scenario", "isolation")),
                         min_width=8 if column == "scenario" else None)
    for row in rows:
        if row["stalled"]:
            latency = quorum_cell = "never"
        else:
            quorum_cell = f"{_s(row['quorum_p50_s'])}/{_s(row['quorum_p95_s'])}"
            latency = f"{_s(row['isolation_p50_s'])}/{_s(row['isolation_p95_s'])}"
            if row["isolations_final"] < row["isolations"]:  # the rest were still waiting when time ran out
                latency += f"\n({row['isolations_final']}/{row['isolations']} final)"
        table.add_row(f"{row['validators']}/{row['quorum']}/{row['f']}",
                      row["scenario"] + (": stalled" if row["stalled"] else ""), f"{row['blocks']:,}",
                      f"{row['round_changes']:,}", f"{_s(row['interval_mean_s'])}/{_s(row['interval_p95_s'])}",
                      quorum_cell, latency)
    console.print(table)
    console.print("quorum final: first vote sent → the block with the executing vote imported; isolation final: "
                  f"→ the controller's {controller_steps} step transaction(s) imported. A model, not a measurement.")


def _saturation(counts: list[int], block_period: int, request_timeout: int, network: str, seed: int,
                json_out: bool) -> None:
    rows = []
    for n in counts:
        config = QbftConfig(validators=n, block_period_s=block_period, request_timeout_s=request_timeout,
                            network=NETWORKS[network])
        simple = saturation_tps(config, seed=seed)
        batches = saturation_tps(config, tx_gas=LEDGER_BATCH_EVENTS * LEDGER_GAS_PER_EVENT,
                                 tx_bytes=LEDGER_BATCH_BYTES, offered_tx_per_s=100.0,
                                 seed=seed)
        rows.append({"validators": n, "simple_tx_per_s": simple, "ledger_events_per_s": batches * LEDGER_BATCH_EVENTS})
    if json_out:
        print_json({"seed": seed, "saturation": rows})
        return
    table = Table(caption="N validators, q quorum, f faults tolerated", title=f"Simulated Besu QBFT at saturation: blockperiod {block_period} s, {network} network")
    for column in ("validators", "simple-contract tx/s", f"ledger events/s ({LEDGER_BATCH_EVENTS} a batch)"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["validators"]), f"{row['simple_tx_per_s']:,.0f}", f"{row['ledger_events_per_s']:,.0f}")
    console.print(table)
