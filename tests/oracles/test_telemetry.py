"""oracles.telemetry: readings kept, batched, anchored on a real Anvil, and proven against the chain."""

from __future__ import annotations

import itertools
import json
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from chain.connect import contract_abis
from chain.indexer import Indexer
from chain.outbox import EventOutbox
from core.errors import AuditFailed, ConfigError
from core.messages import Reading, Sector
from keys.ids import to_bytes32
from oracles import hashing, telemetry
from oracles.merkle import (
    LEAF_SCHEME,
    MerkleTree,
    encode_leaf,
    keccak,
    leaf_hash,
    reading_body,
    reading_leaf,
    verify,
)
from oracles.telemetry import (
    TELEMETRY_ROOT,
    SensorCatalogue,
    TelemetryStore,
    decode_root_payload,
    parse_reading_ref,
    telemetry_path,
)
from oracles.telemetry_codec import encode_readings
from tests.chain.test_ledger_and_audit import audit
from tests.conftest import run_cli
from tests.support import opened_db, oracle, recorder

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
ADDRESS = "0x" + "ab" * 20


def readings(n: int, *, start: int = 0, assets: tuple[str, ...] = ("pump-1", "tank-2")) -> list[Reading]:
    return [Reading(sector=Sector.SEWAGE, asset_id=assets[i % len(assets)], sensor_id=f"level-{i % 3}",
                    quantity="level_m", unit="m", value=round(1.5 + (i % 17) / 10, 2),
                    timestamp=T0 + timedelta(seconds=i)) for i in range(start, start + n)]


def chain_roots(chain, address: str) -> dict[int, bytes]:  # type: ignore[no-untyped-def]
    """seq → payload of every telemetry-root event the oracle has on the chain (from the log index)."""
    index = Indexer(chain.settings.index_path, chain.client.rpc, chain.deployment, contract_abis())
    index.sync()
    try:
        rows = index.db.execute("SELECT seq, payload FROM events WHERE oracle = ? AND kind = ?",
                                (address.lower(), TELEMETRY_ROOT)).fetchall()
    finally:
        index.close()
    return {int(seq): bytes(payload) for seq, payload in rows}


# --- local behaviour (no chain) ------------------------------------------------------------------


def test_batches_close_by_count_and_by_age(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=4, max_age_s=0.2)
    assert store.add_many(readings(10)) == list(range(1, 11))
    sealed = store.seal()
    assert [b.count for b in sealed] == [4, 4] and store.pending_count() == 2 and not store.due()
    time.sleep(0.25)
    assert store.due()
    assert [(b.batch, b.count) for b in store.seal()] == [(3, 2)]
    assert store.ref_of(1) == "1:0" and store.ref_of(10) == "3:1"
    only_pumps = store.add_many(readings(4, start=10, assets=("pump-1",)))
    batch = store.seal(force=True)[0]
    assert batch.node == to_bytes32("pump-1") and store.ref_of(only_pumps[0]) == "4:0"
    assert store.batch(1) is not None and store.batch(1).node == bytes(32)  # type: ignore[union-attr]
    body = json.loads(batch.payload)
    assert body == {"batch": 4, "count": 4, "first": "2026-11-26T05:00:10.000Z", "last": "2026-11-26T05:00:13.000Z",
                    "root": "0x" + batch.root.hex(), "scheme": LEAF_SCHEME}
    assert decode_root_payload(batch.payload) == (4, batch.root)
    proof = store.proof("3:1")
    assert proof.verify() and proof.reading == readings(10)[9] and proof.seq is None
    store.close()
    reopened = TelemetryStore(tmp_path / "t.sqlite", ADDRESS.upper().replace("0X", "0x"))
    assert [b.batch for b in reopened.batches()] == [1, 2, 3, 4]
    with pytest.raises(ConfigError, match="belongs to oracle"):
        TelemetryStore(tmp_path / "t.sqlite", "0x" + "cd" * 20)


def test_leftover_readings_are_due_after_a_restart(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=100, max_age_s=3600)
    store.add_many(readings(5))
    assert not store.due()
    store.close()
    again = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=100, max_age_s=3600)
    assert again.due() and [b.count for b in again.seal()] == [5]


@pytest.mark.parametrize("ref", ["", "3", "0:1", "a:b", "1:-1", "1:2:3", "²:1", "1 : 2"])
def test_bad_reading_ids_are_refused(ref: str) -> None:
    with pytest.raises(ConfigError, match="BATCH:INDEX"):
        parse_reading_ref(ref)


