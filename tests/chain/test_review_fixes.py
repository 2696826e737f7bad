"""Regressions for failure modes found in review: each once lost, blocked or corrupted data."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from chain.deploy import oracle_keystore
from chain.journal import ChainJournal, JournalBlock
from chain.outbox import EventOutbox
from chain.recorder import canonical_payload
from core.errors import IdentityError, InvalidEvent
from keys.ids import to_bytes32
from keys.keystore import rotate_keystore
from tests.conftest import run_cli
from tests.support import oracle, recorder


def _block(n: int, txs: tuple[str, ...] = ()) -> JournalBlock:
    return JournalBlock(n, n + 1, txs, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", state_root=f"0x{n:064x}")


def test_torn_journal_tail_is_cut_before_anything_appends(tmp_path: Path) -> None:
    journal = ChainJournal(tmp_path / "journal.jsonl")
    journal.start({"chain_id": 31337, "timestamp": 1, "gas_limit": 30_000_000})
    journal.append([_block(1, ("0x01",)), _block(2, ("0x02",))])
    torn = journal.path.read_bytes()[:-5]
    journal.path.write_bytes(torn)
    assert journal.repair() > 0
    journal = ChainJournal(journal.path)  # a new keeper after the crash
    journal.append([_block(2, ("0x02",)), _block(3)])
    assert [b.number for b in journal.blocks()] == [1, 2, 3]
    assert journal.verify() == 3  # the lines appended after the repair chain to the ones before it


def test_an_event_the_ledger_would_refuse_never_gets_a_sequence_number(tmp_path: Path) -> None:
    outbox = EventOutbox.for_oracle(tmp_path, "0x" + "ab" * 20, "deployment-a")
    with pytest.raises(InvalidEvent, match="at most 4096"):
        outbox.append(1, to_bytes32("pump-1"), b"x" * 5000)
    with pytest.raises(InvalidEvent, match="kind 24"):  # 23 is the last kind (notice)
        outbox.append(24, to_bytes32("pump-1"), b"{}")
    assert outbox.append(1, to_bytes32("pump-1"), b"{}") == 1
    # another deployment's outbox starts empty: a redeploy never re-records old events
    assert EventOutbox.for_oracle(tmp_path, "0x" + "ab" * 20, "deployment-b").last_seq() == 0


def test_oversized_payload_is_refused_and_the_oracle_keeps_working(chain) -> None:  # type: ignore[no-untyped-def]
    big = run_cli(["event", "record", "--oracle", "healthcare-3", "--kind", "anomaly",
                   "--payload", '{"x": "' + "a" * 5000 + '"}'], chain.env)
    assert big.returncode == 2 and "at most 4096" in big.stderr and "Traceback" not in big.stderr
    ok = run_cli(["event", "record", "--oracle", "healthcare-3", "--kind", "anomaly"], chain.env)
    assert ok.returncode == 0, ok.stderr


def test_a_keystore_ahead_of_the_registry_refuses_to_sign(fresh_chain) -> None:  # type: ignore[no-untyped-def]
    chain = fresh_chain
    path = oracle_keystore(chain.settings, "water", 4)
    rotate_keystore(path, chain.settings.passphrase, MLDSA65PrivateKey.generate())  # rotateKey never sent
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 4))
    with pytest.raises(IdentityError, match="key epoch 2 but the registry holds epoch 1"):
        rec.record(1, to_bytes32("pump-1"), canonical_payload({}))
    # finishing the rotation (it resumes with the key already on disk) makes it usable again
    assert run_cli(["keys", "rotate", "--oracle", "water-4"], chain.env).returncode == 0
    rec = recorder(chain.client, chain.settings, oracle(chain.settings, "water", 4))
    assert rec.record(1, to_bytes32("pump-1"), canonical_payload({})) == 1  # the refused one never got a seq
    assert rec.chain_last_seq() == 1
