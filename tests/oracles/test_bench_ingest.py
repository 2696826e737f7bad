"""qeaims.bench_ingest against a real Anvil: it reports figures, and everything it counted is on-chain.

Behaviour only: the figures must be positive and consistent, never fast enough (no wall-clock checks).
"""

from __future__ import annotations

import math
import random

from core.messages import Reading
from oracles.telemetry import TelemetryStore, decode_root_payload
from qeaims.bench_ingest import city_sensors, result_dict, run_ingest_on
from tests.chain.test_ledger_and_audit import audit
from tests.oracles.test_telemetry import chain_roots
from tests.support import oracle


def test_the_city_catalogue_is_made_of_valid_readings() -> None:
    sensors, base, swing, noise, decimals = city_sensors()
    assert len(sensors) == len(base) == len(swing) == len(noise) == len(decimals) > 300
    assert len({s[2] for s in sensors}) == len(sensors), "sensor ids are unique"
    assert {s[0] for s in sensors} == {"electricity", "water", "sewage", "transportation", "healthcare", "banking"}
    for sector, asset, sensor, quantity, unit in sensors:
        Reading.model_validate({"sector": sector, "asset_id": asset, "sensor_id": sensor, "quantity": quantity,
                                "unit": unit, "value": 1.0, "timestamp": "2026-11-26T05:00:00Z"})


def test_bench_reports_figures_and_every_root_it_anchored_is_on_chain(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    result = run_ingest_on(chain.settings, seconds=2, batch_size=2048, chunk=256, checkers=1, threads=1,
                           sector="water", index=1)
    data = result_dict(result)
    assert data["readings_per_second"] > 0 and data["readings"] > 0 and data["seconds"] == 2
    assert 0 < data["anchor_lag_p50_s"] <= data["anchor_lag_p95_s"] <= data["anchor_lag_max_s"]
    assert data["batches"] >= 1 and data["roots_on_chain"] == data["batches"]
    assert data["oracle_cpu_s"] >= 0 and data["checker_cpu_s"] > 0 and not math.isnan(data["anchor_lag_p95_s"])

    # Check it independently: the store the benchmark left, against the chain's own logs.
    ident = oracle(chain.settings, "water", 1)
    store = TelemetryStore.for_oracle(chain.settings.home, ident.address, batch_size=2048)
    batches = store.batches()
    assert len(batches) == result.batches and store.pending_count() == 0
    assert sum(b.count for b in batches) >= result.readings, "every reading counted was stored and batched"
    on_chain = chain_roots(chain, ident.address)
    assert len(on_chain) == len(batches)
    assert int(chain.client.call1("EventLedger", "lastSeq", ident.address)) == len(batches)
    for b in batches:
        assert b.outbox_seq is not None and on_chain[b.outbox_seq] == b.payload
    rng = random.Random(4)
    for b in rng.sample(batches, min(3, len(batches))):
        proof = store.proof(f"{b.batch}:{rng.randrange(b.count)}")
        assert proof.verify(decode_root_payload(on_chain[b.outbox_seq])[1])  # type: ignore[index]
        assert proof.reading.sector.value in {"electricity", "water", "sewage", "transportation", "healthcare",
                                              "banking"}
    store.close()
    assert audit(chain).ok