def test_unknown_readings_and_unanchored_payloads(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=3)
    store.add_many(readings(3))
    store.seal()
    with pytest.raises(ConfigError, match="no batch 2"):
        store.proof("2:0")
    with pytest.raises(ConfigError, match="indexes 0..2"):
        store.proof("1:3")
    with pytest.raises(AuditFailed, match="not one this store wrote"):
        decode_root_payload(b'{"i": 1}')


def test_a_crash_between_outbox_and_store_is_adopted_not_repeated(tmp_path: Path) -> None:
    """The window no transaction covers: the root reached the outbox, the store never learnt its seq."""
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=2)
    outbox = EventOutbox(tmp_path / "outbox.sqlite", ADDRESS)
    store.add_many(readings(6))
    assert len(store.seal()) == 3
    assert store.enqueue(outbox) == 3 and [b.outbox_seq for b in store.batches()] == [1, 2, 3]
    store.add_many(readings(4, start=6))
    fourth, _ = store.seal()
    outbox.append(3, bytes(32), b'{"other":"event"}')  # the oracle's own events interleave
    outbox.append_many([(TELEMETRY_ROOT, fourth.node, fourth.payload)])  # ... then the process died
    assert store.enqueue(outbox) == 1  # only the fifth is new
    assert [b.outbox_seq for b in store.batches()] == [1, 2, 3, 5, 6]
    assert outbox.last_seq() == 6 and store.enqueue(outbox) == 0
    with pytest.raises(ConfigError, match="cannot anchor"):
        store.enqueue(EventOutbox(tmp_path / "other.sqlite", "0x" + "cd" * 20))


# --- the fast path: checked samples, bulk keccak --------------------------------------------------

SENSORS = [("sewage", "pump-1", "level-0", "level_m", "m"), ("sewage", "tank-2", "level-1", "level_m", "m"),
           ("water", "junction:247", "junction:247/pressure", "pressure", "m"),
           ("healthcare", "ward.3", "sénsor \"x\"/ünits", "beds", "")]


def _samples(n: int, seed: int) -> tuple[list[int], list[float], list[int]]:
    """n samples, edge values and times included, each (sensor, time) once (the store keeps one)."""
    rng = random.Random(seed)
    edge_values = [0.0, -0.0, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, -273.15, 123456789.125]
    edge_times = [0, 1, 999, 1000, 253402300799999]
    t0 = int(T0.timestamp() * 1000)
    sensors = [rng.randrange(len(SENSORS)) for _ in range(n)]
    taken: set[tuple[int, int]] = set()
    times: list[int] = []
    for sensor in sensors:
        t = rng.choice(edge_times) if rng.random() < 0.05 else t0 + rng.randrange(86_400_000)
        while (sensor, t) in taken:
            t = t0 + rng.randrange(86_400_000)
        taken.add((sensor, t))
        times.append(t)
    return (sensors,
            [rng.choice(edge_values) if rng.random() < 0.2 else round(rng.gauss(40, 9), rng.randrange(6))
             for _ in range(n)],
            times)


def _as_readings(ix: list[int], values: list[float], times: list[int]) -> list[Reading]:
    return [Reading(sector=SENSORS[i][0], asset_id=SENSORS[i][1], sensor_id=SENSORS[i][2], quantity=SENSORS[i][3],
                    unit=SENSORS[i][4], value=v, timestamp=datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=t))
            for i, v, t in zip(ix, values, times, strict=True)]


def test_checked_samples_store_exactly_what_readings_store(tmp_path: Path) -> None:
    """Same readings, two paths in: byte-identical bodies and leaves, identical batches, valid proofs."""
    ix, values, times = _samples(3000, seed=7)
    fast = SensorCatalogue(SENSORS).encode(ix, values, times)
    slow = encode_readings(_as_readings(ix, values, times))
    assert fast.bodies == slow.bodies and fast.leaves == slow.leaves and list(fast.times_ms) == list(slow.times_ms)
    for k in (0, 1, 1234, 2999):
        reading = _as_readings([ix[k]], [values[k]], [times[k]])[0]
        assert fast.body(k) == reading_body(reading) and fast.leaf(k) == reading_leaf(reading)

    a = TelemetryStore(tmp_path / "a.sqlite", ADDRESS, batch_size=700)
    b = TelemetryStore(tmp_path / "b.sqlite", ADDRESS, batch_size=700)
    for lo, hi in [(0, 5), (5, 1300), (1300, 3000)]:  # chunks that do not line up with batches
        a.add_encoded(SensorCatalogue(SENSORS).encode(ix[lo:hi], values[lo:hi], times[lo:hi]))
    b.add_many(_as_readings(ix, values, times))
    a.seal(force=True)
    b.seal(force=True)
    assert [(x.batch, x.root, x.count, x.node, x.payload) for x in a.batches()] == \
           [(x.batch, x.root, x.count, x.node, x.payload) for x in b.batches()]
    leaves = [fast.leaf(k) for k in range(700, 1400)]
    assert a.batch(2).root == MerkleTree(leaves).root  # type: ignore[union-attr]
    for ref in ["1:0", "1:699", "2:4", "5:199"]:
        proof = a.proof(ref)
        batch_no, index = parse_reading_ref(ref)
        assert proof.verify() and proof.leaf == proof.stored_leaf == fast.leaf((batch_no - 1) * 700 + index)
        assert proof.body == b.proof(ref).body
    assert a.ref_of(701) == "2:0" and a.pending_count() == 0 and a.sealed_through == 3000


