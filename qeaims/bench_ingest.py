"""`qeaims bench ingest`: sensor readings per second taken in, checked, Merkle-batched and anchored.

What is measured, in the benchmark's own (oracle) process: chunks of samples arrive from producer
processes; each sample is checked (a sensor of the catalogue, whose ids were validated once as a
`Reading` would validate them; a finite value; a time in range), encoded as its canonical JSON
body, leaf-hashed, and committed to the oracle's `TelemetryStore` (SQLite WAL, ``synchronous=FULL``):
a reading counts as taken in when that commit returns. A second thread seals full batches into
Merkle roots and anchors each as one hybrid-signed ``telemetry-root`` event on the embedded Anvil.
The anchoring lag of a reading runs from its commit to the return of the `anchor` call that
confirmed its batch's event (an upper bound: the receipt came a little earlier).

Not measured: generating the samples (a city-like catalogue with daily profiles and sensor noise,
in separate producer processes, which do use the same cores) and the wire format they would arrive
in (MQTT/Modbus parsing is `oracles.ingest`'s job). At the end every batch root is read back from
the chain's logs and compared with the store's; the result says how many matched.
"""

from __future__ import annotations

import bisect
import math
import multiprocessing as mp
import os
import queue
import resource
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chain.connect import connect, contract_abis
from chain.deploy import deploy_dev_consortium, dev_oracle
from chain.indexer import Indexer
from chain.node import start_anvil, stop_anvil
from chain.outbox import EventOutbox
from chain.recorder import EventRecorder
from core.config import Settings, load_settings
from core.errors import QeaimsError
from oracles.hashing import NATIVE
from oracles.telemetry import TELEMETRY_ROOT, EncodedReadings, SensorCatalogue, TelemetryStore

__all__ = ["IngestBenchResult", "city_sensors", "result_dict", "run_ingest_bench", "run_ingest_on"]

WARMUP_S = 1.0
BACKLOG_BATCHES = 3

# sector, asset prefix, asset count, quantity, unit, base, daily swing, noise sd, decimals
_PROFILES: tuple[tuple[str, str, int, str, str, float, float, float, int], ...] = (
    ("electricity", "bus-", 33, "voltage_pu", "pu", 0.975, 0.015, 0.002, 4),
    ("electricity", "line-", 32, "current_ka", "kA", 0.12, 0.05, 0.004, 4),
    ("electricity", "load-", 32, "p_mw", "MW", 0.11, 0.05, 0.003, 4),
    ("water", "junction:", 90, "pressure", "m", 42.0, 6.0, 0.3, 2),
    ("water", "pipe:", 110, "flow", "m3/s", 0.035, 0.015, 0.001, 5),
    ("water", "tank:", 3, "level", "m", 6.5, 1.5, 0.02, 3),
    ("water", "pump:", 2, "flow", "m3/s", 0.21, 0.06, 0.004, 4),
    ("sewage", "junction:J", 24, "depth", "m", 0.8, 0.4, 0.02, 3),
    ("sewage", "conduit:C", 24, "flow", "m3/s", 0.25, 0.12, 0.01, 4),
    ("sewage", "storage:ST", 2, "level", "m", 1.9, 0.6, 0.03, 3),
    ("transportation", "link:n0", 48, "occupancy", "%", 18.0, 12.0, 2.5, 1),
    ("transportation", "link:n1", 48, "flow", "veh/h", 520.0, 300.0, 40.0, 0),
    ("healthcare", "hospital-", 4, "beds_occupied", "beds", 310.0, 25.0, 3.0, 0),
    ("healthcare", "icu-", 4, "oxygen_pressure", "bar", 4.2, 0.1, 0.02, 3),
    ("banking", "branch-", 12, "tx_rate", "tx/s", 140.0, 90.0, 12.0, 1),
    ("banking", "atm-", 40, "latency", "ms", 180.0, 40.0, 15.0, 1),
)


