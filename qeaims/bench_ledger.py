"""`qeaims bench ledger`: sustained hybrid-signed events recorded per second on the embedded chain.

The benchmark starts its own Anvil (with its journal keeper) in a temporary data directory, so
its hundreds of thousands of events never land in your chain, deploys the development consortium,
and runs one process per oracle, as production does: each writes events ahead to its outbox,
signs each batch with ML-DSA-65, sends it from its secp256k1 account with a bounded in-flight
window and waits for the receipt. An event counts only once its receipt is in. Latency is per
batch, from submission to receipt.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from chain.connect import connect
from chain.consortium import sectors
from chain.deploy import deploy_dev_consortium, dev_oracle
from chain.node import start_anvil, stop_anvil
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from core.config import Settings, load_settings
from core.errors import QeaimsError
from keys.ids import to_bytes32

__all__ = ["LedgerBenchResult", "run_ledger_bench"]


@dataclass(frozen=True)
class LedgerBenchResult:
    events_per_second: float
    latency_p50_s: float
    latency_p95_s: float
    events: int
    batches: int
    seconds: float
    oracles: int
    batch_size: int
    payload_bytes: int
    gas_per_event: float


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _oracle_worker(settings: Settings, sector: str, index: int, batch_size: int, payload_bytes: int,
                   stop_at: float, results: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        _record_until(settings, sector, index, batch_size, payload_bytes, stop_at, results)
    except QeaimsError as exc:
        results.put(("error", 0, 0.0, 0.0, f"oracle {sector}-{index}: {exc}"))
        return
    results.put(("done", 0, 0.0, 0.0, ""))


def _record_until(settings: Settings, sector: str, index: int, batch_size: int, payload_bytes: int,
                  stop_at: float, results: mp.Queue) -> None:  # type: ignore[type-arg]
    identity = dev_oracle(settings, sector, index)
    client, deployment = connect(settings)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    recorder = EventRecorder(client, identity, outbox)
    node = to_bytes32("bench-node")
    payload = os.urandom(payload_bytes // 2).hex().encode()[:payload_bytes]
    window = client.inflight_per_sender
    while time.monotonic() < stop_at:
        # keep a full window of batches waiting, so the chain never idles between them
        outbox.append_many((0, node, payload) for _ in range(batch_size * window))
        report = recorder.flush(max_batch=batch_size,
                                on_confirmed=lambda n, latency: results.put(("batch", n, latency, time.monotonic(), "")))
        if report.last_receipt is not None:
            results.put(("gas", int(report.last_receipt["gasUsed"], 16), batch_size, 0.0, ""))
    outbox.close()


def run_ledger_bench(
    *,
    seconds: float,
    oracles: int = 4,
    batch_size: int = 500,
    payload_bytes: int = 64,
    progress: Callable[[float, int], None] | None = None,
) -> LedgerBenchResult:
    with tempfile.TemporaryDirectory(prefix="qeaims-bench-") as home:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        settings = load_settings(home=Path(home), rpc_port=port, scrypt_n=1024, inflight_per_sender=4)
        start_anvil(settings)
        try:
            deploy_dev_consortium(settings)
            ctx = mp.get_context("spawn")
            results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
            warmup_s = 3.0
            begin = time.monotonic()
            stop_at = begin + warmup_s + seconds
            workers = [
                ctx.Process(target=_oracle_worker, args=(settings, sectors()[i % len(sectors())], 1 + i // len(sectors()),
                                                         batch_size, payload_bytes, stop_at, results))
                for i in range(oracles)
            ]
            for worker in workers:
                worker.start()
            measured_from = begin + warmup_s
            events = batches = 0
            latencies: list[float] = []
            gas: list[float] = []
            done = 0
            while done < len(workers):
                try:
                    kind, n, value, at, message = results.get(timeout=120)
                except queue.Empty:
                    raise QeaimsError("the benchmark's oracle processes stopped answering") from None
                if kind == "error":
                    for worker in workers:
                        worker.terminate()
                    raise QeaimsError(message)
                if kind == "done":
                    done += 1
                elif kind == "gas":
                    gas.append(n / value)
                elif measured_from <= at <= stop_at:
                    events += n
                    batches += 1
                    latencies.append(value)
                    if progress is not None:
                        progress(at - measured_from, events)
            for worker in workers:
                worker.join(timeout=30)
        finally:
            stop_anvil(settings)
    return LedgerBenchResult(
        events_per_second=events / seconds,
        latency_p50_s=_percentile(latencies, 0.50),
        latency_p95_s=_percentile(latencies, 0.95),
        events=events,
        batches=batches,
        seconds=seconds,
        oracles=oracles,
        batch_size=batch_size,
        payload_bytes=payload_bytes,
        gas_per_event=statistics.fmean(gas) if gas else float("nan"),
    )


def result_dict(result: LedgerBenchResult) -> dict[str, float | int]:
    return asdict(result)