def test_bodies_read_back_by_range_match_one_by_one(tmp_path: Path) -> None:
    """The judge reads stored readings back a range at a time; ranges that start, end and cross chunks
    give the same bodies as single reads, and a range beyond what is stored is refused."""
    from oracles import telemetry_chunks as chunks

    ix, values, times = _samples(900, seed=3)
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=10_000)
    for lo, hi in [(0, 255), (255, 256), (256, 700), (700, 900)]:  # chunks of 255, 1, 444 and 200
        store.add_encoded(SensorCatalogue(SENSORS).encode(ix[lo:hi], values[lo:hi], times[lo:hi]))
    bodies = [reading_body(r) for r in _as_readings(ix, values, times)]
    with opened_db(tmp_path / "t.sqlite") as db:
        for lo, hi in [(1, 1), (1, 900), (255, 257), (256, 256), (250, 701), (899, 900)]:
            assert chunks.read_bodies(db, lo, hi) == bodies[lo - 1:hi] == [chunks.read_body(db, i) for i in range(lo, hi + 1)]
        with pytest.raises(chunks.ChunkDamaged, match="not all stored"):
            chunks.read_bodies(db, 899, 901)


def test_bad_sensors_and_samples_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        SensorCatalogue([("sewage", "pump 1", "level-0", "level_m", "m")])  # asset id pattern
    with pytest.raises(ValidationError):
        SensorCatalogue([("gas", "pump-1", "level-0", "level_m", "m")])
    catalogue = SensorCatalogue(SENSORS)
    for sensor, value, at, message in [
        ([0, 9], [1.0, 1.0], [0, 0], "sample 1: sensor index outside"),
        ([0, -1], [1.0, 1.0], [0, 0], "sample 1: sensor index outside"),
        ([0, 0, 0], [1.0, 2.0, float("nan")], [0, 0, 0], "sample 2: value is not a finite number"),
        ([0], [float("-inf")], [0], "sample 0: value is not a finite number"),
        ([0], [1.0], [-1], "time is outside"),
        ([0], [1.0], [253402300800000], "time is outside"),
        ([0], [1.0], [1.5], "must be integers"),
        ([0, 1], [1.0], [0, 0], "of one length"),
    ]:
        with pytest.raises(ValueError, match=message):
            catalogue.encode(sensor, value, at)
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS)
    assert store.add_encoded(catalogue.encode([], [], [])) == range(0) and store.pending_count() == 0


def test_native_and_pure_hashing_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    items = [rng.randbytes(rng.choice([0, 1, 31, 32, 64, 96, 135, 136, 137, 271, 272, 500])) for _ in range(300)]
    ends = list(itertools.accumulate(map(len, items)))
    blob = b"".join(items)
    words = b"".join(to_bytes32(f"asset-{i % 7}") for i in range(len(items)))
    times = [rng.randrange(2**64) for _ in items]
    leaves = [rng.randbytes(32) for _ in range(1001)]
    leaves[5] = leaves[6]  # equal leaves sort either way
    expected_leaves = b"".join(leaf_hash(encode_leaf(words[32 * i:32 * i + 32], t, keccak(item)))
                               for i, (item, t) in enumerate(zip(items, times, strict=True)))
    for native in ([True, False] if hashing.NATIVE else [False]):
        if not native:
            monkeypatch.setattr(hashing, "_KERNEL", None)
        assert hashing.keccak_concat(blob, ends) == [keccak(item) for item in items]
        assert hashing.leaves_of(blob, ends, words, times) == expected_leaves
        for n in (1, 2, 3, 4, 5, 17, 1001):
            assert hashing.merkle_root(b"".join(leaves[:n])) == MerkleTree(leaves[:n]).root
            tree = MerkleTree(leaves[:n])
            assert all(verify(tree.proof(i), tree.root, leaves[i]) for i in range(n))
    with pytest.raises(ValueError, match="one body end"):
        hashing.leaves_of(blob, ends, words[:-32], times)


