"""`qeaims bench vault`: records written and read per second through the vault service, on a private Anvil.

What is measured is what production runs: `VaultService.write_many` (seal, store, commit on-chain in
one flush per group of writes) and `VaultService.read` one read at a time (each read recorded on
the chain and confirmed *before* its content is released, so a read costs a signed transaction and
its receipt), then `verify_vault` over the lot from a fresh index. The chain is an embedded Anvil
mining on demand in a temporary home, so the figures are the service's and the chain client's, not a
block time's.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from chain.connect import contract_abis
from chain.deploy import deploy_dev_consortium
from chain.indexer import Indexer
from chain.node import start_anvil, stop_anvil
from core.config import load_settings
from core.errors import QeaimsError
from vaults.local import open_vault
from vaults.reader_keys import ReaderKey
from vaults.verify import verify_vault

__all__ = ["VaultBenchResult", "run_vault_bench"]


@dataclass(frozen=True)
class VaultBenchResult:
    records: int
    reads: int
    record_bytes: int
    write_batch: int
    writes_per_second: float
    reads_per_second: float
    read_p50_ms: float
    read_p95_ms: float
    verify_seconds: float
    verified_ok: bool

    def as_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_vault_bench(*, records: int, reads: int, record_bytes: int = 512, write_batch: int = 100,
                    progress: Callable[[str, int, int], None] | None = None) -> VaultBenchResult:
    step = progress or (lambda _what, _done, _total: None)
    with tempfile.TemporaryDirectory(prefix="qeaims-vault-bench-") as home:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        settings = load_settings(home=Path(home), rpc_port=port, scrypt_n=1024)
        start_anvil(settings)
        try:
            step("deploying the development consortium", 0, 1)
            client, deployment = deploy_dev_consortium(settings)
            service = open_vault(settings, client, deployment, "healthcare")
            custodian = ReaderKey.generate("healthcare", "custodian", "custodian")
            reader = ReaderKey.generate("healthcare", "clinician", "reader")
            service.create(custodian)
            service.grant(custodian, reader)
            body = (b"admission record " * (record_bytes // 17 + 1))[:record_bytes]
            began = time.monotonic()
            for start in range(0, records, write_batch):
                group = [(f"rec-{i}", body) for i in range(start, min(records, start + write_batch))]
                service.write_many(custodian, group)
                step("writing", start + len(group), records)
            write_s = time.monotonic() - began
            latencies: list[float] = []
            began = time.monotonic()
            for i in range(reads):
                at = time.monotonic()
                if service.read(reader, f"rec-{i % records}", "benchmark").content != body:
                    raise QeaimsError(f"record rec-{i % records} read back wrong")
                latencies.append(time.monotonic() - at)
                step("reading", i + 1, reads)
            read_s = time.monotonic() - began
            step("verifying against the chain", 0, 1)
            began = time.monotonic()
            index = Indexer(Path(home) / "verify.sqlite", client.rpc, deployment, contract_abis(),
                            max_logs_range=settings.max_logs_range)
            try:
                index.sync()
                report = verify_vault(index.db, service.store, chain_id=client.chain_id,
                                      ledger=deployment.event_ledger, registry=deployment.registry)
            finally:
                index.close()
            verify_s = time.monotonic() - began
        finally:
            stop_anvil(settings)
    return VaultBenchResult(
        records=records, reads=reads, record_bytes=record_bytes, write_batch=write_batch,
        writes_per_second=records / max(write_s, 1e-9), reads_per_second=reads / max(read_s, 1e-9),
        read_p50_ms=_percentile(latencies, 0.5) * 1000, read_p95_ms=_percentile(latencies, 0.95) * 1000,
        verify_seconds=verify_s, verified_ok=report.ok and report.records == records and report.reads_on_chain == reads)
