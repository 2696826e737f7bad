"""Nothing is lost: the chain killed hard, or an oracle killed mid-flush, and both restarted."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from chain.node import start_anvil, stop_anvil
from chain.recorder import canonical_payload
from keys.ids import to_bytes32
from tests.chain.test_ledger_and_audit import audit
from tests.conftest import free_port
from tests.support import oracle, recorder, wait_journaled


def test_anvil_killed_and_restarted_keeps_the_whole_history(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "healthcare", 1))
    for i in range(5):
        rec.record(1, to_bytes32("hospital-1"), canonical_payload({"i": i}))
    before = audit(chain)
    assert before.ok and before.events == 5
    wait_journaled(chain.settings)  # what the keeper journaled survives a crash
    assert stop_anvil(chain.settings, hard=True)  # SIGKILL: no shutdown dump
    start_anvil(chain.settings)
    chain.reconnect()
    after = audit(chain)
    assert after.ok and after.events == 5 and after.batches == before.batches
    assert int(chain.client.call1("EventLedger", "lastSeq", rec.identity.address)) == 5


def test_events_lost_with_the_chain_are_resubmitted_exactly_once(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    wait_journaled(chain.settings)  # the deployment is journaled
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 1))
    rec.outbox.append_many((1, to_bytes32("pump-1"), canonical_payload({"i": i})) for i in range(40))
    rec.flush(max_batch=5)
    stop_anvil(chain.settings, hard=True)  # the last blocks may not be journaled yet: they are lost
    start_anvil(chain.settings)
    chain.reconnect()
    rec.client = chain.client
    lost = rec.sync()
    rec.flush(max_batch=5)
    result = audit(chain)
    assert result.ok, result.invalid
    assert result.events == 40, f"{lost} events were resubmitted"
    assert int(chain.client.call1("EventLedger", "lastSeq", rec.identity.address)) == 40


def test_oracle_killed_mid_flush_loses_and_repeats_nothing(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parents[2])!r})
        from chain.connect import connect
        from core.config import load_settings
        from tests.support import oracle, recorder, wait_journaled
        from keys.ids import to_bytes32
        settings = load_settings(home={str(chain.settings.home)!r}, rpc_port={chain.settings.rpc_port},
                                 scrypt_n={chain.settings.scrypt_n})
        client, _ = connect(settings)
        rec = recorder(client, settings, oracle(settings, "transportation", 2))
        for i in range(1000):
            rec.outbox.append(1, to_bytes32("bridge-1"), b'{{"i":%d}}' % i)
            rec.flush()
            print(i, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for _ in range(15):
        child.stdout.readline()
    child.send_signal(signal.SIGKILL)
    child.wait()
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "transportation", 2))
    written = rec.outbox.last_seq()
    assert written >= 15
    rec.sync()
    rec.flush()
    assert int(chain.client.call1("EventLedger", "lastSeq", rec.identity.address)) == written
    result = audit(chain)
    assert result.ok and result.events == written


def test_oracle_killed_between_batches_of_a_split_flush_loses_and_repeats_nothing(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    """Issue 13: a flush cut by the ledger's byte bound into many batches, the oracle SIGKILLed once
    some have landed and others are in flight; the restarted oracle sends exactly the rest."""
    chain = fresh_chain
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from chain.connect import connect
        from core.config import load_settings
        from tests.support import oracle, recorder
        from keys.ids import to_bytes32
        settings = load_settings(home={str(chain.settings.home)!r}, rpc_port={chain.settings.rpc_port},
                                 scrypt_n={chain.settings.scrypt_n})
        client, _ = connect(settings)
        rec = recorder(client, settings, oracle(settings, "banking", 3))
        rec.outbox.append_many((1, to_bytes32("atm-1"), os.urandom(2048).hex().encode()) for _ in range(600))
        print("written", flush=True)
        rec.flush(on_confirmed=lambda n, _: print("batch", n, flush=True))
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "written"
    assert child.stdout.readline().startswith("batch 30")  # cut by bytes: 30 events of 4,096 bytes a batch
    child.send_signal(signal.SIGKILL)
    child.wait()
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "banking", 3))
    landed = rec.chain_last_seq()
    assert 30 <= landed < 600 and landed % 30 == 0
    rec.sync()
    rest = rec.flush()
    assert rest.events == 600 - landed  # what the chain lacked, and only that
    assert rec.chain_last_seq() == 600 == rec.outbox.last_seq()
    result = audit(chain)
    assert result.ok and result.events == 600


def test_a_keeper_whose_chain_is_gone_stops(tmp_path: Path) -> None:
    """A benchmark killed with its temporary chain must not leave its journal keeper polling forever;
    a chain that comes back gets a new keeper from `start_anvil`."""
    journal = tmp_path / "chain" / "journal.jsonl"
    journal.parent.mkdir()
    args = [sys.executable, "-m", "chain.keeper", "--journal", str(journal), "--rpc-url",
            f"http://127.0.0.1:{free_port()}", "--interval", "0.05"]
    done = subprocess.run([*args, "--give-up-after", "0.5"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "is gone; stopping" in done.stderr
    keeper = subprocess.Popen([*args, "--give-up-after", "600"], stderr=subprocess.DEVNULL)
    try:
        shutil.rmtree(journal.parent)  # the temporary folder removed: no chain will come back to it
        assert keeper.wait(timeout=60) == 0
    finally:
        keeper.kill()