def test_a_seal_takes_only_what_was_stored_when_it_began(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A steady stream must not keep `anchor` sealing forever: it seals what was there when called."""
    store = TelemetryStore(tmp_path / "t.sqlite", ADDRESS, batch_size=10)
    store.add_many(readings(25))
    roots = 0

    def root_while_more_arrive(leaves: bytes) -> bytes:  # intake goes on while the sealer builds a tree
        nonlocal roots
        roots += 1
        store.add_many(readings(10, start=100 + 10 * roots))
        return hashing.merkle_root(leaves)

    monkeypatch.setattr(telemetry, "merkle_root", root_while_more_arrive)
    assert [b.count for b in store.seal()] == [10, 10] and store.pending_count() == 25
    assert [b.count for b in store.seal(force=True)] == [10, 10, 5] and store.pending_count() == 30


# --- on a real chain ------------------------------------------------------------------------------


def test_batches_are_anchored_and_proofs_verify_against_the_chain(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "sewage", 3)
    rec = recorder(chain.client, chain.settings, ident)
    store = TelemetryStore(tmp_path / "t.sqlite", ident.address, batch_size=50, max_age_s=60)
    taken = readings(120)
    store.ingest(taken[:60], rec)  # one full batch: anchored at once
    assert [b.anchored for b in store.batches()] == [True]
    store.add_many(taken[60:])
    assert store.anchor(rec, force=True) == 2
    batches = store.batches()
    assert [b.count for b in batches] == [50, 50, 20] and all(b.anchored for b in batches)
    on_chain = chain_roots(chain, ident.address)
    for b in batches:
        assert b.outbox_seq is not None and on_chain[b.outbox_seq] == b.payload
        assert decode_root_payload(on_chain[b.outbox_seq]) == (b.batch, b.root)
    rng = random.Random(5)
    for ref in ["1:0", "3:19", *(f"{rng.randint(1, 2)}:{rng.randrange(50)}" for _ in range(10))]:
        proof = store.proof(ref)
        batch_no, index = parse_reading_ref(ref)
        assert proof.reading == taken[(batch_no - 1) * 50 + index]
        _, chain_root = decode_root_payload(on_chain[proof.seq])  # type: ignore[index]
        assert proof.verify(chain_root) and proof.leaf == proof.stored_leaf
    assert audit(chain).ok


def _chunk_of(db: sqlite3.Connection, path: Path, batch: int, index: int) -> tuple[int, int]:
    """(chunk first_id, position in the chunk) of reading batch:index, found with plain SQL."""
    (first,) = db.execute("SELECT first_id FROM batches WHERE batch = ?", (batch,)).fetchone()
    arrival = int(first) + index
    (chunk,) = db.execute("SELECT MAX(first_id) FROM chunks WHERE first_id <= ?", (arrival,)).fetchone()
    return int(chunk), arrival - int(chunk)


def _tamper(path: Path, batch: int, index: int, change: dict[str, object] | None) -> None:
    """Rewrite one stored reading behind the store's back (None: make it not a reading at all)."""
    with opened_db(path) as db:
        chunk, k = _chunk_of(db, path, batch, index)
        bodies, ends_blob = db.execute("SELECT bodies, ends FROM chunks WHERE first_id = ?", (chunk,)).fetchone()
        ends = [int.from_bytes(ends_blob[i:i + 8], "little") for i in range(0, len(ends_blob), 8)]
        parts = [bodies[(ends[i - 1] if i else 0):ends[i]] for i in range(len(ends))]
        parts[k] = b"{}" if change is None else json.dumps({**json.loads(parts[k]), **change}).encode()
        total, new_ends = 0, b""
        for part in parts:
            total += len(part)
            new_ends += total.to_bytes(8, "little")
        db.execute("UPDATE chunks SET bodies = ?, ends = ? WHERE first_id = ?", (b"".join(parts), new_ends, chunk))


def test_audit_proof_command_checks_the_on_chain_root(chain) -> None:  # type: ignore[no-untyped-def]
    ident = oracle(chain.settings, "banking", 3)
    rec = recorder(chain.client, chain.settings, ident)
    path = telemetry_path(chain.settings.home, ident.address)
    store = TelemetryStore(path, ident.address, batch_size=8)
    store.add_many(readings(20, assets=("atm-3",)))
    store.anchor(rec, force=True)
    store.add_many(readings(2, start=20))
    store.seal(force=True)  # batch 4: sealed, never handed to the ledger
    store.close()

    ok = run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "2:5"], chain.env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK reading 2:5: atm-3 level-1 level_m=") and "\n" not in ok.stdout.strip()
    as_json = run_cli(["audit", "proof", "--oracle", ident.address, "--reading", "3:3", "--json"], chain.env)
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["ok"] and body["root"] == body["local_root"] and body["asset"] == "atm-3"

    _tamper(path, 2, 5, {"value": 9.9})
    bad = run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "2:5"], chain.env)
    assert bad.returncode == 1 and bad.stdout == "", bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "audit failed: reading 2:5 of banking-3 does not match the on-chain root of batch 2 (event #")
    assert lines[0].endswith("): the stored reading differs from the one that was anchored")
    both = run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "2:5", "--json"], chain.env)
    assert both.returncode == 1 and json.loads(both.stdout)["ok"] is False
    # a neighbour still proves: the other leaves of batch 2 are untouched
    assert run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "2:4"], chain.env).returncode == 0
    _tamper(path, 1, 0, None)
    broken = run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "1:0"], chain.env)
    assert broken.returncode == 1 and "no longer a valid reading" in broken.stderr
    with opened_db(path) as db:
        chunk, _ = _chunk_of(db, path, 3, 0)
        db.execute("UPDATE chunks SET leaves = 'not a hash' WHERE first_id = ?", (chunk,))
    mangled = run_cli(["audit", "proof", "--oracle", "banking-3", "--reading", "3:1"], chain.env)
    assert mangled.returncode == 1 and "stored leaves are missing or malformed" in mangled.stderr

    for args, message in [
        (["--reading", "2-5"], "is not BATCH:INDEX"),
        (["--reading", "9:0"], "no batch 9"),
        (["--reading", "4:0"], "never handed to the ledger"),
    ]:
        result = run_cli(["audit", "proof", "--oracle", "banking-3", *args], chain.env)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.returncode == (1 if "ledger" in message else 2)
    nostore = run_cli(["audit", "proof", "--oracle", "banking-4", "--reading", "1:0"], chain.env)
    assert nostore.returncode == 2 and nostore.stderr.startswith("error: no telemetry store for banking-4")


