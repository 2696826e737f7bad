"""`qeaims bench ...`: benchmarks that print figures (never run as timed tests)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.config import Settings
from core.errors import ConfigError
from qeaims.commands._common import console, err_console, print_json, settings_of

app = typer.Typer(help="Benchmarks: measured figures, printed as tables or JSON.", no_args_is_help=True)


@app.command()
def ledger(
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="measured duration (after a 3 s warm-up)")] = 60,
    oracles: Annotated[int, typer.Option(min=1, max=24, help="oracle processes recording at once")] = 4,
    batch: Annotated[int, typer.Option(min=1, max=512, help="events per transaction (at most; the ledger also bounds bytes)")] = 500,
    payload_bytes: Annotated[int, typer.Option(min=0, max=4096, help="payload size per event")] = 64,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sustained hybrid-signed events recorded per second on a private embedded Anvil."""
    from qeaims.bench_ledger import result_dict, run_ledger_bench

    with Progress(TextColumn("recording"), BarColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("bench", total=seconds, rate="starting chain and consortium")

        def update(elapsed: float, events: int) -> None:
            bar.update(task, completed=elapsed, rate=f"{events / max(elapsed, 1e-9):,.0f} events/s")

        result = run_ledger_bench(seconds=seconds, oracles=oracles, batch_size=batch, payload_bytes=payload_bytes,
                                  progress=update)
    data = result_dict(result)
    if json_out:
        print_json(data)
        return
    table = Table(title="Ledger benchmark (embedded Anvil)", show_header=False)
    table.add_row("events/s", f"{result.events_per_second:,.0f}")
    table.add_row("submit→receipt p50 / p95", f"{result.latency_p50_s:.3f} s / {result.latency_p95_s:.3f} s")
    for key in ("events", "batches", "seconds", "oracles", "batch_size", "payload_bytes"):
        table.add_row(key, str(data[key]))
    table.add_row("gas per event", f"{result.gas_per_event:,.0f}")
    console.print(table)


@app.command()
def ingest(
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="measured duration (after a 1 s warm-up)")] = 60,
    producers: Annotated[int, typer.Option(min=1, max=8, help="processes generating sensor samples")] = 1,
    batch_size: Annotated[int, typer.Option(min=16, max=262_144, help="readings per Merkle root")] = 16_384,
    chunk: Annotated[int, typer.Option(min=64, max=16_384, help="samples per chunk a producer sends")] = 2048,
    checkers: Annotated[int, typer.Option(min=1, max=8, help="oracle processes checking and hashing samples")] = 2,
    threads: Annotated[int, typer.Option(min=1, max=16, help="oracle threads committing checked groups")] = 2,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Sensor readings per second taken in, checked, stored, Merkle-batched and anchored on a private Anvil."""
    from qeaims import bench_ingest  # imported when run: the benchmarks pull in the twins and the detectors
    with Progress(TextColumn("ingesting"), BarColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("bench", total=seconds, rate="starting chain, consortium and producers")

        def update(elapsed: float, readings: int) -> None:
            bar.update(task, completed=elapsed, rate=f"{readings / max(elapsed, 1e-9):,.0f} readings/s")

        result = bench_ingest.run_ingest_bench(seconds=seconds, producers=producers, batch_size=batch_size,
                                               chunk=chunk, checkers=checkers, threads=threads,
                                               progress=update)
    data = bench_ingest.result_dict(result)
    if json_out:
        print_json(data)
        return
    table = Table(title="Ingest benchmark (embedded Anvil)", show_header=False)
    table.add_row("readings/s", f"{result.readings_per_second:,.0f}")
    table.add_row("anchoring lag p50 / p95 / max",
                  f"{result.anchor_lag_p50_s:.3f} s / {result.anchor_lag_p95_s:.3f} s / {result.anchor_lag_max_s:.3f} s")
    table.add_row("batch roots on-chain", f"{result.roots_on_chain} of {result.batches}")
    for key in ("readings", "seconds", "batch_size", "producers", "checkers", "intake_threads", "chunk", "sensors",
                "native_keccak", "oracle_cpu_s", "checker_cpu_s", "cores", "load_average_1m"):
        table.add_row(key, str(data[key]))
    console.print(table)
    err_console.print(f"measured: {result.measured}")


@app.command()
def heal(
    runs: Annotated[int, typer.Option(min=1, max=1000, help="faults injected, one after another")] = 10,
    sector: Annotated[str, typer.Option(help="the live twin to break (electricity: FLISR on IEEE 33-bus)")]
    = "electricity",
    speed: Annotated[float, typer.Option(min=1, max=3600, help="twin seconds per wall second")] = 300,
    timeout: Annotated[float, typer.Option(min=5, max=3600, help="seconds a run may take before it counts as "
                                                                  "missed")] = 60,
    train_rows: Annotated[int | None, typer.Option(min=32, max=100_000, help="rows of normal operation to train "
                                                   "on (default: the sector's training plan)")] = None,
    links: Annotated[bool, typer.Option(help="every link encrypted (hybrid QKD + ML-KEM-768 + X25519, a KME in "
                                             "the bench), as `qeaims up` runs them")] = True,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fault onset → quorum isolation on-chain → service restored, over injected faults on a private Anvil."""
    from core.messages import Sector
    from qeaims import bench_heal
    from sectors.runner import parse_sector

    chosen = parse_sector(sector)
    if chosen not in bench_heal.FAULTS:
        raise ConfigError(f"--sector: bench heal runs on {', '.join(s.value for s in bench_heal.FAULTS)}, "
                          f"not {chosen.value}")
    options = bench_heal.HealOptions(runs=runs, sector=Sector(chosen), speed=speed, run_timeout_s=timeout,
                                      train_rows=train_rows, links=links)
    with Progress(TextColumn("healing"), BarColumn(), TextColumn("{task.fields[what]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("bench", total=runs, what="starting")

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, what=what)

        result = bench_heal.run_heal_bench(options, progress=update)
    data = bench_heal.result_dict(result)
    if json_out:
        print_json(data)
        return
    table = Table(title=f"Self-healing benchmark ({result.sector} twin, embedded Anvil)", show_header=False)
    table.add_row("fault → verdict on-chain p50 / p95",
                  f"{result.detection_p50_s:.2f} s / {result.detection_p95_s:.2f} s")
    table.add_row("fault → quorum isolation p50 / p95",
                  f"{result.isolation_p50_s:.2f} s / {result.isolation_p95_s:.2f} s (target p95 ≤ 2 s)")
    table.add_row("fault → service restored p50 / p95",
                  f"{result.restore_p50_s:.2f} s / {result.restore_p95_s:.2f} s")
    for key in ("injected", "detected", "isolated", "restored", "missed", "wrongful_isolations", "mislocated",
                "speed", "report_period_s", "oracles", "links", "training_s", "cores", "load_average_1m"):
        table.add_row(key, str(data[key]))
    console.print(table)


@app.command()
def links(
    messages: Annotated[int, typer.Option(min=10, max=1_000_000, help="messages through the broker, each way")]
    = 2000,
    payload_bytes: Annotated[int, typer.Option(min=64, max=262_144, help="size of each message")] = 2048,
    kme_seconds: Annotated[float, typer.Option(min=1, max=600, help="how long to draw keys from the KME")] = 5.0,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What the secure links cost: seal+open per message, end to end through the broker, KME keys/s."""
    from qeaims.bench_links import run_links_bench

    with err_console.status("starting") as status:
        result = run_links_bench(messages=messages, payload_bytes=payload_bytes, kme_seconds=kme_seconds,
                                 say=status.update)
    if json_out:
        print_json(result)
        return
    table = Table(title="Secure links benchmark", show_header=False)
    for section in ("channel", "kme"):
        for key, value in result[section].items():
            table.add_row(f"{section} {key}", str(value))
    mqtt = result["mqtt"]
    for way in ("plaintext", "hybrid"):
        m = mqtt[way]
        table.add_row(f"through the broker, {way}", f"{m['messages_per_s']:,.0f} msg/s, latency p50 "
                      f"{m['latency_p50_ms']:.2f} ms, p95 {m['latency_p95_ms']:.2f} ms")
    table.add_row("added by the links p50 / p95", f"{mqtt['added_latency_p50_ms']:.2f} ms / "
                  f"{mqtt['added_latency_p95_ms']:.2f} ms (session mode {mqtt['mode']})")
    console.print(table)


def _api_target(settings: Settings, url: str | None, token: str | None) -> tuple[str, str]:
    """The URL and token: as given, else the running city's (`qeaims up` records its API and writes
    development tokens), else the default port and $QEAIMS_API_TOKEN."""
    import json
    import os

    from qeaims.supervisor import read_status

    if url is None:
        url = str((read_status(settings) or {}).get("api") or "http://127.0.0.1:8080")
    token = token or os.environ.get("QEAIMS_API_TOKEN")
    if token is None:
        try:
            tokens = json.loads((settings.home / "api" / "dev-tokens.json").read_text())["tokens"]
            token = next(t["token"] for t in tokens if t["role"] == "auditor")
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            token = ""
    return url, token


@app.command()
def api(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="the API's base URL, on this machine (default: the running "
                                                 "city's, else http://127.0.0.1:8080)")] = None,
    token: Annotated[str | None, typer.Option(help="an auditor's token (default: $QEAIMS_API_TOKEN, else the "
                                                   "city's development auditor token)")] = None,
    rate: Annotated[float, typer.Option(min=1, max=2000, help="requests per second, open loop, both "
                                                              "endpoints together")] = 200,
    seconds: Annotated[float, typer.Option(min=1, max=300, help="how long to send")] = 30,
    json_out: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Latency of GET /events?limit=100 and GET /events/{block}/{log_index} under an open-loop load (loopback only)."""
    from qeaims import bench_api

    settings = settings_of(ctx)
    base, bearer = _api_target(settings, url, token)
    options = bench_api.check_options(bench_api.ApiBenchOptions(url=base, token=bearer, rate=rate, seconds=seconds))
    with Progress(TextColumn("loading"), BarColumn(), TextColumn("{task.fields[sent]}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("bench", total=seconds, sent="sampling events")

        def update(elapsed: float, sent: int) -> None:
            bar.update(task, completed=elapsed, sent=f"{sent:,} requests sent")

        result = bench_api.run_api_bench(options, progress=update)
    data = bench_api.result_dict(result)
    if json_out:
        print_json(data)
        return
    table = Table(title=f"API benchmark: GET {data['url']}/api/v1/…, open loop at {rate:g} req/s for {seconds:g} s",
                  caption="latency counted from each request's due time")
    for column in ("endpoint", "sent", "ok", "errors", "rate /s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("endpoint", "errors") else "right")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for name, row in data["endpoints"].items():
        errors = ", ".join(f"{what} ×{n}" for what, n in row["errors"].items()) or "0"
        table.add_row(name, str(row["sent"]), str(row["ok"]), errors, f"{row['rate']:.1f}",
                      ms(row["p50_ms"]), ms(row["p95_ms"]), ms(row["p99_ms"]))
    console.print(table)
    console.print(f"achieved {data['achieved_rate']:.1f} req/s of {rate:g}; {data['sampled_events']} events "
                  f"sampled; the generator's own worst dispatch lag {data['max_dispatch_lag_ms']:.1f} ms")