def city_sensors() -> tuple[list[tuple[str, str, str, str, str]], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The benchmark city's sensors and, per sensor, base value, daily swing, noise and decimals."""
    sensors: list[tuple[str, str, str, str, str]] = []
    params: list[tuple[float, float, float, int]] = []
    for sector, prefix, count, quantity, unit, base, swing, noise, decimals in _PROFILES:
        for k in range(1, count + 1):
            asset = f"{prefix}{k}" if not prefix.startswith("link:") else f"{prefix}{k % 10}-n{(k * 7) % 16:02d}"
            sensors.append((sector, asset, f"{asset}/{quantity}", quantity, unit))
            params.append((base * (1 + 0.1 * math.sin(k)), swing, noise, decimals))
    base_arr, swing_arr, noise_arr, dec_arr = (np.array(col) for col in zip(*params, strict=True))
    return sensors, base_arr, swing_arr, noise_arr, dec_arr.astype(np.int64)


def _producer(worker: int, workers: int, chunk: int, stop: Any, out: Any) -> None:
    """Sweep this worker's share of the sensors, each sample a daily profile plus noise, until told to stop."""
    os.nice(10)  # the load generator yields to the oracle's processes
    sensors, base, swing, noise, decimals = city_sensors()
    mine = np.arange(worker, len(sensors), workers)
    rng = np.random.default_rng(worker)
    phase = rng.uniform(0, 2 * np.pi, len(sensors))
    scale = 10.0 ** decimals
    offset = 0
    start_ms = time.time_ns() // 1_000_000
    while not stop.is_set():
        position = offset + np.arange(chunk)
        ix = mine[position % len(mine)]
        offset += chunk
        now_ms = time.time_ns() // 1_000_000
        day = (now_ms % 86_400_000) / 86_400_000
        raw = base[ix] + swing[ix] * np.sin(2 * np.pi * day + phase[ix]) + noise[ix] * rng.standard_normal(chunk)
        values = np.round(raw * scale[ix]) / scale[ix]
        # Sweep k of the sensors is stamped start + k ms: each (sensor, time) once, as a real device
        # sends it (the store keeps one reading per sensor and field time and drops repeats).
        times = (start_ms + position // len(mine)).astype(np.int64)
        try:
            out.put((ix.astype(np.int32), values, times), timeout=0.5)
        except queue.Full:
            continue


def _checker(stop: Any, samples: Any, encoded: Any, reports: Any) -> None:
    """One of the oracle's checker processes: check and encode groups of samples, pass them on to store."""
    os.nice(5)  # throughput work: the storing and anchoring process, whose lag is measured, goes first
    catalogue = SensorCatalogue(city_sensors()[0])  # each checker validates the sensors itself
    try:
        while not stop.is_set():
            try:
                parts = [samples.get(timeout=0.5)]
            except queue.Empty:
                continue
            while len(parts) < 4:  # group commit: whatever is waiting, up to four chunks a transaction
                try:
                    parts.append(samples.get_nowait())
                except queue.Empty:
                    break
            ix, values, times = (np.concatenate(col) for col in zip(*parts, strict=True))
            try:
                group: object = catalogue.encode(ix, values, times)
            except ValueError as exc:
                group = f"samples refused: {exc}"
            while not stop.is_set():
                try:
                    encoded.put(group, timeout=0.5)
                    break
                except queue.Full:
                    continue
    finally:
        reports.put(_cpu())


@dataclass(frozen=True)
class IngestBenchResult:
    readings_per_second: float
    anchor_lag_p50_s: float
    anchor_lag_p95_s: float
    anchor_lag_max_s: float
    readings: int
    batches: int
    roots_on_chain: int
    seconds: float
    batch_size: int
    producers: int
    checkers: int
    intake_threads: int
    chunk: int
    sensors: int
    native_keccak: bool
    oracle_cpu_s: float
    checker_cpu_s: float
    cores: int
    load_average_1m: float
    measured: str


def _weighted(samples: list[tuple[float, int]], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    total = sum(n for _, n in ordered)
    target, seen = q * total, 0
    for lag, n in ordered:
        seen += n
        if seen >= target:
            return lag
    return ordered[-1][0]


class _Anchorer(threading.Thread):
    """Seals and anchors batches as they fill; notes when each prefix of the readings was confirmed."""

    def __init__(self, store: TelemetryStore, recorder: EventRecorder) -> None:
        super().__init__(name="anchorer", daemon=True)
        self.store, self.recorder = store, recorder
        self.finish = threading.Event()
        self.confirmed: list[tuple[int, float]] = []  # (every reading up to this arrival number, confirmed at)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                final = self.finish.is_set()
                if final or self.store.pending_count() >= self.store.batch_size or self.store.due():
                    self.store.anchor(self.recorder, force=final)
                    top = self.store.sealed_through
                    if not self.confirmed or top > self.confirmed[-1][0]:
                        self.confirmed.append((top, time.monotonic()))
                    if final:
                        return
                else:
                    time.sleep(0.002)
        except (QeaimsError, RuntimeError, OSError, sqlite3.Error) as exc:  # the main thread raises it
            self.error = exc

    def lags(self, accepted: list[tuple[int, int, float]]) -> list[tuple[float, int]]:
        """(lag, readings) for each run of accepted readings confirmed by one anchoring."""
        tops = [top for top, _ in self.confirmed]
        out: list[tuple[float, int]] = []
        for first, count, t_ack in accepted:
            at = first
            while at < first + count:
                k = bisect.bisect_left(tops, at)
                if k == len(tops):
                    raise QeaimsError(f"reading {at} was never anchored")
                upto = min(first + count - 1, tops[k])
                out.append((self.confirmed[k][1] - t_ack, upto - at + 1))
                at = upto + 1
        return out


class _Intake:
    """The oracle's storing side: threads that commit checked groups (each commit is durable when it
    returns, and gives the group its own contiguous arrival numbers); SQLite releases the GIL in its
    fsync, so two threads keep the disk busy while the anchoring thread gets the interpreter."""

    def __init__(self, store: TelemetryStore, encoded: Any, seconds: float,
                 progress: Callable[[float, int], None] | None) -> None:
        self.store, self.encoded, self.seconds, self.progress = store, encoded, seconds, progress
        self.accepted: list[tuple[int, int, float]] = []  # (first arrival number, count, committed at)
        self.taken = 0
        self.cpu = 0.0
        self._lock = threading.Lock()
        self._begin: float | None = None
        self._cpu_start = 0.0
        self._done = threading.Event()
        self.error: BaseException | None = None

    def run(self, threads: int, anchorer: _Anchorer) -> None:
        pool = [threading.Thread(target=self._loop, name=f"intake-{k}", daemon=True) for k in range(threads)]
        for thread in pool:
            thread.start()
        while not self._done.wait(0.1):
            if anchorer.error is not None:
                self._done.set()
        for thread in pool:
            thread.join()
        for error in (self.error, anchorer.error):
            if error is not None:
                raise error

    def _loop(self) -> None:
        try:
            while not self._done.is_set():
                self._take_one()
        except (QeaimsError, RuntimeError, OSError, sqlite3.Error) as exc:  # the caller raises it
            self.error = exc
            self._done.set()

    def _take_one(self) -> None:
        try:
            group = self.encoded.get(timeout=60)
        except queue.Empty:
            raise QeaimsError("the benchmark's producer or checker processes stopped sending") from None
        if not isinstance(group, EncodedReadings):
            raise QeaimsError(f"a checker process failed: {group}")
        # Flow control: never more than BACKLOG_BATCHES batches waiting to be sealed, so the anchoring
        # lag stays bounded and the rate measured is one the anchoring keeps up with.
        while self.store.pending_count() > BACKLOG_BATCHES * self.store.batch_size and not self._done.is_set():
            time.sleep(0.001)
        ids = self.store.add_encoded(group)
        now = time.monotonic()
        with self._lock:
            if self._begin is None:
                self._begin = now + WARMUP_S
            if now > self._begin + self.seconds:
                if not self._done.is_set():
                    self.cpu = _cpu() - self._cpu_start
                self._done.set()
            elif now >= self._begin:
                if not self.taken:
                    self._cpu_start = _cpu()
                self.accepted.append((ids.start, len(ids), now))
                self.taken += len(ids)
                if self.progress is not None:
                    self.progress(now - self._begin, self.taken)


def run_ingest_on(settings: Settings, *, seconds: float, producers: int = 1, batch_size: int = 16_384,
                  chunk: int = 2048, checkers: int = 2, threads: int = 2, sector: str = "water", index: int = 1,
                  progress: Callable[[float, int], None] | None = None) -> IngestBenchResult:
    """Run the benchmark against a running, deployed chain (the store goes under its data directory)."""
    identity = dev_oracle(settings, sector, index)
    client, deployment = connect(settings)
    outbox = EventOutbox.for_oracle(settings.outbox_dir, identity.address, deployment.deployment_id)
    recorder = EventRecorder(client, identity, outbox)
    store = TelemetryStore.for_oracle(settings.home, identity.address, batch_size=batch_size, max_age_s=1.0)
    sensors = city_sensors()[0]
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    samples: Any = ctx.Queue(maxsize=4 * (producers + checkers))
    encoded: Any = ctx.Queue(maxsize=4 * checkers)
    reports: Any = ctx.Queue()
    workers = [ctx.Process(target=_producer, args=(i, producers, chunk, stop, samples), daemon=True)
               for i in range(producers)]
    workers += [ctx.Process(target=_checker, args=(stop, samples, encoded, reports), daemon=True)
                for _ in range(checkers)]
    anchorer = _Anchorer(store, recorder)
    for worker in workers:
        worker.start()
    intake = _Intake(store, encoded, seconds, progress)
    try:
        anchorer.start()
        intake.run(threads, anchorer)
    finally:
        stop.set()
        anchorer.finish.set()
        anchorer.join(timeout=120)
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
        for q in (samples, encoded):
            q.cancel_join_thread()
    checker_cpu = 0.0
    for _ in range(checkers):
        try:
            checker_cpu += float(reports.get(timeout=1))
        except queue.Empty:
            break
    accepted, taken, cpu = intake.accepted, intake.taken, intake.cpu
    if anchorer.error is not None:
        raise anchorer.error
    batches = store.batches()
    on_chain = _roots_on_chain(settings, identity.address)
    matched = sum(1 for b in batches if b.outbox_seq is not None and on_chain.get(b.outbox_seq) == b.payload)
    store.close()
    outbox.close()
    lags = anchorer.lags(accepted)
    return IngestBenchResult(
        readings_per_second=taken / seconds,
        anchor_lag_p50_s=_weighted(lags, 0.50),
        anchor_lag_p95_s=_weighted(lags, 0.95),
        anchor_lag_max_s=max((lag for lag, _ in lags), default=float("nan")),
        readings=taken, batches=len(batches), roots_on_chain=matched, seconds=seconds, batch_size=batch_size,
        producers=producers, checkers=checkers, intake_threads=threads, chunk=chunk, sensors=len(sensors), native_keccak=NATIVE, oracle_cpu_s=round(cpu, 2), checker_cpu_s=round(checker_cpu, 2),
        cores=os.cpu_count() or 1, load_average_1m=round(os.getloadavg()[0], 2),
        measured=("readings per second committed (WAL, synchronous=FULL) by the oracle after its checker processes "
                  "checked, encoded and leaf-hashed them; batches sealed and anchored on-chain by its anchoring "
                  f"thread, intake pausing while over {BACKLOG_BATCHES} batches wait to be sealed; lag = commit to "
                  "confirmed anchor. Sample generation (producer processes) is not counted but shares the same "
                  "cores; oracle_cpu_s is the storing+anchoring process during the window, checker_cpu_s the "
                  "checkers over the whole run"),
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _roots_on_chain(settings: Settings, address: str) -> dict[int, bytes]:
    """seq → payload of the oracle's telemetry-root events, read back from the chain's logs."""
    client, deployment = connect(settings)
    index = Indexer(settings.index_path, client.rpc, deployment, contract_abis(),
                    max_logs_range=settings.max_logs_range)
    try:
        index.sync()
        rows = index.db.execute("SELECT seq, payload FROM events WHERE oracle = ? AND kind = ?",
                                (address.lower(), TELEMETRY_ROOT)).fetchall()
    finally:
        index.close()
    return {int(seq): bytes(payload) for seq, payload in rows}


def run_ingest_bench(*, seconds: float, producers: int = 1, batch_size: int = 16_384, chunk: int = 2048,
                     checkers: int = 2, threads: int = 2, progress: Callable[[float, int], None] | None = None) -> IngestBenchResult:
    """Start a private embedded Anvil and dev consortium in a temporary directory and run the benchmark."""
    with tempfile.TemporaryDirectory(prefix="qeaims-bench-") as home:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        settings = load_settings(home=Path(home), rpc_port=port, scrypt_n=1024)
        start_anvil(settings)
        try:
            deploy_dev_consortium(settings)
            return run_ingest_on(settings, seconds=seconds, producers=producers, batch_size=batch_size,
                                 chunk=chunk, checkers=checkers, threads=threads, progress=progress)
        finally:
            stop_anvil(settings)


def result_dict(result: IngestBenchResult) -> dict[str, Any]:
    return asdict(result)