def test_oracle_killed_while_anchoring_anchors_every_batch_exactly_once(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from chain.connect import connect
        from core.config import load_settings
        from oracles.telemetry import TelemetryStore, telemetry_path
        from tests.support import oracle, recorder
        from tests.oracles.test_telemetry import readings
        settings = load_settings(home={str(chain.settings.home)!r}, rpc_port={chain.settings.rpc_port},
                                 scrypt_n={chain.settings.scrypt_n})
        client, _ = connect(settings)
        rec = recorder(client, settings, oracle(settings, "sewage", 2))
        store = TelemetryStore(telemetry_path(settings.home, rec.identity.address), rec.identity.address,
                               batch_size=7, max_age_s=3600)
        for i in range(1000):
            store.add_many(readings(5, start=5 * i))
            store.anchor(rec, force=i % 3 == 0)
            print(i, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(12):
        assert child.stdout.readline()
    time.sleep(random.Random(3).uniform(0, 0.05))
    child.send_signal(signal.SIGKILL)
    child.wait()

    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "sewage", 2))
    store = TelemetryStore(telemetry_path(chain.settings.home, rec.identity.address), rec.identity.address,
                           batch_size=7)
    store.anchor(rec, force=True)
    batches = store.batches()
    stored = sum(b.count for b in batches)
    assert stored >= 12 * 5 and store.pending_count() == 0
    assert stored % 5 == 0, "readings are committed in whole add_many transactions"
    on_chain = chain_roots(chain, rec.identity.address)
    anchored = Counter(decode_root_payload(p)[0] for p in on_chain.values())
    assert anchored == Counter(b.batch for b in batches), "every batch exactly once"
    for b in batches:
        assert b.outbox_seq is not None and on_chain[b.outbox_seq] == b.payload
    assert int(chain.client.call1("EventLedger", "lastSeq", rec.identity.address)) == len(batches)
    last = batches[-1]
    proof = store.proof(f"{last.batch}:{last.count - 1}")
    assert proof.verify(decode_root_payload(on_chain[last.outbox_seq])[1])  # type: ignore[index]
    assert MerkleTree([store.proof(f"{last.batch}:{i}").leaf for i in range(last.count)]).root == last.root
    assert audit(chain).ok
